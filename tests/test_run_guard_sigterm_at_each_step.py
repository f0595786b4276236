"""SIGTERM at each step of a run stops it within 5 seconds, no child left, the published
marts whole (test_run_guard.py's rules; a file of its own so it runs on another core).

The load and the dbt build are stopped in forced runs on a copy of the published warehouse;
the checks, the publication and the site in runs that resume from the complete build of
`stopped_after_build` (the steps are the same; the build is not made again for each)."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
from run_guard_steps import (
    RESUMING,
    STEP_MARKERS,
    left_running,
    published_is_whole,
    run_until,
)

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
def test_sigterm_at_each_step_stops_within_5_seconds_with_the_marts_whole(
    sample: Path, published_once: Path, tmp_path: Path, step: str,
    request: pytest.FixtureRequest,
) -> None:
    warehouse = tmp_path / "warehouse"
    resumes = step in ("checks", "publish", "site")
    if resumes:  # the night stopped after its build, and its landing folder
        stopped = request.getfixturevalue("stopped_after_build")
        start, sample = stopped / "warehouse", stopped / "extracts"
    else:
        start = published_once
    shutil.copytree(start, warehouse, symlinks=True)
    before = (warehouse / "marts.duckdb").read_bytes()
    log = tmp_path / "run.log"
    run = run_until(sample, warehouse, STEP_MARKERS[step], log, force=not resumes)
    children = psutil.Process(run.pid).children(recursive=True)
    started = time.monotonic()
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=30)
    assert time.monotonic() - started <= 5, step
    text = log.read_text(encoding="utf-8")
    assert (RESUMING in text) is resumes
    assert run.returncode in (0, 128 + signal.SIGTERM), text[-2000:]
    if run.returncode:
        assert "STOPPED by SIGTERM" in text and "Traceback" not in text.split("STOPPED")[-1]
    assert left_running(children, 2.0) == []
    published_is_whole(warehouse, before)
    if run.returncode and step in ("load", "dbt", "checks"):
        # stopped before its publication: the job's thread, abandoned while it winds down,
        # must not swap one in (run_guard.stop_if_requested)
        assert (warehouse / "marts.duckdb").read_bytes() == before, step
