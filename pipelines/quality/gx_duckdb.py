"""Great Expectations (GX Core 1.x) suites validated as SQL inside a DuckDB file.

GX 1.24 has no DuckDB support of its own, and through SQLAlchemy + duckdb_engine every metric
comes back empty: `SqlAlchemyExecutionEngine.get_connection()` closes the SQLAlchemy connection,
which rolls back its transaction, before the caller fetches the rows, and DuckDB drops a
connection's pending result on rollback. GX keeps the connection open only for the dialects in
`_PERSISTED_CONNECTION_DIALECTS` (sqlite, mssql, bigquery, databricks). A StaticPool does not
help: the rollback happens all the same. Each expectation then reports an exception and an
empty result instead of a value.

The fix is built the way GX builds its own dialect-specific data sources (`PostgresDatasource`
is a `SQLDatasource` subclass with its own `type`): `DuckDBDatasource` uses
`DuckDBExecutionEngine`, which keeps one connection open, as GX does for sqlite. Nothing in GX
is patched. Data is read only through query assets (duckdb_engine's own reflection needs
`pg_catalog.pg_collation`, which DuckDB lacks: `TableColumns` answers GX's instead).
The file is opened read-only; GX fills a temp table from each query once and computes every
metric from it (a DuckDB temp table lives in the connection's memory, outside the file; see
`TableColumns` for the reflection that makes that work).

Layout under `project_root`: GX's own files in `gx/` (its `uncommitted/` holds results and Data
Docs and is git-ignored), suites in `expectations/<suite>.json`. The committed config says
`duckdb:///${SALES_KPI_GX_DUCKDB}`, and `open_gx_context` supplies the value in memory (GX's
`runtime_environment`), so the same config serves any warehouse file.

Data Docs show data as text. GX 1.24 writes the values of a result — the offending rows' keys
(`unexpected_index_list`: a rep's name, contact, deal and team ids from the CRM), the
unexpected values — into its pages' table cells as they are, unescaped (its templates are
`.j2` files, outside its Jinja autoescape), and an exception's traceback likewise. Every site's
validation pages are therefore drawn by `DataAsTextValidationResultsPageRenderer` (GX's own
renderer, named in the site's config: `site_section_builders.validations.renderer`), which
hands GX's renderer a copy of the result with those values as escaped text
(`pipelines.safe_text.html_text`). The stored results, which auditors and tools read as
JSON, keep the values as they are.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import great_expectations as gx
import sqlalchemy as sa
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from great_expectations.datasource.fluent.sql_datasource import QueryAsset, SQLDatasource
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from great_expectations.render.renderer import ValidationResultsPageRenderer
from packaging.version import Version

from pipelines.safe_text import html_text, terminal_safe

DATASOURCE_NAME = "warehouse"
DATABASE_VARIABLE = "SALES_KPI_GX_DUCKDB"
# Validation results and Data Docs belong to a warehouse, not to the code: both live under
# `<warehouse>/quality/`, given to GX at run time like the database path.
RESULTS_VARIABLE = "SALES_KPI_GX_RESULTS"
RESULTS_DIRECTORY = f"${{{RESULTS_VARIABLE}}}/validations/"
DATA_DOCS_DIRECTORY = f"${{{RESULTS_VARIABLE}}}/data_docs/"
BATCH_DEFINITION_NAME = "all_rows"
# Relative to the GX context root (<project_root>/gx), so: <project_root>/suites/.
EXPECTATIONS_DIRECTORY = "../suites/"
# GX returns no `result` at all for these by design. Their only metric, `table.columns`, comes
# from result metadata, so it is right even without the fix, and its failure shows as an exception.
RESULTLESS_EXPECTATIONS = frozenset({"expect_column_to_exist"})

# The GX versions this workaround was written for and verified against.
GX_VERSIONS = (Version("1.24"), Version("1.25"))


# How every Data Docs site draws a validation result's page (GX instantiates it by name).
VALIDATIONS_RENDERER = {
    "module_name": __name__, "class_name": "DataAsTextValidationResultsPageRenderer",
}


class NotEvaluatedError(AssertionError):
    """A validation result that does not show that its expectations were really evaluated."""


def check_gx_version() -> None:
    """Refuse GX versions the workaround was not verified against.

    `DuckDBExecutionEngine` relies on GX internals: that every metric query goes through
    `get_connection()` and that rows are fetched after it returns, and that GX reflects a
    batch's table only by `get_inspector()` (its `get_columns`, `get_pk_constraint` and
    `dialect`: `TableColumns`). Before widening the range, run
    tests/test_gx_duckdb.py. Its `test_plain_sql_datasource_still_does_not_evaluate` shows
    whether the new GX needs the workaround at all.
    """
    low, high = GX_VERSIONS
    found = Version(gx.__version__)
    if not low <= found < high:
        raise RuntimeError(
            f"pipelines.quality.gx_duckdb was verified with great_expectations >={low},<{high}, "
            f"found {found}: run tests/test_gx_duckdb.py, then update GX_VERSIONS"
        )


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """A SqlAlchemyExecutionEngine that runs its metric queries on one open DuckDB connection.

    GX fetches rows only after leaving `get_connection()`. The base class closes (and so rolls
    back) the connection there, and DuckDB then discards the result. Keeping one connection
    open, as GX does for sqlite, keeps the results. `close()` releases it.
    """

    @contextmanager
    def get_connection(self) -> Iterator[sa.Connection]:
        if self._connection is None or self._connection.closed:
            self._connection = self.engine.connect()
        try:
            yield self._connection
        except Exception:
            # DuckDB aborts the transaction on any error. Without a rollback, every later metric
            # of the run would fail with "Current transaction is aborted".
            self._connection.rollback()
            raise

    def get_inspector(self) -> TableColumns:  # type: ignore[override]
        """What GX reflects of a batch's table, read on the one open connection: the temp
        table GX makes of a query is that connection's alone (see `TableColumns`)."""
        return TableColumns(self)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


