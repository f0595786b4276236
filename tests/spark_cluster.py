"""A Spark standalone cluster on this machine, for the tests: one master and two workers bound
to 127.0.0.1 (README, "Engines": where Spark runs).

The launch scripts ship inside the pyspark package (SPARK_HOME = pyspark's folder). Each
daemon runs in the foreground (`bin/spark-class ... Master|Worker`, which execs the JVM) in a
process group of its own, so stopping it stops its executors too; each JVM also gets SIGKILL
from the kernel if the test process that started it dies (PR_SET_PDEATHSIG), so an
interrupted or killed test session leaves no Java process behind either. Everything the
cluster writes (work dirs, executor logs, the daemons' logs) goes under one folder.

    with spark_cluster(tmp_path / "cluster") as cluster:
        subprocess.run([...dbt...], env={**os.environ, **cluster.env})   # the driver
        cluster.finished_tasks()   # {"worker-1": 12, "worker-2": 9}
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pipelines.engines import SPARK_MASTER_ENV

LOOPBACK = "127.0.0.1"
WORKERS = 2
WORKER_CORES = 1
WORKER_MEMORY = "1g"
# JVMs start in seconds, but slowly on a busy 2-core machine
START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 30
# the line an executor logs (log4j INFO, Spark's default profile) for every task it ran
FINISHED_TASK = "Finished task"

_PR_SET_PDEATHSIG = 1


class ClusterError(RuntimeError):
    """The cluster did not come up (the message names what is missing and where its log is)."""


@dataclass
class SparkCluster:
    """A running standalone cluster: its master URL, its web UI, and the environment a driver
    (dbt's process with the `spark` target) needs to use it."""

    folder: Path
    master_url: str
    web_ui: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """What to add to a driver's environment: the master the `spark` dbt target reads
        (SALES_KPI_SPARK_MASTER, profiles.yml), and the loopback address the driver binds
        to, so the executors reach it."""
        return {SPARK_MASTER_ENV: self.master_url, "SPARK_LOCAL_IP": LOOPBACK}

    def state(self) -> dict:
        """The master's view (its web UI's `/json/`): workers, active and completed apps."""
        with urllib.request.urlopen(f"{self.web_ui}/json/", timeout=10) as response:
            return json.load(response)

    def worker_dir(self, name: str) -> Path:
        return self.folder / name

    def finished_tasks(self) -> dict[str, int]:
        """Tasks each worker's executors finished, from the executor logs in its work dir."""
        return {
            name: sum(
                log.read_text(encoding="utf-8", errors="replace").count(FINISHED_TASK)
                for log in self.worker_dir(name).glob("app-*/*/stderr")
            )
            for name in self.processes
            if name.startswith("worker")
        }

    def process_ids(self) -> set[int]:
        """The daemons and everything in their process groups (executors included)."""
        groups = {process.pid for process in self.processes.values()}
        found = set()
        for candidate in psutil.process_iter():
            with suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(candidate.pid) in groups:
                    found.add(candidate.pid)
        return found


def spark_home() -> Path:
    """pyspark's folder: it holds bin/spark-class and the jars."""
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _daemon_env(folder: Path) -> dict[str, str]:
    conf = folder / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        # an empty conf folder: no spark-defaults.conf or spark-env.sh from elsewhere
        "SPARK_CONF_DIR": str(conf),
        "SPARK_LOCAL_IP": LOOPBACK,
        "SPARK_MASTER_HOST": LOOPBACK,
        "SPARK_LOG_DIR": str(folder / "logs"),
    }


def _start(
    cluster: SparkCluster, name: str, args: list[str], env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    log = cluster.folder / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
    cluster.processes[name] = process
    return process


def _wait_for_workers(cluster: SparkCluster, workers: int) -> None:
    """Until the master answers with `workers` workers registered (none: it answers)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    alive = 0
    while time.monotonic() < deadline:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise ClusterError(
                    f"Spark {name} exited with {process.returncode}; see "
                    f"{cluster.folder / 'logs' / f'{name}.log'}"
                )
        with suppress(OSError, ValueError):
            alive = cluster.state().get("aliveworkers", 0)
            if alive >= workers:
                return
        time.sleep(1)
    raise ClusterError(
        f"{alive} of {workers} Spark workers registered with {cluster.master_url} in "
        f"{START_TIMEOUT_SECONDS} s; logs in {cluster.folder / 'logs'}"
    )


def stop(cluster: SparkCluster) -> None:
    """SIGTERM to every daemon's process group, SIGKILL to what is left after a while; returns
    when none of their processes is left (or raises, naming them)."""
    groups = [process.pid for process in cluster.processes.values()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for process in cluster.processes.values():
                process.poll()  # reaps a daemon that ended (no zombie left in its group)
            if not cluster.process_ids():
                return
            time.sleep(0.2)
    raise ClusterError(f"Spark processes still running after SIGKILL: {cluster.process_ids()}")


@contextmanager
def spark_cluster(folder: Path, workers: int = WORKERS) -> Iterator[SparkCluster]:
    """A master and `workers` workers (WORKER_CORES core, WORKER_MEMORY each) on 127.0.0.1,
    once every worker has registered; stopped on the way out, whatever happened inside. With
    no worker, a cluster that accepts an application and never gives it an executor."""
    folder.mkdir(parents=True, exist_ok=True)
    env = _daemon_env(folder)
    port, web_port = free_port(), free_port()
    cluster = SparkCluster(
        folder=folder,
        master_url=f"spark://{LOOPBACK}:{port}",
        web_ui=f"http://{LOOPBACK}:{web_port}",
    )
    try:
        _start(cluster, "master", [
            "org.apache.spark.deploy.master.Master",
            "--host", LOOPBACK, "--port", str(port), "--webui-port", str(web_port),
        ], env)
        for number in range(1, workers + 1):
            name = f"worker-{number}"
            work_dir = cluster.worker_dir(name)
            work_dir.mkdir(exist_ok=True)
            _start(cluster, name, [
                "org.apache.spark.deploy.worker.Worker",
                "--host", LOOPBACK, "--port", str(free_port()),
                "--webui-port", str(free_port()),
                "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY,
                "--work-dir", str(work_dir), cluster.master_url,
            ], {**env, "SPARK_WORKER_DIR": str(work_dir)})
        _wait_for_workers(cluster, workers)
        yield cluster
    finally:
        stop(cluster)
