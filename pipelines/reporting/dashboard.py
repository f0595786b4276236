"""The KPI dashboard: a static, offline site the browser draws from compact per-team data.

Layout of what `write_dashboard` writes into the site folder:

    <site>/<lang>/index.html        the page (EN and NL), small and independent of the reps
    <site>/static/                  plotly.min.js (copied once from the Python package),
                                    dashboard.js, dashboard.css, report.css
    <site>/data/<run>/company.js    company and team rows, loaded at first view
    <site>/data/<run>/team-*.js     one team's reps, loaded when the team is picked

Python pre-renders no chart: at 1,400 reps that took longer than the whole data path. The
data of a run sits in its own folder and the pages are replaced last (atomically), so a
browser never mixes two publications; the previous run's folder is kept for pages that are
still open, older ones are removed.
"""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import plotly

from pipelines.files import write_atomically
from pipelines.reporting.html import DASHBOARD_POLICY, STATIC_DIR, environment
from pipelines.reporting.i18n import (
    MONTHS,
    MONTHS_LONG,
    PLOTLY_SEPARATORS,
    TEXT,
    check_language,
    tr,
)
from pipelines.reporting.marts import (
    PublishedRun,
    as_local,
    published_connection,
    read_registry,
    read_run,
)
from pipelines.reporting.site_data import (
    UNASSIGNED,
    SiteData,
    read_site_data,
    team_file_name,
    write_data_files,
)

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
STATIC_FILES = ("dashboard.js", "dashboard.css", "report.css")
# The thresholds the page explains (label check, conversion window): read from the run's
# settings, so the page says what the numbers were computed with.
SHOWN_SETTINGS = ("max_label_disagreement", "min_labels_judged", "conversion_window_days")
LINK_LABELS = {"definitions": "link_definitions", "dbt_docs": "link_dbt_docs",
               "data_docs": "link_data_docs"}
DATA_RUNS_KEPT = 2


