"""The KPI dashboard: one static, self-contained HTML file written from the published marts.

A sales manager opens it from disk (no server, no internet): a tab per scope (the company and
each team) with this month's KPI tiles, the weekly action KPIs and the monthly result KPIs
against baseline (nulmeting) and target, per team and per rep, and the insight KPIs (funnel,
conversion ratios with cohort maturity, revenue growth) for teams and the company only —
never per rep. Below: the labellers the label check flagged, the run's checks and the
auditor's pack. Plotly's JavaScript is inlined once; all strings come from `i18n.TEXT`.
"""

from __future__ import annotations

import html as htmllib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from pipelines.reporting import charts
from pipelines.reporting.html import esc, page, write_atomically
from pipelines.reporting.i18n import (
    MONTHS,
    check_language,
    fmt_day,
    fmt_month,
    fmt_number,
    fmt_percent,
    fmt_value,
    fmt_week,
    tr,
)
from pipelines.reporting.marts import PublishedMarts, as_local, read_published_marts

WEEKS_SHOWN = 26
MONTHS_SHOWN = 24
COHORT_MONTHS_SHOWN = 18
FUNNEL_MONTHS = 12
LINK_LABELS = {"definitions": "link_definitions", "dbt_docs": "link_dbt_docs",
               "data_docs": "link_data_docs"}
ROLE_LABELS = {"sdr": "SDR", "ae": "AE", "manager": "Manager"}


def write_dashboard(
    published_db: Path,
    out_dir: Path,
    language: str = "en",
    checks: list[dict] | None = None,
    links: dict[str, str] | None = None,
) -> Path:
    """Render the dashboard of the latest published run to `out_dir/index.html`.

    `checks` are the run's check results ({name, passed, severity, description}); `links`
    maps auditor's-pack entries (definitions, dbt_docs, data_docs, ...) to relative URLs.
    The file is replaced atomically, so a browser never shows half a report.
    """
    language = check_language(language)
    marts = read_published_marts(Path(published_db))
    document = Dashboard(marts, language, list(checks or []) if checks is not None else None,
                         dict(links or {})).render()
    return write_atomically(Path(out_dir) / "index.html", document)


