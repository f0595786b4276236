"""GX suites validated as SQL inside DuckDB: real values, real failures, and the GX bug pinned.

Every test builds its own small DuckDB file under `tmp_path`, with the table in schema `marts`
(not `main`), and its own GX project. Suites are written as JSON files, as they are committed.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
import pytest
import sqlalchemy as sa
from great_expectations.execution_engine import PandasExecutionEngine, SqlAlchemyExecutionEngine

from pipelines.quality.gx_duckdb import (
    DATASOURCE_NAME,
    DuckDBExecutionEngine,
    NotEvaluatedError,
    assert_evaluated,
    open_gx_context,
    validate_query,
)

QUERY = "select * from marts.t"
# name is NULL once; amount 250.00 lies outside 0..100.
ROWS = [(1, "Ann", 10.5), (2, "Bob", 20.0), (3, None, 30.0), (4, "Dee", 250.0), (5, "Eve", 0.0)]


def make_warehouse(path: Path, rows: list[tuple[Any, ...]] = ROWS) -> Path:
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.t (id integer, name varchar, amount decimal(10, 2))")
    con.executemany("insert into marts.t values (?, ?, ?)", rows)
    con.close()
    return path


def write_suite(project: Path, name: str, *expectations: tuple[str, dict[str, Any]]) -> None:
    """A suite file as a person writes it; GX adds ids and defaults on first use."""
    folder = project / "suites"
    folder.mkdir(parents=True, exist_ok=True)
    suite = {"name": name, "expectations": [{"type": t, "kwargs": k} for t, k in expectations]}
    (folder / f"{name}.json").write_text(json.dumps(suite, indent=2))


def by_type(result: Any) -> dict[str, Any]:
    return {r.expectation_config.type: r for r in result.results}


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return make_warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path / "project"


def test_passing_suite_passes_with_observed_values(project: Path, warehouse: Path) -> None:
    write_suite(
        project,
        "t_ok",
        ("expect_table_row_count_to_equal", {"value": 5}),
        ("expect_column_values_to_not_be_null", {"column": "id"}),
        ("expect_column_values_to_be_unique", {"column": "id"}),
        ("expect_column_max_to_be_between", {"column": "amount", "min_value": 0}),
        ("expect_column_to_exist", {"column": "name"}),
    )
    context = open_gx_context(project, warehouse)
    result = validate_query(context, "t_ok", QUERY)

    assert result.success
    got = by_type(result)
    assert got["expect_table_row_count_to_equal"].result["observed_value"] == 5
    assert got["expect_column_values_to_not_be_null"].result["element_count"] == 5
    assert got["expect_column_values_to_not_be_null"].result["unexpected_count"] == 0
    assert got["expect_column_values_to_be_unique"].result["unexpected_count"] == 0
    assert got["expect_column_max_to_be_between"].result["observed_value"] == 250
    assert_evaluated(result)

    # Suites are files under suites/, GX's own files under gx/, and the config does not
    # name the warehouse file: a run against another file sees that file's rows.
    assert (project / "suites" / "t_ok.json").is_file()
    config = (project / "gx" / "great_expectations.yml").read_text()
    assert str(warehouse) not in config
    assert "duckdb:///${SALES_KPI_GX_DUCKDB}" in config
    other = make_warehouse(warehouse.with_name("other.duckdb"), ROWS[:2])
    result = validate_query(open_gx_context(project, other), "t_ok", QUERY, require_evaluated=False)
    assert by_type(result)["expect_table_row_count_to_equal"].result["observed_value"] == 2
    assert (project / "gx" / "great_expectations.yml").read_text() == config


def test_failing_expectations_report_unexpected_values(project: Path, warehouse: Path) -> None:
    write_suite(
        project,
        "t_bad",
        ("expect_column_values_to_not_be_null", {"column": "name"}),
        (
            "expect_column_values_to_be_between",
            {"column": "amount", "min_value": 0, "max_value": 100},
        ),
        ("expect_table_row_count_to_be_between", {"min_value": 1}),
    )
    result = validate_query(open_gx_context(project, warehouse), "t_bad", QUERY)

    assert not result.success
    got = by_type(result)
    not_null = got["expect_column_values_to_not_be_null"]
    assert not not_null.success
    assert not_null.result["element_count"] == 5
    assert not_null.result["unexpected_count"] == 1
    assert not_null.result["partial_unexpected_list"] == [None]
    between = got["expect_column_values_to_be_between"]
    assert not between.success
    assert between.result["unexpected_count"] == 1
    assert [float(v) for v in between.result["partial_unexpected_list"]] == [250.0]
    assert got["expect_table_row_count_to_be_between"].success
    assert_evaluated(result)  # failures that were evaluated are not "not evaluated"


def test_plain_sql_datasource_still_does_not_evaluate(warehouse: Path) -> None:
    """Pins the GX bug that `DuckDBExecutionEngine` works around.

    If this test fails, GX evaluates DuckDB through a plain SQL data source now: drop
    DuckDBExecutionEngine/DuckDBDatasource and use `add_sql` directly.
    """
    url = f"duckdb:///{warehouse}"
    # The root cause: rows are fetched after GX has closed (and rolled back) the connection.
    engine = SqlAlchemyExecutionEngine(connection_string=url)
    try:
        rows = engine.execute_query(sa.text("select count(*) from marts.t")).fetchall()
    finally:
        engine.close()
    assert rows == [], "GX now keeps DuckDB query results: the workaround may be obsolete"

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_sql("plain", connection_string=url).add_query_asset(
        "t", query=QUERY
    )
    suite = context.suites.add(
        gx.ExpectationSuite(
            "pin",
            expectations=[
                gx.expectations.ExpectTableRowCountToEqual(value=5),
                gx.expectations.ExpectColumnValuesToNotBeNull(column="id"),
            ],
        )
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name="pin", data=asset.add_batch_definition_whole_table("all"), suite=suite
        )
    )
    result = definition.run()
    assert all(not r.result and r.exception_info for r in result.results), (
        "GX now evaluates DuckDB via a plain SQL data source: the workaround may be obsolete"
    )
    with pytest.raises(NotEvaluatedError, match="raised"):
        assert_evaluated(result)


def test_evaluation_happens_in_duckdb_not_pandas(project: Path, tmp_path: Path) -> None:
    rows = 2_000_000
    database = tmp_path / "big.duckdb"
    con = duckdb.connect(str(database))
    con.execute("create schema marts")
    con.execute(
        f"create table marts.big as select range::bigint as id, (range % 1000)::double as amount,"
        f" 'k' || (range % 7) as k from range({rows})"
    )
    con.close()
    write_suite(
        project,
        "big",
        ("expect_table_row_count_to_equal", {"value": rows}),
        ("expect_column_values_to_be_unique", {"column": "id"}),
        (
            "expect_column_values_to_be_between",
            {"column": "amount", "min_value": 0, "max_value": 998},
        ),
        (
            "expect_column_values_to_be_in_set",
            {"column": "k", "value_set": [f"k{i}" for i in range(7)]},
        ),
    )
    context = open_gx_context(project, database)
    engine = context.data_sources.get(DATASOURCE_NAME).get_execution_engine()
    assert isinstance(engine, DuckDBExecutionEngine)
    assert isinstance(engine, SqlAlchemyExecutionEngine)
    assert not isinstance(engine, PandasExecutionEngine)

    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = validate_query(context, "big", "select * from marts.big", require_evaluated=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started

    assert_evaluated(result)
    got = by_type(result)
    assert got["expect_table_row_count_to_equal"].result["observed_value"] == rows
    assert got["expect_column_values_to_be_unique"].result["unexpected_count"] == 0
    assert got["expect_column_values_to_be_between"].result["unexpected_count"] == rows // 1000
    # Two million rows in pandas take well over 30 MB (the numeric columns alone are 32 MB).
    assert peak < 30 * 2**20, f"validation allocated {peak / 2**20:.0f} MB in Python"
    assert elapsed < 10, f"validation took {elapsed:.1f}s"


def test_a_checks_query_runs_once_however_many_metrics_its_suite_asks(
    project: Path, warehouse: Path
) -> None:
    """GX fills a temp table from the query once and computes every metric from it: a suite
    of four expectations ran the query eleven times before (1.5 s of the audit's 4 at a large
    org's size, kpi_sanity)."""
    write_suite(
        project,
        "t_many",
        ("expect_table_row_count_to_equal", {"value": 5}),
        ("expect_column_values_to_not_be_null", {"column": "name"}),
        ("expect_column_values_to_be_unique", {"column": "id"}),
        ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0}),
    )
    context = open_gx_context(project, warehouse)
    query = "select * from marts.t where 'counted' = 'counted'"
    context.data_sources.get(DATASOURCE_NAME).add_query_asset(name="t_many", query=query)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        result = validate_query(context, "t_many", query, require_evaluated=False)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)

    assert_evaluated(result)
    assert by_type(result)["expect_column_values_to_not_be_null"].result["unexpected_count"] == 1
    assert by_type(result)["expect_column_values_to_be_between"].result["unexpected_count"] == 0
    assert len([s for s in statements if "'counted'" in s]) == 1, statements


