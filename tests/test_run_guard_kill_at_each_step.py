"""kill -9 at each step of a run leaves no process behind and the published marts whole;
after a kill at the checks or the publication the next run converges (test_run_guard.py's
rules; a file of its own so it runs on another core)."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
from run_guard_steps import CONVERGE_AFTER, STEP_MARKERS, published_is_whole, run_until, same_marts

from pipelines.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample(sample_extracts: Path) -> Path:
    """The session's generated sample (conftest.py); the runs here only read it."""
    return sample_extracts


@pytest.fixture(scope="module")
def published_once(published_warehouse: Path) -> Path:
    """A warehouse with one publication (the session's, over `sample`), copied by each test
    that stops the next run."""
    return published_warehouse


@pytest.mark.parametrize("step", list(STEP_MARKERS))
def test_kill_9_at_each_step_leaves_the_marts_whole_and_no_process_behind(
    sample: Path, published_once: Path, tmp_path: Path, step: str
) -> None:
    warehouse = tmp_path / "warehouse"
    shutil.copytree(published_once, warehouse, symlinks=True)
    before = (warehouse / "marts.duckdb").read_bytes()
    run = run_until(sample, warehouse, STEP_MARKERS[step], tmp_path / "run.log")
    children = psutil.Process(run.pid).children(recursive=True)
    run.send_signal(signal.SIGKILL)
    run.wait()
    time.sleep(2)
    assert [c.pid for c in children if c.is_running() and c.status() != "zombie"] == []
    published_is_whole(warehouse, before)
    if step in CONVERGE_AFTER:  # the next run converges: the same marts, nothing left over
        with pytest.MonkeyPatch.context() as patch:  # the marts are what converge, not the site
            patch.setenv("SALES_KPI_WRITE_SITE", "false")
            assert main(["run", "--extracts", str(sample), "--warehouse", str(warehouse),
                         "--force"]) == 0
        assert list(warehouse.glob(".marts-*")) == []
        same_marts(warehouse / "marts.duckdb", published_once / "marts.duckdb")
