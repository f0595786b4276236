"""The cluster path: the nightly job runs on a Spark standalone cluster — a master and two
workers on 127.0.0.1, started from the scripts inside pyspark (tests/spark_cluster.py) — and
the cluster leaves nothing behind.

The run is the session's one Spark job run (conftest `engine_runs`, tests/engine_runs.py):
`sales-kpi run --engine spark` with SALES_KPI_SPARK_MASTER=spark://127.0.0.1:P, its dbt
build's driver in dbt's process, its executors on the workers. That it publishes DuckDB's
marts, row by row, is test_spark_job.py's and test_engine_parity.py's, on this very run; here:
that it ran on the cluster, on both workers, and that stopping the cluster — or killing the
process that started it — leaves no Spark process running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from engine_runs import EngineRuns, processes_mentioning
from spark_cluster import WORKERS

pytestmark = [pytest.mark.spark, pytest.mark.slow]

TESTS_DIR = Path(__file__).parent


def test_the_spark_job_ran_on_the_standalone_cluster(engine_runs: EngineRuns) -> None:
    cluster = engine_runs.cluster
    assert "error" not in cluster, cluster.get("error")
    run = engine_runs.spark_run
    assert run["code"] == 0, f"exit {run['code']}\n{run['stdout'][-3000:]}\n{run['stderr'][-3000:]}"
    assert cluster["master_url"].startswith("spark://127.0.0.1:")
    assert len(cluster["workers"]) == WORKERS
    assert all(w["host"] == "127.0.0.1" and w["state"] == "ALIVE" for w in cluster["workers"])
    # the job's dbt build was the master's application
    assert cluster["completed_apps"], "no application ran on the cluster's master"


def test_both_workers_ran_tasks_of_the_job(engine_runs: EngineRuns) -> None:
    tasks = engine_runs.cluster["finished_tasks"]
    assert len(tasks) == WORKERS
    assert all(count > 0 for count in tasks.values()), tasks


def test_no_spark_process_is_left_once_the_cluster_stopped(engine_runs: EngineRuns) -> None:
    cluster = engine_runs.cluster
    # the master, the workers and the executors they started, as seen while it ran
    assert len(cluster["pids"]) >= 1 + WORKERS
    assert cluster["left_after_stop"] == []
    assert cluster["mentioning_folder_after_stop"] == []
    assert processes_mentioning(str(engine_runs.cluster_folder)) == []


# A test session that starts a cluster and is then killed (SIGKILL: no finally, no atexit).
KILLED_SESSION = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from spark_cluster import spark_cluster

    with spark_cluster(Path(sys.argv[1])) as cluster:
        print(json.dumps(sorted(cluster.process_ids())), flush=True)
        time.sleep(600)
""")
GONE_WITHIN_SECONDS = 60


def test_a_killed_test_process_leaves_no_spark_process_behind(tmp_path: Path) -> None:
    folder = tmp_path / "cluster"
    session = subprocess.Popen(
        [sys.executable, "-c", KILLED_SESSION, str(folder)],
        cwd=TESTS_DIR, env={**os.environ, "PYTHONPATH": str(TESTS_DIR)},
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    pids: list[int] = []
    try:
        pids = json.loads(session.stdout.readline() or "[]")
        assert len(pids) >= 1 + WORKERS, f"the cluster did not come up: {folder / 'logs'}"
        session.kill()
        session.wait(timeout=30)
        deadline = time.monotonic() + GONE_WITHIN_SECONDS
        while time.monotonic() < deadline and any(map(_running, pids)):
            time.sleep(0.5)
        assert [pid for pid in pids if _running(pid)] == []
        assert processes_mentioning(str(folder)) == []
    finally:
        # whatever happened above, nothing this test started keeps running
        for pid in (session.pid, *pids):
            if _running(pid):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        session.wait(timeout=30)
        session.stdout.close()


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
