"""The dashboard and the auditor's definitions page, rendered from a real publication.

One tiny generated sample runs through the nightly job once (module fixture), which writes
the site; the files are read back, and headless Chromium (driven over the DevTools protocol,
tests/browser.py) opens the dashboard from disk with networking off, at 1400 px and 420 px,
in English and Dutch. Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from html import unescape
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest
from browser import chromium, require_chromium, wait_for_file
from conftest import LABELLED_RUN, copy_warehouse
from markupsafe import escape

from pipelines.job_runner import run_nightly_job
from pipelines.quality.checks import CHECKS
from pipelines.reporting import write_dashboard, write_definitions_page
from pipelines.reporting.dashboard import PLOTLY_JS
from pipelines.reporting.html import environment
from pipelines.reporting.marts import mart
from pipelines.reporting.site_data import _team_files, script_json, team_file_name
from pipelines.sample import generate_sample
from pipelines.settings import PROJECT_ROOT, Settings

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
SEEDS = DBT_PROJECT / "seeds" / "definitions"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MAX_PAGE_BYTES = 5_000_000
LINKS = {
    "definitions": "definitions.html",
    "dbt_docs": "../dbt_docs/index.html",
    "data_docs": "../../quality/data_docs/index.html",
}
CHECK_RESULTS = [
    {"name": c.name, "passed": c.name != "label_agreement",
     "severity": "ERROR" if c.blocking else "WARN", "description": c.description}
    for c in CHECKS
]


@pytest.fixture(scope="module")
def published(labelled_sample_warehouse: Path) -> Path:
    """The published file of the session's labelled run (conftest.py): the sample at scale
    0.05, whose careless labellers label 14 contacts each, judged from 10 labels on (a
    `+custom` run, which the header must then show) so the label check flags them. The run
    wrote its own site next to it; read-only."""
    return labelled_sample_warehouse / "marts.duckdb"


@pytest.fixture(scope="module")
def site(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dashboard written again with known check results (the job's own is in
    `<warehouse>/site`)."""
    folder = tmp_path_factory.mktemp("site")
    pages = write_dashboard(published, folder, ("en", "nl"), CHECK_RESULTS, LINKS)
    assert set(pages) == {"en", "nl"}
    for language in ("en", "nl"):
        write_definitions_page(DBT_PROJECT, folder / language / "definitions.html",
                               None, language)
    return folder


def _query(published: Path, sql: str, *params: Any) -> list[tuple]:
    con = duckdb.connect()
    try:
        con.execute(f"attach '{published}' as published (read_only)")
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _page(site: Path, language: str) -> str:
    return (site / language / "index.html").read_text(encoding="utf-8")


def _meta(page: str) -> dict[str, Any]:
    found = re.search(r'<script id="skpi-meta" type="application/json">(.*?)</script>', page, re.S)
    assert found, "the page carries its metadata as JSON"
    return json.loads(found.group(1))


def _payload(path: Path) -> dict[str, Any]:
    """The JSON a data file hands to SKPI.receive."""
    text = path.read_text(encoding="utf-8")
    found = re.fullmatch(r'SKPI\.receive\("[^"]+",(.*)\);\n', text, re.S)
    assert found, path
    return json.loads(found.group(1))


# --- the files -----------------------------------------------------------------------------

def test_the_site_is_one_offline_folder_with_the_chart_library_shipped_once(site: Path) -> None:
    for language in ("en", "nl"):
        page = _page(site, language)
        assert page.startswith("<!DOCTYPE html>")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I), "no CDN"
        assert "@import" not in page
        scripts = re.findall(r'<script src="([^"]+)"', page)
        assert scripts == ["../static/plotly.min.js", "../static/dashboard.js"]
        assert "Plotly.newPlot" not in page and "plotly.js v" not in page  # nothing inlined
        for relative in scripts + re.findall(r'<link rel="stylesheet" href="([^"]+)"', page):
            assert (site / language / relative).resolve().is_file(), relative
    assert (site / "static" / "plotly.min.js").read_bytes() == PLOTLY_JS.read_bytes()
    meta = _meta(_page(site, "en"))
    assert (site / "en" / meta["company_file"]).resolve().is_file()
    for team in meta["teams"]:
        assert (site / "en" / team["file"]).resolve().is_file(), team
        assert re.fullmatch(r"\.\./data/\w+/team-[a-z0-9-]+\.js", team["file"])


def test_the_first_page_is_small_and_names_no_rep(published: Path, site: Path) -> None:
    """The page carries teams and the registry only; reps live in the per-team files, so
    its weight cannot grow with the number of reps."""
    reps = _query(published, f"select user_id, full_name from {mart('dim_reps')}")
    for language in ("en", "nl"):
        page = _page(site, language)
        assert len(page.encode()) <= MAX_PAGE_BYTES
        for user_id, name in reps:
            assert user_id not in page, user_id
            assert escape(name) not in page and name not in _meta(page)["teams"], name


def test_header_names_the_run(published: Path, site: Path) -> None:
    run_id, version = _query(
        published,
        f"select run_id, definitions_version from {mart('runs')} "
        "order by published_at desc limit 1",
    )[0]
    for language in ("en", "nl"):
        page = _page(site, language)
        assert run_id in page and f"<b>{version}</b>" in page
        assert "(Europe/Amsterdam)" in page
    for link in LINKS.values():
        assert f'href="{escape(link)}"' in _page(site, "en")


