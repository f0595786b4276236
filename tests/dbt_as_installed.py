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

from pipelines.dbt_project import DBT_PROJECT_DIR, DBT_WORKDIR_ENV, dbt_executable, parse_inputs
from pipelines.settings import Settings


def dbt_as_installed(
    *args: str, warehouse: Path, project: Path = DBT_PROJECT_DIR
) -> subprocess.CompletedProcess[str]:
    """`dbt ARGS` against `warehouse/warehouse.duckdb`, on the project folder `project` (a
    test's copy, with the install's parse state copied into its `target/`, or the project)."""
    inputs = parse_inputs(Settings())
    env = {k: v for k, v in os.environ.items() if k != DBT_WORKDIR_ENV}
    return subprocess.run(
        [dbt_executable(), *args, "--profiles-dir", str(project), "--project-dir", str(project),
         "--vars", json.dumps(inputs["vars"])],
        cwd=warehouse, env={**env, **inputs["profile"]}, capture_output=True, text=True,
        check=False,
    )
