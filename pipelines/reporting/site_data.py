"""The dashboard's data files: compact, per team, read from the published marts set-based.

The page itself carries only what does not grow with the sales org (the registry, the
period calendar, the team list); the browser loads `company.js` (company and team rows) at
first view and `team-<slug>.js` (that team's reps) when a team is picked. Files are classic
scripts that hand their payload to `SKPI.receive(key, data)`: a page opened from disk may
load `<script src>` files beside it, whereas Chromium refuses `fetch()` on `file://`.

Every file is produced by a fixed number of DuckDB statements over the whole mart (grouped
by team in SQL, rows already serialized by `to_json`), then written once per team: site
generation grows linearly with teams and reps, and never issues a query per rep.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.reporting.marts import mart

COMPANY = "company"
UNASSIGNED = "Unassigned"
# How many labellers the company-wide label chart shows (the flagged ones always): the
# company file must not grow with the number of reps; a team's file lists all of its own.
COMPANY_LABELLERS = 25

# A scope's series is columnar (one array per column, the same length): k KPI index, p period
# index (into the KPI grain's calendar), v value, t target, a attainment, s status code (0 none,
# else 1 + index into `statuses`), c complete (0/1), n numerator, d denominator.


def script_json(value: Any) -> str:
    """JSON that is safe inside `<script>` and in a `.js` file: no `</script>`, no `<!--`,
    no HTML-significant characters and no JS line terminators survive unescaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# A slug's length, before the number that keeps it unique: a team name is data, and a file
# name has a limit (255 bytes), well beyond what a URL fragment should carry.
MAX_SLUG_CHARACTERS = 40


def team_slug(team: str) -> str:
    """A file-name-safe, stable, short slug of a team name, without a leading word "team"
    (its file is `team-<slug>.js`); collisions are resolved by the caller."""
    slug = re.sub(r"[^a-z0-9]+", "-", team.lower()).strip("-")
    slug = slug.removeprefix("team-")[:MAX_SLUG_CHARACTERS].strip("-")
    return slug or "team"


@dataclass
class Calendar:
    """Every period any mart row refers to, per grain, as ISO dates (rows index into it)."""

    weeks: list[str]
    months: list[str]


@dataclass
class TeamFile:
    """One team's payload: its reps, their series and baselines, its labellers."""

    team: str
    slug: str
    reps: list[list[Any]] = field(default_factory=list)
    series: dict[str, str] = field(default_factory=dict)  # scope_id -> JSON columns
    baselines: dict[str, list[list[Any]]] = field(default_factory=dict)
    labels: list[list[Any]] = field(default_factory=list)


@dataclass
class SiteData:
    """Everything the data files hold, grouped by file."""

    kpi_ids: list[str]
    statuses: list[str]
    calendar: Calendar
    teams: list[TeamFile]
    company_series: dict[str, dict[str, str]]  # scope -> scope_id -> JSON columns
    company_baselines: dict[str, dict[str, list[list[Any]]]]
    funnel: list[list[Any]]  # [team index, month index, stage, contacts]
    won: list[list[Any]]  # [team index or -1 (not a sales rep's deal), month index, deals]
    company_labels: list[list[Any]]
    stages: list[str]