class TableColumns:
    """The reflection GX asks of a batch's table (its columns, its primary key), answered
    on the execution engine's one open connection.

    GX evaluates a query asset on a temp table it fills once from the query
    (`create_temp_table`), so that each metric scans those rows instead of running the query
    again: eleven times for kpi_sanity, 1.5 s of the audit at a large org's size. A DuckDB temp
    table exists for its own connection only; SQLAlchemy's inspector reads another pooled
    connection, and duckdb_engine's reflection (PostgreSQL's) needs
    `pg_catalog.pg_collation`, which DuckDB lacks, so GX's fallback then selects from the temp
    table on yet another connection, which does not see it. The columns are named as that
    fallback names them (names, no types); no primary key, as none is reflected either.
    """

    def __init__(self, engine: DuckDBExecutionEngine) -> None:
        self._engine = engine
        self.dialect = engine.engine.dialect

    def get_columns(self, table_name: str, schema: str | None = None, **_: Any) -> list[dict]:
        table = sa.table(str(table_name), schema=schema)
        with self._engine.get_connection() as connection:
            names = connection.execute(sa.select(sa.text("*")).select_from(table).limit(0)).keys()
        return [{"name": name} for name in names]

    def get_pk_constraint(self, table_name: str, schema: str | None = None, **_: Any) -> dict:
        return {"constrained_columns": [], "name": None}


class DuckDBDatasource(SQLDatasource):
    """A GX SQL data source for a DuckDB file, evaluated by `DuckDBExecutionEngine`.

    Defining the class registers its `type` with GX (as for `PostgresDatasource`), and GX
    refuses to load a config holding that type until this module is imported.
    `open_gx_context` takes care of that.
    """

    type: Literal["duckdb_sqlalchemy"] = "duckdb_sqlalchemy"  # type: ignore[assignment]

    @property
    def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
        return DuckDBExecutionEngine