def test_an_error_is_reported_and_does_not_abort_later_metrics(
    project: Path, warehouse: Path
) -> None:
    write_suite(
        project,
        "t_err",
        ("expect_column_mean_to_be_between", {"column": "name", "min_value": 0}),  # no mean of text
        ("expect_column_values_to_not_be_null", {"column": "name"}),
    )
    context = open_gx_context(project, warehouse)
    with pytest.raises(NotEvaluatedError, match=r"expect_column_mean_to_be_between\(name\)"):
        validate_query(context, "t_err", QUERY)
    result = validate_query(context, "t_err", QUERY, require_evaluated=False)
    not_null = by_type(result)["expect_column_values_to_not_be_null"]
    assert not_null.result["unexpected_count"] == 1


def test_a_query_that_fails_is_not_evaluated_naming_duckdbs_reason(
    project: Path, warehouse: Path
) -> None:
    """The query runs once, as GX loads the batch: its error is the check's, one line."""
    write_suite(project, "t_bad", ("expect_column_values_to_not_be_null", {"column": "id"}))
    context = open_gx_context(project, warehouse)
    reason = r"query of t_bad failed: .*no_such_table"
    for require_evaluated in (True, False):
        with pytest.raises(NotEvaluatedError, match=reason) as exc:
            validate_query(context, "t_bad", "select * from marts.no_such_table",
                           require_evaluated=require_evaluated)
        assert "\n" not in str(exc.value) and "CREATE TEMPORARY" not in str(exc.value)


