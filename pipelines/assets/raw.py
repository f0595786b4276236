"""The raw layer: one asset per contract entity, loading every new landing file."""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from dagster_duckdb import DuckDBResource
from duckdb import DuckDBPyConnection

from pipelines.adapters import AdapterError, adapt_source
from pipelines.assets.owners import DATA_TEAM, WITH_SALES_MANAGEMENT
from pipelines.assets.warehouse_lock import hold_warehouse
from pipelines.contract import ENTITIES, ENTITY_NAMES
from pipelines.engines import EngineUnavailable, require_engine
from pipelines.ingest.landing import LandingError, LandingFile, scan_landing
from pipelines.ingest.loader import EntityLoad, load_entities
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.no_op import mark_loaded, mark_run_started
from pipelines.resources import PipelineSettings, warehouse_connection
from pipelines.safe_text import markdown_code_block
from pipelines.settings import Settings
from pipelines.targets import TargetOverrideError, load_overrides

RAW_GROUP = "raw"


def raw_asset_key(entity: str) -> list[str]:
    return [RAW_GROUP, entity]


@asset(
    name="canonical_landing",
    key_prefix=[RAW_GROUP],
    owners=list(DATA_TEAM),
    group_name=RAW_GROUP,
    kinds={"duckdb", "yaml"},
    description=(
        "The source adapter: with a source mapping (`--source salesforce|hubspot|PATH.yaml`) "
        "the CRM's own export is mapped onto the canonical contract, into "
        "`<warehouse>/landing`; without one, the landing folder already is canonical."
    ),
)
def canonical_landing(
    context: AssetExecutionContext, pipeline: PipelineSettings
) -> MaterializeResult:
    settings = pipeline.settings()
    # the first step of every run: a run launched by the Dagster daemon or UI takes the
    # warehouse's lock here for its process (the CLI already holds it); a busy one fails
    hold_warehouse(settings.warehouse_dir)
    # the engine the settings ask for must be able to run here (the CLI refuses earlier;
    # this is the schedule's and `dagster dev`'s refusal, before anything is loaded)
    try:
        require_engine(settings)
    except EngineUnavailable as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    mark_run_started(settings, context.run_id)
    if not settings.source_mapping:
        return MaterializeResult(
            metadata={"source": "canonical", "landing": str(settings.landing_dir)}
        )
    try:
        report = adapt_source(
            settings.source_mapping, settings.extracts_dir, settings.landing_dir, settings
        )
    except AdapterError as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    context.log.info(report.format())
    for problem in report.problems:
        context.log.warning(str(problem))
    metadata = {
        "source": settings.source_mapping,
        "landing": str(settings.landing_dir),
        "report": MetadataValue.md(markdown_code_block(report.format())),
    }
    if not report.ok:
        raise Failure(
            description="; ".join(report.rejected) or "the source adapter failed",
            metadata=metadata, allow_retries=False,
        )
    return MaterializeResult(metadata=metadata)


RAW_ENTITIES_STEP = f"{RAW_GROUP}__entities"
TARGET_OVERRIDES_KEY = AssetKey([RAW_GROUP, "target_overrides"])