def read_site_data(con: duckdb.DuckDBPyConnection, kpi_ids: list[str]) -> SiteData:
    """Read every row the dashboard can show, grouped per file, in a fixed number of queries.

    `kpi_ids` are the registry's active KPIs in reading order; rows refer to them by index.
    """
    con.execute("create or replace temp table _kpis (kpi_id varchar, k integer)")
    con.executemany("insert into _kpis values (?, ?)", [[k, i] for i, k in enumerate(kpi_ids)])
    con.execute(
        f"""
        create or replace temp table _periods as
        with seen as (
            select distinct grain, period_start from {mart('kpi_values')}
            union select 'month', entered_month from {mart('fct_funnel_stages')}
                where entered_month is not null
            union select 'month', closed_month from {mart('fct_deals')}
                where closed_month is not null
        )
        select grain, period_start,
               (row_number() over (partition by grain order by period_start) - 1)::integer as p
        from seen
        """
    )
    calendar = Calendar(weeks=[], months=[])
    for grain, start in con.execute(
        "select grain, strftime(period_start, '%Y-%m-%d') from _periods order by grain, p"
    ).fetchall():
        (calendar.weeks if grain == "week" else calendar.months).append(start)
    statuses = [s for (s,) in con.execute(
        f"select distinct status from {mart('kpi_scorecard')} where status is not null "
        f"order by status").fetchall()]
    con.execute("create or replace temp table _statuses (status varchar, code integer)")
    con.executemany("insert into _statuses values (?, ?)",
                    [[s, i + 1] for i, s in enumerate(statuses)])

    # Sales reps with numbers, and the team whose file they go in.
    con.execute(
        f"""
        create or replace temp table _reps as
        select r.user_id, r.full_name, r.role, coalesce(r.team, '{UNASSIGNED}') as team,
               r.is_active
        from {mart('dim_reps')} r
        where r.user_id in (select scope_id from {mart('kpi_values')} where scope = 'rep')
        """
    )
    teams = [t for (t,) in con.execute(
        f"""
        select distinct scope_id from {mart('kpi_values')} where scope = 'team'
        union select team from _reps
        """
    ).fetchall()]
    teams.sort(key=lambda t: (t == UNASSIGNED, t.lower()))
    files = _team_files(teams)
    by_team = {f.team: f for f in files}
    team_index = {f.team: i for i, f in enumerate(files)}

    for user_id, name, role, team, active in con.execute(
        "select user_id, full_name, role, team, is_active from _reps "
        "order by team, not is_active, full_name, user_id"
    ).fetchall():
        by_team[team].reps.append([user_id, name or user_id, role or "", bool(active)])

    # Series: kpi_values with the scorecard's target, attainment and status, one JSON object
    # of columns per scope and scope id, serialized by DuckDB.
    company_series: dict[str, dict[str, str]] = {COMPANY: {}, "team": {}}
    for scope, scope_id, team, rows in con.execute(
        f"""
        select v.scope, v.scope_id, r.team,
               to_json(struct_pack(
                   k := list(k.k order by k.k, p.p),
                   p := list(p.p order by k.k, p.p),
                   v := list(v.value order by k.k, p.p),
                   t := list(s.target order by k.k, p.p),
                   a := list(s.attainment order by k.k, p.p),
                   s := list(coalesce(st.code, 0) order by k.k, p.p),
                   c := list(v.is_complete::integer order by k.k, p.p),
                   n := list(v.numerator order by k.k, p.p),
                   d := list(v.denominator order by k.k, p.p)))
        from {mart('kpi_values')} v
        join _kpis k on k.kpi_id = v.kpi_id
        join _periods p on p.grain = v.grain and p.period_start = v.period_start
        left join {mart('kpi_scorecard')} s
          on s.kpi_id = v.kpi_id and s.scope = v.scope and s.scope_id = v.scope_id
         and s.period_start = v.period_start
        left join _statuses st on st.status = s.status
        left join _reps r on v.scope = 'rep' and r.user_id = v.scope_id
        group by all
        """
    ).fetchall():
        if scope == "rep":
            if team in by_team:
                by_team[team].series[scope_id] = rows
        elif scope in company_series:
            company_series[scope][scope_id] = rows

    company_baselines: dict[str, dict[str, list[list[Any]]]] = {COMPANY: {}, "team": {}}
    for scope, scope_id, team, k, value, start, end in con.execute(
        f"""
        select b.scope, b.scope_id, r.team, k.k, b.baseline_value,
               strftime(b.baseline_from, '%Y-%m-%d'), strftime(b.baseline_to, '%Y-%m-%d')
        from {mart('kpi_baselines')} b
        join _kpis k on k.kpi_id = b.kpi_id
        left join _reps r on b.scope = 'rep' and r.user_id = b.scope_id
        order by k.k
        """
    ).fetchall():
        row = [k, value, start, end]
        if scope == "rep":
            if team in by_team:
                by_team[team].baselines.setdefault(scope_id, []).append(row)
        elif scope in company_baselines:
            company_baselines[scope].setdefault(scope_id, []).append(row)

    stages = [s for (s,) in con.execute(
        f"select stage from {mart('fct_funnel_stages')} group by stage "
        f"order by min(stage_order), stage").fetchall()]
    funnel = [
        [team_index.get(team, -1), p, stages.index(stage), int(n)]
        for team, p, stage, n in con.execute(
            f"""
            select coalesce(f.team, '{UNASSIGNED}'), p.p, f.stage, count(*)
            from {mart('fct_funnel_stages')} f
            join _periods p on p.grain = 'month' and p.period_start = f.entered_month
            group by all order by all
            """
        ).fetchall()
    ]
    # Won new business per month: the growth KPI's tooltip counts the deals behind revenue
    # (a team's revenue counts its sales reps' deals; the company's counts every deal).
    won = [
        [team_index.get(team, -1) if by_rep else -1, p, int(n)]
        for team, by_rep, p, n in con.execute(
            f"""
            select coalesce(d.team, '{UNASSIGNED}'), coalesce(d.is_owned_by_sales_rep, false),
                   p.p, count(*)
            from {mart('fct_deals')} d
            join _periods p on p.grain = 'month' and p.period_start = d.closed_month
            where d.is_won and d.deal_type = 'new_business'
            group by all order by all
            """
        ).fetchall()
    ]

    company_labels: list[list[Any]] = []
    labels = con.execute(
        f"""
        select l.labeller, coalesce(r.full_name, l.labeller), r.team, l.labels_judged,
               l.inconsistent, l.inconsistency_rate, coalesce(l.is_judged, false),
               coalesce(l.exceeds_threshold, false),
               row_number() over (order by l.is_judged desc, l.inconsistency_rate desc nulls
                                  last, l.labeller) as rank
        from {mart('label_consistency')} l
        left join {mart('dim_reps')} r on r.user_id = l.labeller
        order by rank
        """
    ).fetchall()
    for labeller, name, team, judged, bad, rate, is_judged, flagged, rank in labels:
        row = [labeller, name, team or "", int(judged or 0), int(bad or 0), rate,
               bool(is_judged), bool(flagged)]
        if flagged or rank <= COMPANY_LABELLERS:
            company_labels.append(row)
        if team in by_team:
            by_team[team].labels.append(row)

    return SiteData(
        kpi_ids=kpi_ids, statuses=statuses, calendar=calendar, teams=files,
        company_series=company_series, company_baselines=company_baselines, funnel=funnel,
        won=won, company_labels=company_labels, stages=stages,
    )


