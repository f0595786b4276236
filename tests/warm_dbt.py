"""dbt for the tests, forked from a warm process instead of started as a new interpreter.

Every run of the job starts dbt at least once (the build; a parse for a fresh warehouse with
other settings; `dbt docs generate` for the site), and a dbt started as a new interpreter
spends ≈ 4.5 of the ≈ 14 CPU-s of a build of the sample importing dbt, its adapter, agate
and Jinja before it reads the project. Here one process per test worker (the *warm dbt*,
tests/warm_fork.py) imports them once; the job is pointed at it through the install's choice
of dbt (SALES_KPI_DBT_EXECUTABLE, pipelines/dbt_project.py), a small client (`dbt` in the
warm process's folder) that the run guard starts as it starts dbt: the client sends its
arguments, environment, working folder and stdin/stdout/stderr to the warm dbt, which forks a
dbt that runs `dbt.cli.main.cli()` as the console script would. The client stands in for
that dbt: it passes SIGINT, SIGTERM, SIGHUP and SIGQUIT on to it, ends as it ends (exit code,
or the same signal), and when the client is killed (the run guard's PR_SET_PDEATHSIG when the
run dies) the warm dbt kills the dbt it forked. Without the warm dbt (not started, gone) the
client runs the real dbt in its place.

Not forked, because there the process tree itself is what is tested or dbt must see what an
install sees: the runs the run guard's tests stop and kill, the session's shared run as
`make run` starts it, and the read-only install's run (`real_dbt`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from warm_fork import LOG, serve

# What a dbt build, test, parse and docs generate import (dbt imports lazily, by command):
# imported here once, so that no forked dbt imports them again
PRELOAD = (
    "dbt.cli.main", "dbt.adapters.duckdb", "dbt.adapters.duckdb.impl",
    "dbt.adapters.duckdb.connections", "dbt.task.build", "dbt.task.docs.generate",
    "dbt.task.test", "dbt.task.seed", "dbt.parser.manifest", "dbt.compilation",
    "dbt.context.providers", "dbt_common.clients.agate_helper", "dbt_metricflow", "agate",
    "duckdb", "babel.dates", "google.protobuf.descriptor_pb2", "multiprocessing.dummy",
    "multiprocessing.resource_tracker", "_strptime",
)
# Set this to anything to run the suite with the real dbt everywhere (to compare, or to rule
# the warm dbt out)
COLD_DBT_ENV = "SALES_KPI_TEST_COLD_DBT"

_REAL_DBT = Path(sys.executable).with_name("dbt")

_CLIENT = '''#!{python} -IS
"""dbt forked from a test worker's warm dbt (tests/warm_dbt.py); the real dbt without it."""
import json, os, signal, socket, sys

PASSED_ON = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# what this process ignores, its dbt ignores too (as a dbt started in its place would)
ignored = [s for s in PASSED_ON if signal.getsignal(s) == signal.SIG_IGN]
connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    connection.connect({address!r})
    request = {{"args": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd(),
               "ignored": [int(s) for s in ignored]}}
    socket.send_fds(connection, [json.dumps(request).encode()], [0, 1, 2])
    reply = connection.recv(64).decode().split()
except OSError:
    reply = []
if len(reply) != 2 or reply[0] != "pid":  # no warm dbt, or it did not fork: the real one
    connection.close()
    os.execv({real!r}, [{real!r}, *sys.argv[1:]])
pid = int(reply[1])


def pass_on(signum, frame):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


for signum in PASSED_ON:
    if signum not in ignored:
        signal.signal(signum, pass_on)
reply = connection.recv(64).decode().split()
if len(reply) != 2 or reply[0] != "exit":
    sys.exit(f"the warm dbt ended before its dbt {{pid}} did")
code = int(reply[1])
if code < 0:  # ended by a signal: so does this stand-in
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
'''


class WarmDbt:
    """This test worker's warm dbt and its client, ended with the worker."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sales-kpi-warm-dbt-"))
        address = str(self.folder / "socket")
        self.client = self.folder / "dbt"
        self.client.write_text(
            _CLIENT.format(python=sys.executable, address=address, real=str(_REAL_DBT)),
            encoding="utf-8",
        )
        self.client.chmod(0o700)
        self._log = (self.folder / LOG).open("wb")
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), address, str(os.getpid())],
            cwd=self.folder, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self._process.pid
        atexit.register(self.close)

    def forked(self) -> list[int]:
        """The pids of the dbt processes forked from here that are still running."""
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):
            return [child.pid for child in psutil.Process(self.pid).children()
                    if child.status() != psutil.STATUS_ZOMBIE]
        return []

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)  # the warm process may have done it


def start_warm_dbt() -> WarmDbt | None:
    """Start this worker's warm dbt and name its client as the install's dbt (this process's
    environment, which every run of the session inherits); None with COLD_DBT_ENV set."""
    from pipelines.dbt_project import DBT_EXECUTABLE_ENV

    if os.environ.get(COLD_DBT_ENV):
        return None
    warm = WarmDbt()
    os.environ[DBT_EXECUTABLE_ENV] = str(warm.client)
    return warm


def real_dbt(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a run that starts the real dbt (the install's own)."""
    from pipelines.dbt_project import DBT_EXECUTABLE_ENV

    return {name: value for name, value in env.items() if name != DBT_EXECUTABLE_ENV}


def main() -> None:
    """`python warm_dbt.py ADDRESS PARENT_PID`: the warm process (tests/warm_fork.py); each
    fork is dbt, run as its console script runs it."""
    sys.path[0] = str(_REAL_DBT.parent)  # as for the console script: its folder first
    request = serve(sys.argv[1], int(sys.argv[2]), PRELOAD, end_abandoned=True)
    sys.argv = [str(_REAL_DBT), *request["args"]]
    # the signals as a new interpreter started by the stand-in would have them: ignored where
    # the stand-in ignores them, else Python's defaults (SIGINT: KeyboardInterrupt)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"):
        number = getattr(signal, name)
        default = signal.default_int_handler if name == "SIGINT" else signal.SIG_DFL
        signal.signal(number, signal.SIG_IGN if number in request["ignored"] else default)
    from dbt.cli.main import cli

    raise SystemExit(cli())


if __name__ == "__main__":
    main()
