"""One dbt project, two engines: Spark builds the same marts as DuckDB, row by row.

The session's parity builds (conftest `engine_parity_builds`, tests/engine_parity_builds.py):
a small generated sample loaded with the normal loader (plus a few manager target overrides),
built on DuckDB and — from the same raw layer exported to Parquet — on Spark, on a local
standalone cluster: one `dbt build` on each (seeds, models, data tests and the dbt unit
tests). Every mart is compared on its keys: exact for ids, texts, counts, booleans, dates and
instants; amounts and ratios to 1e-9 relative. Every data test must have the same outcome on
both engines, and every dbt unit test must pass on Spark.

Spark tables are Parquet files under the build's Spark folder; they are read back with DuckDB,
so the comparison itself does not depend on Spark. Without the spark extra or Java 17 these
tests are skipped, saying why — and fail instead under SALES_KPI_REQUIRE_SPARK=1 (`make test`;
conftest.py, `spark_missing`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb
import pandas as pd
import pytest
from engine_parity_builds import Builds
from mart_comparison import compare, kinds_from_schema, relation_frame

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SHOWN = 10
MART_KEYS: dict[str, tuple[str, ...]] = {
    "dim_reps": ("user_id",),
    "dim_leads": ("contact_id",),
    "fct_funnel_stages": ("contact_id", "stage"),
    "fct_activities": ("activity_id",),
    "fct_deals": ("deal_id",),
    "fct_marketing_event_judgements": ("event_id",),
    "label_consistency": ("labeller",),
    "kpi_registry": ("kpi_id",),
    "kpi_values": ("kpi_id", "scope", "scope_id", "period_start"),
    "kpi_baselines": ("kpi_id", "scope", "scope_id"),
    "kpi_scorecard": ("kpi_id", "scope", "scope_id", "period_start"),
}
# An md5 of each engine's own rendering of a contact's input rows (macro row_fingerprint):
# compared for presence and form, not value.
ENGINE_SPECIFIC = {"dim_leads": {"inputs_fingerprint"}}


@pytest.fixture(scope="module")
def builds(engine_parity_builds: Builds) -> Builds:
    return engine_parity_builds


def _summary(result: Mapping[str, Any]) -> str:
    lines = [line for line in result["stdout"].splitlines() if "ERROR" in line or "FAIL" in line]
    return "\n".join(lines[:40]) + "\n" + result["stdout"][-2000:] + result["stderr"][-2000:]


def test_every_seed_and_model_builds_on_duckdb_and_on_spark(builds: Builds) -> None:
    assert builds.duckdb_build["returncode"] == 0, _summary(builds.duckdb_build)
    result = builds.spark_build
    assert result["returncode"] == 0, _summary(result)
    assert " ERROR=0 " in result["stdout"]
    # the same nodes were built and tested on both engines, with the same totals
    assert _totals(result) == _totals(builds.duckdb_build)


def _totals(result: Mapping[str, Any]) -> str:
    done = [line for line in result["stdout"].splitlines() if "Done. PASS=" in line]
    assert done, result["stdout"][-2000:]
    return done[-1].split("Done. ")[1]


def _duckdb_mart(builds: Builds, table: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    with duckdb.connect(str(builds.duckdb_database), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        relation = con.sql(f"select * from marts.{table}")
        return relation_frame(relation)


def _spark_mart(builds: Builds, table: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    files = builds.spark_tables / "marts.db" / table
    assert any(files.glob("*.parquet")), f"Spark wrote no Parquet for marts.{table} in {files}"
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        relation = con.sql(f"select * from read_parquet('{files}/*.parquet')")
        return relation_frame(relation)


@pytest.mark.parametrize("mart", sorted(MART_KEYS))
def test_every_mart_is_the_same_on_spark_as_on_duckdb(builds: Builds, mart: str) -> None:
    assert builds.duckdb_build["returncode"] == 0, _summary(builds.duckdb_build)
    assert builds.spark_build["returncode"] == 0, _summary(builds.spark_build)
    expected, duckdb_schema = _duckdb_mart(builds, mart)
    actual, spark_schema = _spark_mart(builds, mart)
    # the same columns, in the same order, with the same types (read back as DuckDB types)
    assert spark_schema == duckdb_schema
    assert len(expected) > 0, f"{mart} is empty on DuckDB: the sample proves nothing"
    assert len(actual) == len(expected)

    engine_specific = ENGINE_SPECIFIC.get(mart, set())
    columns = [c for c, _ in duckdb_schema if c not in engine_specific]
    differences = compare(
        kinds_from_schema(duckdb_schema), actual, expected, MART_KEYS[mart], columns
    )
    assert not differences, (
        f"{mart}: {len(differences.mismatching)} rows differ, {len(differences.missing)} only "
        f"on DuckDB, {len(differences.extra)} only on Spark\n"
        + "\n".join(
            differences.mismatching[:SHOWN] + differences.missing[:SHOWN]
            + differences.extra[:SHOWN]
        )
    )
    key = list(MART_KEYS[mart])
    for column in engine_specific:
        both = expected[[*key, column]].merge(
            actual[[*key, column]], on=key, suffixes=("_duckdb", "_spark")
        )
        assert len(both) == len(expected)
        present = both[f"{column}_duckdb"].notna()
        assert (present == both[f"{column}_spark"].notna()).all(), column
        assert both[f"{column}_spark"].dropna().str.fullmatch(r"[0-9a-f]{32}").all(), column


# dbt's line for a test's outcome: "12 of 480 PASS name ....", "WARN 3 name", "FAIL 1 name"
TEST_OUTCOME = re.compile(r"\d+ of \d+ (PASS|WARN \d+|FAIL \d+|ERROR) (\S+) ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _outcomes(result: Mapping[str, Any], unit: bool) -> dict[str, str]:
    """Each test's outcome in a build's output (the unit tests, `model::test`, or the data
    tests), the number of failing rows included."""
    found = TEST_OUTCOME.finditer(ANSI.sub("", result["stdout"]))
    return {match[2]: match[1] for match in found if ("::" in match[2]) == unit}


def test_every_data_test_gives_the_same_outcome_on_spark_as_on_duckdb(builds: Builds) -> None:
    assert builds.spark_build["returncode"] == 0, _summary(builds.spark_build)
    on_spark = _outcomes(builds.spark_build, unit=False)
    on_duckdb = _outcomes(builds.duckdb_build, unit=False)
    assert len(on_duckdb) >= 100, builds.duckdb_build["stdout"][-2000:]
    # the same tests ran on both engines, and each passed, or warned on as many rows, on both
    differing = {
        name: (on_duckdb.get(name), on_spark.get(name))
        for name in on_duckdb.keys() | on_spark.keys()
        if on_duckdb.get(name) != on_spark.get(name)
    }
    assert differing == {}, f"(DuckDB, Spark) outcome per test: {differing}"


def test_every_dbt_unit_test_passes_on_spark(builds: Builds) -> None:
    assert builds.spark_build["returncode"] == 0, _summary(builds.spark_build)
    on_spark = _outcomes(builds.spark_build, unit=True)
    assert len(on_spark) >= 30, builds.spark_build["stdout"][-2000:]
    assert {name for name, outcome in on_spark.items() if outcome != "PASS"} == set()
    # every unit test of the project ran (the DuckDB build ran them too)
    assert on_spark.keys() == _outcomes(builds.duckdb_build, unit=True).keys()