def _team_files(teams: list[str]) -> list[TeamFile]:
    """One file per team with a unique slug: two names may slug alike ("Zuid", "Team Zuid"),
    and the later is numbered with the first number no slug has taken ("zuid-2" may be a
    team's own)."""
    taken = {team_slug(team) for team in teams}
    seen: set[str] = set()
    files = []
    for team in teams:
        slug = team_slug(team)
        if slug in seen:
            number = 2
            while f"{slug}-{number}" in taken:
                number += 1
            slug = f"{slug}-{number}"
            taken.add(slug)
        seen.add(slug)
        files.append(TeamFile(team=team, slug=slug))
    return files


def _rows_object(rows: dict[str, str]) -> str:
    """`{scope_id: columns}` with the columns already JSON (from DuckDB, numbers only)."""
    return "{" + ",".join(f"{script_json(key)}:{value}" for key, value in rows.items()) + "}"


def company_script(data: SiteData) -> str:
    """`company.js`: company and team rows, funnel, won deals, the company's labellers."""
    body = (
        "{"
        f'"series":{{"company":{_rows_object(data.company_series[COMPANY])},'
        f'"team":{_rows_object(data.company_series["team"])}}},'
        f'"baselines":{script_json(data.company_baselines)},'
        f'"funnel":{script_json(data.funnel)},'
        f'"won":{script_json(data.won)},'
        f'"labels":{script_json(data.company_labels)}'
        "}"
    )
    return f'SKPI.receive("company",{body});\n'


def team_script(team: TeamFile) -> str:
    """`team-<slug>.js`: one team's reps, their series and baselines, its labellers."""
    body = (
        "{"
        f'"team":{script_json(team.team)},'
        f'"reps":{script_json(team.reps)},'
        f'"series":{_rows_object(team.series)},'
        f'"baselines":{script_json(team.baselines)},'
        f'"labels":{script_json(team.labels)}'
        "}"
    )
    return f"SKPI.receive({script_json('team:' + team.slug)},{body});\n"


def team_file_name(team: TeamFile) -> str:
    """`team-<slug>.js` (a team called "Team Noord" gives `team-noord.js`): as unique as the
    slug."""
    return f"team-{team.slug}.js"


def write_data_files(data: SiteData, folder: Path) -> list[Path]:
    """Write `company.js` and one `team-<slug>.js` per team into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "company.js"]
    written[0].write_text(company_script(data), encoding="utf-8")
    for team in data.teams:
        path = folder / team_file_name(team)
        path.write_text(team_script(team), encoding="utf-8")
        written.append(path)
    return written
