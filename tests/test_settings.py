"""Settings: defaults, environment overrides and their parsing."""

from __future__ import annotations

import pytest

from pipelines.settings import Settings, SettingsError


def test_a_naive_as_of_from_the_environment_is_local_to_the_business_timezone() -> None:
    settings = Settings.from_env(
        {"SALES_KPI_AS_OF": "2026-07-01 12:00", "SALES_KPI_BUSINESS_TIMEZONE": "Europe/London"}
    )
    assert settings.as_of is not None
    assert settings.as_of.utcoffset().total_seconds() == 3600  # BST, not CEST


def test_the_engine_is_duckdb_unless_the_environment_asks_for_spark() -> None:
    assert Settings.from_env({}).engine == "duckdb"
    spark = Settings.from_env({
        "SALES_KPI_ENGINE": "spark", "SALES_KPI_SPARK_MASTER": "spark://127.0.0.1:7077",
        "SALES_KPI_SPARK_SHUFFLE_PARTITIONS": "4",
    })
    assert (spark.engine, spark.spark_master, spark.spark_shuffle_partitions) == (
        "spark", "spark://127.0.0.1:7077", 4
    )
    # Spark's build is read through its own file of views; DuckDB's is the warehouse file
    assert spark.build_database == spark.warehouse_dir / "spark" / "build.duckdb"
    assert Settings().build_database == Settings().raw_database


def test_an_unknown_engine_is_refused_naming_the_engines() -> None:
    with pytest.raises(SettingsError, match=r"engine: unknown engine 'postgres'.*duckdb, spark"):
        Settings.from_env({"SALES_KPI_ENGINE": "postgres"})
