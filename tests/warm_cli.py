"""`sales-kpi run` for the tests, started from a warm process instead of a cold interpreter.

A run started as `python -c "...main(...)"` spends ≈ 8.5 CPU-s importing Dagster,
dagster-dbt, dbt, GX and pandas before it does anything (a whole run on the sample: ≈ 26 s,
of which ≈ 17 s forked from here), and the suite starts about twenty such runs (the stops at
each step, the console's and the trust boundaries' runs, the run guard's). Here one process
per test worker (the *warm CLI*, tests/warm_fork.py) imports those modules once; each run
is a fork of it that takes the run's arguments, environment and stdin/stdout/stderr (in the
checkout), then calls the CLI's `main()` and exits through the interpreter's normal
shutdown, as `python -c` would. The run is the same code path in a process of its own: its
pid, its signals, its children (dbt, through the run guard: the real dbt in the tests that look
at them, tests/warm_dbt.py) and its exit code are those of a subprocess, so the stop, kill and
no-orphan tests see what they would see. Not forked: the
session's shared run (`published_warehouse`), as `make run` and cron start it, the read-only
install's run (its own imports must not write the project either) and the Spark engine's
shared runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from warm_fork import WarmProcess, serve

# What a whole run imports (the CLI imports lazily, by step): imported here once, so that no
# run imports them again. Importing pipelines.assets.dbt prepares the dbt manifest when it is
# stale (pipelines/dbt_project.py), as any process importing it does: here, once.
PRELOAD = (
    "pipelines.cli", "pipelines.job_runner", "pipelines.console", "pipelines.console_log",
    "pipelines.no_op", "pipelines.publish", "pipelines.publication_ahead",
    "pipelines.run_summary", "pipelines.ingest.loader", "pipelines.assets.raw",
    "pipelines.assets.quality", "pipelines.assets.publish", "pipelines.assets.site",
    "pipelines.quality.run_checks", "pipelines.quality.gx_duckdb", "pipelines.quality.data_docs",
    "pipelines.reporting.dashboard", "pipelines.adapters.compile",
    "great_expectations.render.renderer.site_builder", "duckdb_engine", "pyarrow.pandas_compat",
    "dagster._core.execution.execute_in_process", "dagster._core.instance.factory",
    "dagster._core.storage.sqlite", "dagster._core.executor.in_process",
    "dagster._core.launcher.sync_in_memory_run_launcher", "dagster._daemon", "alembic",
    "structlog", "rich.console",
)
# The folder the warm process (and so every run forked from it) works in: this checkout
_CHECKOUT = Path(__file__).resolve().parent.parent


def main() -> None:
    """`python warm_cli.py ADDRESS PARENT_PID`: the warm process (tests/warm_fork.py); each
    fork runs the CLI, in the checkout, as `python -c` started there would."""
    sys.path[0] = ""  # as under `python -c`: the working folder (the checkout) first
    request = serve(sys.argv[1], int(sys.argv[2]), PRELOAD, end_abandoned=False)
    sys.argv = ["-c", *request["args"]]
    from pipelines.cli import main as cli_main

    raise SystemExit(cli_main(request["args"]))


# --- the test's side ---------------------------------------------------------------------------


def _readable(connection: socket.socket, timeout: float | None) -> bool:
    """Whether the warm process has said something (or closed) within `timeout` seconds
    (None: wait for it). poll(2), not select(2): a long session's descriptors may pass 1024."""
    poller = select.poll()
    poller.register(connection, select.POLLIN | select.POLLHUP)
    return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))


