"""kill -9 at each step of a run leaves no process behind and the published marts whole;
after a kill at the checks or the publication the next run converges (test_run_guard.py's
rules; a file of its own so it runs on another core).

The kills at the checks, the publication and the site come in turn on one warehouse: the run
killed at the publication is the next run after the kill at the checks, and the run killed
at the site (which comes after the publication) is the next run after both — the one whose
published marts must have converged. Three stopped runs instead of three and two whole ones.
"""

from __future__ import annotations

import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from run_guard_steps import (
    CONVERGE_AFTER,
    STEP_MARKERS,
    left_running,
    published_is_whole,
    published_runs,
    run_until,
    same_marts,
)

pytestmark = pytest.mark.slow

# Killed in this order on one copy of the published warehouse.
KILLED_IN_TURN = (*CONVERGE_AFTER, "site")


@pytest.fixture(scope="module")
def sample(sample_extracts: Path) -> Path:
    """The session's generated sample (conftest.py); the runs here only read it."""
    return sample_extracts


@pytest.fixture(scope="module")
def published_once(published_warehouse: Path) -> Path:
    """A warehouse with one publication (the session's, over `sample`), copied before the
    runs that are stopped."""
    return published_warehouse


@dataclass(frozen=True)
class Kill:
    """A run killed at a step: its children still running 2 s later; the published file
    before the run (its bytes and its publications) and as the kill left it (a copy under
    `after`); the unfinished publications (`.marts-*`) left in the warehouse."""

    left_running: list[int]
    before: bytes
    runs_before: int
    after: Path
    unfinished: list[str]


def kill_at(sample: Path, warehouse: Path, step: str, kept: Path) -> Kill:
    """Run the job (`--force`, site included) on `warehouse` until it is at `step`, kill -9
    it, and keep the published file as the kill left it under `kept`."""
    before, runs_before = (warehouse / "marts.duckdb").read_bytes(), published_runs(warehouse)
    kept.mkdir(parents=True)
    run = run_until(sample, warehouse, STEP_MARKERS[step], kept / "run.log")
    children = psutil.Process(run.pid).children(recursive=True)
    run.send_signal(signal.SIGKILL)
    run.wait()
    alive = left_running(children, 2.0)
    shutil.copy2(warehouse / "marts.duckdb", kept / "marts.duckdb")
    unfinished = sorted(p.name for p in warehouse.glob(".marts-*"))
    return Kill(alive, before, runs_before, kept, unfinished)


@pytest.fixture(scope="module")
def killed_in_turn(
    sample: Path, published_once: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Kill]:
    """KILLED_IN_TURN's kills, one after the other on one copy of the published warehouse."""
    folder = tmp_path_factory.mktemp("killed_in_turn")
    warehouse = shutil.copytree(published_once, folder / "warehouse", symlinks=True)
    return {step: kill_at(sample, warehouse, step, folder / step) for step in KILLED_IN_TURN}


@pytest.mark.parametrize("step", list(STEP_MARKERS))
def test_kill_9_at_each_step_leaves_the_marts_whole_and_no_process_behind(
    sample: Path, published_once: Path, tmp_path: Path, step: str,
    request: pytest.FixtureRequest,
) -> None:
    if step in KILLED_IN_TURN:
        kill = request.getfixturevalue("killed_in_turn")[step]
    else:
        warehouse = shutil.copytree(published_once, tmp_path / "warehouse", symlinks=True)
        kill = kill_at(sample, warehouse, step, tmp_path / "killed")
    assert kill.left_running == []
    published_is_whole(kill.after, kill.before, kill.runs_before)


def test_after_a_kill_at_the_checks_or_the_publication_the_next_run_converges(
    killed_in_turn: dict[str, Kill], published_once: Path
) -> None:
    """The run after the kills at the checks and at the publication published (it was at
    the site, after the publication, when it was killed in turn): the same marts as the
    publication before the kills, and no unfinished publication left over."""
    converged = killed_in_turn["site"]
    assert converged.runs_before in (1, 2)  # the killed publication finished or it did not
    assert published_runs(converged.after) == converged.runs_before + 1
    assert converged.unfinished == []
    same_marts(converged.after / "marts.duckdb", published_once / "marts.duckdb")