def test_an_empty_suite_is_not_a_pass(project: Path, warehouse: Path) -> None:
    write_suite(project, "empty")
    with pytest.raises(NotEvaluatedError, match="no expectations"):
        validate_query(open_gx_context(project, warehouse), "empty", QUERY)


def test_data_docs_show_a_plain_validation_run(project: Path, warehouse: Path) -> None:
    write_suite(project, "t_docs", ("expect_table_row_count_to_equal", {"value": 5}))
    context = open_gx_context(project, warehouse)
    validate_query(context, "t_docs", QUERY)
    sites = context.build_data_docs()
    # results and Data Docs belong to the warehouse: <warehouse dir>/quality/
    site = warehouse.parent / "quality" / "data_docs"
    assert sites["local_site"] == (site / "index.html").as_uri()
    assert "validations/t_docs/" in (site / "index.html").read_text()
    assert list(site.glob("validations/t_docs/**/*.html"))


def test_unverified_gx_version_is_refused(
    project: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gx, "__version__", "1.25.0")
    with pytest.raises(RuntimeError, match="verified with great_expectations"):
        open_gx_context(project, warehouse)


def test_a_query_file_may_start_with_a_comment_or_with(project: Path, warehouse: Path) -> None:
    """GX accepts only queries starting with SELECT; others are wrapped, comments and all."""
    write_suite(project, "t_cte", ("expect_column_values_to_not_be_null", {"column": "n"}))
    query = "-- names\nwith x as (\n    select name as n from marts.t  -- all rows\n)\nfrom x; "
    result = validate_query(open_gx_context(project, warehouse), "t_cte", query)
    assert by_type(result)["expect_column_values_to_not_be_null"].result["unexpected_count"] == 1


def test_failed_expectations_list_their_keys_in_results_and_offline_data_docs(
    project: Path, tmp_path: Path
) -> None:
    """Every expectation type the suites use names its offending rows by key columns
    (`QualityCheck.result_format`), and the Data Docs page shows them, from local files."""
    from pipelines.quality.checks import QualityCheck
    from pipelines.quality.data_docs import make_site_offline, remote_loads

    rows = [(1, "Ann", 10.5), (2, "Bob", 20.0), (2, None, 30.0), (4, "Dee", 250.0)]
    warehouse = make_warehouse(tmp_path / "keys.duckdb", rows)
    write_suite(
        project, "t_keys",
        ("expect_column_values_to_not_be_null", {"column": "name"}),
        ("expect_column_values_to_be_unique", {"column": "id"}),
        ("expect_column_values_to_be_between", {"column": "amount", "max_value": 100}),
        ("expect_column_values_to_be_in_set", {"column": "name", "value_set": ["Ann", "Bob"]}),
        ("expect_column_pair_values_to_be_equal", {"column_A": "id", "column_B": "key"}),
    )
    check = QualityCheck("t_keys", "t", True, "", "t", ("key", "label"), "false")
    query = "select id, name, amount, id as key, 'row ' || id || ' ' || name as label from marts.t"
    context = open_gx_context(project, warehouse)
    result = validate_query(context, "t_keys", query, result_format=check.result_format)
    keys = {
        r.expectation_config.type: {row["key"] for row in r.result["unexpected_index_list"]}
        for r in result.results if not r.success
    }
    assert keys == {
        "expect_column_values_to_not_be_null": {2},
        "expect_column_values_to_be_unique": {2},
        "expect_column_values_to_be_between": {4},
        "expect_column_values_to_be_in_set": {4},  # Dee (a null is not judged)
    }  # the pair holds on every row
    context.build_data_docs()
    site = warehouse.parent / "quality" / "data_docs"
    make_site_offline(site)
    [page] = site.glob("validations/t_keys/**/*.html")
    text = page.read_text(encoding="utf-8")
    assert "row 4 Dee" in text and "row 2 Bob" in text
    assert not remote_loads(text)


