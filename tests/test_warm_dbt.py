"""The warm dbt the tests' runs start (tests/warm_dbt.py) stands in for the real dbt: the same
output and exit code, a signal to it reaches the dbt it forked, and a killed stand-in (the
run guard's PR_SET_PDEATHSIG when its run dies) leaves no dbt behind. A test of the tests'
harness: if it drifted from the real dbt, every run-based test would be testing something
else. (The install's choice of dbt itself, SALES_KPI_DBT_EXECUTABLE: tests/test_settings.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_for
from warm_dbt import PASSED_ON, WarmDbt, stand_in

from pipelines.dbt_project import DBT_PROJECT_DIR
from pipelines.settings import installed_dbt

# not in `make test-fast`: the warm dbt imports dbt (≈ 2 s), and a parse takes seconds
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def warm() -> Iterator[WarmDbt]:
    """A warm dbt of this module's own (the session's may be off: SALES_KPI_TEST_COLD_DBT)."""
    warm = WarmDbt()
    yield warm
    warm.close()


def _run(executable: Path | str, *args: str) -> tuple[int, str, str]:
    done = subprocess.run([str(executable), *args], capture_output=True, text=True, timeout=120,
                          check=False)
    return done.returncode, done.stdout, done.stderr


# An unknown command: dbt's usage and the error on stderr, exit 2
UNKNOWN = ("no-such-command",)


@pytest.fixture(scope="module")
def real_unknown() -> tuple[int, str, str]:
    """What the real dbt prints and exits with for UNKNOWN (once: it imports dbt, ≈ 3 s)."""
    return _run(installed_dbt(), *UNKNOWN)


def test_a_forked_dbt_prints_and_exits_as_the_real_dbt(
    warm: WarmDbt, real_unknown: tuple[int, str, str]
) -> None:
    """The same bytes on stdout and stderr and the same exit code (2) from the stand-in."""
    assert _run(warm.client, *UNKNOWN) == real_unknown
    assert real_unknown[0] == 2 and "no-such-command" in real_unknown[2]


def _default_signals() -> None:
    for name in PASSED_ON:
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def _parse(warm: WarmDbt, target: Path) -> subprocess.Popen[bytes]:
    """`dbt parse` of the project from scratch (seconds of work) through the stand-in."""
    env = {**os.environ, "SALES_KPI_DBT_DATABASE": str(target / "warehouse.duckdb"),
           "DBT_LOG_PATH": str(target / "logs")}
    return subprocess.Popen(
        [str(warm.client), "parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
         str(DBT_PROJECT_DIR), "--target-path", str(target / "target")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        # the signals at their defaults, as a shell leaves them: a test worker may ignore
        # SIGINT, and SIGTERM with it once Dagster has mapped SIGTERM to SIGINT's handler in
        # it (dagster._utils.interrupts), and the stand-in ignores what it was started ignoring
        preexec_fn=_default_signals,
    )


def test_the_dbt_runs_forked_from_the_warm_process(warm: WarmDbt, tmp_path: Path) -> None:
    """While the stand-in runs, its dbt is a child of the warm dbt (not a new interpreter the
    stand-in started: that is what it does only without a warm dbt); both end together."""
    before = set(warm.forked())
    stand_in = _parse(warm, tmp_path)
    wait_for(lambda: set(warm.forked()) - before, 60, "the forked dbt")
    assert stand_in.wait(timeout=120) == 0
    wait_for(lambda: set(warm.forked()) <= before, 10, "the forked dbt to be reaped")
    assert (tmp_path / "target" / "manifest.json").is_file()


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_stand_in_reaches_its_dbt(
    warm: WarmDbt, tmp_path: Path, signal_number: int
) -> None:
    """SIGTERM (the run guard ending a run's children) and SIGINT (dagster-dbt stopping dbt):
    the forked dbt gets it and ends; the stand-in ends with it, not exit 0."""
    before = set(warm.forked())
    stand_in = _parse(warm, tmp_path)
    wait_for(lambda: set(warm.forked()) - before, 60, "the forked dbt")
    (dbt,) = set(warm.forked()) - before
    stand_in.send_signal(signal_number)
    assert stand_in.wait(timeout=30) != 0
    wait_for(lambda: dbt not in warm.forked(), 10, "the forked dbt to end")


def test_a_killed_stand_in_leaves_no_dbt_behind(warm: WarmDbt, tmp_path: Path) -> None:
    """kill -9 of the stand-in, as the kernel does when its run dies (PR_SET_PDEATHSIG): the
    warm dbt kills the dbt it forked."""
    before = set(warm.forked())
    stand_in = _parse(warm, tmp_path)
    wait_for(lambda: set(warm.forked()) - before, 60, "the forked dbt")
    (dbt,) = set(warm.forked()) - before
    stand_in.kill()
    assert stand_in.wait(timeout=30) == -signal.SIGKILL
    wait_for(lambda: dbt not in warm.forked(), 5, "the forked dbt to be killed")


def test_without_a_warm_dbt_the_stand_in_runs_the_real_one(
    tmp_path: Path, real_unknown: tuple[int, str, str]
) -> None:
    """A stand-in whose warm dbt is not there (never started, or gone) runs the real dbt."""
    client = stand_in(tmp_path / "dbt", str(tmp_path / "gone"))
    assert _run(client, *UNKNOWN) == real_unknown
