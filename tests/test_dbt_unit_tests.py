"""The dbt unit tests: every rule pinned with hand-made rows, at the definitions' defaults.

They run here, in the project's test suite, and not in the nightly `dbt build` (a run whose
settings differ from the defaults must not fail on a rule pinned at the defaults). dbt needs
the models' relations to exist to type the fixtures, so the project is built empty on an empty
raw layer — in the same `dbt build --empty` that runs the unit tests: it loads the seeds and
builds every model with no rows, each model's unit tests running just before it (the data
tests are left out: on empty tables they would prove nothing).

dbt parses the project once, at install (`make setup`, `prepared_dbt_project`), and a build
reuses that parse only if it has the vars and renders the profile exactly as the install did:
so dbt runs here as a run with the default settings runs it (`parse_inputs`: the default
settings' vars, the warehouse file named relative to the folder dbt runs in), in this module's
temporary warehouse folder. The saved parse is copied, never written: the project folder stays
as it is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dbt_as_installed import dbt_as_installed

from pipelines.dbt_parse_ahead import PARTIAL_PARSE
from pipelines.dbt_project import DBT_PROJECT_DIR, prepared_dbt_project
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.targets import OVERRIDES_DDL


@dataclass(frozen=True)
class EmptyBuild:
    """The folder of dbt's target, the database (dbt runs in its folder, which the profile
    names it relative to) and the build's run_results.json."""

    run: Path
    target: Path
    database: Path
    run_results: Path

    def dbt(self, *args: str) -> subprocess.CompletedProcess[str]:
        return dbt_as_installed(
            *args, warehouse=self.database.parent, project=DBT_PROJECT_DIR, target=self.target
        )


@pytest.fixture(scope="module")
def empty_build(tmp_path_factory: pytest.TempPathFactory) -> EmptyBuild:
    """An empty raw layer, and on it the one `dbt build --empty` that loads the seeds, builds
    every model with no rows and runs each model's unit tests just before it (data tests left
    out: on empty tables they would prove nothing), starting from the install's parse.
    Shared by the tests of this module."""
    folder = tmp_path_factory.mktemp("dbt_unit")
    run, database = folder / "run", folder / "warehouse" / "warehouse.duckdb"
    target = run / "target"
    target.mkdir(parents=True)
    database.parent.mkdir()
    project = prepared_dbt_project()
    saved = project.project_dir / project.target_path / PARTIAL_PARSE
    if saved.exists():
        shutil.copyfile(saved, target / PARTIAL_PARSE)
    with duckdb.connect(str(database)) as con:  # an empty raw layer
        ensure_raw_layer(con)
        con.execute(OVERRIDES_DDL)
    build = EmptyBuild(run, target, database, folder / "build_results.json")
    result = build.dbt("build", "--empty", "--exclude", "test_type:data")
    assert result.returncode == 0, result.stdout[-5000:]
    # built where the profile names it from dbt's folder, nowhere else; from the saved parse
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("select count(*) from information_schema.tables "
                           "where table_schema = 'marts'").fetchone()[0] > 0
    assert not (DBT_PROJECT_DIR / "warehouse.duckdb").exists()
    assert "Unable to do partial parsing" not in (target / "logs" / "dbt.log").read_text(
        encoding="utf-8")
    build.run_results.write_bytes((target / "run_results.json").read_bytes())
    return build


def test_every_dbt_unit_test_passes_at_the_definitions_defaults(empty_build: EmptyBuild) -> None:
    results = json.loads(empty_build.run_results.read_text(encoding="utf-8"))["results"]
    units = {r["unique_id"]: r["status"] for r in results
             if r["unique_id"].startswith("unit_test.")}
    assert [name for name, status in units.items() if status != "pass"] == []
    assert len(units) >= 30, sorted(units)


# --- the one-scan column tests: the same verdicts as the per-column tests they replace -------

