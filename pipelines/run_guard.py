"""One writer per warehouse, no orphans, and a stop when asked.

A run holds an exclusive `flock` on `<warehouse>/.run.lock` from before it touches anything
until it ends; the kernel releases it when the process dies, even by `kill -9`, so a lock is
never stale. A second run is refused at once, naming the holder. dbt runs as a child process;
it is started through a guard that asks the kernel to kill it when its parent dies
(`PR_SET_PDEATHSIG`), so a killed run leaves no process writing the warehouse. SIGTERM and
SIGINT stop a run like a failure: the step is interrupted, children are ended, nothing is
half-published (publishing is an atomic rename), and the CLI prints its closing summary.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import stat
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil

T = TypeVar("T")

LOCK_FILE = ".run.lock"
_held: dict[Path, int] = {}
# The locks held for the rest of the process's life (hold_for_this_process): their context
# managers, kept referenced — a generator-based one that is dropped is closed at once, and its
# `finally` releases the lock it has just taken
_held_for_life: list[AbstractContextManager[Path]] = []


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse."""


class RunInterrupted(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM or SIGINT)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    def _arguments(self) -> tuple[Any, ...]:
        """What the constructor takes to make this stop again."""
        return (self.signum,)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._arguments())

    def again(self) -> RunInterrupted:
        """The same stop as a new exception, for another thread to raise (an exception raised
        in two threads would share one traceback)."""
        return type(self)(*self._arguments())

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 128 + its number."""
        return 128 + int(self.signum)


class RunTimedOut(RunInterrupted):
    """The run passed its time limit (setting `max_run_minutes`) and was stopped as SIGTERM
    stops it: a hung night (a Spark cluster that never gives the job an executor, a server
    that stops answering) ends, so the next night is not refused by its lock."""

    def __init__(self, minutes: float) -> None:
        super().__init__(signal.SIGTERM)
        self.args = (f"its time limit of {minutes:g} minutes (max_run_minutes)",)
        self.minutes = minutes

    def _arguments(self) -> tuple[Any, ...]:
        return (self.minutes,)

    @property
    def exit_code(self) -> int:
        """124, as `timeout(1)` ends a command that ran out of time."""
        return 124


@contextmanager
def warehouse_lock(warehouse_dir: Path) -> Iterator[Path]:
    """Hold the warehouse's run lock for the duration (re-entrant within one process)."""
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    path = _lock_path(warehouse_dir)
    if path in _held:
        yield path
        return
    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
        os.close(fd)
        raise WarehouseBusy(
            f"another run ({holder}) holds {path}; this run was refused and touched nothing"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
              .encode(), 0)
    _held[path] = fd
    try:
        yield path
    finally:
        del _held[path]
        os.close(fd)  # releases the lock


def _lock_path(warehouse_dir: Path) -> Path:
    """The lock file of a warehouse, by the warehouse's real folder (not through the file,
    which is never followed if it is a link: `_open_lock_file`)."""
    return warehouse_dir.resolve() / LOCK_FILE