def write_dashboard(
    published_db: Path,
    site: Path,
    languages: Sequence[str] = ("en", "nl"),
    checks: list[dict] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write the dashboard of the latest published run into `site`; returns the page per
    language (`<site>/<lang>/index.html`).

    `checks` are the run's check results ({name, passed, severity, description}); `links`
    maps auditor's-pack entries (definitions, dbt_docs, data_docs, ...) to URLs relative to
    the site folder.
    """
    languages = [check_language(language) for language in languages]
    site = Path(site)
    with published_connection(Path(published_db)) as con:
        run = read_run(con)
        registry = read_registry(con)
        active = registry[registry.is_active.fillna(False)]
        data = read_site_data(con, [str(k) for k in active.kpi_id])
    copy_static(site / "static")
    folder_name = run.run_id[:8] or "run"
    data_dir = site / "data" / folder_name
    staging = site / "data" / f".{folder_name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    write_data_files(data, staging)
    shutil.rmtree(data_dir, ignore_errors=True)
    staging.rename(data_dir)

    env = environment()
    template = env.get_template("dashboard.html")
    pages = {}
    for language in languages:
        context = page_context(run, active.to_dict("records"), data, language,
                               f"../data/{folder_name}", checks, dict(links or {}))
        pages[language] = write_atomically(site / language / "index.html",
                                           template.render(**context))
    _prune_data(site / "data", keep=folder_name)
    return pages


def copy_static(folder: Path) -> None:
    """The page's CSS and JS, and Plotly's JavaScript from the installed Python package
    (the chart library ships inside the project: no CDN, never inlined per chart)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [PLOTLY_JS, *(STATIC_DIR / name for name in STATIC_FILES)]
    for source in sources:
        target = folder / source.name
        if target.exists() and filecmp.cmp(source, target, shallow=False):
            continue
        temporary = folder / f".{source.name}.tmp"
        shutil.copyfile(source, temporary)
        temporary.replace(target)


def _prune_data(folder: Path, keep: str) -> None:
    """Keep the current run's data and the previous one (an open page may still read it)."""
    runs = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    kept = [p for p in runs if p.name == keep] + [p for p in runs if p.name != keep]
    for stale in kept[DATA_RUNS_KEPT:]:
        shutil.rmtree(stale, ignore_errors=True)


def _when(instant: datetime | None, timezone: str, language: str) -> str:
    local = as_local(instant, timezone)
    if local is None:
        return "–"
    return f"{local.day} {MONTHS[language][local.month - 1]} {local.year}, {local:%H:%M}"


def _is_blocking(check: Mapping[str, Any]) -> bool:
    if "blocking" in check:
        return bool(check["blocking"])
    severity = str(check.get("severity", "")).lower()
    return "error" in severity or "block" in severity


def page_context(
    run: PublishedRun,
    registry: list[dict[str, Any]],
    data: SiteData,
    language: str,
    data_url: str,
    checks: list[dict] | None,
    links: dict[str, str],
) -> dict[str, Any]:
    """Everything the template shows; `meta` is what dashboard.js reads (as JSON)."""

    def t(key: str, **values: object) -> str:
        return tr(key, language, **values)

    timezone = str(run.settings["business_timezone"])
    as_of = as_local(run.as_of, timezone)
    kpis = [
        {
            "id": str(row["kpi_id"]),
            "name": str(row[f"name_{language}"]),
            "kind": str(row["kpi_kind"]),
            "grain": str(row["grain"]),
            "unit": str(row["unit"]),
            "scopes": [s.strip() for s in str(row["scopes"]).split(",") if s.strip()],
            "definition": str(row["definition"]),
            "computation": str(row["computation"]),
            "growth_of": None if not row.get("growth_of") or row["growth_of"] != row["growth_of"]
            else str(row["growth_of"]),
        }
        for row in registry
    ]
    teams = [
        {"name": team.team, "slug": team.slug,
         "label": t("Unassigned") if team.team == UNASSIGNED else team.team,
         "file": f"{data_url}/{team_file_name(team)}", "reps": len(team.reps)}
        for team in data.teams
    ]
    check_rows = []
    for check in checks or []:
        passed = bool(check.get("passed"))
        blocking = _is_blocking(check)
        check_rows.append({
            "name": str(check.get("name", "")), "passed": passed, "blocking": blocking,
            "description": str(check.get("description", "")),
        })
    passed = sum(1 for c in check_rows if c["passed"])
    failed_blocking = sum(1 for c in check_rows if not c["passed"] and c["blocking"])
    checks_state = ("unknown" if checks is None else "fail" if failed_blocking
                    else "warn" if passed < len(check_rows) else "ok")
    meta = {
        "lang": language,
        "separators": PLOTLY_SEPARATORS[language],
        "eur_prefix": "€" if language == "en" else "€ ",
        "months_short": list(MONTHS[language]),
        "months_long": list(MONTHS_LONG[language]),
        "text": {key: value[1 if language == "nl" else 0] for key, value in TEXT.items()},
        "as_of": as_of.date().isoformat() if as_of else None,
        "kpis": kpis,
        "statuses": data.statuses,
        "stages": [{"id": s, "name": t(s)} for s in data.stages],
        "calendar": {"week": data.calendar.weeks, "month": data.calendar.months},
        "teams": teams,
        "company_file": f"{data_url}/company.js",
        "settings": {name: run.settings[name] for name in SHOWN_SETTINGS},
    }
    other = "nl" if language == "en" else "en"
    return {
        "lang": language,
        "t": t,
        "content_policy": DASHBOARD_POLICY,
        "meta": meta,
        "kpis": kpis,
        "teams": teams,
        "run": {
            "run_id": run.run_id,
            "version": run.definitions_version,
            "as_of": _when(run.as_of, timezone, language),
            "published_at": _when(run.published_at, timezone, language),
            "timezone": timezone,
        },
        "runs": [
            {"run_id": str(r.run_id), "as_of": _when(_ts(r.as_of), timezone, language),
             "published_at": _when(_ts(r.published_at), timezone, language),
             "version": str(r.definitions_version), "source_files": r.source_files}
            for r in run.runs.head(10).itertuples()
        ],
        "settings_json": run.settings,
        "checks": check_rows if checks is not None else None,
        "checks_passed": passed,
        "checks_state": checks_state,
        "links": [{"key": key, "label": t(LINK_LABELS.get(key, key)) if key in LINK_LABELS
                   else key, "url": url} for key, url in links.items()],
        "other_language": {"code": other, "url": f"../{other}/index.html"},
        "static": "../static",
    }


def _ts(value: Any) -> datetime | None:
    """A timestamp of the runs frame as a datetime (NaT as None)."""
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()
