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

from pipelines.assets.dbt import describe_data_test
from pipelines.dbt_parse_ahead import PARTIAL_PARSE
from pipelines.dbt_project import DBT_PROJECT_DIR, prepared_dbt_project
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.targets import OVERRIDES_DDL

# dbt runs here as on a machine in the business timezone (a data team's laptop): the rules must
# not depend on the machine's timezone (DuckDB's session takes it unless the build pins UTC).
MACHINE_TIMEZONE = "Europe/Amsterdam"


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
            *args, warehouse=self.database.parent, project=DBT_PROJECT_DIR, target=self.target,
            machine_timezone=MACHINE_TIMEZONE,
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


# --- table_rules: a model's row rules and keys in one test, each failure named -------------

USERS, ACTIVITIES, STAGE_CHANGES = (f"table_rules_stg_crm__{name}" for name in (
    "users", "activities", "deal_stage_changes"))
USER_COLUMNS = ("user_id, full_name, role, team, is_active, updated_at, source_delivery, "
                "source_file, source_line")
ACTIVITY_COLUMNS = ("activity_id, activity_type, direction, outcome, owner_user_id, occurred_at, "
                    "updated_at, source_delivery, source_file, source_line")
STAGE_CHANGE_COLUMNS = "deal_id, stage, changed_at, source_delivery, source_file, source_line"
MONDAY = "timestamptz '2026-01-05 09:00:00+00'"


@dataclass(frozen=True)
class TableRuleRuns:
    """The `table_rules` tests of three models run together twice: on rows that keep every
    rule, then with rows that break them added (two dbt invocations for all the rules)."""

    clean: subprocess.CompletedProcess[str]
    broken: subprocess.CompletedProcess[str]
    build: EmptyBuild

    def failing_rows(self, test: str, failures: int) -> list[tuple[str, str, int]]:
        """Assert `test` passes on the clean rows and fails the build on the broken ones,
        dbt counting `failures` (the rows that break a rule: the report's occurrences summed,
        not its lines); return the report's rows (rule, detail, occurrences), sorted, from the
        test's own compiled query (dbt names the file after the test's first 30 characters
        and a hash of its arguments)."""
        clean, broken = self.clean.stdout, self.broken.stdout
        assert f"PASS {test}" in clean, clean[-3000:]
        assert self.broken.returncode == 1, broken[-3000:]
        assert f"FAIL {failures} {test}" in broken, broken[-3000:]
        found = list((self.build.target / "compiled").rglob(f"{test[:30]}*.sql"))
        assert len(found) == 1, found
        with duckdb.connect(str(self.build.database), read_only=True) as con:
            rows = sorted(con.execute(found[0].read_text(encoding="utf-8")).fetchall())
        assert sum(occurrences for _, _, occurrences in rows) == failures, rows
        return rows


@pytest.fixture(scope="module")
def table_rules(empty_build: EmptyBuild) -> TableRuleRuns:
    select = ("--select", *(f"stg_crm__{name},test_name:table_rules"
                            for name in ("users", "activities", "deal_stage_changes")))
    with duckdb.connect(str(empty_build.database)) as con:  # empty values only where allowed
        con.execute(f"insert into staging.stg_crm__users ({USER_COLUMNS}) values "
                    "('USR-1', 'Ann', 'sdr', 'Noord', true, now(), 'd1', 'users.csv', 2)")
        con.execute(
            f"insert into staging.stg_crm__activities ({ACTIVITY_COLUMNS}) values "
            "('ACT-1', 'email', null, 'sent', 'USR-1', now(), now(), 'd1', 'acts.csv', 2)"
        )
        con.execute(
            f"insert into staging.stg_crm__deal_stage_changes ({STAGE_CHANGE_COLUMNS}) values "
            f"('D1', 'qualification', {MONDAY}, 'd1', 'changes.csv', 2),"
            f"('D1', 'discovery', {MONDAY} + interval 1 day, 'd1', 'changes.csv', 3)"
        )
    clean = empty_build.dbt("test", *select)
    with duckdb.connect(str(empty_build.database)) as con:
        con.execute(
            f"insert into staging.stg_crm__users ({USER_COLUMNS}) values "
            "('USR-2', null, 'sdr', 'Noord', true, now(), 'd1', 'users.csv', 3),"
            "('USR-3', 'Bo', 'cto', 'Noord', true, now(), 'd1', 'users.csv', 4),"
            "('USR-4', 'Cas', 'ae', 'Zuid', true, now(), 'd1', 'users.csv', 5),"
            "('USR-4', 'Cas', 'ae', 'Zuid', true, now(), 'd2', 'users.csv', 2)"
        )
        con.execute(
            f"insert into staging.stg_crm__activities ({ACTIVITY_COLUMNS}) values "
            "('ACT-2', 'fax', 'sideways', 'sent', 'USR-1', now(), now(), 'd1', 'acts.csv', 3),"
            "('ACT-3', 'fax', 'sideways', 'sent', 'USR-1', now(), now(), 'd1', 'acts.csv', 4),"
            "('ACT-4', 'call', 'inbound', 'it''s on', 'USR-1', now(), now(), 'd1', 'acts.csv', 5)"
        )
        con.execute(
            f"insert into staging.stg_crm__deal_stage_changes ({STAGE_CHANGE_COLUMNS}) values "
            f"('D1', 'qualification', {MONDAY}, 'd2', 'changes.csv', 2),"
            "('D2', 'discovery', null, 'd1', 'changes.csv', 4),"
            "('D2', 'discovery', null, 'd1', 'changes.csv', 5)"
        )
    return TableRuleRuns(clean, empty_build.dbt("test", *select), empty_build)