def test_labels_in_english_and_dutch(site: Path) -> None:
    nl, en = _page(site, "nl"), _page(site, "en")
    assert '<html lang="nl">' in nl
    for word in ("Nulmeting", "Peildatum", "Actie-KPI", "Resultaat-KPI", "Inzicht-KPI",
                 "Auditpakket", "Laatste 12 maanden", "Verkoper", "Tabel"):
        assert escape(word) in nl, word
    names_nl = {k["name"] for k in _meta(nl)["kpis"]}
    assert {"Salesgesprekken", "Nieuwe omzet", "Koude e-mails"} <= names_nl
    assert any(name.startswith("Conversieratio") for name in names_nl)
    assert {s["name"] for s in _meta(nl)["stages"]} >= {"Offertes", "Klanten"}
    assert _meta(nl)["separators"] == ",." and _meta(nl)["eur_prefix"] == "€ "
    for word in ("Baseline (nulmeting)", "Data as of", "Auditor's", "Last 12 months"):
        assert escape(word) in en, word
    assert "Sales conversations" in {k["name"] for k in _meta(en)["kpis"]}
    assert "Peildatum" not in en and "Salesgesprekken" not in en


def test_flagged_labellers_are_in_the_company_data(published: Path, site: Path) -> None:
    flagged = {labeller for (labeller,) in _query(
        published, f"select labeller from {mart('label_consistency')} where exceeds_threshold")}
    assert {"USR-0005", "USR-0011"} <= flagged  # the sample's careless labellers
    meta = _meta(_page(site, "en"))
    company = _payload((site / "en" / meta["company_file"]).resolve())
    assert {row[0] for row in company["labels"] if row[7]} == flagged
    names = dict(_query(published, f"select user_id, full_name from {mart('dim_reps')}"))
    assert {row[1] for row in company["labels"] if row[7]} == {names[f] for f in flagged}


def test_insight_kpis_never_per_rep(site: Path) -> None:
    meta = _meta(_page(site, "en"))
    insight = {i for i, k in enumerate(meta["kpis"]) if k["kind"] == "insight"}
    assert insight and all("rep" not in meta["kpis"][i]["scopes"] for i in insight)
    rep_kpis: set[int] = set()
    for team in meta["teams"]:
        for series in _payload((site / "en" / team["file"]).resolve())["series"].values():
            rep_kpis |= set(series["k"])
    assert rep_kpis and not rep_kpis & insight
    company = _payload((site / "en" / meta["company_file"]).resolve())
    team_kpis = {k for s in company["series"]["team"].values() for k in s["k"]}
    assert team_kpis & insight


def test_every_check_is_shown(site: Path) -> None:
    page = _page(site, "en")
    for check in CHECKS:
        assert f'data-check="{check.name}"' in page
    assert f"{len(CHECKS) - 1} of {len(CHECKS)} checks passed" in page


def test_unknown_language_is_an_error(published: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="language"):
        write_dashboard(published, tmp_path, languages=("de",))


def test_data_never_reaches_html_unescaped() -> None:
    hostile = "</script><script>alert(1)</script><!-- & \u2028"
    encoded = script_json({"team": hostile})
    assert "</" not in encoded and "<!--" not in encoded and "\u2028" not in encoded
    assert json.loads(encoded) == {"team": hostile}
    rendered = environment().from_string(
        '<p title="{{ v }}">{{ v }}</p><script type="application/json">{{ v|script_json }}'
        "</script>").render(v=hostile)
    assert "<script>alert" not in rendered
    assert rendered.count("</script>") == 1


def test_published_tables_are_named_in_one_function() -> None:
    """Only `marts.mart()` spells where a published table sits (one line to change)."""
    offenders = []
    for path in (PROJECT_ROOT / "pipelines" / "reporting").rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"published\.\w+\.\w+|\bmarts\.(kpi|dim|fct|runs|label)", line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == [], offenders
    assert mart("kpi_scorecard") == '"published"."kpi_scorecard"'


def test_every_publish_writes_the_site_with_the_auditors_pack(published: Path) -> None:
    site = published.parent / "site"
    for page in ("index.html", "en/index.html", "nl/index.html", "definitions.html",
                 "en/definitions.html", "nl/definitions.html", "dbt_docs/index.html",
                 "static/plotly.min.js", "static/dashboard.js"):
        assert (site / page).is_file(), page
    assert "url=en/index.html" in (site / "index.html").read_text(encoding="utf-8")
    dashboard = (site / "en" / "index.html").read_text(encoding="utf-8")
    for link in ("definitions.html", "../dbt_docs/index.html",
                 "../../quality/data_docs/index.html"):
        assert f'href="{link}"' in dashboard, link
    assert "Afgesproken definities" in (site / "nl" / "definitions.html").read_text("utf-8")
    assert (published.parent / "quality" / "data_docs" / "index.html").is_file()


# --- the definitions page ------------------------------------------------------------------

def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _latest_version() -> str:
    changelog = _seed("definitions_changelog")
    return max(changelog, key=lambda r: (r["valid_from"], r["version"]))["version"]


