"""dbt models as Dagster assets (downstream of the raw assets through dbt sources); every
dbt test becomes an asset check on the model it tests."""

import functools
import json
import re
import shutil
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    Failure,
    MetadataValue,
    Output,
)
from dagster_dbt import (
    DagsterDbtCliRuntimeError,
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtProject,
    dbt_assets,
)

from pipelines.assets.owners import DATA_TEAM, WITH_SALES_MANAGEMENT
from pipelines.assets.warehouse_lock import hold_warehouse
from pipelines.dbt_parse_ahead import dbt_runs_dir
from pipelines.dbt_project import (
    dbt_environment_values,
    dbt_vars,
    environment_set,
    keep_partial_parse,
    prepared_dbt_project,
    reuse_partial_parse,
)
from pipelines.no_op import forget_build, mark_built
from pipelines.quality.run_checks import import_audit_ahead
from pipelines.resources import DbtBuildResource, PipelineSettings
from pipelines.settings import Settings
from pipelines.spark_build import (
    SparkBuildError,
    built_nodes,
    read_manifest,
    reset_spark_build,
    spark_build_vars,
    spark_for_logs,
    spark_target,
    write_build_views,
)
from pipelines.sql_text import quote_ident, sql_literal

dbt_project = prepared_dbt_project()




