"""One writer at a time, no orphans, a stop when asked, and messages that tell the truth.

Real processes: the CLI runs in a subprocess on a small generated sample; the tests look for
its dbt child with psutil, send it signals, and check what is left on disk.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import duckdb
import psutil
import pytest
from conftest import lock_held_elsewhere, recorded
from run_guard_steps import RESUMING, left_running
from warm_cli import WarmRun, warm_cli
from warm_dbt import real_dbt

from pipelines.cli import EXIT_BUSY, main
from pipelines.publish import published_state
from pipelines.run_guard import WarehouseBusy, warehouse_lock

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample(sample_extracts: Path) -> Path:
    """The session's generated sample (conftest.py); the runs here only read it."""
    return sample_extracts


def _start_run(sample: Path, warehouse: Path) -> WarmRun:
    """`sales-kpi run` without the site, forked from the warm CLI (tests/warm_cli.py), with
    the real dbt (tests/warm_dbt.py `real_dbt`): its process tree is what is looked at."""
    return warm_cli().popen(
        ["run", "--extracts", str(sample), "--warehouse", str(warehouse)],
        env={**real_dbt(os.environ), "SALES_KPI_WRITE_SITE": "false"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def _dbt_children(pid: int, command: str = "") -> list[psutil.Process]:
    """The run's dbt processes (the dbt started ahead among them, which imports dbt during
    the load: pipelines/dbt_ahead.py), or those running `dbt <command>`."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            cmdline = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if any("dbt" in part for part in cmdline) and (not command or command in cmdline):
            found.append(child)
    return found


def _wait_for_dbt(run: WarmRun, seconds: float = 240) -> list[psutil.Process]:
    """Once the build has started: the run's dbt processes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _dbt_children(run.pid, "build"):
            time.sleep(1.0)  # well into the build
            return _dbt_children(run.pid)
        assert run.poll() is None, run.communicate()
        time.sleep(0.2)
    raise AssertionError("dbt never started")


@pytest.fixture
def running(sample: Path, tmp_path: Path) -> Iterator[tuple[WarmRun, Path]]:
    warehouse = tmp_path / "warehouse"
    run = _start_run(sample, warehouse)
    yield run, warehouse
    if run.poll() is None:
        run.kill()
        with suppress(subprocess.TimeoutExpired):  # a process left behind holding its output
            run.communicate(timeout=30)


def test_one_writer_a_second_run_is_refused_at_once_naming_the_holder(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = tmp_path / "warehouse"
    with lock_held_elsewhere(warehouse) as holder:
        started = time.monotonic()
        code = main(["run", "--extracts", str(sample), "--warehouse", str(warehouse)])
        seconds = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == EXIT_BUSY and seconds < 5
    assert f"another run (pid {holder.pid}, started " in err and "holds" in err
    assert sorted(p.name for p in warehouse.iterdir()) == [".run.lock"]  # nothing touched


def test_the_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    with lock_held_elsewhere(tmp_path) as holder:
        with pytest.raises(WarehouseBusy), warehouse_lock(tmp_path):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with warehouse_lock(tmp_path):
            pass


def test_a_run_launched_by_dagster_holds_the_lock_until_its_process_ends(tmp_path: Path) -> None:
    """A run of the daemon or the UI takes the lock in its first step for the rest of its
    process (`hold_for_this_process`): still held after the call returned and a garbage
    collection, released only when the process ends."""
    with lock_held_elsewhere(tmp_path, how="for_life") as holder, pytest.raises(
        WarehouseBusy, match=f"pid {holder.pid}"
    ), warehouse_lock(tmp_path):
        pass
    with warehouse_lock(tmp_path):
        pass


def test_a_link_planted_as_the_lock_file_is_refused_and_what_it_names_is_untouched(
    tmp_path: Path,
) -> None:
    """The holder line truncates the lock file: a link in its place (naming any file of this
    user) is never followed — the run is refused, naming it, and the file keeps its text."""
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n", encoding="utf-8")
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    (warehouse / ".run.lock").symlink_to(precious)
    with pytest.raises(WarehouseBusy, match="symbolic link"), warehouse_lock(warehouse):
        pass
    assert precious.read_text(encoding="utf-8") == "keep me\n"


def test_sigterm_stops_a_run_within_5_seconds_with_no_child_left(
    running: tuple[WarmRun, Path],
) -> None:
    run, warehouse = running
    children = _wait_for_dbt(run)
    started = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _out, err = run.communicate(timeout=30)
    assert time.monotonic() - started <= 5, err[-2000:]
    assert run.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "STOPPED by SIGTERM" in err and "Traceback" not in err
    assert "nothing is published yet" in err
    assert left_running(children, 0.5) == []
    assert not (warehouse / "marts.duckdb").exists()


def test_kill_9_leaves_no_process_writing_the_warehouse(
    running: tuple[WarmRun, Path],
) -> None:
    run, _warehouse = running
    children = _wait_for_dbt(run)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert left_running(children, 2.0) == []


def test_honest_messages_say_what_the_disk_shows(
    published_warehouse: Path, tmp_path: Path
) -> None:
    assert "nothing is published yet" in published_state(tmp_path / "warehouse", "any")
    warehouse = published_warehouse  # after a whole run through the CLI (read-only here)
    import duckdb

    from pipelines.publish import published_database

    with duckdb.connect(str(published_database(warehouse)), read_only=True) as con:
        (run_id,) = con.execute("select max(run_id) from runs").fetchone()
    assert "WERE published by this run" in published_state(warehouse, run_id)
    assert "left as they were" in published_state(warehouse, "another-run")


def test_leftovers_of_a_killed_publication_are_cleaned_by_the_next_one(
    second_night_warehouse: Path,
) -> None:
    """The session's second night (conftest.py) ran on a copy of the published warehouse with
    a half-written `.marts-0123.duckdb` and a never-published `parquet-runs` folder in it (the
    publication is what cleans them; the site was not written)."""
    warehouse = second_night_warehouse
    assert recorded(warehouse, "cli")["code"] == 0
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 2  # it published
    assert list(warehouse.glob(".marts-*")) == []
    assert not (warehouse / "parquet-runs" / "never-published").exists()


def test_site_failure_after_publish_says_the_marts_were_published(
    stopped_after_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dashboard step fails after a green publication (its folder cannot be made): the
    run fails, and its closing lines and the alert say the marts WERE published — from the
    disk, not assumed — so nobody re-runs a night that reached its readers. (The run resumes
    from the build a stopped night left: the steps from the checks on are those of any run.)"""
    import json

    warehouse = tmp_path / "warehouse"
    shutil.copytree(stopped_after_build / "warehouse", warehouse, symlinks=True)
    shutil.rmtree(warehouse / "site")
    (warehouse / "site").write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("SALES_KPI_STEP_RETRIES", "0")
    code = main(["run", "--extracts", str(stopped_after_build / "extracts"),
                 "--warehouse", str(warehouse)])
    out, err = capsys.readouterr()
    assert code == 1, err[-2000:]
    assert RESUMING in out
    assert "  - kpi_site: " in err
    assert "the marts WERE published by this run (a later step failed)" in err
    import duckdb

    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 2
    alert = json.loads((warehouse / "alerts.log").read_text(encoding="utf-8").splitlines()[-1])
    assert alert["step"] == "kpi_site"
    assert alert["published_marts"].startswith("the marts WERE published by this run")


def test_the_launchers_of_ended_runs_are_removed_when_a_run_writes_its_own(
    tmp_path: Path,
) -> None:
    """Each run writes its own launcher for dbt (pipelines/run_guard.py); those of runs that
    have ended are removed then, those of live processes are kept."""
    import subprocess
    import sys
    import tempfile

    from pipelines.run_guard import guarded_executable

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    folder = Path(tempfile.gettempdir()) / f"sales-kpi-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    left = folder / f"dbt-guard-{int(ended.stdout)}-0123456789ab"
    left.write_text("#!/bin/sh\n", encoding="utf-8")
    alive = folder / f"dbt-guard-{os.getppid()}-0123456789ab"  # our parent: alive
    alive.write_text("#!/bin/sh\n", encoding="utf-8")
    try:
        guard = Path(guarded_executable(str(tmp_path / "some-tool")))
        assert guard.is_file() and os.access(guard, os.X_OK)
        assert not left.exists()
        assert alive.exists()
    finally:
        alive.unlink(missing_ok=True)
        left.unlink(missing_ok=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="launchers are Linux-only")
@pytest.mark.parametrize("planted", ["open to all", "a link"])
def test_the_launchers_are_never_written_to_a_folder_another_user_could_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted: str,
) -> None:
    """The launchers are run as dbt: their folder in the shared temporary folder must be this
    user's own — a folder made first by someone else (here: open to all) or a link planted in
    its place is refused, naming it, and nothing is written there."""
    import tempfile

    from pipelines.run_guard import UnsafeFolderError, guarded_executable

    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    folder = shared / f"sales-kpi-{os.getuid()}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if planted == "a link":
        folder.symlink_to(elsewhere)
    else:
        folder.mkdir()
        folder.chmod(0o777)
    with pytest.raises(UnsafeFolderError, match=str(folder)):
        guarded_executable(str(tmp_path / "some-tool"))
    assert list(elsewhere.iterdir()) == [] and list(folder.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="launchers are Linux-only")
def test_the_launchers_folder_is_made_private_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import stat
    import tempfile

    from pipelines.run_guard import guarded_executable

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    guard = Path(guarded_executable(str(tmp_path / "some-tool")))
    assert guard.parent == tmp_path / f"sales-kpi-{os.getuid()}"
    assert stat.S_IMODE(guard.parent.lstat().st_mode) == 0o700


def _in_a_process_of_its_own(code: str) -> subprocess.CompletedProcess[str]:
    """`code` run by a new Python in the project folder (a stop ends every child of the
    process it runs in, so the stop tests run theirs apart from the test worker)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=60, check=False)


# How each stop is asked for in the stop tests' own process: a signal to it, or a time limit
_STOPS = {
    "SIGTERM": ("threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()", None),
    "SIGINT": ("threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()", None),
    "time limit": ("", 0.2),
}


@pytest.mark.parametrize("stop", list(_STOPS))
def test_a_job_thread_that_reaches_the_publication_after_a_stop_does_not_publish(
    stop: str,
) -> None:
    """SIGTERM, Ctrl-C or the run's time limit while the job's thread is still at work (its
    checks): the CLI's wait ends at once and the thread is abandoned; when it reaches the
    publication's swap in the seconds it winds down, `stop_if_requested` stops it there, with
    the stop that was asked for (its exit code). (In a process of its own: the stop ends every
    child of the process it runs in.)"""
    ask, time_limit = _STOPS[stop]
    code = (
        "import os, signal, threading, time\n"
        "from pipelines.run_guard import RunInterrupted, run_interruptibly, stop_if_requested\n"
        "reached = []\n"
        "def work():\n"
        "    time.sleep(1.0)  # the checks; the stop arrives meanwhile\n"
        "    try:\n"
        "        stop_if_requested(); reached.append('swapped')\n"
        "    except RunInterrupted as exc:\n"
        "        reached.append(f'stopped before the swap by {exc}')\n"
        f"{ask}\n"
        "try:\n"
        f"    run_interruptibly(work, grace_seconds=3.0, time_limit_seconds={time_limit})\n"
        "except RunInterrupted as exc:\n"
        "    print(exc.exit_code, reached)\n"
    )
    result = _in_a_process_of_its_own(code)
    expected = {
        "SIGTERM": (128 + signal.SIGTERM, "SIGTERM"),
        "SIGINT": (128 + signal.SIGINT, "SIGINT"),
        "time limit": (124, "its time limit of 0.00333333 minutes (max_run_minutes)"),
    }[stop]
    assert result.stdout.strip() == (
        f"{expected[0]} ['stopped before the swap by {expected[1]}']"
    ), result.stdout + result.stderr


def test_a_stop_is_its_runs_own_and_is_raised_again_as_itself() -> None:
    """A stop is asked of one run's job thread: another thread of the process (a later run's)
    is not stopped by it; the thread raises it as a new exception of its own kind, which
    survives pickling (Dagster serialises a step's error)."""
    from pipelines import run_guard

    raised: list[BaseException] = []

    def job() -> None:
        try:
            run_guard.stop_if_requested()
        except run_guard.RunInterrupted as exc:
            raised.append(exc)

    stopped = threading.Thread(target=job)
    run_guard._stops[stopped] = run_guard.RunTimedOut(5)
    stopped.start()
    stopped.join()
    run_guard.stop_if_requested()  # this thread's run was not stopped
    assert run_guard.stop_reason() is None
    (again,) = raised
    assert type(again) is run_guard.RunTimedOut and again is not run_guard._stops[stopped]
    for stop in (again, run_guard.RunInterrupted(signal.SIGINT)):
        copy = pickle.loads(pickle.dumps(stop))
        assert (type(copy), str(copy), copy.exit_code) == (type(stop), str(stop), stop.exit_code)


@pytest.mark.parametrize(("succeeded", "expected"), [
    (True, "returned done"),
    (False, "stopped by its time limit of 0.005 minutes (max_run_minutes), exit 124"),
])
def test_work_that_ends_as_its_time_runs_out_keeps_its_result_only_if_it_succeeded(
    succeeded: bool, expected: str
) -> None:
    """The time is up while the job is finishing: a job that ended in success (it published
    before the stop) is a successful run, not a stopped one; one that failed — the stop
    ended its children — is the stop's. (In a process of its own: the stop ends every child
    of the process it runs in.)"""
    code = (
        "import time\n"
        "from pipelines.run_guard import RunInterrupted, run_interruptibly\n"
        "def work():\n"
        "    time.sleep(3.0)  # still at work when the time is up, done within the grace\n"
        "    return 'done'\n"
        "try:\n"
        "    value = run_interruptibly(work, grace_seconds=8.0, time_limit_seconds=0.3,\n"
        f"                              succeeded=lambda value: {succeeded})\n"
        "    print('returned', value)\n"
        "except RunInterrupted as exc:\n"
        "    print(f'stopped by {exc}, exit {exc.exit_code}')\n"
    )
    result = _in_a_process_of_its_own(code)
    assert result.stdout.strip() == expected, result.stdout + result.stderr


def test_a_run_past_its_time_limit_is_stopped_as_sigterm_stops_it(
    sample: Path, tmp_path: Path
) -> None:
    """`max_run_minutes`: a run still at work when its time is up is stopped within seconds
    with exit 124, its dbt ended, nothing published, and the closing lines say why — a hung
    night does not hold the warehouse against the next one. The hang is a dbt that never
    ends (as a Spark build waits forever for an executor a cluster never gives it)."""
    hung_dbt = tmp_path / "hung-dbt"
    hung_dbt.write_text("#!/bin/sh\nsleep 300\n", encoding="utf-8")
    hung_dbt.chmod(0o755)
    warehouse = tmp_path / "warehouse"
    started = time.monotonic()
    run = warm_cli().popen(
        ["run", "--extracts", str(sample), "--warehouse", str(warehouse)],
        env={**os.environ, "SALES_KPI_DBT_EXECUTABLE": str(hung_dbt),
             "SALES_KPI_WRITE_SITE": "false", "SALES_KPI_MAX_RUN_MINUTES": "0.2"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen: dict[int, psutil.Process] = {}  # every dbt the run started
    try:
        while run.poll() is None and time.monotonic() - started < 90:
            seen.update((child.pid, child) for child in _dbt_children(run.pid))
            time.sleep(0.1)
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)
    assert run.returncode == 124, out[-2000:] + err[-2000:]
    stopped = re.search(r"STOPPED by its time limit of 0\.2 minutes \(max_run_minutes\) "
                        r"after ([0-9.]+)s", err)
    assert stopped, err[-2000:]
    assert float(stopped[1]) <= 12 + 8  # the limit, then a few seconds to end the run
    assert "Traceback" not in err
    assert "nothing is published yet" in err
    assert seen, "the run never started its dbt"
    assert left_running(list(seen.values()), 0.5) == []
    assert not (warehouse / "marts.duckdb").exists()


def test_the_runs_exit_codes_are_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """An operator (or cron's wrapper) reads what each exit code means where the command is
    described: success, failure, bad usage, a busy warehouse, the time limit, a signal."""
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for code, meaning in ((0, "success"), (1, "a failed run"), (2, "bad usage"),
                          (EXIT_BUSY, "another run holds the warehouse"),
                          (124, "stopped by its time limit (max_run_minutes)"),
                          ("128 + n", "stopped by signal n")):
        assert f"{code} {meaning}" in shown