def test_definitions_page_comes_from_the_seeds_and_vars(tmp_path: Path) -> None:
    path = write_definitions_page(DBT_PROJECT, tmp_path / "definitions.html")
    page = path.read_text(encoding="utf-8")
    for row in _seed("free_mail_domains"):
        assert f"<code>{row['domain']}</code>" in page
    for row in _seed("intent_event_types"):
        assert f"<code>{row['event_type']}</code>" in page
        assert escape(row["why"]) in page
    for row in _seed("kpi_definitions"):
        assert escape(row["definition"]) in page
    assert f'id="version">Version {_latest_version()}</span>' in page  # not +custom
    for row in _seed("definitions_changelog"):
        assert escape(row["change"]) in page and row["valid_from"] in page
    assert re.search(r"<code>min_conversation_seconds</code></td><td>300</td>", page)
    assert re.search(r"<code>conversion_window_days</code></td><td>90</td>", page)


def test_definitions_page_marks_settings_that_differ(published: Path, tmp_path: Path) -> None:
    (settings,) = _query(published, f"select settings from {mart('runs')} limit 1")[0]
    effective = json.loads(settings) | {"min_conversation_seconds": 240}
    assert effective["min_labels_judged"] == 10  # the fixture's run
    path = write_definitions_page(DBT_PROJECT, tmp_path / "d.html", effective, language="nl")
    page = path.read_text(encoding="utf-8")
    assert "Afgesproken definities" in page
    row = re.search(r"<tr class=\"(\w*)\"><td><code>min_conversation_seconds</code>.*?</tr>", page)
    assert row and row.group(1) == "differs" and "240" in row.group(0)
    other = re.search(r"<tr class=\"(\w*)\"><td><code>target_uplift</code>", page)
    assert other and other.group(1) == ""
    assert f'id="version">Versie {_latest_version()} +custom</span>' in page


# What stops publishing and what warns, restated from the definitions ("Rules 1, 2 (above its
# threshold), 3, 5 and 6 stop the publishing of new marts; 4 warns"), by check name.
# and "a check fails when more than max_active_kpis are active" (the dbt build's own test)
STOPS_PUBLISHING = ("lead_stages", "stage_order", "marketing_leads_qualified",
                    "classification_stability", "kpi_sanity", "assert_at_most_max_active_kpis")
WARNS = ("stage_order_breaches", "label_agreement")


def test_the_auditors_pack_says_which_checks_stop_publishing_and_which_warn(
    tmp_path: Path,
) -> None:
    """An auditor asks "would this run have been blocked?": the pack lists every check with
    what a failure does, in both languages."""
    for language, stops, warns in (("en", "stops publishing", "warns"),
                                   ("nl", "stopt de publicatie", "waarschuwt")):
        page = write_definitions_page(DBT_PROJECT, tmp_path / f"{language}.html", None,
                                      language).read_text(encoding="utf-8")
        assert 'id="checks"' in page
        for name, effect in [(n, stops) for n in STOPS_PUBLISHING] + [(n, warns) for n in WARNS]:
            row = re.search(rf'<tr class="[^"]*"><td><code>{name}</code></td>.*?</tr>', page)
            assert row, (language, name)
            assert f">{effect}<" in row.group(0), (language, name, row.group(0))


def test_every_threshold_in_the_auditors_pack_says_what_it_does(tmp_path: Path) -> None:
    page = write_definitions_page(DBT_PROJECT, tmp_path / "d.html").read_text(encoding="utf-8")
    thresholds = page.split('id="thresholds"')[1].split("</section>")[0]
    rows = re.findall(r"<tr class=\"\w*\"><td><code>(\w+)</code></td>.*?<td>([^<]*)</td></tr>",
                      thresholds)
    assert {name for name, _ in rows} >= {"max_order_breaches", "min_conversation_seconds",
                                          "target_uplift", "ratchet_after", "business_timezone"}
    assert [name for name, text in rows if not text.strip()] == []


def test_the_auditors_pack_states_the_lead_origin_rule(tmp_path: Path) -> None:
    page = write_definitions_page(DBT_PROJECT, tmp_path / "d.html").read_text(encoding="utf-8")
    assert "Lead origin" in page and "sales-sourced" in page


def test_dutch_definitions_page_speaks_dutch(tmp_path: Path) -> None:
    """Headings, the registry's vocabulary and KPI names in Dutch; the rule texts quoted
    from the seeds are marked as English (lang="en") and the page says why."""
    page = write_definitions_page(DBT_PROJECT, tmp_path / "nl.html", None, "nl").read_text(
        encoding="utf-8")
    for word in ("Wijzigingsgeschiedenis", "Drempels", "Soort", "Eenheid", "actie",
                 "resultaat", "inzicht", "maand", "verkoper", "aantal", "Koude e-mails",
                 "Salesrollen", "Regels zoals geïmplementeerd"):
        assert word in page, word
    for english in ("<td>action</td>", "<td>result</td>", "<td>month</td>", "<td>count</td>",
                    ">Kind<", ">Grain<", ">Owner<"):
        assert english not in page, english
    for row in _seed("kpi_definitions"):
        assert f'<td lang="en">{escape(row["definition"])}</td>' in page


# --- in a real browser ----------------------------------------------------------------------

WIDTHS = (1400, 420)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    require_chromium()
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as instance:
        yield instance


def _open(browser, site: Path, language: str, width: int, fragment: str = ""):
    page = browser.page(width)
    page.goto((site / language / "index.html").as_uri() + fragment)
    page.js("SKPI.ready")
    assert page.js("document.getElementById('dashboard').dataset.state") == "ready"
    return page


