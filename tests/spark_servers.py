"""Spark servers on this machine, for the tests: a Spark Connect server and a Spark Thrift
server, each bound to 127.0.0.1 with its own driver on `local[2]` (README, "Engines": where
Spark runs).

Both ship inside pyspark: the Connect server is what `sbin/start-connect-server.sh --wait`
runs (`spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer`, jar
spark-connect_2.13); the Thrift server is what Spark's `sbin/start-thriftserver.sh` runs
(`spark-submit --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2
spark-internal`, jar spark-hive-thriftserver_2.13; pip's pyspark has the jar, not the
script). Each is started through `bin/spark-class` by the standalone cluster's helpers
(tests/spark_cluster.py), so it gets the same care: a process group of its own, SIGKILL from
the kernel if the test process dies, the same stop. (The scripts would put the JVM under a
shell that does not die with the test.)

A server's tables must land where the job reads them (`<warehouse>/spark/tables`): a server
has one warehouse dir, a static setting no client can change, so it is given here.

    with spark_server("connect", tmp_path / "server", warehouse / "spark" / "tables") as server:
        subprocess.run([...the Spark build...], env={**os.environ, **server.env})
        server.sessions(), server.executions()   # what the server did for its clients
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
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

SERVER = "server"
# The servers' own session timezone (the job pins its sessions to UTC)
SERVER_TIMEZONE = "America/New_York"
CLIENT_TIMEOUT_SECONDS = 180
# A Spark Connect client that prints `catalog_locations` as JSON (argv: URL, database).
_CONNECT_CLIENT = """
import json, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
database = sys.argv[2]
found = {}
for table in spark.sql(f"show tables in {database}").collect():
    rows = spark.sql(f"describe table extended {database}.{table.tableName}").collect()
    found[table.tableName] = {r.col_name: r.data_type for r in rows}["Location"]
