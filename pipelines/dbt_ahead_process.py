"""The run's side of the build's dbt started ahead (pipelines/dbt_ahead.py): started with the
run's resources, named to the build's launcher, ended with the run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipelines.dbt_ahead import AHEAD_ENV
from pipelines.run_guard import GUARD_MARK, GUARDED, guarded_executable, launcher_folder
from pipelines.settings import Settings, chosen_dbt

STOP_SECONDS = 5  # an ahead dbt that ignores SIGTERM this long is killed


@dataclass
class DbtAhead:
    """An interpreter importing dbt for this run's build, then waiting for its command."""

    process: subprocess.Popen[bytes]
    path: Path  # its socket

    def environment(self) -> dict[str, str]:
        """What the build's launcher needs to hand its command over (nothing once the ahead
        dbt has ended: the launcher then starts the real dbt, as it would anyway)."""
        return {AHEAD_ENV: str(self.path)} if self.process.poll() is None else {}

    def stop(self) -> None:
        """End it if it still waits (the run ended before its build, or built nothing), and
        remove its socket."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.path.unlink(missing_ok=True)


def start_dbt_ahead(settings: Settings) -> DbtAhead | None:
    """Start the build's dbt now, for the DuckDB engine and the installed dbt (see
    pipelines/dbt_ahead.py); None otherwise, or when it cannot start."""
    if settings.engine != "duckdb" or chosen_dbt() is not None or not GUARDED:
        return None
    # named as the launchers are: removed with them once this process has ended
    path = launcher_folder() / f"dbt-ahead{GUARD_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        process = subprocess.Popen(
            [guarded_executable(sys.executable), "-m", "pipelines.dbt_ahead", str(path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    return DbtAhead(process, path)