LAYOUT_JS = """
(() => {
  const cards = [...document.querySelectorAll('.chart-card')].filter(c => !c.hidden);
  const boxes = cards.map(c => { const r = c.getBoundingClientRect();
    return {id: c.id, x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; });
  const charts = cards.map(c => { const el = c.querySelector('.chart');
    const svg = el.querySelector('.main-svg'); const r = el.getBoundingClientRect();
    const s = svg ? svg.getBoundingClientRect() : null;
    return {id: c.id, drawn: c.dataset.drawn === '1', svg: !!svg,
            w: r.width, h: r.height, svgRight: s ? s.right : 0, right: r.right,
            traces: el.data ? el.data.length : 0}; });
  return {boxes, charts, scrollWidth: document.documentElement.scrollWidth,
          innerWidth: innerWidth};
})()
"""


def _overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["w"] - 0.5 and b["x"] < a["x"] + a["w"] - 0.5
            and a["y"] < b["y"] + b["h"] - 0.5 and b["y"] < a["y"] + a["h"] - 0.5)


def _assert_clean_layout(page, where: str) -> list[str]:
    layout = page.js(LAYOUT_JS)
    assert layout["scrollWidth"] <= layout["innerWidth"], f"{where}: page scrolls sideways"
    boxes = layout["boxes"]
    assert boxes, where
    for i, a in enumerate(boxes):
        assert a["w"] > 0 and a["h"] > 0, (where, a)
        for b in boxes[i + 1:]:
            assert not _overlaps(a, b), f"{where}: {a['id']} overlaps {b['id']}"
    drawn = [c for c in layout["charts"] if c["drawn"]]
    assert drawn, where
    for chart in drawn:
        assert chart["svg"] and chart["traces"] > 0 and chart["w"] > 100 and chart["h"] > 100, (
            where, chart)
        assert chart["svgRight"] <= chart["right"] + 1, (where, chart)
    return [c["id"] for c in drawn]


@pytest.mark.parametrize("language", ["en", "nl"])
@pytest.mark.parametrize("width", WIDTHS)
def test_every_chart_is_drawn_without_overlap(
    browser, site: Path, language: str, width: int
) -> None:
    meta = _meta(_page(site, language))
    team = meta["teams"][0]["slug"]
    page = _open(browser, site, language, width)
    try:
        company = _assert_clean_layout(page, "company")
        assert {"card-funnel", "card-conversion", "card-revenue", "card-labels",
                "card-attainment"} <= set(company)
        assert len([c for c in company if c.startswith("card-kpi-")]) == sum(
            1 for k in meta["kpis"] if k["kind"] in ("action", "result")
            and "company" in k["scopes"])
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(ARTIFACTS / f"dashboard-{language}-{width}.png")
        page.js(f"SKPI.set({{team: {json.dumps(team)}}})")
        _assert_clean_layout(page, "team")
        rep = page.js(f"SKPI.set({{team: {json.dumps(team)}}}).then(() => "
                      "document.querySelector('#f-rep option:nth-child(2)').value)")
        page.js(f"SKPI.set({{rep: {json.dumps(rep)}, period: 'w26'}})")
        rep_cards = _assert_clean_layout(page, "rep")
        assert "card-funnel" not in rep_cards  # insight KPIs never per rep
        page.screenshot(ARTIFACTS / f"dashboard-{language}-{width}-rep.png")
        assert page.console_errors() == []
    finally:
        page.close()


SIGNATURE_JS = """
(() => Object.fromEntries([...document.querySelectorAll('.chart-card')]
  .filter(c => !c.hidden && c.dataset.drawn === '1')
  .map(c => { const el = c.querySelector('.chart');
    return [c.id, JSON.stringify(el.data.map(t => [t.x, t.y]))]; })))()
"""


@pytest.mark.parametrize("language", ["en", "nl"])
def test_a_filter_or_period_change_redraws_the_charts(browser, site: Path, language: str) -> None:
    page = _open(browser, site, language, 1400)
    try:
        before, renders = page.js(SIGNATURE_JS), page.js("SKPI.renders")
        # through the controls, as a person would
        page.js("(() => { const s = document.getElementById('f-period'); s.value = 'w13';"
                " s.dispatchEvent(new Event('change')); })()")
        page.wait_for(f"SKPI.renders > {renders}")
        page.js("SKPI.set({})")
        after = page.js(SIGNATURE_JS)
        kpi_cards = [c for c in before if c.startswith("card-kpi-")]
        assert kpi_cards and all(before[c] != after[c] for c in kpi_cards)
        assert "period=w13" in page.js("location.hash")
        team = _meta(_page(site, language))["teams"][0]["slug"]
        renders = page.js("SKPI.renders")
        page.js(f"(() => {{ const s = document.getElementById('f-team'); s.value = "
                f"{json.dumps(team)}; s.dispatchEvent(new Event('change')); }})()")
        page.wait_for(f"SKPI.renders > {renders} && SKPI.state().team === {json.dumps(team)}")
        page.js("SKPI.set({})")
        per_team = page.js(SIGNATURE_JS)
        # the team's own rows (a KPI only one team has may equal the company's)
        assert any(per_team[c] != after[c] for c in kpi_cards if c in per_team)
        assert page.js("document.getElementById('f-rep').disabled") is False
    finally:
        page.close()


