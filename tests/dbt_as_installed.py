"""dbt started by a test as a run with the default settings starts it, so that it keeps the
parse `make setup` saved instead of parsing the whole project again (seconds of CPU): the
install's vars, the profile rendered as at install (the warehouse file named relative to the
folder dbt runs in), and dbt run in the warehouse folder (pipelines/dbt_project.py,
`parse_inputs`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pipelines.dbt_project import DBT_WORKDIR_ENV, dbt_executable, parse_inputs
from pipelines.settings import Settings


def dbt_as_installed(
    *args: str, warehouse: Path, project: Path, target: Path, machine_timezone: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`dbt ARGS` against `warehouse/warehouse.duckdb`, on the project folder `project` (the
    project, or a test's copy), its artifacts and logs in `target` (never the project's own
    `target/`, which holds the install's parse; copy that in to start from it); with
    `machine_timezone`, dbt runs as on a machine set to that timezone (TZ)."""
    inputs = parse_inputs(Settings(warehouse_dir=warehouse))  # the file named as a run names it
    env = {k: v for k, v in os.environ.items() if k != DBT_WORKDIR_ENV}
    if machine_timezone:
        env["TZ"] = machine_timezone
    return subprocess.run(
        [dbt_executable(), *args, "--profiles-dir", str(project), "--project-dir", str(project),
         "--target-path", str(target), "--log-path", str(target / "logs"),
         "--vars", json.dumps(inputs["vars"])],
        cwd=warehouse, env={**env, **inputs["profile"]}, capture_output=True, text=True,
        check=False,
    )