@multi_asset(
    name=RAW_ENTITIES_STEP,
    specs=[
        *(
            AssetSpec(
                raw_asset_key(name),
                owners=list(DATA_TEAM),
                group_name=RAW_GROUP,
                deps=[AssetKey([RAW_GROUP, "canonical_landing"])],
                kinds={"duckdb", "python"},
                description=(
                    f"Raw `{name}` ({entity.description}): every version of every row of "
                    "every loaded landing file, with delivery, file and line. Bad rows go to "
                    "raw.quarantine."
                ),
                skippable=True,
            )
            for name, entity in ENTITIES.items()
        ),
        AssetSpec(
            TARGET_OVERRIDES_KEY,
            owners=list(WITH_SALES_MANAGEMENT),
            group_name=RAW_GROUP,
            deps=[AssetKey(raw_asset_key("users"))],
            kinds={"duckdb", "csv"},
            description=(
                "Targets a sales manager set by hand (the overrides file, "
                "`targets/overrides.csv` by default), validated against the KPI registry and "
                "the current reps; any problem fails the run naming the line."
            ),
            skippable=True,
        ),
    ],
    can_subset=True,
    description=(
        "The raw layer: every new landing file of each selected entity, the entities loaded "
        "side by side (pipelines/ingest/loader.py, load_entities), then the target overrides, "
        "checked against the reps just loaded."
    ),
)
def raw_entities(
    context: AssetExecutionContext, warehouse: DuckDBResource, pipeline: PipelineSettings
) -> Iterator[MaterializeResult]:
    """One asset per contract entity, loaded in one step so that they load side by side (a
    step of the in-process executor runs alone), and the target overrides after them (in the
    same step: a rejected file elsewhere does not keep a problem in the overrides from being
    reported in the same run). What could not be loaded is not materialized, and fails the
    step once the rest has been: a rejected file (bad input, not retried), a problem in the
    overrides, an error of the load itself (the entities finished before it still
    materialize). The overrides wait for a rejected `users` file, as they did for its step."""
    settings = pipeline.settings()
    selected = [
        name for name in ENTITY_NAMES
        if AssetKey(raw_asset_key(name)) in context.selected_asset_keys
    ]
    files: list[LandingFile] = []
    if selected:  # the overrides alone need no landing folder
        try:
            files, notes = scan_landing(settings.landing_dir)
        except LandingError as exc:
            raise Failure(description=str(exc), allow_retries=False) from exc
        for note in notes:
            context.log.warning(note)
    finished: dict[str, EntityLoad] = {}
    problems: list[str] = []
    with warehouse_connection(warehouse) as con:
        ensure_raw_layer(con)
        try:
            load_entities(con, selected, files, settings, run_id=context.run_id,
                          log=context.log.info, loaded=finished.__setitem__)
        except Exception:
            yield from _materialized(context, settings, con, finished, problems)
            for problem in problems:  # the load's own error goes on; these are said here
                context.log.error(problem)
            raise
        yield from _materialized(context, settings, con, finished, problems)
        users = finished.get("users")
        if TARGET_OVERRIDES_KEY in context.selected_asset_keys and not (users and users.rejected):
            try:
                overrides = load_overrides(con, settings.target_overrides_file)
            except TargetOverrideError as exc:
                problems.append(str(exc))
            else:
                context.log.info(
                    f"{len(overrides)} target override(s) from {settings.target_overrides_file}"
                )
                mark_loaded(settings, context.run_id, "target_overrides")
                yield MaterializeResult(
                    asset_key=TARGET_OVERRIDES_KEY,
                    metadata={"overrides": len(overrides),
                              "file": str(settings.target_overrides_file)},
                )
    if problems:
        raise Failure(
            description="; ".join(problems),
            allow_retries=False,  # bad input stays bad: no point retrying
        )


def _materialized(
    context: AssetExecutionContext,
    settings: Settings,
    con: DuckDBPyConnection,
    finished: dict[str, EntityLoad],
    problems: list[str],
) -> Iterator[MaterializeResult]:
    """The entities loaded whole, in the contract's order; a rejected file is added to
    `problems` instead."""
    for name in ENTITY_NAMES:
        result = finished.get(name)
        if result is None:
            continue
        if result.rejected:
            problems.append(
                "rejected: " + "; ".join(f"{o.file.label}: {o.message}" for o in result.rejected)
            )
            continue
        mark_loaded(settings, context.run_id, name)
        yield MaterializeResult(
            asset_key=raw_asset_key(name), metadata=_load_metadata(result, _row_count(con, name))
        )


def _row_count(con: DuckDBPyConnection, entity_name: str) -> int:
    return int(con.execute(f"select count(*) from raw.{entity_name}").fetchone()[0])  # type: ignore[index]


def _load_metadata(result: EntityLoad, total: int) -> dict[str, object]:
    return {
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "files_loaded": result.count("loaded"),
        "files_unchanged": result.count("unchanged"),
        "files_duplicate": result.count("duplicate"),
        "files_rejected": len(result.rejected),
        "raw_rows_total": total,
        # file names and messages are data: one code block, shown as text
        "files": MetadataValue.md(markdown_code_block(
            "\n".join(f"- {o.describe()}" for o in result.outcomes if o.status != "unchanged")
            or "no new files"
        )),
    }


raw_assets: list[AssetsDefinition] = [canonical_landing, raw_entities]