def _mart_rows(published: Path, kpi_id: str, scope: str, scope_id: str,
               start: str, end: str, grain: str) -> list[tuple]:
    overlap = ("v.period_start between ?::date and ?::date" if grain == "week" else
               "v.period_start + interval 1 month - interval 1 day >= ?::date "
               "and v.period_start <= ?::date")
    return _query(
        published,
        f"""
        select strftime(v.period_start, '%Y-%m-%d'), v.value, s.target, s.attainment, r.unit
        from {mart('kpi_values')} v
        join {mart('kpi_registry')} r on r.kpi_id = v.kpi_id
        left join {mart('kpi_scorecard')} s on s.kpi_id = v.kpi_id and s.scope = v.scope
         and s.scope_id = v.scope_id and s.period_start = v.period_start
        where v.kpi_id = ? and v.scope = ? and v.scope_id = ? and {overlap}
        order by v.period_start
        """, kpi_id, scope, scope_id, start, end)


def _number(text: str | None) -> float | None:
    return None if text in (None, "") else float(text)


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_csv_download_equals_the_mart_for_the_filter(
    browser, published: Path, site: Path, language: str, tmp_path: Path
) -> None:
    """Every KPI card's table, as its CSV button writes it (`SKPI.csv`, the text `download()`
    saves), holds the mart's rows for the chosen team or rep and period; and the button really
    downloads that text: a mouse click on the first card of each scope saves it byte for byte.
    One real download per scope, not one per card: in about one suite run in three on CI,
    headless Chromium began no download for the tenth click of a page (the cause is not
    found: here 20 pages of 12 downloads each passed under a load of 4, the button enabled
    and under the mouse every time); what the other cards' buttons save is the
    same `SKPI.csv` text, checked against the mart card by card."""
    meta = _meta(_page(site, language))
    team = meta["teams"][0]
    page = _open(browser, site, language, 1400)
    try:
        page.downloads_to(tmp_path)
        rep = page.js(f"SKPI.set({{team: {json.dumps(team['slug'])}}}).then(() => "
                      "document.querySelector('#f-rep option:nth-child(2)').value)")
        for scope, scope_id, changes in (
            ("team", team["name"], {"period": "m6"}),
            ("rep", rep, {"rep": rep, "period": "w26"}),
        ):
            page.js(f"SKPI.set({json.dumps(changes)})")
            start, end = page.js("SKPI.state().range")
            cards = [c for c in page.js("SKPI.cards()") if c.startswith("card-kpi-")]
            assert cards, scope
            for old in tmp_path.iterdir():
                old.unlink()
            page.click(f"#{cards[0]} [data-download=csv]")
            saved = wait_for_file(tmp_path, ".csv", page=page).read_bytes().decode("utf-8-sig")
            assert saved == page.js(f"SKPI.csv('{cards[0]}')"), scope
            for card in cards:
                assert page.js(f"!document.querySelector('#{card} [data-download=csv]')"
                               ".disabled"), (card, scope)
                kpi_id = page.js(f"document.getElementById('{card}').dataset.kpi")
                grain = next(k["grain"] for k in meta["kpis"] if k["id"] == kpi_id)
                text = page.js(f"SKPI.csv('{card}')")
                rows = list(csv.DictReader(io.StringIO(text, newline="")))
                columns = [c["label"] for c in page.js(f"SKPI.table('{card}').columns")]
                by_key = dict(zip(["period_start", "period", "scope", "kpi", "actual", "target",
                                   "attainment", "status"], columns, strict=True))
                expected = _mart_rows(published, kpi_id, scope, scope_id, start, end, grain)
                assert len(rows) == len(expected), (card, scope)
                for row, (period, value, target, attainment, unit) in zip(
                        rows, expected, strict=True):
                    assert row[by_key["period_start"]] == period
                    assert _number(row[by_key["actual"]]) == value
                    shown = None if target is None else (
                        math.ceil(target - 1e-9) if unit == "count" else target)
                    assert _number(row[by_key["target"]]) == shown, (card, period)
                    assert _number(row[by_key["attainment"]]) == attainment
        # the Excel download holds the same rows, and opens
        card = page.js("SKPI.cards()")[0]
        for old in tmp_path.iterdir():
            old.unlink()
        page.click(f"#{card} [data-download=xlsx]")
        workbook = openpyxl.load_workbook(wait_for_file(tmp_path, ".xlsx", page=page))
        sheet = [list(r) for r in workbook.active.iter_rows(values_only=True)]
        table = page.js(f"SKPI.table('{card}')")
        assert sheet[0] == [c["label"] for c in table["columns"]]
        assert [[None if v == "" else v for v in r] for r in sheet[1:]] == table["rows"]
    finally:
        page.close()


def _dashboard_with_rep_names(published: Path, folder: Path, name_sql: str, value: str) -> Path:
    """The English dashboard of a copy of `published` whose reps are renamed to `name_sql`
    (its `?` is `value`): CRM names as a hostile CRM would write them."""
    marts = folder / "marts.duckdb"
    shutil.copyfile(published, marts)
    with duckdb.connect(str(marts)) as con:
        con.execute(f"update dim_reps set full_name = {name_sql}", [value])
    write_dashboard(marts, folder / "site", ("en",), CHECK_RESULTS, LINKS)
    return folder / "site"


MARKUP_NAME = '<a href="https://evil.example/login">Noor</a><b style="font-size:60px">!</b>'


