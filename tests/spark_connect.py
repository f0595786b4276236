"""A Spark Connect server on this machine, for the tests: bound to 127.0.0.1, its own driver on
`local[2]` (README, "Engines": where Spark runs).

It is what pyspark's `sbin/start-connect-server.sh --wait` runs (`spark-submit --class
org.apache.spark.sql.connect.service.SparkConnectServer`; the server's jar,
spark-connect_2.13, ships in pyspark's jars/), started through `bin/spark-class` by the
standalone cluster's helpers (tests/spark_cluster.py), so it gets the same care: a process
group of its own, SIGKILL from the kernel if the test process dies, the same stop. The
script itself would put the JVM under a shell that does not die with the test.

The server's tables must land where the job reads them (`<warehouse>/spark/tables`): a
server has one warehouse dir, a static setting no client can change, so it is given here.

    with spark_connect_server(tmp_path / "connect", warehouse / "spark" / "tables") as server:
        subprocess.run([...sales-kpi run --engine spark...], env={**os.environ, **server.env})
        server.executions()   # statements the server ran for its clients
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from spark_cluster import (
    LOOPBACK,
    START_TIMEOUT_SECONDS,
    ClusterError,
    SparkCluster,
    _daemon_env,
    _start,
    free_port,
    stop,
)

CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
SERVER = "connect-server"
# what the server logs (log4j INFO, Spark's default profile) for a client's session and for
# every plan or statement a client sends it
SESSION_LINE = re.compile(r"SessionHolder: Session with userId: \S* and sessionId: (\S+)")
EXECUTION_LINE = "SparkConnectExecutionManager: ExecuteHolder"


@dataclass
class ConnectServer(SparkCluster):
    """A running Spark Connect server: `master_url` is its `sc://` URL. One process (the
    server is its own driver), stopped like a cluster's daemons."""

    @property
    def env(self) -> dict[str, str]:
        """What a client's environment needs: the job's setting for a Connect server."""
        return {"SALES_KPI_SPARK_REMOTE": self.master_url}

    @property
    def log(self) -> Path:
        return self.folder / "logs" / f"{SERVER}.log"

    def sessions(self) -> set[str]:
        """The ids of the client sessions the server has served."""
        return set(SESSION_LINE.findall(self.log.read_text(encoding="utf-8", errors="replace")))

    def executions(self) -> int:
        """How many plans and statements clients had the server run."""
        return self.log.read_text(encoding="utf-8", errors="replace").count(EXECUTION_LINE)


def _wait_for_port(server: ConnectServer, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    process = server.processes[SERVER]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"the Spark Connect server exited with {process.returncode}; "
                               f"see {server.log}")
        with suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
            return
        time.sleep(1)
    raise ClusterError(f"the Spark Connect server did not listen on {LOOPBACK}:{port} in "
                       f"{START_TIMEOUT_SECONDS} s; see {server.log}")


@contextmanager
def spark_connect_server(folder: Path, tables_dir: Path) -> Iterator[ConnectServer]:
    """A Spark Connect server on 127.0.0.1 (driver `local[2]`, an in-memory catalog, its
    tables under `tables_dir`), once it accepts connections; stopped on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    port, web_port = free_port(), free_port()
    server = ConnectServer(
        folder=folder, master_url=f"sc://{LOOPBACK}:{port}", web_ui=f"http://{LOOPBACK}:{web_port}",
    )
    try:
        _start(server, SERVER, [
            "org.apache.spark.deploy.SparkSubmit", "--class", CONNECT_SERVER_CLASS,
            "--name", "Spark Connect server", "--master", "local[2]",
            "--conf", f"spark.connect.grpc.binding.address={LOOPBACK}",
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", f"spark.ui.port={web_port}",
            # the build's tables are rebuilt every night: no metastore to keep
            "--conf", "spark.sql.catalogImplementation=in-memory",
            "--conf", f"spark.sql.warehouse.dir={tables_dir.resolve()}",
        ], {**_daemon_env(folder), "SPARK_CONNECT_MODE": "0"})
        _wait_for_port(server, port)
        yield server
    finally:
        stop(server)
