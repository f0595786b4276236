"""kill -9 at each step of a run leaves no process behind and the published marts whole;
after a kill at the checks or the publication the next run converges, resuming from the
complete build the killed run left (test_run_guard.py's rules; a file of its own so it runs
on another core).

The kill at the checks is the session's `stopped_after_build` (a night's run killed after its
dbt build). The kills at the publication and the site come in turn on a copy of it: the run
killed at the publication is the next run after the kill at the checks, and the run killed
at the site (which comes after the publication) is the next run after both — the one whose
published marts must have converged. Both resume from the build, as a night after a kill
does: one build for the three kills.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from run_guard_steps import (
    RESUMING,
    STEP_MARKERS,
    Kill,
    kill_at,
    published_is_whole,
    published_runs,
    same_marts,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample(sample_extracts: Path) -> Path:
    """The session's generated sample (conftest.py); the runs here only read it."""
    return sample_extracts


@pytest.fixture(scope="module")
def published_once(published_warehouse: Path) -> Path:
    """A warehouse with one publication (the session's, over `sample`), copied before the
    runs that are stopped."""
    return published_warehouse


@pytest.fixture(scope="module")
def killed_in_turn(
    stopped_after_build: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Kill]:
    """The kill at the checks (`stopped_after_build`), then on a copy of the warehouse it left
    the next run killed at the publication and the one after it at the site, neither forced.
    Should the killed publication have finished (it takes a few tenths of a second), nothing
    is new for the run after it, which then has to be forced to reach the site."""
    folder = tmp_path_factory.mktemp("killed_in_turn")
    warehouse = shutil.copytree(stopped_after_build / "warehouse", folder / "warehouse",
                                symlinks=True)
    sample = stopped_after_build / "extracts"
    kills = {"checks": Kill.saved(stopped_after_build / "kill")}
    kills["publish"] = kill_at(sample, warehouse, "publish", folder / "publish", force=False)
    published = published_runs(warehouse) > kills["publish"].runs_before
    kills["site"] = kill_at(sample, warehouse, "site", folder / "site", force=published)
    return kills


@pytest.mark.parametrize("step", list(STEP_MARKERS))
def test_kill_9_at_each_step_leaves_the_marts_whole_and_no_process_behind(
    sample: Path, published_once: Path, tmp_path: Path, step: str,
    request: pytest.FixtureRequest,
) -> None:
    if step in ("checks", "publish", "site"):
        kill = request.getfixturevalue("killed_in_turn")[step]
    else:
        warehouse = shutil.copytree(published_once, tmp_path / "warehouse", symlinks=True)
        kill = kill_at(sample, warehouse, step, tmp_path / "killed")
    assert kill.left_running == []
    published_is_whole(kill.after, kill.before.read_bytes(), kill.runs_before)


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


def test_the_run_after_a_kill_past_the_build_resumes_from_it_without_loading_or_building(
    killed_in_turn: dict[str, Kill],
) -> None:
    """The run killed at the checks had built everything: the run after it says it resumes
    from that build and runs no load and no dbt."""
    log = killed_in_turn["publish"].log
    assert RESUMING in log
    assert STEP_MARKERS["dbt"] not in log and STEP_MARKERS["load"] not in log
    assert STEP_MARKERS["dbt"] in killed_in_turn["checks"].log  # the night's run built