def test_names_in_the_charts_are_text_not_markup(
    browser, published: Path, tmp_path: Path
) -> None:
    """Rep and labeller names are CRM data: Plotly reads a small set of HTML tags in the text
    it draws (links, bold, styles), so a name holding them became a live link to another
    site on the label check's axis and in the attainment chart. Drawn in a real browser, a
    name shows its characters and makes no element."""
    site = _dashboard_with_rep_names(published, tmp_path, "? || full_name", MARKUP_NAME)
    meta = _meta(_page(site, "en"))
    page = _open(browser, site, "en", 1400)
    try:
        scopes = [{"team": "", "rep": ""}, {"team": meta["teams"][0]["slug"], "rep": ""}]
        for scope in scopes:
            page.js(f"SKPI.set({json.dumps(scope)})")
            drawn = page.js("[...document.querySelectorAll('.chart .main-svg text')]"
                            ".map(t => t.textContent).join(' ')")
            assert "<a href=" in drawn, scope  # shown as the characters it is
            assert page.js("document.querySelectorAll('.chart a, .chart [style*=\"60px\"]')"
                           ".length") == 0, scope
        assert page.console_errors() == []
    finally:
        page.close()


FORMULA_NAME = '=HYPERLINK("https://evil.example/login","Noor")'


def test_a_name_in_a_csv_download_is_text_not_a_formula(
    browser, published: Path, tmp_path: Path
) -> None:
    """A spreadsheet opening the dashboard's CSV runs a cell that starts with = + - or @ as a
    formula (CSV injection): a rep named `=HYPERLINK(…)` became a link to another site in
    the manager's spreadsheet. Such a text cell is written with a leading apostrophe, which
    spreadsheets show as text; numbers stay numbers. (The xlsx download writes text cells
    as inline strings, never formulas.)"""
    site = _dashboard_with_rep_names(published, tmp_path, "?", FORMULA_NAME)
    page = _open(browser, site, "en", 1400)
    try:
        text = page.js("SKPI.csv('card-labels')")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        names = [row[0] for row in rows[1:] if row[0] != "automation"]  # a labeller, no rep
        assert names and all(name == "'" + FORMULA_NAME for name in names), names[:3]
        assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@")]
    finally:
        page.close()


def test_any_team_and_rep_can_be_shown(browser, site: Path) -> None:
    meta = _meta(_page(site, "nl"))
    page = _open(browser, site, "nl", 1400)
    try:
        shown = 0
        for team in meta["teams"]:
            reps = page.js(f"SKPI.set({{team: {json.dumps(team['slug'])}, rep: ''}}).then(() =>"
                           " [...document.querySelectorAll('#f-rep option')].map(o => o.value)"
                           ".filter(Boolean))")
            assert page.js("document.getElementById('dashboard').dataset.state") == "ready"
            assert len(reps) == team["reps"]
            for rep in reps:
                page.js(f"SKPI.set({{rep: {json.dumps(rep)}}})")
                state = page.js("SKPI.state()")
                assert state["team"] == team["slug"] and state["rep"] == rep
                assert page.js("SKPI.cards().length") > 0
                shown += 1
        assert shown > 0
        # a deep link opens a team and rep directly
        team = meta["teams"][0]["slug"]
        deep = _open(browser, site, "nl", 420, f"#team={team}&period=w13")
        try:
            assert deep.js("SKPI.state().team") == team
            assert deep.js("document.getElementById('f-team').value") == team
        finally:
            deep.close()
        assert page.console_errors() == []
    finally:
        page.close()


# Every content security policy violation of a page, from its first script on.
WATCH_POLICY_JS = (
    "window.__refused = []; document.addEventListener('securitypolicyviolation', e => "
    "window.__refused.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + "
    "(e.sample || '')));"
)
INLINE_SCRIPT_RUNS_JS = (
    "(() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
    " document.body.appendChild(s); return window.__ran === 1; })()"
)