class LayeredTranslator(DagsterDbtTranslator):
    """Groups assets by dbt layer (staging, intermediate, marts; seeds as `definitions`) and
    names their owners."""

    def get_asset_check_spec(
        self, asset_spec: AssetSpec, manifest: Mapping[str, Any], unique_id: str,
        project: DbtProject | None,
    ) -> AssetCheckSpec | None:
        """dbt's data tests as checks with a sentence for a description (dbt gives none; the
        check's name alone repeats the model and column in one long identifier)."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id, {})
        if spec is None or node.get("description"):
            return spec
        return spec._replace(description=describe_data_test(node))

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str]:
        if dbt_resource_props["resource_type"] == "seed" or self.get_group_name(
            dbt_resource_props
        ) == "marts":
            return list(WITH_SALES_MANAGEMENT)
        return list(DATA_TEAM)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "definitions"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


@contextmanager
def dbt_environment(settings: Settings) -> Iterator[None]:
    """The environment the dbt profile reads (dbt_environment_values), for one invocation."""
    with environment_set(dbt_environment_values(settings)):
        yield


DBT_RUNS_KEPT = 3


def _prune_dbt_runs(folder: Path, keep: int) -> None:
    """Keep the artifacts (manifest, run results, compiled SQL) of the last few builds."""
    if not folder.is_dir():
        return
    # a run's artifacts are in a folder named after it; a parse ahead's scratch folder
    # (`.parse-ahead-*`) is not a run's (pipelines/dbt_parse_ahead.py cleans those)
    runs = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.stat().st_mtime)
    for old in runs[: max(0, len(runs) - keep + 1)]:
        shutil.rmtree(old, ignore_errors=True)


def describe_data_test(node: Mapping[str, Any]) -> str:
    """A data test in words: what it holds, of which column of which model (dbt gives a test
    no description, and its name repeats the model and arguments in one long identifier)."""
    metadata = node.get("test_metadata") or {}
    kwargs = metadata.get("kwargs") or {}
    column = kwargs.get("column_name") or node.get("column_name")
    arguments = kwargs.get("arguments") or kwargs
    name = metadata.get("name", "")
    if name == "table_rules":
        return describe_table_rules(arguments)
    rule = {
        "not_null": "is never empty",
        "unique": "is unique",
        "accepted_values": "only takes the values "
        + ", ".join(str(v) for v in arguments.get("values", [])),
        "relationships": f"refers to an existing {arguments.get('field', 'row')}",
    }.get(name)
    if rule is None:
        return f"Singular test {node.get('name', '')}: its query returns no row."
    subject = f"`{column}`" if column else "The table"
    return f"{subject} {rule} (dbt {name})."


def describe_table_rules(arguments: Mapping[str, Any]) -> str:
    """The rules of one `table_rules` test (macros/test_table_rules.sql), one clause each:
    "`a`, `b` never empty; `stage` only takes x, y; one row per `id`; one row per (`a`, `b`)"."""
    clauses = []
    not_null = arguments.get("not_null") or []
    if not_null:
        clauses.append(", ".join(f"`{c}`" for c in not_null) + " never empty")
    for column, values in (arguments.get("accepted_values") or {}).items():
        clauses.append(f"`{column}` only takes " + ", ".join(str(v) for v in values))
    for key in arguments.get("unique") or []:
        if isinstance(key, str):
            clauses.append(f"one row per `{key}`")
        else:
            clauses.append("one row per (" + ", ".join(f"`{c}`" for c in key) + ")")
    return "; ".join(clauses or ["no rule"]) + " (one query)."


def _with_row_counts(events: Iterator[Any], settings: Settings) -> Iterator[Any]:
    """The build's events, each model's output carrying its row count (`dagster/row_count`).

    DuckDB lets no other process open the file while dbt writes it, so the counts are taken
    in one query once dbt has finished (dagster-dbt's own fetch_row_counts would query while
    dbt still holds the file); the model outputs are held back until then. If the build
    fails, what was built is still reported, without counts."""
    outputs: list[Output] = []
    try:
        for event in events:
            if isinstance(event, Output) and str(event.metadata.get("unique_id", "")).startswith(
                "model."
            ):
                outputs.append(event)
            else:
                yield event
    except BaseException:
        yield from outputs
        raise
    counts = _row_counts(settings, [str(o.metadata["unique_id"]) for o in outputs])
    for output in outputs:
        count = counts.get(str(output.metadata["unique_id"]))
        yield output if count is None else output.with_metadata(
            {**output.metadata, "dagster/row_count": MetadataValue.int(count)}
        )


# dagster-dbt's error (DbtCliInvocation.get_error): the whole dbt command line, dbt's exit
# code after it, then the errors dbt logged (the failing models and tests), if any
_DBT_EXIT_CODE = re.compile(
    r"`\s+failed with exit code `(-?[0-9]+)`\. Check the stdout in the Dagster compute logs"
)
_DBT_ERRORS = "Errors parsed from dbt logs:"
_DBT_PROGRESS = re.compile(r"[0-9]+ of [0-9]+ ")
DBT_ERRORS_SHOWN = 3


def dbt_failure_reason(error: DagsterDbtCliRuntimeError) -> str:
    """The failed build's reason as an operator reads it on one line: how dbt ended (a signal
    by its name) and the first errors dbt logged — not dagster-dbt's echo of the command line,
    a guard's path and every var, which filled the console's one line (the whole error is the
    failure's cause, in the run's log)."""
    text = str(error)
    # the first: dbt's logged errors after it may quote the data (a value that failed a cast)
    found = _DBT_EXIT_CODE.search(text)
    code = int(found[1]) if found else None
    if code is None:
        ended = "failed"
    elif code < 0:
        try:
            ended = f"was ended by {signal.Signals(-code).name}"
        except ValueError:  # a signal Python has no name for (a real-time one)
            ended = f"was ended by signal {-code}"
    else:
        ended = f"failed (exit code {code})"
    # each error on one line; dbt's progress lines ("1 of 7 ERROR creating …") left out
    errors = [" ".join(part.split()) for part in text.partition(_DBT_ERRORS)[2].split("\n\n")
              if part.strip() and not _DBT_PROGRESS.match(part.strip())]
    if not errors:
        return f"dbt build {ended} (dbt's output is in the run's log)"
    more = len(errors) - DBT_ERRORS_SHOWN
    return (f"dbt build {ended}: {' | '.join(errors[:DBT_ERRORS_SHOWN])}"
            + (f" (and {more} more in the run's log)" if more > 0 else ""))


class IncompleteBuild(RuntimeError):
    """dbt ended well without building what it was asked to."""


def require_built(
    target: Path, whole_project: Callable[[], Mapping[str, Any]] | None
) -> set[str]:
    """The models and seeds dbt built in `target` (its run results). A dbt that ended with
    exit 0 without them — no run results at all, or, asked for the whole project
    (`whole_project` reads the build's manifest), some model or seed missing from them — did
    not build: the step fails rather than succeed with every later step skipped, the run
    reported a success and the empty build recorded as complete (seen: a dbt ended by a run's
    stop whose wrapper exited 0)."""
    results = target / "run_results.json"
    if not results.exists():
        raise IncompleteBuild(
            f"dbt ended without writing its run results ({results}): it built nothing"
        )
    built = built_nodes(target)
    if whole_project is not None:
        expected = {unique_id for unique_id, node in whole_project()["nodes"].items()
                    if node["resource_type"] in ("model", "seed")}
        missing = sorted(expected - built)
        if missing:
            raise IncompleteBuild(
                f"dbt ended without building {len(missing)} of the project's {len(expected)} "
                f"models and seeds (the first: {missing[0]})"
            )
    return built


def _then(events: Iterator[Any], finish: Callable[[], object]) -> Iterator[Any]:
    """`events`, then `finish()` once they are exhausted (not when they fail)."""
    yield from events
    finish()


def _row_counts(settings: Settings, unique_ids: list[str]) -> dict[str, int]:
    nodes = json.loads(dbt_project.manifest_path.read_text(encoding="utf-8"))["nodes"]
    relations = [
        (uid, nodes[uid]["schema"], nodes[uid].get("alias") or nodes[uid]["name"])
        for uid in unique_ids if uid in nodes
    ]
    if not relations:
        return {}
    query = " union all ".join(
        f"select {sql_literal(uid)} as unique_id, count(*) as n "
        f"from {quote_ident(schema)}.{quote_ident(table)}"
        for uid, schema, table in relations
    )
    with duckdb.connect(str(settings.build_database), read_only=True) as con:
        return {uid: int(n) for uid, n in con.execute(query).fetchall()}


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=LayeredTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
)
def sales_kpi_dbt_models(
    context: AssetExecutionContext, dbt: DbtBuildResource, pipeline: PipelineSettings
) -> Iterator[Any]:
    """`dbt build` with the run's settings as vars, against the run's warehouse file.

    Unit tests pin the rules at the definitions' defaults with hand-made rows; they belong to
    the project's test suite (tests/test_dbt_unit_tests.py), not to a nightly run whose
    settings may differ from the defaults."""
    settings = pipeline.settings()
    if settings.engine == "spark" and context.is_subset:
        # every Spark build starts from an empty metastore (reset_spark_build): a few models
        # alone would find none of the tables they read, and the catalog's published tables
        # would be defined anew from a build that has no marts
        raise Failure(
            description="a Spark build is the whole dbt project: materialize all of the dbt "
            "assets (or run the nightly job), not a selection of them",
            allow_retries=False,
        )
    hold_warehouse(settings.warehouse_dir)  # a materialization may start here
    forget_build(settings)  # the build changes from here on
    with dbt_environment(settings):
        variables = dbt_vars(settings)
        args = ["build", "--exclude", "test_type:unit"]
        if settings.engine == "spark":
            # the raw layer as Parquet, registered by the build's own Spark session
            reset_spark_build(settings)
            manifest = json.loads(dbt_project.manifest_path.read_text(encoding="utf-8"))
            # (after its engine's time-zone rules are seen to be DuckDB's), and the published
            # marts defined as tables of its catalog
            variables |= spark_build_vars(settings, manifest)
            args += ["--target", spark_target(settings)]
            context.log.info(f"dbt build on Spark ({spark_for_logs(settings)}); "
                             "Spark's own log: "
                             f"{settings.spark_dir / 'logs' / 'spark.log'}")
        args += ["--vars", json.dumps(variables)]
        try:
            # the run's dbt artifacts under the warehouse, not in the project's target/
            target = dbt_runs_dir(settings) / context.run_id
            dbt.wait_for_parse_ahead()  # a fresh warehouse's parse, started with the run
            _prune_dbt_runs(target.parent, keep=DBT_RUNS_KEPT)
            reuse_partial_parse(target.parent, target)
            built: set[str] = set()
            # the build's manifest, read once when the build has ended (a few MB of JSON)
            manifest = functools.cache(lambda: read_manifest(target))
            with environment_set(dbt.build_environment()):  # the dbt started ahead, if any
                invocation = dbt.cli(args, context=context, target_path=target)
            # the checks' import of Great Expectations, while dbt starts and builds
            audit_import = import_audit_ahead(settings)
            try:
                events = _then(
                    invocation.stream(),
                    lambda: built.update(
                        require_built(target, None if context.is_subset else manifest)
                    ),
                )
                if settings.engine == "spark":
                    # the publisher (and the audit's staged tables) read the Spark build
                    # through DuckDB views
                    events = _then(events, lambda: write_build_views(
                        settings, manifest(), built=built
                    ))
                yield from _with_row_counts(events, settings)
            finally:
                audit_import.wait()
            keep_partial_parse(target.parent, target)
            if (ahead := dbt.build_ran_ahead()) is not None:
                context.log.info(f"dbt build ran in the dbt started during the load (pid {ahead})")
            # the whole project built over this run's load: a run stopped after this point
            # is resumed from here (pipelines/no_op.py)
            if not context.is_subset and mark_built(settings, context.run_id):
                context.log.info(f"complete build recorded for run {context.run_id[:8]}")
        except DagsterDbtCliRuntimeError as exc:
            # A failing model or test fails the same way on a retry: report, don't retry.
            raise Failure(description=dbt_failure_reason(exc), allow_retries=False) from exc
        except (SparkBuildError, IncompleteBuild) as exc:  # so would these
            raise Failure(description=str(exc), allow_retries=False) from exc
