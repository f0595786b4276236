"""`sales-kpi run` for the tests, started from a warm process instead of a cold interpreter.

A run started as `python -c "...main(...)"` spends ≈ 8.5 CPU-s importing Dagster,
dagster-dbt, dbt, GX and pandas before it does anything (a whole run on the sample: ≈ 26 s,
of which ≈ 17 s forked from here), and the suite starts about twenty such runs (the stops at
each step, the console's and the trust boundaries' runs, the run guard's). Here one process
per test worker (the *warm CLI*) imports those modules once; each run is a fork of it that
takes the run's arguments, environment, working folder and stdin/stdout/stderr, then calls
the CLI's `main()` and exits through the interpreter's normal shutdown, as `python -c`
would. The run is the same code path in a process of its own: its pid, its signals, its
children (dbt, through the run guard) and its exit code are those of a subprocess, so the
stop, kill and no-orphan tests see what they would see. The session's shared run
(`published_warehouse`) alone starts a new interpreter, as `make run` and cron do; the
read-only install's run is a fork too, in a mount namespace of its own where the project
folder is read-only.

The warm process imports and never runs anything itself (no thread, no connection: a fork
of it is safe), serves one Unix socket, and ends when its test worker does.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
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

# What a whole run imports (the CLI imports lazily, by step): each is one a run need not
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
_MESSAGE = 1 << 20  # a request: arguments, environment and working folder as JSON
_STREAMS = 3  # stdin, stdout, stderr: passed as file descriptors (SCM_RIGHTS)


# --- the warm process ------------------------------------------------------------------------


def _serve(address: str, parent: int) -> dict[str, Any]:
    """Import PRELOAD, then fork one run per request on `address` until the test worker
    (`parent`) is gone; returns (in the fork) the request the fork is to run."""
    sys.path[0] = ""  # as under `python -c`: the working folder (the checkout) first
    for name in PRELOAD:
        importlib.import_module(name)
    if threading.active_count() != 1:  # a fork copies no thread: none may be running here
        raise SystemExit(f"warm CLI: threads after the imports: {threading.enumerate()}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen()
    runs: dict[int, socket.socket] = {}
    while os.getppid() == parent:
        ready, _, _ = select.select([listener], [], [], 0.05)
        _report_ended(runs)
        if not ready:
            continue
        connection, _ = listener.accept()
        message, streams, _, _ = socket.recv_fds(connection, _MESSAGE, _STREAMS)
        if not message or len(streams) != _STREAMS:  # not a request: a probe, a test gone
            for stream in streams:
                os.close(stream)
            connection.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            for other in runs.values():
                other.close()
            connection.close()
            request = json.loads(message)
            _become_the_run(request, streams)
            return request
        for stream in streams:
            os.close(stream)
        runs[pid] = connection
        with contextlib.suppress(OSError):  # the test went away; its run is reaped all the same
            connection.send(f"pid {pid}".encode())
    raise SystemExit(0)


def _report_ended(runs: dict[int, socket.socket]) -> None:
    """Tell each ended run's test its exit code (as Popen's: -N for signal N)."""
    while runs:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        connection = runs.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(OSError):  # the test went away
                connection.send(f"exit {os.waitstatus_to_exitcode(status)}".encode())
            connection.close()


def _become_the_run(request: Mapping[str, Any], streams: Sequence[int]) -> None:
    """In the fork: the run's standard streams, environment, folder and arguments; with
    `read_only` the folder bind-mounted read-only onto itself first, in a mount namespace of
    the run's own (what `unshare -m` does)."""
    for target, stream in enumerate(streams):
        os.dup2(stream, target)
        os.close(stream)
    if request["read_only"]:
        _mount_read_only(request["cwd"])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["-c", *request["args"]]


def _mount_read_only(folder: str) -> None:
    """`folder` read-only for this process and its children only: a private mount namespace
    (unshare(2); a fork has a single thread, as unshare needs), mounts private within it, the
    folder bound onto itself and remounted read-only. Fails unless the folder is then
    read-only."""
    import ctypes

    clone_newns = 0x00020000
    if ctypes.CDLL(None, use_errno=True).unshare(clone_newns) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    for mount in (["--make-rprivate", "/"], ["--rbind", folder, folder],
                  ["-o", "remount,bind,ro", folder]):
        subprocess.run(["mount", *mount], check=True)
    if os.access(folder, os.W_OK):
        raise OSError(f"{folder} is still writable")


def main() -> None:
    """`python warm_cli.py ADDRESS PARENT_PID`: the warm process; each fork runs the CLI."""
    request = _serve(sys.argv[1], int(sys.argv[2]))
    from pipelines.cli import main as cli_main

    raise SystemExit(cli_main(request["args"]))


# --- the test's side ---------------------------------------------------------------------------


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
        kind, value = connection.recv(64).decode().split()
        assert kind == "pid", kind
        self.pid = int(value)

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _, _ = select.select([self._connection], [], [], 0)
            if ready:
                self._read_exit()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            ready, _, _ = select.select([self._connection], [], [], timeout)
            if not ready:
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
        if self.returncode is None:
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
        self.wait(timeout)
        for reader in self._readers:
            reader.join()
        return self._read.get("out"), self._read.get("err")

    def _read_all(self, name: str, stream: IO[Any]) -> None:
        with stream:
            self._read[name] = stream.read()


class WarmCli:
    """This test worker's warm process, started on first use and ended with the worker."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="sales-kpi-warm-cli-"))
        self._address = str(self._folder / "socket")
        self._log = (self._folder / "warm.log").open("wb")
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), self._address, str(os.getpid())],
            cwd=Path(__file__).resolve().parent.parent, stdin=subprocess.DEVNULL,
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
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the warm CLI did not start: " + (
                        self._folder / "warm.log").read_text(errors="replace")[-3000:]) from None
                time.sleep(0.05)

    def popen(
        self, args: Sequence[str], *, env: Mapping[str, str], cwd: Path,
        stdout: IO[Any] | int | None = None, stderr: IO[Any] | int | None = None,
        text: bool = False, read_only: bool = False,
    ) -> WarmRun:
        """`sales-kpi ARGS` forked from the warm process with `env`, in `cwd` (with
        `read_only`, `cwd` bind-mounted read-only for the run: `_mount_read_only`); stdin is
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
        connection = self._connect()
        try:
            request = {"args": list(args), "env": dict(env), "cwd": str(cwd),
                       "read_only": read_only}
            socket.send_fds(connection, [json.dumps(request).encode()], [stdin, out, err])
        finally:
            for descriptor in opened:
                os.close(descriptor)
        return WarmRun(connection, parents.get("out"), parents.get("err"))

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._log.close()
        for path in self._folder.iterdir():
            path.unlink()
        self._folder.rmdir()


_WARM: list[WarmCli] = []
_STARTING = threading.Lock()  # runs may be started from several threads (a ThreadPoolExecutor)


def warm_cli() -> WarmCli:
    """This test worker's warm CLI (started on first use)."""
    with _STARTING:
        if not _WARM:
            _WARM.append(WarmCli())
    return _WARM[0]


def run_warm(
    args: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float, text: bool,
    read_only: bool = False,
) -> subprocess.CompletedProcess[Any]:
    """`sales-kpi ARGS` to its end, output captured: subprocess.run(capture_output=True)."""
    run = warm_cli().popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=text, read_only=read_only)
    try:
        out, err = run.communicate(timeout)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        raise
    return subprocess.CompletedProcess(["sales-kpi", *args], run.wait(), out, err)


if __name__ == "__main__":
    main()
