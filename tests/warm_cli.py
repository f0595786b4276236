"""`sales-kpi run` for the tests, started from a warm process instead of a cold interpreter.

A run started as `python -c "...main(...)"` spends ≈ 8.5 CPU-s importing Dagster,
dagster-dbt, dbt, GX and pandas before it does anything (a whole run on the sample: ≈ 26 s,
of which ≈ 17 s forked from here), and the suite starts about twenty such runs (the stops at
each step, the console's and the trust boundaries' runs, the run guard's). Here one process
per test worker (the *warm CLI*) imports those modules once; each run is a fork of it that
takes the run's arguments, environment and stdin/stdout/stderr (in the checkout), then calls
the CLI's `main()` and exits through the interpreter's normal shutdown, as `python -c`
would. The run is the same code path in a process of its own: its pid, its signals, its
children (dbt, through the run guard) and its exit code are those of a subprocess, so the
stop, kill and no-orphan tests see what they would see. Not forked: the session's shared run
(`published_warehouse`), as `make run` and cron start it, the read-only install's run (its
own imports must not write the project either) and the Spark engine's shared runs.

The warm process imports (PRELOAD) and runs nothing else: no thread, no connection, so a
fork of it is safe. It serves one Unix socket and ends, removing its folder, when its test
worker does.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

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
_MESSAGE = 1 << 20  # a request: arguments and environment as JSON
_STREAMS = 3  # stdin, stdout, stderr: passed as file descriptors (SCM_RIGHTS)
_LOG = "warm.log"  # the warm process's own output, beside its socket
# The folder the warm process (and so every run forked from it) works in: this checkout
_CHECKOUT = Path(__file__).resolve().parent.parent


# --- the warm process ------------------------------------------------------------------------


def _serve(address: str, parent: int) -> dict[str, Any]:
    """Import PRELOAD, then fork one run per request on `address` until the test worker
    (`parent`) is gone; returns (in the fork) the request the fork is to run.

    An ended run stays a zombie, as a subprocess does until its Popen waits for it: the test
    is told its exit code at once and the run is reaped only when the test closes the
    connection (WarmRun's poll or wait), so its pid names it till then."""
    sys.path[0] = ""  # as under `python -c`: the working folder (the checkout) first
    for name in PRELOAD:
        importlib.import_module(name)
    # A fork copies only the forking thread: no Python thread may be running here. (Native
    # libraries' own idle threads — OpenBLAS's pool under numpy, jemalloc's under pyarrow —
    # are there in any process that imports them; both libraries re-arm in a fork through
    # their own pthread_atfork handlers.)
    if threading.active_count() != 1:
        raise SystemExit(f"warm CLI: threads after the imports: {threading.enumerate()}")
    warm = os.getpid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen()
    runs = _Runs()
    try:
        while os.getppid() == parent:
            ready, _, _ = select.select([listener, *runs.watched()], [], [], 0.05)
            runs.report_ended()
            for connection in ready:
                if connection is not listener:
                    runs.closed_by_test(connection)
            if listener not in ready:
                continue
            accepted: socket.socket | None = None
            try:
                accepted, _ = listener.accept()
                accepted.settimeout(5)  # a test that connects sends its request at once
                message, streams, _, _ = socket.recv_fds(accepted, _MESSAGE, _STREAMS)
                accepted.settimeout(None)
            except OSError:  # a test gone (or stuck) mid-request: the others go on
                if accepted is not None:
                    accepted.close()
                continue
            connection = accepted
            if not message or len(streams) != _STREAMS:  # not a request: a probe, a test gone
                for stream in streams:
                    os.close(stream)
                connection.close()
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                runs.close_all()
                connection.close()
                request = json.loads(message)
                _become_the_run(request, streams)
                return request
            for stream in streams:
                os.close(stream)
            runs.started(pid, connection)
    finally:
        if os.getpid() == warm:  # not in a fork on its way to the run
            Path(address).unlink(missing_ok=True)
    # the test worker is gone: its folder goes too (had this process failed, the error its
    # test got quotes the log)
    Path(address).with_name(_LOG).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        Path(address).parent.rmdir()
    raise SystemExit(0)


class _Runs:
    """The warm process's runs: each one's connection to its test, which runs have ended
    (told, not yet reaped) and which tests have closed their connection before the end."""

    def __init__(self) -> None:
        self._connections: dict[int, socket.socket] = {}
        self._ended: set[int] = set()
        self._abandoned: set[int] = set()

    def started(self, pid: int, connection: socket.socket) -> None:
        self._connections[pid] = connection
        with contextlib.suppress(OSError):  # the test went away: reaped when the run ends
            connection.send(f"pid {pid}".encode())

    def watched(self) -> list[socket.socket]:
        """The connections whose close means something: those of tests still listening."""
        return [c for pid, c in self._connections.items() if pid not in self._abandoned]

    def report_ended(self) -> None:
        """Tell the test of each run that has ended since its exit code, as Popen's (-N for
        signal N); waitid(WNOWAIT) leaves the run a zombie. A run whose test has gone is
        reaped at once."""
        for pid, connection in list(self._connections.items()):
            if pid in self._ended:
                continue
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is None or info.si_pid == 0:
                continue
            self._ended.add(pid)
            code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            with contextlib.suppress(OSError):
                connection.send(f"exit {code}".encode())
            if pid in self._abandoned:
                self._reap(pid)

    def closed_by_test(self, connection: socket.socket) -> None:
        """The test closed its connection: it has waited for the run (reap it) or has gone
        before the run ended (reap it when it does)."""
        with contextlib.suppress(OSError):
            if connection.recv(64):
                return  # nothing is sent this way: a message is not a close
        pid = next(pid for pid, known in self._connections.items() if known is connection)
        if pid in self._ended:
            self._reap(pid)
        else:
            self._abandoned.add(pid)

    def _reap(self, pid: int) -> None:
        os.waitpid(pid, 0)
        self._connections.pop(pid).close()
        self._ended.discard(pid)
        self._abandoned.discard(pid)

    def close_all(self) -> None:
        """In a fork: the other runs' connections are not the new run's."""
        for connection in self._connections.values():
            connection.close()


def _become_the_run(request: Mapping[str, Any], streams: Sequence[int]) -> None:
    """In the fork: the run's standard streams, environment and arguments (its folder is the
    warm process's: the checkout, as for `python -c` started there)."""
    for target, stream in enumerate(streams):
        os.dup2(stream, target)
        os.close(stream)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["-c", *request["args"]]


def main() -> None:
    """`python warm_cli.py ADDRESS PARENT_PID`: the warm process; each fork runs the CLI."""
    request = _serve(sys.argv[1], int(sys.argv[2]))
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
        self._folder = Path(tempfile.mkdtemp(prefix="sales-kpi-warm-cli-"))
        self._address = str(self._folder / "socket")
        self._log = (self._folder / _LOG).open("wb")
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), self._address, str(os.getpid())],
            cwd=_CHECKOUT, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        atexit.register(self.close)

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + 300
        while True:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                connection.connect(self._address)
                return connection
            except (FileNotFoundError, ConnectionRefusedError):
                connection.close()
                ended = self._process.poll()
                if ended is not None or time.monotonic() > deadline:
                    log = self._folder / _LOG
                    shown = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                    raise RuntimeError(
                        f"the warm CLI is not running (exit {ended}); its output:\n{shown}"
                    ) from None
                time.sleep(0.05)

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
        return WarmRun(connection, parents.get("out"), parents.get("err"))

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._log.close()
        shutil.rmtree(self._folder, ignore_errors=True)  # the warm process may have done it


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
