"""The site written at every publish, next to the published marts: the KPI dashboard (static,
offline) and the auditor's pack — the definitions page generated from the seeds and vars,
the dbt docs and the GX Data Docs."""

import os
import shutil
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DagsterEventType,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_dbt import DbtCliResource

from pipelines.assets.dbt import dbt_environment
from pipelines.assets.owners import WITH_SALES_MANAGEMENT
from pipelines.dbt_project import DBT_PROJECT_DIR
from pipelines.publish import published_database
from pipelines.quality.checks import CHECKS
from pipelines.reporting import write_dashboard, write_definitions_page
from pipelines.resources import PipelineSettings

LANGUAGES = ("en", "nl")
LINKS = {
    "definitions": "definitions.html",
    "dbt_docs": "dbt_docs/index.html",
    "data_docs": "../quality/data_docs/index.html",
}


def site_dir(warehouse_dir: Path) -> Path:
    return warehouse_dir / "site"


def run_check_results(context: AssetExecutionContext) -> list[dict]:
    """This run's audit results, as the dashboard shows them."""
    names = {check.name for check in CHECKS}
    records = context.instance.all_logs(
        context.run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    )
    results = []
    for record in records:
        evaluation = record.dagster_event.asset_check_evaluation_data
        if evaluation.check_name not in names:
            continue
        results.append(
            {
                "name": evaluation.check_name,
                "passed": evaluation.passed,
                "severity": evaluation.severity.value,
                "description": evaluation.description or "",
            }
        )
    return results


def write_index(site: Path, language: str) -> Path:
    """`site/index.html`: the stable address, opening the dashboard in the configured
    language (a relative redirect, so it works from disk and when the folder is moved)."""
    target = f"{language}/index.html"
    index = site / "index.html"
    temporary = site / ".index.html.tmp"
    temporary.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='0; url={target}'>"
        "<title>Sales KPI dashboard</title></head>"
        f"<body><p><a href='{target}'>Sales KPI dashboard</a> · "
        "<a href='en/index.html'>English</a> · <a href='nl/index.html'>Nederlands</a> · "
        "<a href='definitions.html'>Definitions</a></p></body></html>\n",
        encoding="utf-8",
    )
    os.replace(temporary, index)
    return index


@asset(
    key=["kpi_site"],
    group_name="publish",
    owners=list(WITH_SALES_MANAGEMENT),
    deps=[AssetKey(["published_marts"])],
    kinds={"html"},
    description=(
        "The KPI dashboard (`<warehouse>/site/index.html`, English and Dutch) and the "
        "auditor's pack beside it: the definitions page, the dbt docs and a link to the GX "
        "Data Docs. Static files that open from disk and work offline."
    ),
)
def kpi_site(
    context: AssetExecutionContext, pipeline: PipelineSettings, dbt: DbtCliResource
) -> MaterializeResult:
    settings = pipeline.settings()
    if not settings.write_site:
        context.log.info("write_site is off: no dashboard or auditor's pack written")
        return MaterializeResult(metadata={"written": False})
    site = site_dir(settings.warehouse_dir)
    site.mkdir(parents=True, exist_ok=True)
    published = published_database(settings.warehouse_dir)
    checks = run_check_results(context)

    write_definitions_page(
        DBT_PROJECT_DIR, site / "definitions.html", settings.run_settings(),
        settings.dashboard_language,
    )
    docs_target = site / ".dbt_docs_target"
    with dbt_environment(settings):
        dbt.cli(
            ["docs", "generate", "--static"], target_path=docs_target, raise_on_error=True
        ).wait()
    (site / "dbt_docs").mkdir(exist_ok=True)
    shutil.copyfile(docs_target / "static_index.html", site / "dbt_docs" / "index.html")
    shutil.rmtree(docs_target, ignore_errors=True)

    pages = {}
    for language in LANGUAGES:
        folder = site / language
        folder.mkdir(exist_ok=True)
        links = {name: f"../{url}" for name, url in LINKS.items()}
        pages[language] = write_dashboard(published, folder, language, checks, links)
    index = write_index(site, settings.dashboard_language)
    context.log.info(f"dashboard: {index}")
    return MaterializeResult(
        metadata={
            "dashboard": MetadataValue.path(str(index)),
            "definitions": MetadataValue.path(str(site / "definitions.html")),
            "dbt_docs": MetadataValue.path(str(site / "dbt_docs" / "index.html")),
            "checks_shown": len(checks),
        }
    )