@dataclass
class Dashboard:
    """Builds the page; one instance per render (it numbers the figures)."""

    marts: PublishedMarts
    language: str
    checks: list[dict] | None
    links: dict[str, str]
    _figures: int = field(default=0, init=False)

    # ---------------------------------------------------------------- helpers
    def t(self, key: str, **values: object) -> str:
        return tr(key, self.language, **values)

    @property
    def timezone(self) -> str:
        return str(self.marts.settings.get("business_timezone") or "Europe/Amsterdam")

    def figure(self, fig: go.Figure | None, empty: str | None = None) -> str:
        """A figure as a div (plotly.js itself is inlined once in the page head)."""
        if fig is None:
            return f'<p class="empty">{esc(empty or self.t("no_data"))}</p>'
        self._figures += 1
        return pio.to_html(
            fig, full_html=False, include_plotlyjs=False, config=charts.PLOTLY_CONFIG,
            div_id=f"fig-{self._figures}", default_width="100%",
            default_height=f"{int(fig.layout.height or 340)}px", validate=False,
        )

    def when(self, instant: Any) -> str:
        local = as_local(instant, self.timezone)
        if local is None:
            return "–"
        return f"{local.day} {MONTHS[self.language][local.month - 1]} {local.year}, {local:%H:%M}"

    def kpis(self, kind: str, scope: str) -> list[str]:
        """Active KPIs of a kind reported at a scope (the registry's scopes: insight KPIs are
        never listed for reps)."""
        ids = self.marts.active_kpis(kind)
        return [k for k in ids if scope in str(self.marts.kpi(k)["scopes"]).split(",")]

    def scope_name(self, scope: str, scope_id: str) -> str:
        if scope == "company":
            return self.t("company")
        return self.t("Unassigned") if scope_id == "Unassigned" else scope_id

    def week_heading(self, week: date, current: bool) -> str:
        state = self.t("week_current" if current else "week_complete")
        return f"{fmt_week(week, self.language)} · {fmt_day(week, self.language)} ({state})"

    # ---------------------------------------------------------------- page
    def render(self) -> str:
        scopes = [("company", "all")] + [("team", team) for team in self.teams()]
        tabs = "".join(
            f'<button class="tab" role="tab" data-target="{_slug(s, i)}" '
            f'aria-selected="{"true" if n == 0 else "false"}">{esc(self.scope_name(s, i))}'
            f"</button>"
            for n, (s, i) in enumerate(scopes)
        )
        panels = "".join(
            self.panel(scope, scope_id, hidden=n > 0) for n, (scope, scope_id) in enumerate(scopes)
        )
        body = (
            self.header()
            + f'<nav class="tabs"><div class="wrap" role="tablist">'
            f'<span class="label">{esc(self.t("view"))}</span>{tabs}</div></nav>'
            + f'<main class="wrap">{panels}{self.labels_card()}{self.checks_card()}'
            f"{self.pack_card()}</main>"
            + f'<footer class="wrap">{esc(self.t("footer"))}</footer>'
            + f"<script>{_TABS_JS}</script>"
        )
        head = f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        return page(self.t("title"), self.language, body, head_extra=head)

    def teams(self) -> list[str]:
        values = self.marts.values
        teams = set(values[values.scope == "team"].scope_id.dropna())
        return sorted(teams, key=lambda t: (t == "Unassigned", t))

    def header(self) -> str:
        run = self.marts.run
        chips = [
            (self.t("as_of"), f"{self.when(run.get('as_of'))} ({self.timezone})"),
            (self.t("definitions_version"), str(run.get("definitions_version"))),
            (self.t("run_id"), str(run.get("run_id"))[:8]),
            (self.t("published_at"), self.when(run.get("published_at"))),
        ]
        chip_html = "".join(
            f'<span class="chip" title="{esc(v)}">{esc(k)}: <b>{esc(v)}</b></span>'
            for k, v in chips
        )
        links = "".join(
            f'<a href="{esc(url)}">{esc(self.link_label(key))}</a>'
            for key, url in self.links.items()
        )
        pack = (f'<div class="head-links">{esc(self.t("auditors_pack"))}: {links}</div>'
                if links else "")
        return (
            '<header class="top"><div class="wrap">'
            f'<div class="head-row"><div><h1>{esc(self.t("title"))}</h1>'
            f'<p class="sub">{esc(self.t("subtitle"))}</p></div>{self.checks_pill()}</div>'
            f'<div class="head-row"><div class="meta">{chip_html}</div>{pack}</div>'
            "</div></header>"
        )

    def link_label(self, key: str) -> str:
        return self.t(LINK_LABELS[key]) if key in LINK_LABELS else key

    # ---------------------------------------------------------------- one scope
    def panel(self, scope: str, scope_id: str, hidden: bool) -> str:
        m = self.marts
        weeks = m.weeks[-WEEKS_SHOWN:]
        months = m.months[-MONTHS_SHOWN:]
        action = self.kpis("action", scope)
        result = self.kpis("result", scope)
        members = self.members(scope, scope_id)
        member_scope = "team" if scope == "company" else "rep"
        member_action = self.kpis("action", member_scope)
        member_result = self.kpis("result", member_scope)
        week_cols = [(w, c) for w, c in ((m.last_complete_week, False), (m.current_week, True))
                     if w is not None]
        month_cols = [(p, c) for p, c in ((m.last_complete_month, False),
                                          (m.current_month, True)) if p is not None]
        if m.last_complete_week == m.current_week:
            week_cols = week_cols[:1]
        if m.last_complete_month == m.current_month:
            month_cols = month_cols[:1]
        totals = [(scope, scope_id, f"<b>{esc(self.scope_name(scope, scope_id))}</b>", True)]
        rows = totals + [(s, i, label, False) for s, i, label in members]
        who = self.t("team_comparison" if scope == "company" else "reps")

        parts = [f'<section class="scope-panel" id="{_slug(scope, scope_id)}"'
                 + (" hidden" if hidden else "") + ">"]
        parts.append(self.tiles(scope, scope_id, result))
        # action KPIs
        attain = None
        if m.last_complete_week is not None and members:
            attain = charts.attainment_figure(
                m, [(s, i, _plain(label)) for s, i, label in members], member_action,
                m.last_complete_week, self.language)
        slug = _slug(scope, scope_id)
        parts.append(
            f'<div class="card" id="{slug}-action">'
            + self.title("action_kpis", scope, scope_id)
            + f'<p class="help">{esc(self.t("action_help"))}</p>'
            + self.figure(charts.kpi_series_figure(
                m, action, scope, scope_id, "week", weeks, self.language, columns=3))
            + f"<h3>{esc(who)}</h3>"
            + self.period_table(rows, member_action, week_cols, "week", scope)
            + (self.attainment_block(attain) if attain is not None else "")
            + "</div>"
        )
        # result KPIs
        parts.append(
            f'<div class="card" id="{slug}-result">'
            + self.title("result_kpis", scope, scope_id)
            + f'<p class="help">{esc(self.t("result_help"))}</p>'
            + self.figure(charts.kpi_series_figure(
                m, result, scope, scope_id, "month", months, self.language,
                columns=2 if len(result) == 4 else 3, height=300))
            + f"<h3>{esc(who)}</h3>"
            + self.period_table(rows, member_result, month_cols, "month", scope)
            + "</div>"
        )
        if scope == "team" and members:
            reps = [(i, _plain(label)) for _, i, label in members]
            parts.append(
                f'<div class="card" id="{slug}-reps">'
                + f'<h2>{esc(self.t("rep_detail"))}</h2>'
                + f'<p class="help">{esc(self.t("rep_detail_help"))}</p>'
                + self.figure(charts.rep_detail_figure(
                    m, reps, self.kpis("action", "rep"), self.kpis("result", "rep"),
                    weeks, m.months[-12:], self.language))
                + "</div>"
            )
        parts.append(self.insight_card(scope, scope_id))
        parts.append("</section>")
        return "".join(parts)

    def attainment_block(self, fig: go.Figure) -> str:
        week = fmt_week(self.marts.last_complete_week, self.language)
        return f'<h3>{esc(self.t("attainment_chart", week=week))}</h3>{self.figure(fig)}'

    def title(self, key: str, scope: str, scope_id: str) -> str:
        return (f'<div class="section-title"><h2>{esc(self.t(key))}</h2>'
                f'<span class="period">{esc(self.scope_name(scope, scope_id))}</span></div>')

    def members(self, scope: str, scope_id: str) -> list[tuple[str, str, str]]:
        """Rows under a scope: the teams of the company, or the sales reps of a team."""
        if scope == "company":
            return [("team", t, esc(self.scope_name("team", t))) for t in self.teams()]
        values = self.marts.values
        last_period = values[values.scope == "rep"].groupby("scope_id").period_start.max()
        # Inactive reps stay visible while they have numbers in the months the tables show.
        recent = self.marts.last_complete_month or self.marts.current_month
        reps = self.marts.reps
        reps = reps[reps.is_sales_rep & (reps.team == scope_id)
                    & reps.user_id.isin(last_period.index)]
        reps = reps[reps.is_active | reps.user_id.map(
            lambda u: recent is None or last_period[u] >= recent)]
        reps = reps.sort_values(["is_active", "full_name"], ascending=[False, True])
        out = []
        for rep in reps.itertuples():
            label = f'<span class="who">{esc(rep.full_name)}<small>' \
                    f'{esc(ROLE_LABELS.get(rep.role, rep.role))}'
            if not rep.is_active:
                label += f" · {esc(self.t('inactive'))}"
            out.append(("rep", str(rep.user_id), label + "</small></span>"))
        return out

    def tiles(self, scope: str, scope_id: str, result: Sequence[str]) -> str:
        """KPI tiles for the current month: value, target, attainment, last month."""
        m = self.marts
        month = m.current_month
        if month is None:
            return ""
        tiles = []
        for kpi_id in result:
            unit = str(m.kpi(kpi_id)["unit"])
            series = m.series(kpi_id, scope, scope_id).set_index("period_start")
            if month not in series.index:
                continue
            now = series.loc[month]
            status = "in_progress" if not now.is_complete else str(now.status or "none")
            if charts._nan(now.target):
                status = "none"
            target = (f"{esc(self.t('target'))} {esc(fmt_value(now.target, unit, self.language))}"
                      if not charts._nan(now.target) else esc(self.t("no_target")))
            baseline = m.baseline(kpi_id, scope, scope_id)
            if baseline is not None:
                target += (f" · {esc(self.t('baseline'))} "
                           f"{esc(fmt_value(baseline['baseline_value'], unit, self.language))}")
            att = now.attainment if not charts._nan(now.attainment) else None
            width = 0 if att is None else max(0.0, min(1.0, float(att))) * 100
            prev = ""
            last = m.last_complete_month
            if last is not None and last != month and last in series.index:
                before = series.loc[last]
                state = (f" · {esc(self.t(str(before.status)))}"
                         if isinstance(before.status, str) else "")
                prev = (f'<div class="sub">{esc(self.t("previous_month"))}: '
                        f"{esc(fmt_value(before.value, unit, self.language))}{state}</div>")
            tiles.append(
                f'<div class="tile st-{status}" data-scope="{scope}" '
                f'data-scope-id="{esc(scope_id)}" data-kpi="{esc(kpi_id)}" '
                f'title="{esc(m.kpi(kpi_id)["definition"])}">'
                f'<div class="name">{esc(m.kpi_name(kpi_id, self.language))}</div>'
                f'<div class="value">{esc(fmt_value(now.value, unit, self.language))}</div>'
                f'<div class="sub">{target}</div>'
                f'<div class="bar"><span style="width:{width:.0f}%"></span></div>'
                f'<div class="foot"><span class="badge st-{status}">{esc(self.t(status))}</span>'
                f'<span class="att">{esc(self.t("attainment"))} '
                f"{esc(fmt_percent(att, self.language))}</span></div>{prev}</div>"
            )
        tiles.append(self.growth_tile(scope, scope_id))
        heading = (f"{self.t('this_month')} — {fmt_month(month, self.language, long=True)}"
                   + ("" if month in m.complete_months else f" ({self.t('month_to_date')})"))
        return (f'<div class="section-title"><h2>{esc(heading)}</h2>'
                f'<span class="period">{esc(self.scope_name(scope, scope_id))}</span></div>'
                f'<div class="tiles">{"".join(tiles)}</div>')

    def growth_tile(self, scope: str, scope_id: str) -> str:
        """Month-over-month growth (the registry's growth KPI) in the last complete month."""
        growth = [k for k in self.marts.active_kpis("insight", "growth")
                  if k in self.kpis("insight", scope)]
        last = self.marts.last_complete_month
        if not growth or last is None:
            return ""
        kpi_id = growth[0]
        values = self.marts.values
        row = values[(values.kpi_id == kpi_id) & (values.scope == scope)
                     & (values.scope_id == scope_id) & (values.period_start == last)]
        if row.empty:
            return ""
        value = row.iloc[0].value
        text = "–" if charts._nan(value) else (
            ("+" if value > 0 else "") + fmt_percent(value, self.language))
        return (
            f'<div class="tile insight" data-scope="{scope}" data-scope-id="{esc(scope_id)}" '
            f'data-kpi="{kpi_id}" title="{esc(self.marts.kpi(kpi_id)["definition"])}">'
            f'<div class="name">{esc(self.marts.kpi_name(kpi_id, self.language))}</div>'
            f'<div class="value">{esc(text)}</div>'
            f'<div class="sub">{esc(fmt_month(last, self.language, long=True))}</div>'
            f'<div class="sub" style="margin-top:10px">{esc(self.t("insight_help"))}</div></div>'
        )

    def period_table(
        self, rows: Sequence[tuple[str, str, str, bool]], kpi_ids: Sequence[str],
        periods: Sequence[tuple[date, bool]], grain: str, scope: str,
    ) -> str:
        """Per member and KPI: the last complete and the current period, status-coloured."""
        if not kpi_ids or not periods:
            return f'<p class="empty">{esc(self.t("no_data"))}</p>'
        m = self.marts
        head1 = f'<th rowspan="2">{esc(self.t("team" if scope == "company" else "rep"))}</th>'
        head1 += "".join(
            f'<th class="group" colspan="{len(periods)}" '
            f'title="{esc(m.kpi(k)["definition"])}">{esc(m.kpi_name(k, self.language))}</th>'
            for k in kpi_ids
        )
        head2 = "".join(
            f"<th>{esc(self.period_heading(p, current, grain))}</th>"
            for _ in kpi_ids for p, current in periods
        )
        body = []
        for row_scope, scope_id, label, total in rows:
            cells = []
            for kpi_id in kpi_ids:
                series = m.series(kpi_id, row_scope, scope_id).set_index("period_start")
                unit = str(m.kpi(kpi_id)["unit"])
                for period, _current in periods:
                    attrs = (f'data-scope="{row_scope}" data-scope-id="{esc(scope_id)}" '
                             f'data-kpi="{esc(kpi_id)}"')
                    if period not in series.index:
                        cells.append(f'<td class="cell st-none" {attrs}>–</td>')
                        continue
                    cells.append(self.cell(series.loc[period], unit, attrs))
            body.append(f'<tr class="{"total" if total else ""}"><td>{label}</td>'
                        f'{"".join(cells)}</tr>')
        legend = "".join(
            f'<span><span class="badge st-{s}">{esc(self.t(s))}</span></span>'
            for s in ("met", "below", "in_progress", "none")
        )
        return (f'<div class="table-wrap"><table class="data"><thead><tr>{head1}</tr>'
                f'<tr>{head2}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
                f'<div class="legend-row">{legend}</div>')

    def period_heading(self, period: date, current: bool, grain: str) -> str:
        if grain == "week":
            return self.week_heading(period, current)
        state = self.t("month_to_date" if current else "week_complete")
        return f"{fmt_month(period, self.language)} ({state})"

    def cell(self, row: Any, unit: str, attrs: str) -> str:
        value = esc(fmt_value(row.value, unit, self.language))
        if charts._nan(row.target):
            return (f'<td class="cell st-none" {attrs}><b>{value}</b>'
                    f'<span class="att">{esc(self.t("no_target"))}</span></td>')
        status = "in_progress" if not row.is_complete else str(row.status)
        return (
            f'<td class="cell st-{status}" {attrs} title="{esc(self.t(status))}"><b>{value}</b>'
            f' <span class="tgt">/ {esc(fmt_value(row.target, unit, self.language))}</span>'
            f'<span class="att">{esc(fmt_percent(row.attainment, self.language))} · '
            f"{esc(self.t(status))}</span></td>"
        )

    def insight_card(self, scope: str, scope_id: str) -> str:
        """Funnel, conversion ratios by cohort (maturity) and revenue growth: teams only."""
        m = self.marts
        insight = self.kpis("insight", scope)
        conv = [k for k in m.active_kpis("insight", "conversion") if k in insight]
        team = None if scope == "company" else scope_id
        funnel_months = m.months[-FUNNEL_MONTHS:]
        window = m.settings["conversion_window_days"]
        stats = []
        for kpi_id in conv:
            # the latest mature cohort, as kpi_values publishes it (computed in SQL)
            values = m.values[(m.values.kpi_id == kpi_id) & (m.values.scope == scope)
                              & (m.values.scope_id == scope_id) & m.values.is_complete]
            if values.empty:
                continue
            latest = values.sort_values("period_start").iloc[-1]
            cohort = self.t("latest_mature_cohort",
                            month=fmt_month(latest.period_start, self.language))
            stats.append(
                f'<div class="stat" data-scope="{scope}" data-scope-id="{esc(scope_id)}" '
                f'data-kpi="{esc(kpi_id)}" title="{esc(m.kpi(kpi_id)["definition"])}">'
                f'<div class="name">{esc(m.kpi_name(kpi_id, self.language))}</div>'
                f'<div class="value">{esc(fmt_percent(latest.value, self.language))}</div>'
                f'<div class="sub">{esc(cohort)}'
                f" · {int(latest.numerator)}/{int(latest.denominator)}</div></div>"
            )
        return (
            f'<div class="card" id="{_slug(scope, scope_id)}-insight">'
            + self.title("insight_kpis", scope, scope_id)
            + f'<p class="help">{esc(self.t("insight_help"))}</p>'
            + f'<div class="stats">{"".join(stats)}</div>'
            + '<div class="grid-2"><div>'
            + f'<h3>{esc(self.t("funnel_title"))}</h3>'
            + f'<p class="help">{esc(self.t("funnel_help"))}</p>'
            + self.figure(charts.funnel_figure(m, team, funnel_months, self.language))
            + "</div><div>"
            + f'<h3>{esc(self.t("conversion_title"))}</h3>'
            + f'<p class="help">{esc(self.t("conversion_help", days=window))}</p>'
            + self.figure(charts.conversion_figure(
                m, conv, scope, scope_id, m.months[-COHORT_MONTHS_SHOWN:], self.language))
            + "</div></div>"
            + f'<h3>{esc(self.t("revenue_growth"))}</h3>'
            + self.figure(charts.revenue_figure(
                m, scope, scope_id, m.months[-MONTHS_SHOWN:], self.language))
            + "</div>"
        )

    # ---------------------------------------------------------------- company-wide
    def labels_card(self) -> str:
        m = self.marts
        threshold = m.settings["max_label_disagreement"]
        min_labels = m.settings["min_labels_judged"]
        flagged = m.labels[m.labels.exceeds_threshold.fillna(False)]
        if flagged.empty:
            table = f'<p class="empty">{esc(self.t("no_flagged"))}</p>'
        else:
            rows = "".join(
                f'<tr class="flagged-labeller" data-labeller="{esc(r.labeller)}">'
                f"<td>{esc(r.full_name if isinstance(r.full_name, str) else r.labeller)}</td>"
                f'<td class="mono">{esc(r.labeller)}</td>'
                f"<td>{esc(self.scope_name('team', r.team) if isinstance(r.team, str) else '')}"
                f'</td><td class="num">{fmt_number(r.labels_judged, self.language)}</td>'
                f'<td class="num">{fmt_number(r.inconsistent, self.language)}</td>'
                f'<td class="num"><span class="badge fail">'
                f"{esc(fmt_percent(r.inconsistency_rate, self.language, 1))}</span></td></tr>"
                for r in flagged.itertuples()
            )
            table = (
                '<div class="table-wrap"><table class="data"><thead><tr>'
                f'<th>{esc(self.t("labeller"))}</th><th>ID</th><th>{esc(self.t("team"))}</th>'
                f'<th>{esc(self.t("labels_judged"))}</th><th>{esc(self.t("inconsistent"))}</th>'
                f'<th>{esc(self.t("inconsistency_rate"))}</th></tr></thead>'
                f"<tbody>{rows}</tbody></table></div>"
            )
        help_text = self.t(
            "labels_help",
            threshold=fmt_percent(threshold, self.language) if threshold is not None else "–",
            min_labels=min_labels,
        )
        return (
            '<section class="card" id="labels">'
            f'<h2>{esc(self.t("labels_title"))}</h2><p class="help">{esc(help_text)}</p>'
            f'<div class="grid-even"><div><h3>{esc(self.t("flagged"))} ({len(flagged)})</h3>'
            f"{table}</div><div>"
            + self.figure(charts.labels_figure(
                m, float(threshold) if threshold is not None else None, self.language))
            + "</div></div></section>"
        )

    def check_state(self) -> tuple[int, int, int]:
        """(passed, failed blocking, failed warnings) of the run's checks."""
        passed = failed = warned = 0
        for check in self.checks or []:
            if check.get("passed"):
                passed += 1
            elif _is_blocking(check):
                failed += 1
            else:
                warned += 1
        return passed, failed, warned

    def checks_pill(self) -> str:
        if self.checks is None:
            return f'<a class="pill unknown" href="#checks">{esc(self.t("checks_title"))}: –</a>'
        passed, failed, warned = self.check_state()
        state = "fail" if failed else "warn" if warned else "ok"
        text = self.t("checks_summary", passed=passed, total=len(self.checks))
        return f'<a class="pill {state}" href="#checks">{esc(text)}</a>'

    def checks_card(self) -> str:
        if self.checks is None:
            content = f'<p class="empty">{esc(self.t("checks_missing"))}</p>'
        else:
            rows = []
            for check in self.checks:
                passed = bool(check.get("passed"))
                blocking = _is_blocking(check)
                result = (f'<span class="badge ok">{esc(self.t("passed"))}</span>' if passed else
                          f'<span class="badge {"fail" if blocking else "warn"}">'
                          f'{esc(self.t("failed"))}</span>')
                rows.append(
                    f'<tr data-check="{esc(check.get("name"))}">'
                    f'<td class="mono">{esc(check.get("name"))}</td><td>{result}</td>'
                    f'<td><span class="badge neutral">'
                    f'{esc(self.t("blocking" if blocking else "warning"))}</span></td>'
                    f'<td>{esc(check.get("description", ""))}</td></tr>'
                )
            passed, _, _ = self.check_state()
            content = (
                f'<p class="help">{esc(self.t("checks_summary", passed=passed, total=len(rows)))}'
                '</p><div class="table-wrap"><table class="data"><thead><tr>'
                f'<th>{esc(self.t("check"))}</th><th>{esc(self.t("result"))}</th>'
                f'<th>{esc(self.t("severity"))}</th><th>{esc(self.t("description"))}</th>'
                f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
            )
        return (f'<section class="card" id="checks"><h2>{esc(self.t("checks_title"))}</h2>'
                f"{content}</section>")

    def pack_card(self) -> str:
        m = self.marts
        links = "".join(
            f'<a href="{esc(url)}">{esc(self.link_label(key))}<span>{esc(url)}</span></a>'
            for key, url in self.links.items()
        )
        runs = "".join(
            f'<tr><td class="mono">{esc(r.run_id)}</td><td>{esc(self.when(r.as_of))}</td>'
            f"<td>{esc(self.when(r.published_at))}</td><td>{esc(r.definitions_version)}</td>"
            f'<td class="num">{esc(r.source_files)}</td></tr>'
            for r in m.runs.head(10).itertuples()
        )
        settings = json.dumps(m.settings, indent=1, sort_keys=True, ensure_ascii=False)
        return (
            f'<section class="card" id="auditors-pack"><h2>{esc(self.t("auditors_pack"))}</h2>'
            f'<p class="help">{esc(self.t("auditors_help"))}</p>'
            + (f'<div class="links">{links}</div>' if links else "")
            + f'<h3>{esc(self.t("published_runs"))}</h3>'
            '<div class="table-wrap"><table class="data"><thead><tr>'
            f'<th>{esc(self.t("run_id"))}</th><th>{esc(self.t("as_of"))} ({esc(self.timezone)})'
            f'</th><th>{esc(self.t("published_at"))}</th>'
            f'<th>{esc(self.t("definitions_version"))}</th>'
            f'<th>{esc(self.t("source_files"))}</th></tr></thead><tbody>{runs}</tbody></table>'
            f'</div><details><summary>{esc(self.t("effective_settings"))}</summary>'
            f'<pre class="mono">{esc(settings)}</pre></details></section>'
        )


