"""The warehouse's run lock, taken by a step of a run that Dagster launched (the daemon, the
UI): the CLI already holds it for its whole run (pipelines/run_guard.py)."""

from pathlib import Path

from dagster import Failure

from pipelines.run_guard import WarehouseBusy, hold_for_this_process


def hold_warehouse(warehouse_dir: Path) -> None:
    """Hold the warehouse's lock for the rest of this run's process, or fail the step (not
    retried) naming the run that holds it. Every step that writes the warehouse calls it:
    a materialization in the UI may start at any of them."""
    try:
        hold_for_this_process(warehouse_dir)
    except WarehouseBusy as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