class WarmRun:
    """A run forked by the warm CLI, used as a subprocess.Popen: pid, poll, wait, signals,
    and (with `stdout`/`stderr` PIPE) its output through communicate()."""

    def __init__(self, connection: socket.socket, stdout: IO[Any] | None,
                 stderr: IO[Any] | None) -> None:
        self._connection = connection
        self.stdout, self.stderr = stdout, stderr
        self.returncode: int | None = None
        self._readers: list[threading.Thread] | None = None
        self._read: dict[str, Any] = {}
        connection.settimeout(300)  # the fork comes at once, unless the warm process is stuck
        try:
            reply = connection.recv(64).decode().split()
        finally:
            connection.settimeout(None)
        if len(reply) != 2 or reply[0] != "pid":
            raise RuntimeError(f"the warm CLI did not start the run (it said {reply!r})")
        self.pid = int(reply[1])

    def poll(self) -> int | None:
        if self.returncode is None and _readable(self._connection, 0):
            self._read_exit()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not _readable(self._connection, timeout):
                raise subprocess.TimeoutExpired("warm sales-kpi run", timeout or 0)
            self._read_exit()
        assert self.returncode is not None
        return self.returncode

    def _read_exit(self) -> None:
        reply = self._connection.recv(64).decode()
        self._connection.close()
        if not reply:
            raise RuntimeError(f"the warm CLI ended before its run {self.pid} did")
        self.returncode = int(reply.split()[1])

    def send_signal(self, signal_number: int) -> None:
        """As Popen's: not to a run already waited for; a run that has just ended is a
        zombie till then, so the pid cannot name another process."""
        self.poll()
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal_number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[Any, Any]:
        """Everything the run writes to its piped streams, once it has ended (readers on both
        pipes from the first call on, as Popen's, so that neither fills up)."""
        if self._readers is None:
            self._readers = [
                threading.Thread(target=self._read_all, args=(name, stream), daemon=True)
                for name, stream in (("out", self.stdout), ("err", self.stderr)) if stream
            ]
            for reader in self._readers:
                reader.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wait(timeout)
        for reader in self._readers:
            # a process the run left behind may still hold a pipe: a timeout, not a hang
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired("warm sales-kpi run (its output)", timeout or 0)
        for name in ("out", "err"):
            if isinstance(self._read.get(name), BaseException):  # e.g. output not UTF-8
                raise self._read[name]
        return self._read.get("out"), self._read.get("err")

    def _read_all(self, name: str, stream: IO[Any]) -> None:
        with stream:
            try:
                self._read[name] = stream.read()
            except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
                self._read[name] = exc


class WarmCli:
    """This test worker's warm process, started on first use and ended with the worker."""

    def __init__(self) -> None:
        self._warm = WarmProcess(Path(__file__), "sales-kpi-warm-cli-", cwd=_CHECKOUT)
        self._warm.wait_listening()

    def _connect(self) -> socket.socket:
        """A connection to the warm process (listening since it was handed out: a socket
        missing or refusing means it has ended)."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.connect(self._warm.address)
        except (FileNotFoundError, ConnectionRefusedError):
            connection.close()
            raise RuntimeError(self._warm.failure()) from None
        return connection

    def popen(
        self, args: Sequence[str], *, env: Mapping[str, str],
        stdout: IO[Any] | int | None = None, stderr: IO[Any] | int | None = None,
        text: bool = False,
    ) -> WarmRun:
        """`sales-kpi ARGS` forked from the warm process with `env`, in the checkout; stdin is
        /dev/null, stdout and stderr a file, subprocess.PIPE, subprocess.DEVNULL,
        subprocess.STDOUT (stderr) or, with None, this process's."""
        opened: list[int] = []
        parents: dict[str, IO[Any]] = {}

        def stream(target: IO[Any] | int | None, name: str, default: int) -> int:
            if target is None:
                return default
            if target == subprocess.DEVNULL:
                opened.append(os.open(os.devnull, os.O_WRONLY))
                return opened[-1]
            if target == subprocess.PIPE:
                reading, writing = os.pipe()
                parents[name] = os.fdopen(reading, "r" if text else "rb")
                opened.append(writing)
                return writing
            return target.fileno() if hasattr(target, "fileno") else int(target)

        stdin = os.open(os.devnull, os.O_RDONLY)
        opened.append(stdin)
        out = stream(stdout, "out", 1)
        err = out if stderr == subprocess.STDOUT else stream(stderr, "err", 2)
        try:
            request = json.dumps({"args": list(args), "env": dict(env)})
            connection = self._connect()
            try:
                socket.send_fds(connection, [request.encode()], [stdin, out, err])
            except BaseException:
                connection.close()  # the warm process drops a request that never came
                raise
        finally:
            for descriptor in opened:
                os.close(descriptor)
        try:
            return WarmRun(connection, parents.get("out"), parents.get("err"))
        except (OSError, RuntimeError) as exc:  # e.g. its imports failed with this request queued
            connection.close()
            raise RuntimeError(f"{exc}; {self._warm.failure()}") from exc


_WARM: list[WarmCli] = []
_STARTING = threading.Lock()  # runs may be started from several threads (a ThreadPoolExecutor)


def warm_cli() -> WarmCli:
    """This test worker's warm CLI (started on first use)."""
    with _STARTING:
        if not _WARM:
            _WARM.append(WarmCli())
    return _WARM[0]


def run_warm(
    args: Sequence[str], *, env: Mapping[str, str], timeout: float, text: bool
) -> subprocess.CompletedProcess[Any]:
    """`sales-kpi ARGS` to its end, output captured: subprocess.run(capture_output=True)."""
    run = warm_cli().popen(args, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=text)
    try:
        out, err = run.communicate(timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        run.wait()
        raise
    return subprocess.CompletedProcess(["sales-kpi", *args], run.wait(), out, err)


if __name__ == "__main__":
    main()