def test_the_committed_gx_project_holds_each_checks_query_as_its_sql_file_has_it() -> None:
    """A run stages the committed GX project under its warehouse and validates each check
    through the query asset of the check's name; an asset whose query differs from the check's
    SQL file is deleted and added again, and GX writes its whole config three times for that at
    every run (≈ 0.15 s of each audit, seen after kpi_sanity's SQL changed and the committed
    config did not)."""
    import yaml

    from pipelines.quality.checks import CHECKS, EXPECTATIONS_ROOT
    from pipelines.quality.gx_duckdb import as_select

    config = yaml.safe_load(
        (EXPECTATIONS_ROOT / "gx" / "great_expectations.yml").read_text(encoding="utf-8")
    )
    assets = config["fluent_datasources"][DATASOURCE_NAME]["assets"]
    stale = [c.name for c in CHECKS if assets.get(c.name, {}).get("query") != as_select(c.sql)]
    assert stale == []


# CRM values as a person may type them into a rep's name or an id: markup, a script, an
# event handler, a terminal escape and a right-to-left override.
SCRIPT_NAME = '<script>document.title="XSS"</script>'
IMG_NAME = "<img src=x onerror=\"document.title='XSS'\">Bo\x1b[31m\u202eb"
EVIL_ID = "<svg onload=\"document.title='XSS'\">"


def test_crm_values_in_the_data_docs_are_text_not_markup(tmp_path: Path) -> None:
    """The job's own audit (the committed GX project, two real checks) on a build whose CRM
    values are markup: the stored results keep the values as they are, and the Data Docs pages
    show them as text — no element, attribute or script comes from data, control and bidi
    characters are shown escaped (`\\x1b`, `\\u202e`), and a browser runs no script of theirs."""
    from pipelines.quality.checks import CHECKS
    from pipelines.quality.run_checks import run_quality_checks

    settings = _crm_markup_build(tmp_path)
    checks = tuple(c for c in CHECKS if c.name in ("label_agreement", "lead_stages"))
    outcomes = run_quality_checks(settings, "night-1", checks=checks)
    assert [o.passed for o in outcomes] == [False, False]
    _assert_data_as_text(tmp_path, settings)


def test_pages_written_before_data_was_text_are_drawn_again_once(tmp_path: Path) -> None:
    """A site whose pages were written before (GX drew data as markup) has every kept result's
    page drawn again at the next run, once; later runs leave earlier pages as they are."""
    from pipelines.quality.checks import CHECKS
    from pipelines.quality.data_docs import DATA_AS_TEXT_MARK
    from pipelines.quality.run_checks import run_quality_checks

    settings = _crm_markup_build(tmp_path)
    checks = tuple(c for c in CHECKS if c.name in ("label_agreement", "lead_stages"))
    run_quality_checks(settings, "night-1", checks=checks)
    docs = settings.quality_dir / "data_docs"
    # as the code before left it: data as markup in the page, no mark
    old = next(docs.glob("validations/label_agreement/night-1/*/*.html"))
    page = old.read_text(encoding="utf-8")
    old.write_text(page.replace("&lt;svg onload", "<svg onload", 1), encoding="utf-8")
    (docs / DATA_AS_TEXT_MARK).unlink()
    run_quality_checks(settings, "night-2", checks=checks[:1])
    assert (docs / DATA_AS_TEXT_MARK).is_file()
    assert "<svg onload" not in old.read_text(encoding="utf-8")  # drawn again
    _assert_data_as_text(tmp_path, settings)
    before = old.stat().st_mtime_ns
    run_quality_checks(settings, "night-3", checks=checks[:1])
    assert old.stat().st_mtime_ns == before