def _open_lock_file(path: Path) -> int:
    """The lock file, opened for writing its holder into it: never through a link (the holder
    line truncates what it opens, and a link planted there could name any file of this user),
    and only a regular file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if path.is_symlink():
            raise WarehouseBusy(
                f"{path} is a symbolic link, not the warehouse's lock file: this run was "
                "refused and touched nothing; remove the link"
            ) from None
        raise WarehouseBusy(  # e.g. another user's run made it: not ours to remove
            f"{path} cannot be opened as the warehouse's lock file ({exc.strerror}): this run "
            "was refused and touched nothing"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise WarehouseBusy(
            f"{path} is not a regular file: this run was refused and touched nothing; remove it"
        )
    return fd


def hold_for_this_process(warehouse_dir: Path) -> None:
    """Take the lock for the rest of this process's life (a run launched by the Dagster
    daemon or UI runs in a process of its own; the kernel releases the lock when it ends).
    Within a process that already holds it (the CLI), nothing happens."""
    path = _lock_path(warehouse_dir)
    if path not in _held:
        lock = warehouse_lock(warehouse_dir)
        lock.__enter__()
        _held_for_life.append(lock)


# The stop asked of each run's job thread (run_interruptibly), by the thread: the thread,
# abandoned rather than killed, checks it before what cannot be undone. Weakly held: a later
# run in the same process has a thread, and so a stop, of its own
_stops: weakref.WeakKeyDictionary[threading.Thread, RunInterrupted] = (
    weakref.WeakKeyDictionary()
)


def stop_if_requested() -> None:
    """Raise the run's stop (RunInterrupted: its signal, or RunTimedOut) when the run whose
    job this thread runs was asked to stop: called just before a step does what cannot be
    taken back (the publication's swap), so a run stopped during its checks publishes nothing
    while its abandoned thread winds down."""
    stop = _stops.get(threading.current_thread())
    if stop is not None:
        raise stop.again()


def stop_reason() -> str | None:
    """Why the run whose job this thread runs was asked to stop — its signal's name, or its
    time limit — or None: a step failing in the seconds the run winds down failed because of
    the stop (the failure alert says so)."""
    stop = _stops.get(threading.current_thread())
    return None if stop is None else str(stop)


def run_interruptibly(
    work: Callable[[], T],
    grace_seconds: float = 2.5,
    time_limit_seconds: float | None = None,
    succeeded: Callable[[T], bool] = lambda _value: False,
) -> T:
    """Run `work` (the Dagster job) in a worker thread while the main thread waits for it, for
    SIGTERM/SIGINT and for its time limit (`time_limit_seconds`; None: none). Dagster captures
    both signals in its main thread and acts on them only at its own safe points (a long dbt
    build ignored SIGTERM to the end); in a worker thread it leaves them alone. On a signal,
    or when the time is up, every child process (dbt) is ended at once, the step fails, the
    job winds down, and RunInterrupted (RunTimedOut) is raised within a few seconds —
    whatever the job still does after `grace_seconds` is abandoned (publishing is one atomic
    rename, so nothing is ever half-published; the next run cleans up a staging file). Work
    that ends as its time runs out keeps its result when `succeeded` says it did: it was
    done before the stop (a failure then is the stop's, and the stop is raised)."""
    outcome: dict[str, Any] = {}
    deadline = None if time_limit_seconds is None else time.monotonic() + time_limit_seconds

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    received: list[int] = []
    worker = threading.Thread(target=target, name="nightly-run", daemon=True)
    previous = {
        s: signal.signal(s, lambda signum, _frame: received.append(signum))
        for s in (signal.SIGTERM, signal.SIGINT)
    }
    stop: RunInterrupted | None = None
    try:
        worker.start()
        while worker.is_alive() and stop is None:
            worker.join(0.1)
            if received:
                stop = RunInterrupted(received[0])
            elif deadline is not None and time.monotonic() >= deadline and worker.is_alive():
                stop = RunTimedOut(time_limit_seconds / 60)  # type: ignore[operator]
        if stop is None and received:  # a signal as the job ended
            stop = RunInterrupted(received[0])
        if stop is not None:
            # the handlers stay while the run winds down: a second Ctrl-C is the same stop,
            # not a KeyboardInterrupt in the middle of ending the children
            _stops[worker] = stop
            end_children(grace_seconds=1.0)
            worker.join(grace_seconds)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stop is None and received:  # a signal before its handler was put back
        stop = RunInterrupted(received[0])
    if isinstance(stop, RunTimedOut) and not worker.is_alive() and not received and (
        "value" in outcome and succeeded(outcome["value"])
    ):
        stop = None  # it finished as its time ran out: done, not stopped
    if stop is not None:
        raise stop
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def end_children(grace_seconds: float = 2.0) -> None:
    """Terminate every descendant of this process, then kill what is left after the grace."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        with suppress(psutil.NoSuchProcess):
            child.terminate()
    _gone, alive = psutil.wait_procs(children, timeout=grace_seconds)
    for child in alive:
        with suppress(psutil.NoSuchProcess):
            child.kill()


# Launchers (and so their working folder) where the kernel can tie a child's life to its parent's
GUARDED = sys.platform.startswith("linux")

_GUARD = '''#!{python}
# Runs {name} so that the kernel kills it when the run that started it dies (kill -9 included).
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
if os.getppid() == 1:
    sys.exit("the run that started " + {name!r} + " is gone")
{chdir}{hand_over}os.execvp({executable!r}, [{executable!r}, *sys.argv[1:]])
'''
# ... and, for a launcher that is given one, in the folder the run names in the environment
_CHDIR = "if os.environ.get({variable!r}):\n    os.chdir(os.environ[{variable!r}])\n"
# ... and, for dbt's, handing its command to the build's dbt started ahead when the run names
# one (pipelines/dbt_ahead.py; it returns when there is none to take it)
_HAND_OVER = (
    "if os.environ.get({variable!r}):\n"
    "    from pipelines.dbt_ahead import hand_over\n"
    "    hand_over(os.environ[{variable!r}], sys.argv[1:])\n"
)


def guarded_executable(
    executable: str, workdir_env: str | None = None, hand_over_env: str | None = None
) -> str:
    """A launcher for `executable` (dbt; Python for the audit on Spark) that dies with this
    process (Linux); elsewhere the executable itself. With `workdir_env`, the launcher starts
    the executable in the folder that environment variable names, when it is set (dbt in the
    run's warehouse: pipelines/dbt_project.py, DBT_WORKDIR_ENV). Written per process,
    executable and working-folder variable to the temporary folder, never the source tree;
    written whole (a rename) or not at all, and the launchers of processes that have ended are
    removed then (one per run would pile up). With `hand_over_env`, a launcher for dbt that
    hands its command to the dbt started ahead at the socket that variable names, when it is
    set (pipelines/dbt_ahead.py)."""
    if not GUARDED:
        return executable
    folder = launcher_folder()
    name = Path(executable).name
    digest = hashlib.sha256(
        f"{executable}\0{workdir_env or ''}\0{hand_over_env or ''}".encode()
    ).hexdigest()[:12]
    guard = folder / f"{name}{GUARD_MARK}{os.getpid()}-{digest}"
    if not guard.exists():
        _remove_ended_guards(folder)
        written = guard.with_name(f".{guard.name}.{threading.get_ident()}")
        chdir = _CHDIR.format(variable=workdir_env) if workdir_env else ""
        hand_over = _HAND_OVER.format(variable=hand_over_env) if hand_over_env else ""
        written.write_text(
            _GUARD.format(python=sys.executable, executable=executable, name=name, chdir=chdir,
                          hand_over=hand_over),
            encoding="utf-8",
        )
        written.chmod(stat.S_IRWXU)
        os.replace(written, guard)
    return str(guard)


GUARD_MARK = "-guard-"  # <name><mark><pid>…: what a process of this pid left in the folder


def launcher_folder() -> Path:
    """This user's private folder for the launchers (and the dbt started ahead's socket)."""
    return _private_folder(Path(tempfile.gettempdir()) / f"sales-kpi-{os.getuid()}")


class UnsafeFolderError(RuntimeError):
    """The folder for the launchers is not this user's own: what it holds would be run."""


def _private_folder(folder: Path) -> Path:
    """`folder`, created if missing, when it is a real folder (not a link) that this user
    owns and nobody else may write to or look into: the launchers written there are run as
    dbt, so a folder another user made first in the shared temporary folder (or a link
    they planted) would let them swap in code of their own. Refused otherwise, naming it."""
    with suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    status = folder.lstat()
    if (not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid()
            or stat.S_IMODE(status.st_mode) & 0o077):
        raise UnsafeFolderError(
            f"{folder} is not a private folder of this user (a folder of mode 0700 owned by "
            f"uid {os.getuid()}, not a link): the run will not start its processes from it; "
            "remove it, or set TMPDIR to a folder of your own"
        )
    return folder


def _remove_ended_guards(folder: Path) -> None:
    """Remove the launchers (`<name>-guard-<pid>…`) whose process has ended."""
    for path in folder.iterdir():
        _before, mark, after = path.name.partition(GUARD_MARK)
        if mark and process_ended(after.split("-", 1)[0]):
            with suppress(OSError):
                path.unlink()


def process_ended(pid: str) -> bool:
    """Whether `pid` (a process id as written in a file's name) names another process that
    no longer runs: what it left behind (a launcher, a half-made parse) may be removed."""
    return pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid))