def _is_blocking(check: Mapping[str, Any]) -> bool:
    if "blocking" in check:
        return bool(check["blocking"])
    severity = str(check.get("severity", "")).lower()
    return "error" in severity or "block" in severity


def _slug(scope: str, scope_id: str) -> str:
    if scope == "company":
        return "company"
    slug = re.sub(r"[^a-z0-9]+", "-", scope_id.lower()).strip("-") or "x"
    return slug if slug.startswith("team-") else f"team-{slug}"


def _plain(label_html: str) -> str:
    """A member label without markup (for chart axes and the dropdown)."""
    text = re.sub(r"<small>.*?</small>", "", label_html)
    return htmllib.unescape(re.sub(r"<[^>]+>", "", text)).strip()


_TABS_JS = """
(function () {
  var tabs = document.querySelectorAll('.tab');
  function show(id) {
    var panel = document.getElementById(id);
    if (!panel || !panel.classList.contains('scope-panel')) return false;
    document.querySelectorAll('.scope-panel').forEach(function (p) { p.hidden = p !== panel; });
    tabs.forEach(function (t) {
      t.setAttribute('aria-selected', t.getAttribute('data-target') === id ? 'true' : 'false');
    });
    panel.querySelectorAll('.js-plotly-plot').forEach(function (g) { Plotly.Plots.resize(g); });
    return true;
  }
  tabs.forEach(function (t) {
    t.addEventListener('click', function () {
      var id = t.getAttribute('data-target');
      if (show(id) && window.history && history.replaceState) {
        history.replaceState(null, '', '#' + id);
      }
    });
  });
  // Deep links: #team-noord opens that tab; #team-noord-result also scrolls to the card.
  var target = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
  if (target) {
    var panel = target.closest('.scope-panel');
    if (panel) {
      show(panel.id);
      if (target !== panel) target.scrollIntoView();
    }
  }
})();
"""