class DataAsTextValidationResultsPageRenderer(ValidationResultsPageRenderer):
    """GX's validation page, drawn from a copy of the result whose data values are text.

    GX writes the strings of an expectation's `result` (offending keys, unexpected values,
    their counts) into table cells as HTML, and an exception's traceback as a template of its
    own: those are escaped here (`html_text`: markup, and control characters shown as
    `\\x1b`). An exception's message is a template parameter, which GX escapes itself: its
    control characters only are shown escaped (escaping it here too would show `&lt;`).
    Numbers, dates, booleans and nulls are kept, so GX formats them as before.
    """

    def render(
        self, validation_results: ExpectationSuiteValidationResult, suite_parameters: Any = None,
    ) -> Any:
        return super().render(data_as_text(validation_results), suite_parameters)


def data_as_text(result: ExpectationSuiteValidationResult) -> ExpectationSuiteValidationResult:
    """A copy of `result` for GX's page renderer: each expectation's `result` values and
    exception texts as `DataAsTextValidationResultsPageRenderer` says."""
    shown = copy.deepcopy(result)
    for item in shown.results:
        item.result = _values_as_text(item.result)
        item.exception_info = _exception_as_text(item.exception_info)
    return shown


_KEPT_TYPES = (bool, int, float, Decimal, date, time, timedelta)


