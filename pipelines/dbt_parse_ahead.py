"""A warehouse's dbt parse state: kept from build to build; for a fresh warehouse taken from
the install's parse, or made while the run loads instead of inside the build.

dbt re-parses the whole project (seconds of CPU) whenever the parse state it finds was made
with other vars or another profile. A warehouse's own last build leaves its state in
`<warehouse>/dbt_runs/partial_parse.msgpack` (pipelines/assets/dbt.py), so every night after
the first starts from it. For the first — the first night of a new warehouse, a copied one, a
test's, a benchmark's: the profile renders the same for every warehouse (it names the file
relative to dbt's working folder, the warehouse), so when the run's settings give the vars
the install parsed with (`make setup`: the default settings), the install's state is copied
in and no parse is needed (pipelines/dbt_project.py, install_parse_serves). Otherwise the dbt
resource starts `dbt parse` when the run sets up its resources, with exactly the build's
profile environment and vars, and the build waits for it before it starts: the parse then
runs beside the load (which works inside DuckDB) rather than after it. dbt's parse does not
open the warehouse file, which the load holds.

Only for the DuckDB engine: the Spark build's vars name the raw layer's Parquet export, known
once the load is done. A parse ahead that fails or is stopped leaves nothing behind and the
build parses as it always did (and reports any error in the project itself).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipelines.dbt_project import (
    DBT_PROJECT_DIR,
    PARTIAL_PARSE,
    dbt_cli_environment,
    dbt_vars,
    install_parse_serves,
    keep_partial_parse,
)
from pipelines.run_guard import hold_for_this_process
from pipelines.settings import Settings

SCRATCH_PREFIX = ".parse-ahead-"  # a parse ahead's own target folder, under dbt_runs
# how long the build waits for a parse ahead before it parses by itself (a parse takes
# seconds; a machine so busy that it takes minutes is better served by not waiting)
PARSE_WAIT_SECONDS = 300


def dbt_runs_dir(settings: Settings) -> Path:
    """Where the run's dbt artifacts and the warehouse's kept parse state live."""
    return settings.warehouse_dir / "dbt_runs"


@dataclass
class ParseAhead:
    """A `dbt parse` running in the background for this run's build."""

    process: subprocess.Popen[bytes]
    folder: Path  # its own target path, removed when it is done
    kept: Path  # where the build looks for the warehouse's parse state

    def finish(self, timeout: float = PARSE_WAIT_SECONDS) -> bool:
        """Wait for the parse and keep its state for the build; False if it gave nothing."""
        try:
            returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return False
        parsed = self.folder / PARTIAL_PARSE
        useful = returncode == 0 and parsed.exists() and not self.kept.exists()
        if useful:
            parsed.replace(self.kept)
        shutil.rmtree(self.folder, ignore_errors=True)
        return useful

    def stop(self) -> None:
        """End the parse if it still runs (the run failed or was stopped before the build)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_parse_ahead(settings: Settings, dbt_executable: str) -> ParseAhead | None:
    """Start `dbt parse` for a warehouse whose builds have left no parse state; None when the
    build does not need one (a parse state is kept, the install's serves and is copied in, or
    the engine is Spark)."""
    runs = dbt_runs_dir(settings)
    kept = runs / PARTIAL_PARSE
    if settings.engine != "duckdb" or kept.exists():
        return None
    # the run's own warehouse lock first (a run launched by Dagster takes it here; the CLI
    # already holds it): a run refused as busy starts nothing in another run's warehouse
    hold_for_this_process(settings.warehouse_dir)
    installed = install_parse_serves(settings)
    if installed is not None:
        runs.mkdir(parents=True, exist_ok=True)
        keep_partial_parse(runs, installed.parent)
        return None
    # what a killed run's parse ahead left (its dbt died with it): never read, only removed
    for leftover in runs.glob(f"{SCRATCH_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    folder = runs / f"{SCRATCH_PREFIX}{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    env = {**os.environ, **dbt_cli_environment(settings, folder)}  # as the build's, and its vars
    try:
        process = subprocess.Popen(
            [dbt_executable, "parse", "--quiet", "--vars", json.dumps(dbt_vars(settings))],
            cwd=DBT_PROJECT_DIR, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except OSError:  # no dbt to start: the build will say so, in its own words
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return ParseAhead(process, folder, kept)