NOT_NULL = "not_null_columns_stg_crm__users"
ACCEPTED = "accepted_values_columns_stg_crm__activities"
ACTIVITY_COLUMNS = ("activity_id, activity_type, direction, outcome, occurred_at, updated_at, "
                    "source_delivery, source_file, source_line")


@dataclass(frozen=True)
class ColumnRuleRuns:
    """Both tests run together twice: on rows that keep every rule, then with rows that break
    them added (two dbt invocations instead of one pair per test)."""

    clean: subprocess.CompletedProcess[str]
    broken: subprocess.CompletedProcess[str]
    build: EmptyBuild

    def failing_rows(self, test: str, failures: int, compiled: str) -> list[tuple]:
        """Assert `test` passes on the clean rows and fails the build with `failures` rows
        on the broken ones; return those rows, from the test's own compiled query (found
        by the glob `compiled`: dbt hashes a long test name)."""
        clean, broken = self.clean.stdout, self.broken.stdout
        assert f"PASS {test}" in clean, clean[-3000:]
        assert self.broken.returncode == 1, broken[-3000:]
        assert f"FAIL {failures} {test}" in broken, broken[-3000:]
        found = list((self.build.target / "compiled").rglob(compiled))
        assert len(found) == 1, found
        with duckdb.connect(str(self.build.database), read_only=True) as con:
            return con.execute(found[0].read_text(encoding="utf-8")).fetchall()


@pytest.fixture(scope="module")
def column_rules(empty_build: EmptyBuild) -> ColumnRuleRuns:
    select = ("--select", "stg_crm__users,test_name:not_null_columns "
                          "stg_crm__activities,test_name:accepted_values_columns")
    with duckdb.connect(str(empty_build.database)) as con:  # an empty value where allowed
        con.execute(
            f"insert into staging.stg_crm__activities ({ACTIVITY_COLUMNS}) values "
            "('ACT-1', 'email', null, 'sent', now(), now(), 'd1', 'activities.csv', 2)"
        )
    clean = empty_build.dbt("test", *select)
    with duckdb.connect(str(empty_build.database)) as con:
        con.execute(
            "insert into staging.stg_crm__users (user_id, full_name, role, team, is_active, "
            "updated_at, source_delivery, source_file, source_line) "
            "values ('USR-1', null, 'sdr', 'Noord', true, now(), 'd1', 'users.csv', 2)"
        )
        con.execute(
            f"insert into staging.stg_crm__activities ({ACTIVITY_COLUMNS}) values "
            "('ACT-2', 'fax', 'sideways', 'sent', now(), now(), 'd1', 'activities.csv', 3),"
            "('ACT-3', 'fax', 'sideways', 'sent', now(), now(), 'd1', 'activities.csv', 4),"
            "('ACT-4', 'call', 'inbound', 'it''s on', now(), now(), 'd1', 'activities.csv', 5)"
        )
    return ColumnRuleRuns(clean, empty_build.dbt("test", *select), empty_build)


def test_not_null_columns_fails_the_build_when_any_listed_column_is_empty(
    column_rules: ColumnRuleRuns,
) -> None:
    """One `not_null_columns` test per model guards every column that used to carry a plain
    `not_null` (one scan instead of one query per column): an empty value in any of them
    still fails, at error severity, and the failing row names the empty column."""
    rows = column_rules.failing_rows(NOT_NULL, 1, "not_null_columns_stg_crm__user_*.sql")
    assert rows == [("full_name",)]


def test_accepted_values_columns_fails_the_build_when_any_column_takes_an_unagreed_value(
    column_rules: ColumnRuleRuns,
) -> None:
    """One `accepted_values_columns` test per model guards every column that used to carry a
    plain `accepted_values` (one scan instead of one query per column): a value outside a
    column's list still fails, at error severity; empty values pass, as before; each failing
    row names the offending columns with their values."""
    rows = sorted(column_rules.failing_rows(ACCEPTED, 2, "accepted_values_columns_stg_cr*.sql"))
    assert rows == [("activity_type = 'fax', direction = 'sideways'", 2),
                    ("outcome = 'it's on'", 1)]
