"""Every UI string of the reports in one table (English and Dutch), plus number and date formats.

Sales managers read the dashboard in Dutch with the vocabulary of the method (nulmeting,
actie-/resultaat-/inzicht-KPI's, salesgesprekken, nieuwe omzet, conversieratio, offerte,
klant); KPI names themselves come from the KPI registry (`name_en`/`name_nl`), not from here.
"""

from __future__ import annotations

import math
from datetime import date

from pipelines.settings import LANGUAGES  # the languages' one home (a setting picks one)

TEXT: dict[str, tuple[str, str]] = {
    # key: (English, Dutch)
    "title": ("Sales KPI dashboard", "Sales-KPI-dashboard"),
    "subtitle": (
        "Action, result and insight KPIs against baseline and target",
        "Actie-, resultaat- en inzicht-KPI's ten opzichte van nulmeting en doel",
    ),
    "as_of": ("Data as of", "Peildatum"),
    "definitions_version": ("Definitions", "Definities"),
    "run_id": ("Run", "Run"),
    "published_at": ("Published", "Gepubliceerd"),
    "company": ("Company", "Bedrijf"),
    "Unassigned": ("Unassigned", "Niet toegewezen"),
    "view": ("View", "Weergave"),
    "this_month": ("This month", "Deze maand"),
    "month_to_date": ("month to date", "maand tot nu toe"),
    "value": ("Value", "Waarde"),
    "actual": ("Actual", "Realisatie"),
    "target": ("Target", "Doel"),
    "baseline": ("Baseline (nulmeting)", "Nulmeting"),
    "baseline_window": ("baseline period", "periode nulmeting"),
    "attainment": ("Attainment", "Behaald"),
    "no_target": ("no target yet", "nog geen doel"),
    "no_data": ("no data", "geen gegevens"),
    "previous_month": ("Last month", "Vorige maand"),
    "met": ("Met", "Gehaald"),
    "below": ("Below target", "Onder doel"),
    "in_progress": ("In progress", "Loopt nog"),
    "none": ("No target", "Geen doel"),
    "action_kpis": ("Action KPIs — per week", "Actie-KPI's — per week"),
    "action_help": (
        "What reps control directly: cold e-mails, cold calls and sales conversations, "
        "against the weekly target (baseline + uplift, raised step by step).",
        "Waar verkopers zelf invloed op hebben: koude e-mails, koude telefoongesprekken en "
        "salesgesprekken, tegen het weekdoel (nulmeting + opslag, stap voor stap verhoogd).",
    ),
    "result_kpis": ("Result KPIs — per month", "Resultaat-KPI's — per maand"),
    "result_help": (
        "What reps influence indirectly: new leads, new revenue and upsell, with the "
        "baseline and the monthly target.",
        "Waar verkopers indirect invloed op hebben: nieuwe leads, nieuwe omzet en upsell, met "
        "de nulmeting en het maanddoel.",
    ),
    "insight_kpis": ("Insight KPIs — funnel and conversion", "Inzicht-KPI's — funnel en conversie"),
    "insight_help": (
        "Insight KPIs are for teams and the company only, never to judge a person.",
        "Inzicht-KPI's gelden alleen voor teams en het bedrijf, nooit om een persoon te "
        "beoordelen.",
    ),
    "revenue_growth": (
        "New revenue and month-over-month growth",
        "Nieuwe omzet en maand-over-maand groei",
    ),
    "funnel_title": ("Funnel — in the period", "Funnel — in de periode"),
    "funnel_help": (
        "Contacts entering each stage in the months of the period, computed from the agreed "
        "definitions (not from CRM labels). Sales leads include those sales sourced itself.",
        "Contacten die in de maanden van de periode een fase bereikten, berekend volgens de "
        "afgesproken definities (niet uit de CRM-labels). Sales leads omvatten ook leads die "
        "sales zelf vond.",
    ),
    "conversion_title": ("Conversion ratios per cohort month", "Conversieratio's per cohortmaand"),
    "conversion_help": (
        "A cohort is mature once its {days}-day conversion window has passed; immature "
        "cohorts are drawn lighter and can still rise.",
        "Een cohort is volgroeid zodra het conversievenster van {days} dagen voorbij is; "
        "niet-volgroeide cohorten zijn lichter getekend en kunnen nog stijgen.",
    ),
    "latest_mature_cohort": (
        "Latest mature cohort: {month}",
        "Laatste volgroeide cohort: {month}",
    ),
    "immature": ("immature cohort", "cohort nog niet volgroeid"),
    "mature": ("mature cohort", "volgroeid cohort"),
    "immature_band": ("still maturing", "nog niet volgroeid"),
    "marketing_lead": ("Marketing leads", "Marketing leads"),
    "sales_lead": ("Sales leads", "Sales leads"),
    "quote": ("Quotes", "Offertes"),
    "customer": ("Customers", "Klanten"),
    "mom_growth": ("MoM growth", "Groei t.o.v. vorige maand"),
    "won_deals": ("won deals", "gewonnen deals"),
    "team_comparison": ("Teams", "Teams"),
    "reps": ("Reps", "Verkopers"),
    "rep": ("Rep", "Verkoper"),
    "team": ("Team", "Team"),
    "inactive": ("inactive", "inactief"),
    "attainment_chart": ("Attainment, {week} (complete)", "Behaald, {week} (afgerond)"),
    "rep_detail": ("Rep detail", "Per verkoper"),
    "rep_detail_help": (
        "Pick a rep to see their weekly action KPIs and monthly results against target.",
        "Kies een verkoper voor de wekelijkse actie-KPI's en maandresultaten tegen het doel.",
    ),
    "week_complete": ("complete", "afgerond"),
    "week_current": ("current", "lopend"),
    "week": ("Week", "Week"),
    "week_short": ("W{n}", "wk {n}"),
    "month": ("Month", "Maand"),
    "labels_title": ("CRM label check", "Controle CRM-labels"),
    "labels_help": (
        "Per labeller, the share of CRM lifecycle labels that disagree with the computed "
        "stage. Above {threshold} (with at least {min_labels} labels judged) a labeller is "
        "flagged — to discuss in the team, not a KPI.",
        "Per medewerker het aandeel CRM-labels dat afwijkt van de berekende fase. Boven "
        "{threshold} (bij minstens {min_labels} beoordeelde labels) wordt de medewerker "
        "gemarkeerd — om in het team te bespreken, geen KPI.",
    ),
    "labeller": ("Labeller", "Medewerker"),
    "labels_judged": ("Labels judged", "Beoordeelde labels"),
    "inconsistent": ("Disagreeing", "Afwijkend"),
    "inconsistency_rate": ("Disagreement", "Afwijking"),
    "threshold": ("Threshold", "Drempel"),
    "flagged": ("Flagged", "Gemarkeerd"),
    "no_flagged": ("No labeller above the threshold.", "Geen medewerker boven de drempel."),
    "checks_title": ("Checks of this run", "Controles van deze run"),
    "check": ("Check", "Controle"),
    "severity": ("Severity", "Ernst"),
    "result": ("Result", "Resultaat"),
    "description": ("Description", "Omschrijving"),
    "passed": ("passed", "geslaagd"),
    "failed": ("failed", "mislukt"),
    "blocking": ("blocking", "blokkerend"),
    "warning": ("warning", "waarschuwing"),
    "checks_summary": (
        "{passed} of {total} checks passed",
        "{passed} van {total} controles geslaagd",
    ),
    "checks_missing": (
        "No check results were passed to this report.",
        "Er zijn geen controleresultaten aan dit rapport meegegeven.",
    ),
    "auditors_pack": ("Auditor's pack", "Auditpakket"),
    "auditors_help": (
        "The definitions behind every number, the model documentation and the data-quality "
        "results of every run.",
        "De definities achter elk getal, de modeldocumentatie en de kwaliteitsresultaten van "
        "elke run.",
    ),
    "link_definitions": ("Definitions and thresholds", "Definities en drempels"),
    "link_dbt_docs": ("Model documentation (dbt docs)", "Modeldocumentatie (dbt docs)"),
    "link_data_docs": ("Data quality (GX Data Docs)", "Datakwaliteit (GX Data Docs)"),
    "published_runs": ("Published runs", "Gepubliceerde runs"),
    "source_files": ("Source files", "Bronbestanden"),
    "effective_settings": ("Effective settings of this run",
                           "Effectieve instellingen van deze run"),
    "footer": (
        "Generated from the published marts; only runs whose blocking checks passed are "
        "published.",
        "Gemaakt uit de gepubliceerde marts; alleen runs waarvan de blokkerende controles "
        "slaagden worden gepubliceerd.",
    ),
    # the explorable dashboard (toolbar, cards, tables, tooltips; read by dashboard.js)
    "filters": ("Filters", "Filters"),
    "all_teams": ("All teams (company)", "Alle teams (bedrijf)"),
    "all_reps": ("All reps of the team", "Alle verkopers van het team"),
    "pick_team_first": ("Pick a team to choose a rep", "Kies eerst een team"),
    "period": ("Period", "Periode"),
    "from": ("From", "Van"),
    "to": ("To", "Tot en met"),
    "preset_w13": ("Last 13 weeks", "Laatste 13 weken"),
    "preset_w26": ("Last 26 weeks", "Laatste 26 weken"),
    "preset_w52": ("Last 52 weeks", "Laatste 52 weken"),
    "preset_m6": ("Last 6 months", "Laatste 6 maanden"),
    "preset_m12": ("Last 12 months", "Laatste 12 maanden"),
    "preset_m24": ("Last 24 months", "Laatste 24 maanden"),
    "preset_ytd": ("This year", "Dit jaar"),
    "preset_all": ("All periods", "Alle perioden"),
    "preset_custom": ("Custom months…", "Eigen maanden…"),
    "showing": ("Showing", "Weergave"),
    "loading": ("Loading…", "Laden…"),
    "load_failed": ("The data file could not be loaded: {file}",
                    "Het gegevensbestand kon niet worden geladen: {file}"),
    "view_chart": ("Chart", "Grafiek"),
    "view_table": ("Table", "Tabel"),
    "download_csv": ("CSV", "CSV"),
    "download_xlsx": ("Excel", "Excel"),
    "download_help": ("Download the rows shown (current filters and period)",
                      "Download de getoonde rijen (huidige filters en periode)"),
    "rows": ("{n} rows", "{n} rijen"),
    "no_rows": ("No rows for this selection.", "Geen rijen voor deze selectie."),
    "period_start": ("Period start", "Begin periode"),
    "scope": ("Scope", "Niveau"),
    "kpi": ("KPI", "KPI"),
    "status": ("Status", "Status"),
    "stage": ("Stage", "Fase"),
    "contacts": ("Contacts", "Contacten"),
    "cohort": ("Cohort month", "Cohortmaand"),
    "numerator": ("Converted", "Geconverteerd"),
    "denominator": ("Cohort size", "Cohortgrootte"),
    "maturity": ("Maturity", "Volgroeidheid"),
    "flagged_col": ("Flagged", "Gemarkeerd"),
    "labeller_id": ("ID", "ID"),
    "member": ("Member", "Lid"),
    "insight_not_for_reps": (
        "Insight KPIs (funnel, conversion, growth) are shown for teams and the company only, "
        "never for a single rep: pick “All reps of the team” to see the team's.",
        "Inzicht-KPI's (funnel, conversie, groei) worden alleen voor teams en het bedrijf "
        "getoond, nooit voor één verkoper: kies “Alle verkopers van het team” voor die van "
        "het team.",
    ),
    "attainment_title": ("Attainment per {who} — {period}", "Behaald per {who} — {period}"),
    "attainment_none": ("No complete week with targets in this period.",
                        "Geen afgeronde week met doelen in deze periode."),
    "attainment_help": (
        "Actual ÷ target of the action KPIs in the last complete week of the period; the "
        "dashed line is 100 %.",
        "Realisatie ÷ doel van de actie-KPI's in de laatste afgeronde week van de periode; de "
        "stippellijn is 100 %.",
    ),
    "who_team": ("team", "team"),
    "who_rep": ("rep", "verkoper"),
    "kpi_card_help_week": ("Per week, against the weekly target.",
                           "Per week, tegen het weekdoel."),
    "kpi_card_help_month": ("Per month, against the monthly target.",
                            "Per maand, tegen het maanddoel."),
    "target_ceil_note": (
        "Count targets show the whole number needed to meet them (rounded up); the exact "
        "target is in the published marts.",
        "Doelen in aantallen tonen het hele aantal dat nodig is om ze te halen (naar boven "
        "afgerond); het exacte doel staat in de gepubliceerde marts.",
    ),
    "labels_scope_note": ("All-time label record, independent of the period.",
                          "Alle labels tot nu toe, los van de gekozen periode."),
    "week_long": ("week {n} {year} ({days})", "week {n} {year} ({days})"),
    "week_tick": ("W{n} ’{yy}", "wk {n} ’{yy}"),
    "complete_week": ("complete", "afgerond"),
    "revenue": ("Revenue", "Omzet"),
    "growth": ("Growth", "Groei"),
    "role_sdr": ("SDR", "SDR"),
    "role_ae": ("AE", "AE"),
    "role_manager": ("Manager", "Manager"),
    "skip_to_content": ("Skip to the dashboard", "Naar het dashboard"),
    "language": ("Language", "Taal"),
    "other_language": ("Nederlands", "English"),
    "no_js": ("This dashboard draws its charts with JavaScript; please enable it.",
              "Dit dashboard tekent de grafieken met JavaScript; zet dat aan."),
    # definitions page: the registry's vocabulary
    "kind_action": ("action", "actie"),
    "kind_result": ("result", "resultaat"),
    "kind_insight": ("insight", "inzicht"),
    "grain_week": ("week", "week"),
    "grain_month": ("month", "maand"),
    "scope_company": ("company", "bedrijf"),
    "scope_team": ("team", "team"),
    "scope_rep": ("rep", "verkoper"),
    "unit_count": ("count", "aantal"),
    "unit_eur": ("euro", "euro"),
    "unit_ratio": ("ratio", "ratio"),
    "def_in_english": (
        "",
        "De definities, toelichtingen en modeldocumentatie hieronder zijn de teksten uit de "
        "seeds en dbt-modellen zelf (Engelstalig): zo kan de pagina nooit afwijken van waarmee "
        "gerekend is.",
    ),
    # definitions page
    "def_title": ("Agreed definitions", "Afgesproken definities"),
    "def_subtitle": (
        "Generated from the dbt seeds and vars of the project — the same files the pipeline "
        "computes with.",
        "Gegenereerd uit de dbt-seeds en -variabelen van het project — dezelfde bestanden "
        "waarmee de pipeline rekent.",
    ),
    "def_version": ("Version", "Versie"),
    "def_valid_from": ("Valid from", "Geldig vanaf"),
    "def_change": ("What changed", "Wat is er veranderd"),
    "def_changelog": ("Change history", "Wijzigingsgeschiedenis"),
    "def_kpis": ("KPIs", "KPI's"),
    "def_kind": ("Kind", "Soort"),
    "def_grain": ("Grain", "Periode"),
    "def_scopes": ("Scopes", "Niveaus"),
    "def_unit": ("Unit", "Eenheid"),
    "def_definition": ("Definition", "Definitie"),
    "def_owner": ("Owner", "Eigenaar"),
    "def_active": ("Active", "Actief"),
    "def_intent": ("Marketing events: intent or not", "Marketingevents: intentie of niet"),
    "def_event_type": ("Event type", "Eventtype"),
    "def_is_intent": ("Intent", "Intentie"),
    "def_why": ("Why", "Waarom"),
    "def_free_mail": ("Free-mail domains (not fit)", "Gratis e-maildomeinen (niet passend)"),
    "def_roles": ("Sales roles", "Salesrollen"),
    "def_role": ("Role", "Rol"),
    "def_is_sales_rep": ("Sales rep", "Verkoper"),
    "def_labels": ("CRM labels and the stages they agree with",
                   "CRM-labels en de fasen waarmee ze overeenkomen"),
    "def_crm_label": ("CRM label", "CRM-label"),
    "def_agreed_stages": ("Agreed stage(s)", "Overeenkomende fase(n)"),
    "def_thresholds": ("Thresholds", "Drempels"),
    "def_thresholds_help": (
        "The definitions' thresholds, with their defaults from dbt_project.yml: a run whose "
        "effective values differ is a custom variant of the version (`+custom`). Then the "
        "loader's thresholds (the extract contract's, defaults in the settings), which a run "
        "records too but which do not make it `+custom`.",
        "De drempels van de definities, met hun standaardwaarden uit dbt_project.yml: een run "
        "met afwijkende waarden is een aangepaste variant van de versie (`+custom`). Daarna de "
        "drempels van het laden (uit het extractcontract, standaardwaarden in de instellingen), "
        "die een run ook vastlegt maar die hem niet `+custom` maken.",
    ),
    "def_name": ("Name", "Naam"),
    "def_default": ("Default", "Standaard"),
    "def_effective": ("This run", "Deze run"),
    "def_differs": ("differs from default", "wijkt af van standaard"),
    "def_custom_note": (
        "This run used {n} threshold(s) other than the defaults: its rows carry version "
        "{version}+custom.",
        "Deze run gebruikte {n} afwijkende drempel(s): de rijen dragen versie {version}+custom.",
    ),
    "def_checks": ("Checks before publishing", "Controles vóór publicatie"),
    "def_checks_help": (
        "Every run checks its build before anything is published (write–audit–publish). A "
        "check that stops publishing leaves the published marts as they were and fails the "
        "run; a warning is reported and the marts are published with it. First come the dbt "
        "build's own data tests: every model's table rules (keys, required values, agreed "
        "values) stop the run when one fails, as do the singular tests listed first below "
        "unless marked as warnings; then the checks of the consistency rules.",
        "Elke run controleert zijn build voordat er iets gepubliceerd wordt (write–audit–"
        "publish). Een controle die de publicatie stopt laat de gepubliceerde marts zoals ze "
        "waren en laat de run falen; een waarschuwing wordt gemeld en de marts worden ermee "
        "gepubliceerd. Eerst komen de datatests van de dbt-build zelf: de tabelregels van elk "
        "model (sleutels, verplichte en afgesproken waarden) stoppen de run als er een faalt, "
        "net als de hieronder eerst genoemde losse tests, tenzij als waarschuwing gemarkeerd; "
        "daarna de controles van de consistentieregels.",
    ),
    "def_check": ("Check", "Controle"),
    "def_guards": ("Guards", "Bewaakt"),
    "def_on_failure": ("On failure", "Bij falen"),
    "def_stops": ("stops publishing", "stopt de publicatie"),
    "def_warns": ("warns", "waarschuwt"),
    "def_rules": ("Rules as implemented", "Regels zoals geïmplementeerd"),
    "def_rules_help": (
        "The documentation of the dbt models that apply the definitions.",
        "De documentatie van de dbt-modellen die de definities toepassen.",
    ),
    "def_source": ("Source", "Bron"),
    "yes": ("yes", "ja"),
    "no": ("no", "nee"),
    "unset": ("unset", "niet gezet"),
    "back_to_dashboard": ("Dashboard", "Dashboard"),
}

MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "nl": ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
}
MONTHS_LONG: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"),
}
# Plotly's `separators`: decimal point then thousands separator.
PLOTLY_SEPARATORS = {"en": ".,", "nl": ",."}


def check_language(language: str) -> str:
    """The language code, or an error naming the supported ones (a typo must not fall back)."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {language!r}")
    return language


def tr(key: str, language: str, **values: object) -> str:
    """The UI string `key` in `language`, with `{placeholders}` filled in."""
    text = TEXT[key][LANGUAGES.index(language)] if key in TEXT else key
    return text.format(**values) if values else text


def fmt_number(value: float | None, language: str, decimals: int = 0) -> str:
    """A number with the language's thousands and decimal separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:,.{decimals}f}"
    if language == "nl":
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    return text


def fmt_value(value: float | None, unit: str, language: str) -> str:
    """A KPI value in its unit: counts, euros or ratios (as percent)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "eur":
        return ("€" if language == "en" else "€ ") + fmt_number(value, language)
    if unit == "ratio":
        return fmt_percent(value, language)
    decimals = 0 if float(value).is_integer() else 1
    return fmt_number(value, language, decimals)


def fmt_percent(value: float | None, language: str, decimals: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt_number(value * 100, language, decimals) + "%"


def fmt_month(day: date, language: str, long: bool = False) -> str:
    names = MONTHS_LONG if long else MONTHS
    return f"{names[language][day.month - 1]} {day.year}"


def fmt_day(day: date, language: str) -> str:
    return f"{day.day} {MONTHS[language][day.month - 1]}"


def fmt_week(day: date, language: str) -> str:
    """Short ISO-week label of the week starting on `day` (a Monday)."""
    return tr("week_short", language, n=day.isocalendar().week)
