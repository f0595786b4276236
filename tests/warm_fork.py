"""A warm process: imports a program's modules once, then forks one run of it per request.

The tests start two kinds of program many times over: `sales-kpi run` (tests/warm_cli.py)
and, inside every run, dbt (tests/warm_dbt.py). Each start of a new interpreter pays seconds
of CPU importing the same modules. A warm process imports them once (`preload`) and serves a
Unix socket; a request carries the run's arguments, environment, optionally its working
folder, and its stdin/stdout/stderr as file descriptors (SCM_RIGHTS); the run is a fork of
the warm process that takes them and goes on to the program's own entry point. The run is a
process of its own: its pid, its signals and its exit code are those of a subprocess.

Protocol on a SOCK_SEQPACKET connection: the requester sends the request; the warm process
answers `pid N` once it has forked and `exit N` when the run has ended (N as Popen's
returncode: -S for signal S). An ended run stays a zombie, as a subprocess does until its
Popen waits for it, until the requester closes the connection, so its pid names it till then.
A requester that closes the connection before the end has gone: its run goes on to its end
or, with `end_abandoned`, is killed (a dbt whose run was killed must not outlive it).

The warm process imports, may run its program once to warm it up (`warm_up`: code that
Python's libraries generate and cache on first use), and runs nothing else: no thread and no
connection are left when it starts to fork, so a fork of it is safe. It ends, removing its
folder, when the process that started it does.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

MESSAGE = 1 << 20  # a request: arguments, environment and working folder as JSON
STREAMS = 3  # stdin, stdout, stderr: passed as file descriptors (SCM_RIGHTS)
LOG = "warm.log"  # a warm process's own output, beside its socket


def serve(address: str, parent: int, preload: Sequence[str], *, end_abandoned: bool,
          warm_up: Callable[[], None] | None = None,
          held: Sequence[int] = ()) -> dict[str, Any]:
    """Import `preload` and run `warm_up`, then fork one run per request on `address` until
    `parent` is gone; returns (in the fork) the request the fork is to run, its streams,
    environment and working folder already taken. The socket listens before the imports: a
    request made meanwhile waits in its backlog. `warm_up` must leave no thread, no child
    process, no open connection and its environment and working folder as it found them.

    The signals `held` reach the fork blocked: the fork's pid is told to its requester at
    once, and a signal sent to it before the run has set how it handles them (which the caller
    does, then puts back the mask the request's `signal_mask` gives: the warm process's) waits
    for that instead of meeting the warm process's handling (a SIGINT that the warm process
    ignores would be lost)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # bound and listening under another name, then renamed: a socket at `address` listens
    # (a connection to one bound but not yet listening would be refused)
    binding = f"{address}.binding"
    listener.bind(binding)
    listener.listen(64)
    os.rename(binding, address)
    warm = os.getpid()
    runs = _Runs(end_abandoned)
    try:
        for name in preload:
            importlib.import_module(name)
        native_threads = len(os.listdir("/proc/self/task"))
        if warm_up is not None:
            warm_up()
            if len(os.listdir("/proc/self/task")) != native_threads:
                raise SystemExit("warm process: its warm-up left threads running")
            if _has_children():  # a fork would share it, and `_Runs` would not know it
                raise SystemExit("warm process: its warm-up left a child process")
        # A fork copies only the forking thread: no Python thread may be running here.
        # (Native libraries' own idle threads — OpenBLAS's pool under numpy, jemalloc's under
        # pyarrow — are there in any process that imports them; both libraries re-arm in a
        # fork through their own pthread_atfork handlers.)
        if threading.active_count() != 1:
            raise SystemExit(f"warm process: threads after the imports: {threading.enumerate()}")
        while os.getppid() == parent:
            ready, _, _ = select.select([listener, *runs.watched()], [], [], 0.05)
            runs.report_ended()
            for connection in ready:
                if connection is not listener:
                    runs.closed_by_requester(connection)
            if listener not in ready:
                continue
            accepted: socket.socket | None = None
            try:
                accepted, _ = listener.accept()
                accepted.settimeout(5)  # a requester that connects sends its request at once
                message, streams, _, _ = socket.recv_fds(accepted, MESSAGE, STREAMS)
                accepted.settimeout(None)
            except OSError:  # a requester gone (or stuck) mid-request: the others go on
                if accepted is not None:
                    accepted.close()
                continue
            connection = accepted
            if not message or len(streams) != STREAMS:  # not a request: a probe, one gone
                for stream in streams:
                    os.close(stream)
                connection.close()
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, held)
            pid = os.fork()
            if pid == 0:
                listener.close()
                runs.close_all()
                connection.close()
                request = json.loads(message)
                _become_the_run(request, streams, die_with=warm if end_abandoned else None)
                request["signal_mask"] = sorted(int(s) for s in mask)  # the warm process's own
                return request
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for stream in streams:
                os.close(stream)
            runs.started(pid, connection)
    finally:
        if os.getpid() == warm:  # not in a fork on its way to the run
            Path(address).unlink(missing_ok=True)
    # the process that started this one is gone: the folder goes too
    Path(address).with_name(LOG).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        Path(address).parent.rmdir()
    raise SystemExit(0)