def _crm_markup_build(tmp_path: Path) -> Any:
    """A build database holding what the label_agreement and lead_stages checks read, with
    CRM values that are markup."""
    from pipelines.settings import Settings

    settings = Settings(extracts_dir=tmp_path, warehouse_dir=tmp_path / "warehouse")
    settings.build_database.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.build_database)) as con:
        con.execute("create schema marts; create schema staging")
        con.execute("create table staging.stg_crm__contacts (contact_id varchar)")
        con.execute("insert into staging.stg_crm__contacts values (?), ('C-2')", [EVIL_ID])
        con.execute(
            "create table marts.dim_leads (contact_id varchar, stage varchar, "
            "definitions_version varchar)")
        con.execute("insert into marts.dim_leads values (?, ?, 'v1.1'), ('C-2', 'quote', 'v1.1')",
                    [EVIL_ID, "<b>won</b>\x1b]0;title\x07"])
        con.execute("create table marts.dim_reps (user_id varchar, full_name varchar)")
        con.execute("insert into marts.dim_reps values ('USR-1', ?), (?, ?)",
                    [SCRIPT_NAME, EVIL_ID, IMG_NAME])
        con.execute(
            "create table marts.label_consistency as select * from (values "
            "('USR-1', 14, 9, 0.64, true), (?, 14, 8, 0.57, true)) as t(labeller, "
            "labels_judged, inconsistent, inconsistency_rate, exceeds_threshold)", [EVIL_ID])
    return settings


def _assert_data_as_text(tmp_path: Path, settings: Any) -> None:
    """The night-1 results keep the CRM values as they are; its pages show them as text."""
    from html.parser import HTMLParser

    # the results are the truth, unescaped
    [stored] = (settings.quality_dir / "validations" / "label_agreement").glob("*/*/*.json")
    result = json.loads(stored.read_text(encoding="utf-8"))["results"][0]["result"]
    assert {(r["labeller"], r["labeller_name"]) for r in result["unexpected_index_list"]} == {
        ("USR-1", SCRIPT_NAME), (EVIL_ID, IMG_NAME)}

    class Page(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.tags: list[tuple[str, dict[str, str | None]]] = []
            self.scripts: list[str] = []
            self.text: list[str] = []
            self._in_script = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append((tag, dict(attrs)))
            self._in_script = tag == "script"

        def handle_endtag(self, tag: str) -> None:
            self._in_script = False

        def handle_data(self, data: str) -> None:
            (self.scripts if self._in_script else self.text).append(data)

    docs = settings.quality_dir / "data_docs"
    pages = {name: next(docs.glob(f"validations/{name}/night-1/*/*.html")) for name in
             ("label_agreement", "lead_stages")}
    shown = {}
    for name, path in pages.items():
        html = path.read_text(encoding="utf-8")
        assert "\x1b" not in html and "\u202e" not in html and "\x07" not in html, name
        page = Page()
        page.feed(html)
        # GX's own buttons have onclick handlers; none may come from data
        handlers = [(t, a) for t, a in page.tags if any(
            k.startswith("on") and "XSS" in (v or "") for k, v in a.items())]
        assert handlers == [], name
        assert ("img", {"src": "x"}) not in [(t, {"src": a.get("src")}) for t, a in page.tags]
        assert not [t for t, _ in page.tags if t in ("svg", "b")], name
        assert not [s for s in page.scripts if "XSS" in s], name
        shown[name] = " ".join(page.text)
    assert SCRIPT_NAME in shown["label_agreement"]
    assert "<img src=x onerror=\"document.title='XSS'\">Bo\\x1b[31m\\u202eb" in shown[
        "label_agreement"]
    assert EVIL_ID in shown["label_agreement"] and EVIL_ID in shown["lead_stages"]
    assert "<b>won</b>\\x1b]0;title\\x07" in shown["lead_stages"]

    # in a browser, offline: the page's own scripts run (the tables are drawn), data's do not
    from browser import chromium, chromium_binary

    if chromium_binary() is None:
        return
    with chromium(tmp_path / "chromium-profile") as browser:
        for name, path in pages.items():
            tab = browser.page(1400)
            tab.goto(path.as_uri())
            tab.wait_for("document.querySelectorAll('.bootstrap-table table').length > 0")
            time.sleep(0.5)  # an onerror/onload of data would have fired by now
            assert tab.js("document.title") != "XSS", name
            text = tab.js("document.body.innerText")
            assert EVIL_ID in text, name
            if name == "label_agreement":
                assert SCRIPT_NAME in text and "Bo\\x1b[31m\\u202eb" in text
            assert tab.console_errors() == [], name