def _values_as_text(value: Any) -> Any:
    """`value` with every string in it (and anything that is not a number, date, boolean or
    null) as `html_text`; the keys of a mapping (column and field names) kept."""
    if isinstance(value, str):
        return html_text(value)
    if isinstance(value, Mapping):
        return {key: _values_as_text(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_values_as_text(item) for item in value]
    if value is None or isinstance(value, _KEPT_TYPES):
        return value
    return html_text(value)


def _exception_as_text(info: Any) -> Any:
    """GX's `exception_info` (either shape: one exception, or one per metric) with the
    traceback escaped and the message's control characters shown."""
    if not isinstance(info, Mapping):
        return info
    if "raised_exception" not in info:
        return {key: _exception_as_text(item) for key, item in info.items()}
    shown = dict(info)
    if isinstance(shown.get("exception_traceback"), str):
        shown["exception_traceback"] = html_text(shown["exception_traceback"])
    if isinstance(shown.get("exception_message"), str):
        shown["exception_message"] = terminal_safe(shown["exception_message"])
    return shown


def open_gx_context(
    project_root: Path, database: Path, results_dir: Path | None = None,
    variables: Mapping[str, str] | None = None,
) -> AbstractDataContext:
    """Open the file-based GX project under `project_root`, creating it on first use.

    The data source `warehouse` reads `database` read-only; validation results and Data Docs
    go to `results_dir` (default: `quality/` next to the database). Both paths are given to GX
    only in memory, so the config files do not change when a run uses another warehouse; so
    are `variables`, which a data source's config names as `${NAME}` (a connection URL with a
    password stays out of GX's files).
    """
    check_gx_version()
    project_root = Path(project_root).resolve()
    database = Path(database).resolve()
    if not database.is_file():
        raise FileNotFoundError(f"DuckDB database not found: {database}")
    results_dir = Path(results_dir or database.parent / "quality").resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    runtime = {**(variables or {}), DATABASE_VARIABLE: database.as_posix(),
               RESULTS_VARIABLE: results_dir.as_posix()}
    context = gx.get_context(
        mode="file", project_root_dir=str(project_root), runtime_environment=runtime
    )
    stores = context.variables.stores or {}
    backend = stores["expectations_store"]["store_backend"]
    if backend.get("base_directory") != EXPECTATIONS_DIRECTORY:
        _configure_new_project(context, stores)
        context = gx.get_context(
            mode="file", project_root_dir=str(project_root), runtime_environment=runtime
        )
    if DATASOURCE_NAME not in context.data_sources.all():
        context.data_sources.add_duckdb_sqlalchemy(
            name=DATASOURCE_NAME,
            connection_string=f"duckdb:///${{{DATABASE_VARIABLE}}}",
            create_temp_table=True,
            kwargs={"connect_args": {"read_only": True}},
        )
    return context


def _configure_new_project(context: AbstractDataContext, stores: dict[str, Any]) -> None:
    """Point a freshly created project at `expectations/`, without progress bars or analytics."""
    backend = stores["expectations_store"]["store_backend"]
    backend["base_directory"] = EXPECTATIONS_DIRECTORY
    backend["suppress_store_backend_id"] = True  # no stray .ge_store_backend_id among suites
    stores["validation_results_store"]["store_backend"]["base_directory"] = RESULTS_DIRECTORY
    context.variables.stores = stores
    sites = context.variables.data_docs_sites or {}
    for site in sites.values():
        site["store_backend"]["base_directory"] = DATA_DOCS_DIRECTORY
        site["show_how_to_buttons"] = False
        # its validation pages drawn with data as text (the committed config says so too)
        site["site_section_builders"] = {"validations": {"renderer": dict(VALIDATIONS_RENDERER)}}
    context.variables.data_docs_sites = sites
    context.variables.progress_bars = {"globally": False}
    context.config.analytics_enabled = False
    context.variables.save()
    scaffolded = Path(str(context.root_directory)) / "expectations"
    if scaffolded.is_dir() and {p.name for p in scaffolded.iterdir()} <= {".ge_store_backend_id"}:
        shutil.rmtree(scaffolded)


def validate_query(
    context: AbstractDataContext,
    suite_name: str,
    query: str,
    *,
    name: str | None = None,
    result_format: str | Mapping[str, Any] = "SUMMARY",
    require_evaluated: bool = True,
    expectation_parameters: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> ExpectationSuiteValidationResult:
    """Validate the rows of `query` (DuckDB SQL; see `as_select`) against suite `suite_name`.

    The query becomes a GX query asset and validation definition called `name` (default: the
    suite's name). They are rewritten only when the query changes. GX runs the query once,
    into a temp table of the engine's connection (in DuckDB's memory, spilling within its
    budget), and computes every metric from that table; so the query's columns need distinct
    names (a temp table renames a repeated one, `id` and `id_1`). The result is stored for Data
    Docs, and it is checked by `assert_evaluated` unless `require_evaluated` is false. A query
    that fails raises `NotEvaluatedError` with DuckDB's message (there is no result to keep).
    """
    name = name or suite_name
    datasource = context.data_sources.get(DATASOURCE_NAME)
    if not isinstance(datasource, DuckDBDatasource):
        raise TypeError(f"data source {DATASOURCE_NAME!r} is not a DuckDBDatasource")
    batch_definition = query_batch_definition(datasource, name, query)
    engine = datasource.get_execution_engine()
    try:
        with engine.get_connection() as connection:  # fail fast, with DuckDB's own message
            connection.execute(sa.text("select 1")).fetchall()
        try:
            return run_validation(
                context, name, suite_name, batch_definition, result_format=result_format,
                require_evaluated=require_evaluated,
                expectation_parameters=expectation_parameters, run_name=run_name,
            )
        except sa.exc.DBAPIError as exc:  # the query itself, run into GX's temp table
            reason = str(exc.orig).strip().splitlines() or ["unknown error"]
            raise NotEvaluatedError(
                f"GX validation not evaluated: the query of {name} failed: {reason[0][:300]}"
            ) from exc
    finally:
        engine.close()


def run_validation(
    context: AbstractDataContext,
    name: str,
    suite_name: str,
    batch_definition: BatchDefinition,
    *,
    batch_parameters: Mapping[str, Any] | None = None,
    result_format: str | Mapping[str, Any] = "SUMMARY",
    require_evaluated: bool = True,
    expectation_parameters: Mapping[str, Any] | None = None,
    run_name: str | None = None,
) -> ExpectationSuiteValidationResult:
    """Validate `batch_definition` (given `batch_parameters`) against suite `suite_name`
    through the validation definition `name`, whichever data source the batch comes from: the
    result stored for Data Docs under the run's name, and checked by `assert_evaluated` unless
    `require_evaluated` is false."""
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(
            name=name, data=batch_definition, suite=context.suites.get(suite_name)
        )
    )
    result = definition.run(
        batch_parameters=dict(batch_parameters) if batch_parameters else None,
        result_format=result_format,
        expectation_parameters=dict(expectation_parameters or {}),
        run_id=RunIdentifier(run_name=run_name) if run_name else None,
    )
    if require_evaluated:
        assert_evaluated(result)
    return result


def query_rows(context: AbstractDataContext, query: str) -> list[tuple[Any, ...]]:
    """Rows of a plain DuckDB query through the data source's own engine (the file is opened
    by one configuration only; DuckDB refuses a second, differently configured one)."""
    datasource = context.data_sources.get(DATASOURCE_NAME)
    engine = datasource.get_execution_engine()
    try:
        with engine.get_connection() as connection:
            return [tuple(row) for row in connection.execute(sa.text(query)).fetchall()]
    finally:
        engine.close()


def as_select(query: str) -> str:
    """`query` as GX accepts it: starting with `SELECT` and a blank, without a final `;`.

    GX refuses query assets that start otherwise (a comment, `WITH`, DuckDB's `FROM t`), so those
    are wrapped in `select * from (...)`. The newline before `)` keeps a trailing comment closed.
    """
    text = query.strip().rstrip(";").rstrip()
    if text[:6].upper() == "SELECT" and text[6:7].isspace():
        return text
    return f"select * from (\n{text}\n) as validated_query"


def query_batch_definition(datasource: SQLDatasource, name: str, query: str) -> BatchDefinition:
    """The whole-table batch definition of the query asset `name` selecting `query` (as
    `as_select` has it), of any SQL data source: asset and definition made, or replaced,
    only when missing or changed."""
    asset = _query_asset(datasource, name, as_select(query))
    try:
        return asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except KeyError:
        return asset.add_batch_definition_whole_table(BATCH_DEFINITION_NAME)


def _query_asset(datasource: SQLDatasource, name: str, query: str) -> QueryAsset:
    """The query asset `name` selecting `query`, replaced only when the query changed."""
    if name in datasource.get_asset_names():
        asset = datasource.get_asset(name)
        if isinstance(asset, QueryAsset) and asset.query == query:
            return asset
        datasource.delete_asset(name)
    return datasource.add_query_asset(name=name, query=query)


def assert_evaluated(result: ExpectationSuiteValidationResult) -> None:
    """Raise `NotEvaluatedError` unless every expectation in `result` was really evaluated.

    GX reports a metric it could not compute as an exception next to an empty `result`, and it
    reports an empty suite as a success. Neither may pass as a check. So this requires at least
    one expectation, no exceptions, and an observed value or element count on each expectation.
    The result format must be BASIC or richer; BOOLEAN_ONLY drops those values.
    """
    problems: list[str] = []
    if not result.results:
        problems.append("the suite has no expectations")
    for item in result.results:
        config = item.expectation_config
        kind = config.type if config else "?"
        column = config.kwargs.get("column") if config else None
        label = f"{kind}({column})" if column else kind
        error = _exception_message(item.exception_info or {})
        if error:
            problems.append(f"{label} raised: {error}")
        elif kind not in RESULTLESS_EXPECTATIONS and not (
            {"observed_value", "element_count"} & set(item.result or {})
        ):
            problems.append(f"{label}: no observed value or element count")
    if problems:
        raise NotEvaluatedError("GX validation not evaluated: " + "; ".join(problems))


def _exception_message(info: Mapping[str, Any]) -> str | None:
    """First line of the first exception in GX's `exception_info`, in either of its shapes."""
    messages = [info] if "raised_exception" in info else list(info.values())
    for entry in messages:
        if isinstance(entry, Mapping) and entry.get("raised_exception"):
            text = str(entry.get("exception_message") or "unknown error").strip()
            return text.splitlines()[0][:300] if text else "unknown error"
    return None