spark.stop()
print(json.dumps(found))
"""
# What each server logs (log4j INFO, Spark's default profile) for a client's session, and for
# every plan or statement a client has it run.
CONNECT_SESSION = re.compile(r"SessionHolder: Session with userId: \S* and sessionId: (\S+)")
CONNECT_EXECUTION = "SparkConnectExecutionManager: ExecuteHolder"
THRIFT_SESSION = "ThriftCLIService: Client protocol version"
THRIFT_EXECUTION = "SparkExecuteStatementOperation: Submitting query"


@dataclass
class SparkServer(SparkCluster):
    """A running Spark server (its own driver: one process), stopped like a cluster's
    daemons. `master_url` is how a client reaches it; `kind` is `connect` or `thrift`."""

    kind: str = "connect"
    port: int = 0

    @property
    def env(self) -> dict[str, str]:
        """The job's settings for this server (what a client's environment needs)."""
        if self.kind == "connect":
            return {"SALES_KPI_SPARK_REMOTE": self.master_url}
        return {"SALES_KPI_SPARK_THRIFT_HOST": LOOPBACK,
                "SALES_KPI_SPARK_THRIFT_PORT": str(self.port),
                "SALES_KPI_SPARK_THRIFT_USER": "sales_kpi"}

    @property
    def log(self) -> Path:
        return self.folder / "logs" / f"{SERVER}.log"

    def _log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def sessions(self) -> int:
        """How many client sessions the server opened."""
        if self.kind == "connect":
            return len(set(CONNECT_SESSION.findall(self._log_text())))
        return self._log_text().count(THRIFT_SESSION)

    def executions(self) -> int:
        """How many plans or statements clients had the server run."""
        return self._log_text().count(
            CONNECT_EXECUTION if self.kind == "connect" else THRIFT_EXECUTION
        )

    def catalog_locations(self, database: str) -> dict[str, str]:
        """What another client of the server finds in `database` of its catalog: table →
        location (`describe table extended`). A Connect client runs in a process of its own
        (pyspark's Connect mode marks the process it runs in); a Thrift one is PyHive here."""
        if self.kind == "connect":
            completed = subprocess.run(
                [sys.executable, "-c", _CONNECT_CLIENT, self.master_url, database],
                capture_output=True, text=True, check=False, timeout=CLIENT_TIMEOUT_SECONDS,
            )
            if completed.returncode != 0:
                raise ClusterError(f"the Connect client failed: {completed.stderr[-3000:]}")
            return json.loads(completed.stdout.strip().splitlines()[-1])
        from pyhive import hive

        with closing(hive.connect(LOOPBACK, port=self.port, username="sales_kpi")) as con:
            cursor = con.cursor()
            cursor.execute(f"show tables in {database}")
            names = [row[1] for row in cursor.fetchall()]
            found = {}
            for name in names:
                cursor.execute(f"describe table extended {database}.{name}")
                found[name] = {row[0]: row[1] for row in cursor.fetchall()}["Location"]
            return found


def _wait_for_port(server: SparkServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    process = server.processes[SERVER]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"the Spark {server.kind} server exited with "
                               f"{process.returncode}; see {server.log}")
        with suppress(OSError), socket.create_connection((LOOPBACK, server.port), timeout=1):
            return
        time.sleep(1)
    raise ClusterError(f"the Spark {server.kind} server did not listen on "
                       f"{LOOPBACK}:{server.port} in {START_TIMEOUT_SECONDS} s; see {server.log}")


def _server_args(kind: str, folder: Path, port: int, web_port: int) -> list[str]:
    common = [
        "--master", "local[2]", "--conf", f"spark.ui.port={web_port}",
        # a server whose own defaults are not the job's: a session the job opens must still
        # run in UTC, ANSI off (the settings it sends: the target's `server_side_parameters`,
        # `set:hiveconf:` on Thrift, the session builder's on Spark Connect; profiles.yml)
        "--conf", f"spark.sql.session.timeZone={SERVER_TIMEZONE}",
        "--conf", "spark.sql.ansi.enabled=true",
    ]
    if kind == "connect":
        return [
            "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--name", "Spark Connect server", *common,
            "--conf", f"spark.connect.grpc.binding.address={LOOPBACK}",
            "--conf", f"spark.connect.grpc.binding.port={port}",
            # the build's tables are rebuilt every night: no metastore to keep
            "--conf", "spark.sql.catalogImplementation=in-memory",
        ]
    return [
        "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
        "--name", "Thrift JDBC/ODBC Server", *common,
        "--hiveconf", f"hive.server2.thrift.bind.host={LOOPBACK}",
        "--hiveconf", f"hive.server2.thrift.port={port}",
        # the Thrift server needs Hive's catalog: its Derby metastore in the server's folder
        "--conf", "spark.hadoop.javax.jdo.option.ConnectionURL="
                  f"jdbc:derby:;databaseName={folder}/metastore_db;create=true",
        "--conf", f'spark.driver.extraJavaOptions=-Dderby.system.home="{folder}"',
    ]


@contextmanager
def spark_server(kind: str, folder: Path, tables_dir: Path) -> Iterator[SparkServer]:
    """A Spark `connect` or `thrift` server on 127.0.0.1 (driver `local[2]`, its tables
    under `tables_dir`), once it accepts connections; stopped on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    port, web_port = free_port(), free_port()
    scheme = "sc" if kind == "connect" else "thrift"
    server = SparkServer(
        folder=folder, master_url=f"{scheme}://{LOOPBACK}:{port}",
        web_ui=f"http://{LOOPBACK}:{web_port}", kind=kind, port=port,
    )
    args = _server_args(kind, folder.resolve(), port, web_port)
    args += ["--conf", f"spark.sql.warehouse.dir={tables_dir.resolve()}"]
    if kind == "thrift":
        args.append("spark-internal")  # the primary resource start-thriftserver.sh names
    try:
        _start(server, SERVER, ["org.apache.spark.deploy.SparkSubmit", *args],
               {**_daemon_env(folder), "SPARK_CONNECT_MODE": "0"})
        _wait_for_port(server)
        yield server
    finally:
        stop(server)
