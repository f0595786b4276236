"""The dashboard and the auditor's definitions page, rendered from a real publication.

One tiny generated sample runs through the nightly job once (module fixture); the reports are
rendered from the marts it published and read back as HTML.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from plotly.offline import get_plotlyjs

from pipelines.job_runner import run_nightly_job
from pipelines.quality.checks import CHECKS
from pipelines.reporting import write_dashboard, write_definitions_page
from pipelines.sample import generate_sample
from pipelines.settings import PROJECT_ROOT, Settings

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
SEEDS = DBT_PROJECT / "seeds" / "definitions"
LINKS = {
    "definitions": "definitions.html",
    "dbt_docs": "dbt_docs/index.html",
    "data_docs": "../quality/data_docs/index.html",
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    extracts = tmp_path_factory.mktemp("extracts")
    generate_sample(extracts, scale=0.05, seed=42)
    warehouse = tmp_path_factory.mktemp("warehouse")
    # At this scale the sample's careless labellers label 14 contacts each: judge from 10 on
    # (a `+custom` run, which the header must then show) so the label check flags them.
    settings = Settings(extracts_dir=extracts, warehouse_dir=warehouse, min_labels_judged=10)
    outcome = run_nightly_job(settings, log_level="WARNING")
    assert outcome.success, outcome.failures
    return warehouse / "marts.duckdb"


def _query(published: Path, sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        con.execute(f"attach '{published}' as published (read_only)")
        return con.execute(sql).fetchall()
    finally:
        con.close()


CHECK_RESULTS = [
    {"name": c.name, "passed": c.name != "label_agreement",
     "severity": "ERROR" if c.blocking else "WARN", "description": c.description}
    for c in CHECKS
]


@pytest.fixture(scope="module")
def dashboards(published: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    pages = {}
    for language in ("en", "nl"):
        out = tmp_path_factory.mktemp(f"dashboard_{language}")
        path = write_dashboard(published, out, language, CHECK_RESULTS, LINKS)
        assert path == out / "index.html"
        assert sorted(p.name for p in out.iterdir()) == ["index.html"]  # no temp file left
        pages[language] = path.read_text(encoding="utf-8")
    return pages


def test_dashboard_is_one_self_contained_offline_file(dashboards: dict[str, str]) -> None:
    page = dashboards["en"]
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I), "scripts must be inline"
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?https?://", page, re.I)
    assert not re.search(r"@import\s+(url\()?[\"']?https?://", page, re.I)
    # plotly.js inlined exactly once, however many charts there are
    assert page.count(get_plotlyjs()[:300]) == 1
    assert page.count("Plotly.newPlot") >= 8


def test_header_names_the_run(published: Path, dashboards: dict[str, str]) -> None:
    run_id, version = _query(
        published,
        "select run_id, definitions_version from published.runs "
        "order by published_at desc limit 1",
    )[0]
    for page in dashboards.values():
        assert run_id in page and f"<b>{version}</b>" in page
        assert "(Europe/Amsterdam)" in page
    for link in LINKS.values():
        assert f'href="{html.escape(link)}"' in dashboards["en"]


def test_labels_in_english_and_dutch(dashboards: dict[str, str]) -> None:
    nl, en = dashboards["nl"], dashboards["en"]
    assert '<html lang="nl">' in nl
    for word in ("Salesgesprekken", "Nieuwe omzet", "Nulmeting", "Peildatum", "Conversieratio",
                 "Offertes", "Klanten", "Actie-KPI", "Resultaat-KPI", "Inzicht-KPI",
                 "Auditpakket"):
        assert word in nl, word
    for word in ("Sales conversations", "New revenue", "Baseline (nulmeting)", "Data as of",
                 "Auditor's"):
        assert html.escape(word) in en, word
    assert "Peildatum" not in en and "Salesgesprekken" not in en


def test_flagged_labellers_are_listed(published: Path, dashboards: dict[str, str]) -> None:
    flagged = {
        labeller for (labeller,) in _query(
            published,
            "select labeller from published.label_consistency where exceeds_threshold",
        )
    }
    assert {"USR-0005", "USR-0011"} <= flagged  # the sample's careless labellers
    for page in dashboards.values():
        listed = set(re.findall(r'class="flagged-labeller" data-labeller="([^"]+)"', page))
        assert listed == flagged


def test_insight_kpis_never_per_rep(published: Path, dashboards: dict[str, str]) -> None:
    insight = {k for (k,) in _query(
        published, "select kpi_id from published.kpi_registry where kpi_kind = 'insight'")}
    for page in dashboards.values():
        shown = re.findall(r'data-scope="(\w+)" data-scope-id="[^"]*" data-kpi="(\w+)"', page)
        rep_kpis = {kpi for scope, kpi in shown if scope == "rep"}
        assert rep_kpis, "the per-rep tables are missing"
        assert not rep_kpis & insight
        assert {kpi for scope, kpi in shown if scope == "team"} & insight
        # no insight KPI name inside the per-rep detail charts either
        assert "Conversion" not in _rep_detail_json(page)


def _rep_detail_json(page: str) -> str:
    """The figure JSON of the per-rep charts (the ones with a rep dropdown)."""
    return "".join(
        block for block in re.findall(r"Plotly\.newPlot\((.*?)\)\s*\}", page, re.S)
        if '"updatemenus"' in block
    )


def test_every_check_is_shown(dashboards: dict[str, str]) -> None:
    page = dashboards["en"]
    for check in CHECKS:
        assert f'data-check="{check.name}"' in page
    assert f"{len(CHECKS) - 1} of {len(CHECKS)} checks passed" in page


def test_unknown_language_is_an_error(published: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="language"):
        write_dashboard(published, tmp_path, language="de")


def _seed(name: str) -> list[dict[str, str]]:
    with (SEEDS / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_definitions_page_comes_from_the_seeds_and_vars(tmp_path: Path) -> None:
    path = write_definitions_page(DBT_PROJECT, tmp_path / "definitions.html")
    page = path.read_text(encoding="utf-8")
    for row in _seed("free_mail_domains"):
        assert f"<code>{row['domain']}</code>" in page
    for row in _seed("intent_event_types"):
        assert f"<code>{row['event_type']}</code>" in page
        assert html.escape(row["why"]) in page
    for row in _seed("kpi_definitions"):
        assert html.escape(row["definition"]) in page
    changelog = _seed("definitions_changelog")
    latest = max(changelog, key=lambda r: (r["valid_from"], r["version"]))
    assert f'id="version">Version {latest["version"]}</span>' in page  # not +custom
    for row in changelog:
        assert html.escape(row["change"]) in page and row["valid_from"] in page
    assert re.search(r"<code>min_conversation_seconds</code></td><td>300</td>", page)
    assert re.search(r"<code>conversion_window_days</code></td><td>90</td>", page)


def test_definitions_page_marks_settings_that_differ(published: Path, tmp_path: Path) -> None:
    (settings,) = _query(published, "select settings from published.runs limit 1")[0]
    effective = json.loads(settings) | {"min_conversation_seconds": 240}
    assert effective["min_labels_judged"] == 10  # the fixture's run
    path = write_definitions_page(DBT_PROJECT, tmp_path / "d.html", effective, language="nl")
    page = path.read_text(encoding="utf-8")
    assert "Afgesproken definities" in page
    row = re.search(r"<tr class=\"(\w*)\"><td><code>min_conversation_seconds</code>.*?</tr>", page)
    assert row and row.group(1) == "differs" and "240" in row.group(0)
    other = re.search(r"<tr class=\"(\w*)\"><td><code>target_uplift</code>", page)
    assert other and other.group(1) == ""
    assert 'id="version">Versie v1.1 +custom</span>' in page


# --- written by the job, and rendered by a real browser ----------------------------------

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--window-size=1400,2000",
    "--virtual-time-budget=8000",
)


def test_every_publish_writes_the_site_with_the_auditors_pack(published: Path) -> None:
    site = published.parent / "site"
    for page in ("index.html", "en/index.html", "nl/index.html", "definitions.html",
                 "dbt_docs/index.html"):
        assert (site / page).is_file(), page
    assert "url=en/index.html" in (site / "index.html").read_text(encoding="utf-8")
    dashboard = (site / "en" / "index.html").read_text(encoding="utf-8")
    for link in ("../definitions.html", "../dbt_docs/index.html",
                 "../../quality/data_docs/index.html"):
        assert f'href="{link}"' in dashboard, link
    assert (published.parent / "quality" / "data_docs" / "index.html").is_file()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_dashboard_renders_in_headless_chromium_without_console_errors(
    published: Path, tmp_path: Path, language: str
) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "Chromium is not installed: `make browser` (Debian packages chromium and "
            "chromium-driver) enables this test; CI installs them"
        )
    page = published.parent / "site" / language / "index.html"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"dashboard-{language}.png"
    screenshot.unlink(missing_ok=True)
    result = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    errors = [line for line in console if "error" in line.lower() or "uncaught" in line.lower()]
    assert not errors, "\n".join(errors)
    assert screenshot.is_file() and screenshot.stat().st_size > 50_000, result.stderr[-2000:]
