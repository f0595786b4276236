"""The site written at every publish, next to the published marts: the KPI dashboard (static,
offline) and the auditor's pack — the definitions page generated from the seeds and vars,
the dbt docs and the GX Data Docs."""

import hashlib
import json
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

from pipelines.assets.dbt import dbt_environment, dbt_project
from pipelines.assets.owners import WITH_SALES_MANAGEMENT
from pipelines.dbt_parse_ahead import dbt_runs_dir
from pipelines.dbt_project import DBT_PROJECT_DIR, MANIFEST, dbt_vars, reuse_partial_parse
from pipelines.files import write_atomically
from pipelines.no_op import complete_build_since, project_digest
from pipelines.publish import published_database
from pipelines.quality.checks import CHECKS
from pipelines.reporting import write_dashboard, write_definitions_page
from pipelines.reporting.dbt_docs_page import static_docs_page
from pipelines.reporting.html import REDIRECT_POLICY, environment
from pipelines.reporting.i18n import tr
from pipelines.resources import PipelineSettings
from pipelines.settings import LANGUAGES, Settings

# The auditor's pack as seen from a language folder (`site/<lang>/index.html`): each
# language has its own definitions page beside its dashboard.
LINKS = {
    "definitions": "definitions.html",
    "dbt_docs": "../dbt_docs/index.html",
    "data_docs": "../../quality/data_docs/index.html",
}


def site_dir(warehouse_dir: Path) -> Path:
    return warehouse_dir / "site"


# What the static dbt docs are made of: the project's files and its manifest. The data is not
# part of them (the catalog lists relations and column types, which the project decides).
_DBT_DOCS_PARTS = ("dbt_project/models", "dbt_project/seeds", "dbt_project/macros",
                   "dbt_project/tests", "dbt_project/dbt_project.yml",
                   "dbt_project/profiles.yml")
DBT_DOCS_CACHE = ".dbt_docs_cache"
# How the page is made from dbt's files: a cached page made another way is made again.
DBT_DOCS_PAGE_FORMAT = "inlined with script_json, content security policy"


def dbt_docs_fingerprint(settings: Settings) -> str:
    """The digest the cached dbt docs are kept under: the dbt project's files and manifest,
    and the vars they are generated with (the run's: its thresholds and as_of appear in the
    compiled SQL the page shows)."""
    digest = hashlib.sha256(project_digest(_DBT_DOCS_PARTS).encode())
    digest.update(DBT_DOCS_PAGE_FORMAT.encode())
    digest.update(dbt_project.manifest_path.read_bytes())
    digest.update(json.dumps(dbt_vars(settings), sort_keys=True).encode())
    return digest.hexdigest()


def cached_dbt_docs(warehouse_dir: Path) -> Path:
    """Where the last generated dbt docs page is kept (its fingerprint in a file beside it)."""
    return warehouse_dir / DBT_DOCS_CACHE / "static_index.html"


def build_manifest(settings: Settings) -> Path | None:
    """The manifest of the DuckDB build the warehouse holds, when that build is complete and
    of exactly these inputs, settings and project (pipelines/no_op.py): every node in it is
    compiled with the vars the docs are generated with. None on Spark, whose build compiled
    Spark SQL against a target the page's catalog (DuckDB's) does not describe."""
    if settings.engine != "duckdb":
        return None
    run_id = complete_build_since(settings)
    if run_id is None:
        return None
    manifest = dbt_runs_dir(settings) / run_id / MANIFEST
    return manifest if manifest.is_file() else None


def write_dbt_docs(
    context: AssetExecutionContext, dbt: DbtCliResource, settings: Settings, site: Path
) -> bool:
    """`site/dbt_docs/index.html`, from `dbt docs generate` only when the dbt project (or the
    run's vars) changed since the page was last generated for this warehouse (it takes
    seconds, and a nightly run almost never changes either). Returns whether it was
    generated."""
    cache = cached_dbt_docs(settings.warehouse_dir)
    fingerprint = dbt_docs_fingerprint(settings)
    stamp = cache.with_name("fingerprint")
    fresh = cache.exists() and stamp.exists() and stamp.read_text() == fingerprint
    if not fresh:
        docs_target = site / ".dbt_docs_target"
        # with the build's vars, from the parse state the build kept (the same vars and
        # profile): dbt parses nothing again (on Spark the build's target differs, so it does)
        reuse_partial_parse(dbt_runs_dir(settings), docs_target)
        # not dbt's `--static`, which inlines the JSON unescaped (pipelines/reporting/
        # dbt_docs_page.py): the page is filled here from the files dbt writes
        args = ["docs", "generate", "--vars", json.dumps(dbt_vars(settings))]
        built = build_manifest(settings)
        if built is not None:
            # the build compiled every node with these vars: its manifest is the page's, and
            # dbt only reads the catalog (compiling the project again took half the step)
            docs_target.mkdir(parents=True, exist_ok=True)  # no parse state to start from
            shutil.copyfile(built, docs_target / MANIFEST)
            args.append("--no-compile")
        with dbt_environment(settings):
            dbt.cli(args, target_path=docs_target, raise_on_error=True).wait()
        cache.parent.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)  # the stamp is written last: a killed copy is redone
        cache.write_text(static_docs_page(docs_target), encoding="utf-8")
        stamp.write_text(fingerprint)
        shutil.rmtree(docs_target, ignore_errors=True)
    else:
        context.log.info("dbt docs: the project is unchanged, the cached page is reused")
    (site / "dbt_docs").mkdir(exist_ok=True)
    shutil.copyfile(cache, site / "dbt_docs" / "index.html")
    return not fresh


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
    document = environment().get_template("redirect.html").render(
        content_policy=REDIRECT_POLICY,
        lang=language, target=f"{language}/index.html", title=tr("title", language),
        definitions=tr("link_definitions", language),
    )
    return write_atomically(site / "index.html", document)


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
    context.log.info(f"site: writing the definitions pages, the dbt docs and the dashboard "
                     f"into {site}")
    site.mkdir(parents=True, exist_ok=True)
    published = published_database(settings.warehouse_dir)
    checks = run_check_results(context)

    for language in LANGUAGES:
        write_definitions_page(DBT_PROJECT_DIR, site / language / "definitions.html",
                               settings.run_settings(), language)
    # the stable address of the definitions, in the configured language
    write_definitions_page(DBT_PROJECT_DIR, site / "definitions.html", settings.run_settings(),
                           settings.dashboard_language)
    dbt_docs_generated = write_dbt_docs(context, dbt, settings, site)

    pages = write_dashboard(published, site, LANGUAGES, checks, LINKS)
    index = write_index(site, settings.dashboard_language)
    context.log.info(f"dashboard: {index}")
    return MaterializeResult(
        metadata={
            "dashboard": MetadataValue.path(str(index)),
            "definitions": MetadataValue.path(str(site / "definitions.html")),
            "dbt_docs": MetadataValue.path(str(site / "dbt_docs" / "index.html")),
            "dbt_docs_generated": dbt_docs_generated,
            "checks_shown": len(checks),
            "page_bytes": {language: page.stat().st_size for language, page in pages.items()},
        }
    )