def _has_children() -> bool:
    """Whether this process has a child (running, or ended and not yet waited for)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


class _Runs:
    """The warm process's runs: each one's connection to its requester, which runs have ended
    (told, not yet reaped) and which requesters have closed their connection before the end."""

    def __init__(self, end_abandoned: bool) -> None:
        self._end_abandoned = end_abandoned
        self._connections: dict[int, socket.socket] = {}
        self._ended: set[int] = set()
        self._abandoned: set[int] = set()

    def started(self, pid: int, connection: socket.socket) -> None:
        self._connections[pid] = connection
        with contextlib.suppress(OSError):  # the requester went away: see closed_by_requester
            connection.send(f"pid {pid}".encode())

    def watched(self) -> list[socket.socket]:
        """The connections whose close means something: those of requesters still there."""
        return [c for pid, c in self._connections.items() if pid not in self._abandoned]

    def report_ended(self) -> None:
        """Tell the requester of each run that has ended since its exit code, as Popen's (-N
        for signal N); waitid(WNOWAIT) leaves the run a zombie. A run whose requester has gone
        is reaped at once."""
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

    def closed_by_requester(self, connection: socket.socket) -> None:
        """The requester closed its connection: it has waited for the run (reap it) or has
        gone before the run ended (reap it when it does; with end_abandoned, kill it first)."""
        with contextlib.suppress(OSError):
            if connection.recv(64):
                return  # nothing is sent this way: a message is not a close
        pid = next(pid for pid, known in self._connections.items() if known is connection)
        if pid in self._ended:
            self._reap(pid)
            return
        self._abandoned.add(pid)
        if self._end_abandoned:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _reap(self, pid: int) -> None:
        os.waitpid(pid, 0)
        self._connections.pop(pid).close()
        self._ended.discard(pid)
        self._abandoned.discard(pid)

    def close_all(self) -> None:
        """In a fork: the other runs' connections are not the new run's."""
        for connection in self._connections.values():
            connection.close()


def _become_the_run(
    request: Mapping[str, Any], streams: Sequence[int], die_with: int | None
) -> None:
    """In the fork: the run's standard streams, environment and working folder (none given:
    the warm process's own); with `die_with`, killed by the kernel when the warm process
    (single-threaded: PR_SET_PDEATHSIG follows the thread that forked) ends, so that no run
    outlives it either."""
    if die_with is not None:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != die_with:
            os._exit(1)  # it ended before the prctl
    for target, stream in enumerate(streams):
        os.dup2(stream, target)
        os.close(stream)
    os.environ.clear()
    os.environ.update(request["env"])
    if request.get("cwd"):
        os.chdir(request["cwd"])


class WarmProcess:
    """A warm process (`python SCRIPT ADDRESS PARENT_PID`, whose `main` calls `serve`) started
    by this process, its socket and log in a private temporary folder; ended, and the folder
    removed, by close() or when this process ends."""

    def __init__(self, script: Path, prefix: str, cwd: Path | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.address = str(self.folder / "socket")
        self._log = (self.folder / LOG).open("wb")
        self._process = subprocess.Popen(
            [sys.executable, str(script), self.address, str(os.getpid())],
            cwd=cwd or self.folder, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self._process.pid
        atexit.register(self.close)

    def poll(self) -> int | None:
        return self._process.poll()

    def wait_listening(self, seconds: float = 60) -> None:
        """Until its socket listens (it does before its imports, and is there only once it
        listens: `serve`): a request made before would find no socket."""
        deadline = time.monotonic() + seconds
        while not Path(self.address).exists():
            if self.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.failure())
            time.sleep(0.01)

    def failure(self) -> str:
        """Why requests fail: its exit code and the end of its log."""
        log = self.folder / LOG
        shown = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        return f"the warm process is not running (exit {self.poll()}); its output:\n{shown}"

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)  # the warm process may have done it
