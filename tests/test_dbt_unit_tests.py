"""The dbt unit tests: every rule pinned with hand-made rows, at the definitions' defaults.

They run here, in the project's test suite, and not in the nightly `dbt build` (a run whose
settings differ from the defaults must not fail on a rule pinned at the defaults). dbt needs
the models' relations to exist to type the fixtures, so the project is built empty on an empty
raw layer — in the same `dbt build --empty` that runs the unit tests: it loads the seeds and
builds every model with no rows, each model's unit tests running just before it (the data
tests are left out: on empty tables they would prove nothing). One dbt invocation, one parse.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb

from pipelines.dbt_project import DBT_DATABASE_ENV, DBT_PROJECT_DIR, dbt_executable
from pipelines.ingest.raw_layer import ensure_raw_layer
from pipelines.targets import OVERRIDES_DDL


def _dbt(*args: str, database: Path, target: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, DBT_DATABASE_ENV: str(database)}
    return subprocess.run(
        [dbt_executable(), *args, "--profiles-dir", str(DBT_PROJECT_DIR),
         "--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(target),
         "--log-path", str(target / "logs")],
        env=env, capture_output=True, text=True, check=False,
    )


def test_every_dbt_unit_test_passes_at_the_definitions_defaults(tmp_path: Path) -> None:
    database, target = tmp_path / "warehouse.duckdb", tmp_path / "target"
    with duckdb.connect(str(database)) as con:  # an empty raw layer
        ensure_raw_layer(con)
        con.execute(OVERRIDES_DDL)
    result = _dbt("build", "--empty", "--exclude", "test_type:data",
                  database=database, target=target)
    assert result.returncode == 0, result.stdout[-5000:]
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    units = {r["unique_id"]: r["status"] for r in results
             if r["unique_id"].startswith("unit_test.")}
    assert [name for name, status in units.items() if status != "pass"] == []
    assert len(units) >= 30, sorted(units)
