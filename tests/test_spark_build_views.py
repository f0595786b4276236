"""The DuckDB views the job reads a Spark build through (pipelines/spark_build.py,
`write_build_views`), on a hand-made tables folder: no Spark needed."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.settings import Settings
from pipelines.spark_build import SparkBuildError, spark_tables_dir, write_build_views


def _node(name: str, materialized: str = "table") -> dict[str, object]:
    return {"unique_id": f"model.sales_kpi.{name}", "resource_type": "model", "schema": "marts",
            "name": name, "config": {"materialized": materialized}, "columns": {}}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A Spark build in a warehouse whose path has a quote and a space,
    with one table's Parquet folder (`dim_reps`)."""
    settings = Settings(warehouse_dir=tmp_path / "o'neil wh", engine="spark")
    folder = spark_tables_dir(settings) / "marts.db" / "dim_reps"
    folder.mkdir(parents=True)
    duckdb.sql(f"copy (select 'u1' as rep_id) to '{folder / 'part-0.parquet'}' (format parquet)"
               .replace("o'neil", "o''neil"))
    return settings


MANIFEST = {"nodes": {n["unique_id"]: n for n in (
    _node("dim_reps"), _node("dim_leads"), _node("int_marketing_events__judged", "view"),
)}}


def test_a_table_the_build_made_but_not_where_the_job_reads_it_is_an_error(
    settings: Settings,
) -> None:
    """A server whose schema already lived elsewhere in its metastore wrote the table there:
    the job names the table and where it looked, instead of reading the build without it."""
    built = {"model.sales_kpi.dim_reps", "model.sales_kpi.dim_leads"}
    with pytest.raises(SparkBuildError, match=r"no table files for marts\.dim_leads"):
        write_build_views(settings, MANIFEST, built=built)


def test_a_selection_built_by_hand_gets_views_of_what_it_made(settings: Settings) -> None:
    database = write_build_views(settings, MANIFEST, built={"model.sales_kpi.dim_reps"})
    with duckdb.connect(str(database), read_only=True) as con:
        views = {name for (name,) in con.execute(
            "select view_name from duckdb_views() where not internal").fetchall()}
        assert views == {"dim_reps"}
        assert con.execute("select rep_id from marts.dim_reps").fetchall() == [("u1",)]
    assert write_build_views(settings, MANIFEST) == database  # no results: what is there
