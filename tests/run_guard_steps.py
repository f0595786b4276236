"""A run stopped at each of its steps (SIGTERM, kill -9): the helpers of
test_run_guard_sigterm_at_each_step.py and test_run_guard_kill_at_each_step.py.

The two are separate files of test_run_guard.py's rules only so that pytest-xdist, which hands
out a file at a time, can run them on different cores: each test starts its own run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from warm_cli import WarmRun, warm_cli
from warm_dbt import real_dbt

# --- a stop at every step -------------------------------------------------------------------

# A line in the run's output that says the step is under way (dbt's and Dagster's lines are
# on the console with --verbose; by default they go to the run's log file).
STEP_MARKERS = {
    "load": "- raw__",
    "dbt": "Running dbt command",
    "checks": "comparing with published run",
    "publish": "- published_marts - publishing run",
    "site": "- kpi_site - site: writing",
}
# After a kill at these steps the next run must publish the same marts
# (test_run_guard_kill_at_each_step.py kills a run at each in turn on one warehouse, then the
# next run at the site, after it published).
CONVERGE_AFTER = ("checks", "publish")
# What a run says when it resumes from the complete build a stopped run left behind.
RESUMING = "resuming:  run "


def run_until(
    sample: Path, warehouse: Path, marker: str, log: Path, *, force: bool = True
) -> WarmRun:
    """The job (`--verbose`, site included; `--force` unless `force` is False: then a
    warehouse holding a complete build of `sample` resumes from it) on `warehouse`, forked
    from the warm CLI (tests/warm_cli.py), running until `marker` is in its output (kept in
    `log`). Its dbt is the real one (tests/warm_dbt.py `real_dbt`): the process tree the run
    guard ends is what these tests look at."""
    env = real_dbt(os.environ)
    env.pop("SALES_KPI_WRITE_SITE", None)
    args = ["run", "--extracts", str(sample), "--warehouse", str(warehouse), "--verbose"]
    with log.open("w", encoding="utf-8") as handle:
        run = warm_cli().popen(
            [*args, "--force"] if force else args, env=env, stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 300
    while marker not in log.read_text(encoding="utf-8", errors="replace"):
        assert run.poll() is None, log.read_text(encoding="utf-8")[-3000:]
        assert time.monotonic() < deadline, f"the run never reached {marker!r}"
        time.sleep(0.05)
    return run


@dataclass(frozen=True)
class Kill:
    """A run killed at a step: its children still running 2 s later; the published file
    before the run (a copy, `before`) and its publications; the published file as the kill
    left it (a copy under `after`, beside the run's output `run.log`); the unfinished
    publications (`.marts-*`) left in the warehouse."""

    left_running: list[int]
    before: Path
    runs_before: int
    after: Path
    unfinished: list[str]

    @property
    def log(self) -> str:
        return (self.after / "run.log").read_text(encoding="utf-8", errors="replace")

    def save(self) -> None:
        (self.after / "kill.json").write_text(json.dumps(asdict(self), default=str),
                                              encoding="utf-8")

    @classmethod
    def saved(cls, folder: Path) -> Kill:
        values = json.loads((folder / "kill.json").read_text(encoding="utf-8"))
        return cls(values["left_running"], Path(values["before"]), values["runs_before"],
                   Path(values["after"]), values["unfinished"])


def kill_at(sample: Path, warehouse: Path, step: str, kept: Path, *, force: bool = True) -> Kill:
    """Run the job on `warehouse` (`run_until`) until it is at `step`, kill -9 it, and keep
    the published file from before and as the kill left it under `kept`."""
    kept.mkdir(parents=True)
    shutil.copy2(warehouse / "marts.duckdb", kept / "before.duckdb")
    runs_before = published_runs(warehouse)
    run = run_until(sample, warehouse, STEP_MARKERS[step], kept / "run.log", force=force)
    children = psutil.Process(run.pid).children(recursive=True)
    run.send_signal(signal.SIGKILL)
    run.wait()
    alive = left_running(children, 2.0)
    shutil.copy2(warehouse / "marts.duckdb", kept / "marts.duckdb")
    unfinished = sorted(p.name for p in warehouse.glob(".marts-*"))
    return Kill(alive, kept / "before.duckdb", runs_before, kept, unfinished)


def stop_after_build(sample: Path, published: Path, folder: Path) -> None:
    """`folder/warehouse`: a copy of the `published` warehouse (over `sample`) on which the
    next night's run was killed at its checks, after its dbt build: a warehouse holding a
    complete, unpublished build, which the next run without --force resumes from. That night
    `folder/extracts`, a copy of `sample`, had one file delivered again unchanged (touched):
    something is new, so the run builds, and what it builds is what was published before.
    The kill itself is kept under `folder/kill` (`Kill.saved`)."""
    extracts = shutil.copytree(sample, folder / "extracts")  # file times kept
    redelivered = sorted(extracts.rglob("*.csv"))[-1]
    os.utime(redelivered, (time.time(), time.time()))
    warehouse = shutil.copytree(published, folder / "warehouse", symlinks=True)
    kill_at(extracts, warehouse, "checks", folder / "kill", force=False).save()


def left_running(children: list[psutil.Process], seconds: float = 2.0) -> list[int]:
    """The PIDs of `children` still running (zombies aside) `seconds` after a stop: [] as soon
    as all of them are gone (the rule gives them `seconds`; a test need not wait longer)."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [c.pid for c in children if _running(c)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def published_is_whole(warehouse: Path, before: bytes, runs_before: int = 1) -> None:
    """The published file is the one from before, byte for byte, or a complete new one (one
    more publication than the `runs_before` of the one before)."""
    published = warehouse / "marts.duckdb"
    if published.read_bytes() == before:
        return
    import duckdb

    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == runs_before + 1
        assert con.execute("select count(*) from kpi_scorecard").fetchone()[0] > 0


def published_runs(warehouse: Path) -> int:
    """How many runs the published file of `warehouse` records."""
    import duckdb

    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        return con.execute("select count(*) from runs").fetchone()[0]


def same_marts(published: Path, reference: Path) -> None:
    """The marts of `published` hold exactly the rows of `reference`'s (the history tables
    and `runs` aside, which grow with every publication)."""
    import duckdb

    from pipelines.publish import PUBLISHED_TABLES

    with duckdb.connect() as con:
        con.execute(f"attach '{published}' as a (read_only)")
        con.execute(f"attach '{reference}' as b (read_only)")
        for table in PUBLISHED_TABLES:
            differing = con.execute(
                f"select count(*) from ((from a.{table} except all from b.{table}) "
                f"union all (from b.{table} except all from a.{table}))"
            ).fetchone()[0]
            assert differing == 0, table
