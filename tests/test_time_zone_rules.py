"""The time-zone rules: every part reads the IANA rules DuckDB computes with, and a Spark build
whose engine has other rules stops before it builds anything (pipelines/local_time.py; dbt
macro `time_zone_rules_from_var`)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.dbt_project import DBT_PROJECT_DIR, dbt_environment_values, dbt_executable
from pipelines.local_time import write_time_zone_probes
from pipelines.settings import Settings
from pipelines.spark_build import TIME_ZONE_PROBES_VAR

UNTIL = datetime(2028, 1, 1, tzinfo=UTC)


def probes(path: Path, zone: str) -> list[tuple[int, str]]:
    write_time_zone_probes(zone, UNTIL, path)
    with duckdb.connect() as con:
        return con.execute(f"select instant, local_time from '{path}' order by instant").fetchall()


def test_the_probes_hold_both_sides_of_each_offset_change_and_two_noons_a_month(
    tmp_path: Path,
) -> None:
    held = dict(probes(tmp_path / "probes.parquet", "Europe/Amsterdam"))
    spring = int(datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp())  # 02:00 CET → 03:00 CEST
    assert held[spring - 3600] == "2026-03-29 01:00:00"
    assert held[spring] == "2026-03-29 03:00:00"
    autumn = int(datetime(2026, 10, 25, 1, tzinfo=UTC).timestamp())  # 03:00 CEST → 02:00 CET
    assert held[autumn - 3600] == "2026-10-25 02:00:00"
    assert held[autumn] == "2026-10-25 02:00:00"
    noon = int(datetime(2027, 12, 15, 12, tzinfo=UTC).timestamp())
    assert held[noon] == "2027-12-15 13:00:00"
    assert min(held) == int(datetime(2000, 1, 1, 12, tzinfo=UTC).timestamp())


def time_zone_rules_check(
    settings: Settings, probes_file: Path, *target: str
) -> subprocess.CompletedProcess[str]:
    """The build's `on-run-start` check alone (`dbt run-operation`), with the job's vars."""
    variables = {
        "business_timezone": settings.business_timezone,
        TIME_ZONE_PROBES_VAR: {"path": str(probes_file), "rules": "IANA test"},
    }
    return subprocess.run(
        [dbt_executable(), "run-operation", "time_zone_rules_from_var", "--vars",
         json.dumps(variables), "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir",
         str(DBT_PROJECT_DIR), "--target-path", str(settings.warehouse_dir / "target"),
         *target],
        env={**os.environ, **dbt_environment_values(settings)}, capture_output=True, text=True,
        check=False, timeout=600,
    )


def shifted_probes(tmp_path: Path, zone: str, noon: datetime) -> tuple[Path, int]:
    """The zone's probes with the one at `noon` (UTC) an hour earlier in local time than
    DuckDB's rules put it: an engine and the rules the build checks it against that disagree
    there (as Java 17's tzdata 2025a and DuckDB's 2026f do on America/Vancouver from November
    2026: UTC−8 against UTC−7)."""
    rows = probes(tmp_path / "probes.parquet", zone)
    instant = int(noon.timestamp())
    shifted = tmp_path / "shifted.parquet"
    with duckdb.connect() as con:
        con.execute("create table p (instant bigint, local_time varchar)")
        con.executemany("insert into p values (?, ?)", [
            (moment, earlier(local) if moment == instant else local) for moment, local in rows
        ])
        con.execute(f"copy p to '{shifted}' (format parquet)")
    return shifted, len(rows)


def earlier(local_time: str) -> str:
    """A `YYYY-MM-DD HH:MM:SS` wall time an hour earlier."""
    hour = int(local_time[11:13])
    return f"{local_time[:11]}{hour - 1:02d}{local_time[13:]}"


@pytest.mark.slow  # a dbt run-operation: dbt parses the project
def test_a_build_whose_engine_puts_an_instant_at_another_local_time_stops_naming_it(
    tmp_path: Path,
) -> None:
    settings = Settings(warehouse_dir=tmp_path / "warehouse",
                        business_timezone="America/Vancouver")
    settings.warehouse_dir.mkdir()
    noon = datetime(2026, 12, 15, 12, tzinfo=UTC)
    shifted, count = shifted_probes(tmp_path, settings.business_timezone, noon)
    result = time_zone_rules_check(settings, shifted)
    assert result.returncode != 0
    said = " ".join(result.stdout.split())
    assert (f"this engine's time-zone rules put 1 of {count} instants in another local time "
            "than DuckDB's (IANA test) in America/Vancouver: 2026-12-15 12:00:00 UTC is "
            "2026-12-15 05:00:00 here and 2026-12-15 04:00:00 by those rules") in said, said


@pytest.mark.spark
@pytest.mark.slow
def test_spark_checks_its_time_zone_rules_against_duckdbs(tmp_path: Path) -> None:
    """On Spark (in-process, local[1]) the same check, for the default business timezone: of
    the probes as DuckDB's rules give them, with one put an hour earlier, that one alone is
    named — Spark agrees on every other (one Spark start: both sides in one run)."""
    settings = Settings(warehouse_dir=tmp_path / "warehouse", engine="spark",
                        spark_master="local[1]")
    settings.warehouse_dir.mkdir()
    noon = datetime(2027, 1, 15, 12, tzinfo=UTC)
    shifted, count = shifted_probes(tmp_path, settings.business_timezone, noon)
    result = time_zone_rules_check(settings, shifted, "--target", "spark")
    said = " ".join(result.stdout.split())
    assert result.returncode != 0, said[-3000:]
    assert (f"put 1 of {count} instants in another local time than DuckDB's (IANA test) in "
            "Europe/Amsterdam: 2027-01-15 12:00:00 UTC is 2027-01-15 13:00:00 here and "
            "2027-01-15 12:00:00 by those rules") in said, said[-3000:]


def test_the_probes_reach_back_to_the_datas_earliest_instant(tmp_path: Path) -> None:
    """Engines' rules differ most in the past (Java 17's São Paulo of 1966 is an hour off IANA
    2026f's, which moved a marketing lead into February on Spark alone): the probes start a
    day before the raw layer's earliest instant where that is before 2000 — from 1800 at the
    earliest, where an instant of year 0 is not held up — else in 2000."""
    from pipelines.local_time import PROBES_EARLIEST, PROBES_SINCE
    from pipelines.spark_build import probes_since

    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("create schema raw")
        con.execute("create table raw.activities (occurred_at timestamptz, note varchar)")
        con.execute("create table raw.deals (created_at timestamptz, closed_at timestamptz)")
        con.execute("insert into raw.activities values ('2024-05-01 10:00:00+00', 'x')")
    assert probes_since(database) == PROBES_SINCE
    with duckdb.connect(str(database)) as con:
        con.execute("insert into raw.deals values (null, '1966-03-01 02:00:00+00')")
    assert probes_since(database) == datetime(1966, 2, 28, 2, tzinfo=UTC)
    with duckdb.connect(str(database)) as con:
        con.execute("insert into raw.deals values ('0000-06-15 12:00:00+00', null)")
    assert probes_since(database) == PROBES_EARLIEST
    path = tmp_path / "probes.parquet"
    write_time_zone_probes("America/Sao_Paulo", UNTIL, path, since=probes_since(database))
    with duckdb.connect() as con:
        first = con.execute(f"select min(instant) from '{path}'").fetchone()[0]
    assert first < int(datetime(1900, 1, 1, tzinfo=UTC).timestamp())


def test_an_empty_raw_layer_probes_from_2000(tmp_path: Path) -> None:
    from pipelines.local_time import PROBES_SINCE
    from pipelines.spark_build import probes_since

    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.activities (occurred_at timestamptz)")
    assert probes_since(database) == PROBES_SINCE