def test_table_rules_fail_the_build_when_a_not_null_column_is_empty(
    table_rules: TableRuleRuns,
) -> None:
    """`not_null`: an empty value in a listed column fails the build, at error severity; the
    failing row names the rule and the column. An empty value in a column not listed passes
    (`email`, `direction` on the clean rows)."""
    rows = table_rules.failing_rows(USERS, 4)
    assert ("not_null (full_name)", "full_name is empty", 1) in rows


def test_table_rules_fail_the_build_when_a_column_takes_an_unagreed_value(
    table_rules: TableRuleRuns,
) -> None:
    """`accepted_values`: a value outside a column's list fails the build; an empty value
    passes, as in dbt's accepted_values (`direction` on the clean rows). Each failing row
    names the rule, the column and its value (quotes in a value kept), with its count."""
    assert ("accepted_values (role)", "role = 'cto'", 1) in table_rules.failing_rows(USERS, 4)
    assert table_rules.failing_rows(ACTIVITIES, 5) == [
        ("accepted_values (activity_type)", "activity_type = 'fax'", 2),
        ("accepted_values (direction)", "direction = 'sideways'", 2),
        ("accepted_values (outcome)", "outcome = 'it's on'", 1),
    ]


def test_table_rules_fail_the_build_when_two_rows_share_a_key(
    table_rules: TableRuleRuns,
) -> None:
    """`unique` with a column: two rows with the same value fail the build; the failing row
    names the key, its value and how many rows carry it."""
    assert ("unique (user_id)", "user_id = 'USR-4'", 2) in table_rules.failing_rows(USERS, 4)


def test_table_rules_fail_the_build_when_two_rows_share_a_key_combination(
    table_rules: TableRuleRuns,
) -> None:
    """`unique` with a list of columns: two rows with the same values in all of them fail
    the build, an empty value counting as a value of its own (as `unique_combination` did;
    `not_null` reports the empty column besides); the failing row names every column's
    value."""
    (empty, key_d1, key_d2) = table_rules.failing_rows(STAGE_CHANGES, 6)
    assert empty == ("not_null (changed_at)", "changed_at is empty", 2)
    rule, detail, occurrences = key_d1
    assert (rule, occurrences) == ("unique (deal_id, stage, changed_at)", 2)
    assert detail.startswith("deal_id = 'D1', stage = 'qualification', changed_at = '2026-01-0")
    assert key_d2 == ("unique (deal_id, stage, changed_at)",
                      "deal_id = 'D2', stage = 'discovery', changed_at is empty", 2)


def test_a_table_rules_check_says_its_rules_in_words(empty_build: EmptyBuild) -> None:
    """The Dagster asset check and the console describe a `table_rules` test by its rules
    (dbt gives a test no description; its name is the model and arguments run together)."""
    nodes = json.loads((empty_build.target / "manifest.json").read_text(encoding="utf-8"))["nodes"]
    (node,) = [n for n in nodes.values() if n["name"].startswith(STAGE_CHANGES)]
    assert describe_data_test(node) == (
        "`deal_id`, `stage`, `changed_at`, `source_delivery`, `source_file`, `source_line` never "
        "empty; `stage` only takes qualification, discovery, proposal, negotiation, closed_won, "
        "closed_lost; one row per (`deal_id`, `stage`, `changed_at`) (one query)."
    )


# --- tables built in place (dbt_project/macros/table_in_place_duckdb.sql) --------------------


def test_a_model_that_fails_leaves_its_table_as_it_was(empty_build: EmptyBuild) -> None:
    """A table is dropped and created again in one transaction, under its own name (the
    statement dbt ran creates `stg_crm__companies` itself, not a `__dbt_tmp` beside it): when
    the model's query fails (here its source is missing), the rollback keeps the table with
    the rows it had, and nothing is left beside it."""
    with duckdb.connect(str(empty_build.database)) as con:
        con.execute("insert into staging.stg_crm__companies (company_id) values ('CMP-KEPT')")
        con.execute("alter table raw.companies rename to companies_away")
    try:
        failed = empty_build.dbt("run", "--select", "stg_crm__companies")
        with duckdb.connect(str(empty_build.database), read_only=True) as con:
            kept = con.execute("select company_id from staging.stg_crm__companies").fetchall()
            beside = con.execute(
                "select table_name from duckdb_tables() where table_name like "
                "'stg_crm__companies%' and table_name <> 'stg_crm__companies'").fetchall()
    finally:  # the module's build as it was, whatever happened
        with duckdb.connect(str(empty_build.database)) as con:
            con.execute("alter table raw.companies_away rename to companies")
            if con.execute("select count(*) from duckdb_tables() where schema_name = "
                           "'staging' and table_name = 'stg_crm__companies'").fetchone()[0]:
                con.execute("delete from staging.stg_crm__companies "
                            "where company_id = 'CMP-KEPT'")
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert "ERROR creating sql table model staging.stg_crm__companies" in failed.stdout
    (statement,) = (empty_build.target / "run").rglob("stg_crm__companies.sql")
    created = statement.read_text(encoding="utf-8")
    assert '."stg_crm__companies"' in created and "__dbt_tmp" not in created, created[:500]
    assert (kept, beside) == ([("CMP-KEPT",)], [])