def _open_watched(browser, url: str):
    page = browser.page(1400)
    page.send("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_POLICY_JS})
    page.goto(url)
    return page


def test_the_dashboard_runs_only_its_own_files_under_its_content_security_policy(
    browser, site: Path
) -> None:
    """The dashboard's policy (a `<meta>`: the page is a file) lets its own scripts, data files
    and styles work — every chart drawn for the company, a team and a rep, nothing refused —
    and refuses what escaping would have had to stop: a script written into the page."""
    meta = _meta(_page(site, "en"))
    page = _open_watched(browser, (site / "en" / "index.html").as_uri())
    try:
        page.js("SKPI.ready")
        assert page.js("document.getElementById('dashboard').dataset.state") == "ready"
        team = meta["teams"][0]["slug"]
        page.js(f"SKPI.set({{team: {json.dumps(team)}}})")  # loads the team's data file
        rep = page.js("document.querySelector('#f-rep option:nth-child(2)').value")
        page.js(f"SKPI.set({{rep: {json.dumps(rep)}}})")
        assert _assert_clean_layout(page, "rep")
        assert page.js("window.__refused") == []
        assert page.js(INLINE_SCRIPT_RUNS_JS) is False
        assert [r for r in page.js("window.__refused") if r.startswith("script-src")]
        assert page.console_errors() == []
    finally:
        page.close()


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_definitions_page_stands_alone_with_its_own_style_applied(
    browser, site: Path, language: str
) -> None:
    """The auditor's page inlines the report's stylesheet: as written (its quotes were once
    escaped inside <style>, which dropped the page's font and the rules that quote), and
    allowed by its policy by hash alone — no script of any kind runs there."""
    page = _open_watched(browser, (site / language / "definitions.html").as_uri())
    try:
        font = page.js("getComputedStyle(document.body).fontFamily")
        assert font.startswith("Inter") and '"Segoe UI"' in font, font
        assert page.js("getComputedStyle(document.querySelector('p.rule')).maxWidth") == "980px"
        assert page.js("window.__refused") == []
        assert page.js(INLINE_SCRIPT_RUNS_JS) is False
        assert page.js("document.scripts.length") == 1  # the one just refused
    finally:
        page.close()


def test_the_dbt_docs_page_runs_only_dbts_own_script(browser, published: Path) -> None:
    """The job's dbt docs page (dbt's application with its data inlined) carries a policy
    that allows its one inline script by hash: a model page shows its columns and the
    lineage graph draws, and a script written into the page is refused. The one report
    allowed is AngularJS asking whether eval is allowed (it then parses without it)."""
    docs = published.parent / "site" / "dbt_docs" / "index.html"
    page = _open_watched(browser, docs.as_uri() + "#!/model/model.sales_kpi.dim_leads?g_v=1")
    try:
        page.wait_for("document.body.innerText.includes('qualifying_event_type')")
        page.wait_for("document.querySelectorAll('canvas').length > 0")
        assert set(page.js("window.__refused")) <= {"script-src eval "}
        assert page.js(INLINE_SCRIPT_RUNS_JS) is False
        assert page.console_errors() == []
    finally:
        page.close()


def test_every_page_the_site_writes_carries_a_content_security_policy(
    published: Path, tmp_path: Path
) -> None:
    """The index, the dashboards and the definitions pages: none without a policy, and none
    that allows inline scripts, eval or the network."""
    from pipelines.assets.site import write_index

    pages = write_dashboard(published, tmp_path, ("en", "nl"), CHECK_RESULTS, LINKS)
    written = [write_index(tmp_path, "nl"), *pages.values(),
               write_definitions_page(DBT_PROJECT, tmp_path / "definitions.html"),
               published.parent / "site" / "dbt_docs" / "index.html"]
    for path in written:
        html = Path(path).read_text(encoding="utf-8")
        found = re.search(
            r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html
        )
        assert found, path
        policy = unescape(found[1])  # an attribute's value, as the browser reads it
        assert "default-src 'none'" in policy, (path, policy)
        assert not [word for word in ("unsafe-eval", "http:", "https:", "*")
                    if word in policy], (path, policy)
        assert "'unsafe-inline'" not in re.sub(r"style-src[^;]*", "", policy), path
        if path.parent.name != "dbt_docs":  # dbt's application, allowed by its hash alone
            assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), path  # no inline handler


@pytest.mark.slow
def test_the_first_page_does_not_grow_with_reps(published: Path, tmp_path: Path) -> None:
    """The session's labelled sample (scale 0.05: 2 sales teams) and a sample with the sales
    organisation of scale 1.84 (6 sales teams, more than twice the reps; the activity of scale
    0.1: the page's size depends on the organisation, and a run over fewer rows costs fewer
    seconds): the page grows by the team list only, a few hundred bytes per team, and stays
    far below 5 MB."""
    extracts, warehouse = tmp_path / "extracts", tmp_path / "warehouse"
    generate_sample(extracts, scale=0.1, seed=42, staff_scale=1.84)
    settings = Settings(extracts_dir=extracts, warehouse_dir=warehouse, write_site=False)
    assert run_nightly_job(settings, log_level="WARNING").success
    sizes = {}
    for name, marts in (("small", published), ("large", warehouse / "marts.duckdb")):
        pages = write_dashboard(marts, tmp_path / f"site-{name}", ("en",))
        page = pages["en"].read_text(encoding="utf-8")
        reps = _query(marts, f"select count(*) from {mart('dim_reps')}")
        sizes[name] = (len(page.encode()), len(_meta(page)["teams"]), reps[0][0])
    (small, teams_small, reps_small), (large, teams_large, reps_large) = (
        sizes["small"], sizes["large"]
    )
    assert reps_large >= 2 * reps_small and teams_large >= teams_small + 3, sizes
    assert large <= MAX_PAGE_BYTES
    assert large - small <= 400 * (teams_large - teams_small), sizes


def test_dbt_docs_are_regenerated_only_when_the_dbt_project_changed(
    published: Path, tmp_path: Path
) -> None:
    """`dbt docs generate` takes seconds of every run: its page is kept under the warehouse
    with the fingerprint of the dbt project and manifest, and reused while they match. (On a
    copy of the labelled run's warehouse: the shared run is read-only.)"""
    from dagster import build_asset_context

    from pipelines.assets.dbt import dbt_project
    from pipelines.assets.site import cached_dbt_docs, dbt_docs_fingerprint, write_dbt_docs
    from pipelines.dbt_project import dbt_executable
    from pipelines.resources import DbtBuildResource

    warehouse = copy_warehouse(published.parent, tmp_path / "warehouse")
    cache = cached_dbt_docs(warehouse)
    stamp = cache.with_name("fingerprint")
    # the labelled run's settings: the docs were generated with its vars
    settings = Settings(extracts_dir=tmp_path, warehouse_dir=warehouse, **LABELLED_RUN)
    assert stamp.read_text() == dbt_docs_fingerprint(settings)  # the job's run left it
    dbt = DbtBuildResource(project_dir=dbt_project, dbt_executable=dbt_executable())
    site = tmp_path / "site"
    site.mkdir()

    cache.write_text("the page generated before")
    assert not write_dbt_docs(build_asset_context(), dbt, settings, site)
    assert (site / "dbt_docs" / "index.html").read_text() == "the page generated before"

    stamp.write_text("the fingerprint of another project")
    assert write_dbt_docs(build_asset_context(), dbt, settings, site)
    page = (site / "dbt_docs" / "index.html").read_text(encoding="utf-8")
    assert "the page generated before" not in page and "kpi_scorecard" in page
    assert stamp.read_text() == dbt_docs_fingerprint(settings)


