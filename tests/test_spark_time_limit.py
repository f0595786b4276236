"""A Spark night that hangs ends at its time limit (`max_run_minutes`, README "Nightly
operation"): the hang is the commonest of a cluster — an application accepted and never given
an executor — on a standalone master without workers (tests/spark_cluster.py), on 127.0.0.1.

A file of its own: it needs none of the session's shared Spark runs, and it mostly waits (a
driver waiting for an executor costs little CPU), so it runs early, beside the shared runs'
builds (conftest.py, COSTLIEST_FIRST).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import run_cli_subprocess
from engine_runs import SPARK_ENV, processes_mentioning
from spark_cluster import spark_cluster

from pipelines.publish import published_database

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_a_spark_night_on_a_cluster_that_gives_it_no_executor_ends_at_its_time_limit(
    sample_extracts: Path, tmp_path: Path
) -> None:
    """A master without a worker accepts the job's Spark application and never gives it an
    executor: Spark waits for one forever ("Initial job has not accepted any resources"), and
    so would the night, holding the warehouse against the next. Its time limit
    (`max_run_minutes`) ends it as SIGTERM does: exit 124, dbt and Spark's driver ended,
    nothing published."""
    warehouse = tmp_path / "warehouse"
    with spark_cluster(tmp_path / "cluster", workers=0) as cluster:
        outcome = run_cli_subprocess(
            "--extracts", str(sample_extracts), "--warehouse", str(warehouse),
            "--engine", "spark",
            env={**SPARK_ENV, **cluster.env, "SALES_KPI_WRITE_SITE": "false",
                 "SALES_KPI_MAX_RUN_MINUTES": "1.5"},
            timeout=600,
        )
        deadline = time.monotonic() + 10  # a process killed at the end may take a moment
        while (left := processes_mentioning(str(warehouse))) and time.monotonic() < deadline:
            time.sleep(0.5)
    explained = f"exit {outcome['code']}\n{outcome['stdout'][-2000:]}\n{outcome['stderr'][-2000:]}"
    assert outcome["code"] == 124, explained
    assert "STOPPED by its time limit of 1.5 minutes (max_run_minutes)" in outcome["stderr"]
    assert "nothing is published yet" in outcome["stderr"]
    assert left == []
    assert not published_database(warehouse).exists()
