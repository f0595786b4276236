"""The dbt unit tests: every rule pinned with hand-made rows, at the definitions' defaults.

They run here, in the project's test suite, and not in the nightly `dbt build` (a run whose
settings differ from the defaults must not fail on a rule pinned at the defaults). dbt needs
the models' relations to exist to type the fixtures, so the project is built empty on an empty
raw layer — in the same `dbt build --empty` that runs the unit tests: it loads the seeds and
builds every model with no rows, each model's unit tests running just before it (the data
tests are left out: on empty tables they would prove nothing). One dbt invocation, one parse.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipelines.dbt_project import DBT_DATABASE_ENV, DBT_PROJECT_DIR, dbt_executable
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.targets import OVERRIDES_DDL


def _dbt(*args: str, database: Path, target: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, DBT_DATABASE_ENV: str(database)}
    return subprocess.run(
        [dbt_executable(), *args, "--profiles-dir", str(DBT_PROJECT_DIR),
         "--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(target),
         "--log-path", str(target / "logs")],
        env=env, capture_output=True, text=True, check=False,
    )


@pytest.fixture(scope="module")
def empty_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """An empty raw layer, and on it the one `dbt build --empty` that loads the seeds, builds
    every model with no rows and runs each model's unit tests just before it (data tests left
    out: on empty tables they would prove nothing). Shared by the tests of this module."""
    folder = tmp_path_factory.mktemp("dbt_unit")
    database, target = folder / "warehouse.duckdb", folder / "target"
    with duckdb.connect(str(database)) as con:  # an empty raw layer
        ensure_raw_layer(con)
        con.execute(OVERRIDES_DDL)
    result = _dbt("build", "--empty", "--exclude", "test_type:data",
                  database=database, target=target)
    assert result.returncode == 0, result.stdout[-5000:]
    (folder / "build_results.json").write_bytes((target / "run_results.json").read_bytes())
    return database, target, folder / "build_results.json"


def test_every_dbt_unit_test_passes_at_the_definitions_defaults(
    empty_build: tuple[Path, Path, Path],
) -> None:
    _, _, run_results = empty_build
    results = json.loads(run_results.read_text(encoding="utf-8"))["results"]
    units = {r["unique_id"]: r["status"] for r in results
             if r["unique_id"].startswith("unit_test.")}
    assert [name for name, status in units.items() if status != "pass"] == []
    assert len(units) >= 30, sorted(units)


def test_not_null_columns_fails_the_build_when_any_listed_column_is_empty(
    empty_build: tuple[Path, Path, Path],
) -> None:
    """One `not_null_columns` test per model guards every column that used to carry a plain
    `not_null` (one scan instead of one query per column): an empty value in any of them
    still fails, at error severity, and the failing row names the empty column."""
    database, target, _ = empty_build
    select = ("--select", "stg_crm__users,test_name:not_null_columns")
    assert _dbt("test", *select, database=database, target=target).returncode == 0
    with duckdb.connect(str(database)) as con:
        con.execute(
            "insert into staging.stg_crm__users (user_id, full_name, role, team, is_active, "
            "updated_at, source_delivery, source_file, source_line) "
            "values ('USR-1', null, 'sdr', 'Noord', true, now(), 'd1', 'users.csv', 2)"
        )
    try:
        result = _dbt("test", *select, database=database, target=target)
        assert result.returncode == 1, result.stdout[-3000:]
        assert "FAIL 1 not_null_columns_stg_crm__users" in result.stdout, result.stdout[-3000:]
        # the test's own query as dbt compiled it (a long name is hashed) names the empty column
        compiled = list((target / "compiled").rglob("not_null_columns_stg_crm__user_*.sql"))
        assert len(compiled) == 1, compiled
        with duckdb.connect(str(database), read_only=True) as con:
            assert con.execute(compiled[0].read_text()).fetchall() == [("full_name",)]
    finally:
        with duckdb.connect(str(database)) as con:
            con.execute("delete from staging.stg_crm__users")


def test_accepted_values_columns_fails_the_build_when_any_column_takes_an_unagreed_value(
    empty_build: tuple[Path, Path, Path],
) -> None:
    """One `accepted_values_columns` test per model guards every column that used to carry a
    plain `accepted_values` (one scan instead of one query per column): a value outside a
    column's list still fails, at error severity; empty values pass, as before; each failing
    row names the offending columns with their values."""
    database, target, _ = empty_build
    select = ("--select", "stg_crm__activities,test_name:accepted_values_columns")
    columns = ("activity_id, activity_type, direction, outcome, occurred_at, updated_at, "
               "source_delivery, source_file, source_line")
    with duckdb.connect(str(database)) as con:
        con.execute(
            f"insert into staging.stg_crm__activities ({columns}) values "
            "('ACT-1', 'email', null, 'sent', now(), now(), 'd1', 'activities.csv', 2)"
        )
    try:
        assert _dbt("test", *select, database=database, target=target).returncode == 0
        with duckdb.connect(str(database)) as con:
            con.execute(
                f"insert into staging.stg_crm__activities ({columns}) values "
                "('ACT-2', 'fax', 'sideways', 'sent', now(), now(), 'd1', 'activities.csv', 3),"
                "('ACT-3', 'fax', 'sideways', 'sent', now(), now(), 'd1', 'activities.csv', 4),"
                "('ACT-4', 'call', 'inbound', 'it''s on', now(), now(), 'd1', 'activities.csv', 5)"
            )
        result = _dbt("test", *select, database=database, target=target)
        assert result.returncode == 1, result.stdout[-3000:]
        assert "FAIL 2 accepted_values_columns_stg_crm__activities" in result.stdout, (
            result.stdout[-3000:])
        compiled = list((target / "compiled").rglob("accepted_values_columns_stg_cr*.sql"))
        assert len(compiled) == 1, compiled
        with duckdb.connect(str(database), read_only=True) as con:
            rows = sorted(con.execute(compiled[0].read_text()).fetchall())
        assert rows == [("activity_type = 'fax', direction = 'sideways'", 2),
                        ("outcome = 'it's on'", 1)]
    finally:
        with duckdb.connect(str(database)) as con:
            con.execute("delete from staging.stg_crm__activities")