def test_the_dbt_docs_of_a_run_show_the_sql_its_build_ran(published: Path) -> None:
    """The run's dbt docs page is made from its own build's manifest (`docs generate
    --no-compile`: the build compiled every node with the run's vars already), so every model
    and data test shows the SQL the build ran, and the catalog lists every published mart."""
    warehouse = published.parent
    page = (warehouse / "site" / "dbt_docs" / "index.html").read_text(encoding="utf-8")
    run_id = _query(published, f"select run_id from {mart('runs')} "
                    "order by published_at desc limit 1")[0][0]
    built = json.loads((warehouse / "dbt_runs" / run_id / "manifest.json").read_text(
        encoding="utf-8"))
    # the build's own manifest, not one `docs generate` compiled (it has an id of its own)
    # (inlined as script_json writes JSON: compact, `<`, `>` and `&` escaped)
    assert script_json({"invocation_id": built["metadata"]["invocation_id"]})[1:-1] in page
    nodes = built["nodes"]
    compiled = {name: node["compiled_code"] for name, node in nodes.items()
                if node["resource_type"] in ("model", "test") and node.get("compiled_code")}
    assert len(compiled) >= 100
    for name, sql in compiled.items():
        assert script_json(sql) in page, f"{name}: the page lacks the SQL its build ran"
    catalog, _ = json.JSONDecoder().raw_decode(page, page.index("catalog:{") + len("catalog:"))
    assert {node.split(".")[-1] for node in catalog["nodes"]} >= {
        "dim_leads", "fct_activities", "kpi_values", "kpi_scorecard", "label_consistency"}


def test_the_auditors_pack_shows_the_loaders_thresholds_a_run_used(tmp_path: Path) -> None:
    """A run that let more bad rows through says so next to the definitions' thresholds —
    marked as differing from the default, without making the definitions version custom."""
    effective = Settings(max_bad_row_share=0.5).run_settings()
    page = write_definitions_page(DBT_PROJECT, tmp_path / "d.html", effective).read_text(
        encoding="utf-8")
    row = re.search(r'<tr class="(\w*)"><td><code>max_bad_row_share</code></td>'
                    r"<td>0.05</td><td>0.5 .*?</tr>", page)
    assert row and row.group(1) == "differs" and "rejected whole" in row.group(0)
    assert f'id="version">Version {_latest_version()}</span>' in page  # not +custom


# --- one data file per team -----------------------------------------------------------------


def test_every_team_has_a_data_file_of_its_own() -> None:
    """Team names that slug alike ("Zuid" and "Team Zuid", whose file name drops the word
    team; "Zuid 2" and the second "zuid") still get a file and a key each: one team's file
    overwrote the other's, and the dashboard waited for ever for the one it lost."""
    teams = ["Team Zuid", "Zuid", "zuid", "Zuid 2", "Zuid-2", "ZUID!", "Team", "", "---"]
    files = _team_files(teams)
    assert [file.team for file in files] == teams
    assert len({file.slug for file in files}) == len(teams)
    assert len({team_file_name(file) for file in files}) == len(teams)


def test_a_team_file_name_stays_short_whatever_the_team_name() -> None:
    """A team name is data: a name of 60,000 characters made a file name the file system
    refused (the site step failed every night); two long names alike still differ."""
    teams = ["T1 " + "b" * 60_000, "T1 " + "b" * 59_999, "Noord"]
    names = [team_file_name(file) for file in _team_files(teams)]
    assert len(set(names)) == 3
    assert all(len(name.encode()) <= 80 for name in names), names
    assert names[2] == "team-noord.js"


# --- the dbt docs page --------------------------------------------------------------------


def test_the_dbt_docs_page_inlines_its_data_inert_as_markup(tmp_path: Path) -> None:
    """dbt's `--static` pasted the manifest into the page's <script> as it was: a warehouse
    folder named `x</script><img src=x onerror=…>` (the manifest carries the run's paths)
    ran as markup. The page is filled from dbt's own files with every `<`, `>`, `&` and line
    terminator escaped: the page's own script tags are all it has, and the data is whole."""
    from dbt.task.docs import DOCS_INDEX_FILE_PATH

    from pipelines.reporting.dbt_docs_page import static_docs_page

    hostile = ("/tmp/x</script><img src=x onerror=\"document.title='PWNED'\"><!--\u2028& "
               '"CATALOG.JSON INLINE DATA"')
    shutil.copyfile(DOCS_INDEX_FILE_PATH, tmp_path / "index.html")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"metadata": {"root_path": hostile}, "nodes": {}}), encoding="utf-8")
    (tmp_path / "catalog.json").write_text(json.dumps({"nodes": {"n": hostile}}),
                                           encoding="utf-8")
    template = (tmp_path / "index.html").read_text(encoding="utf-8")
    page = static_docs_page(tmp_path)
    assert page.count("</script") == template.count("</script")
    assert page.count("<img") == template.count("<img") and "<!--\u2028" not in page
    assert '"MANIFEST.JSON INLINE DATA"' not in page and '"CATALOG.JSON INLINE DATA"' not in page
    assert page.count(script_json(hostile)) == 2
