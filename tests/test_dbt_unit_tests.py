"""The dbt unit tests: every rule pinned with hand-made rows, at the definitions' defaults.

They run here, in the project's test suite, and not in the nightly `dbt build` (a run whose
settings differ from the defaults must not fail on a rule pinned at the defaults). dbt needs
the models' relations to exist to type the fixtures, so the project is first built empty
(`dbt run --empty`) on an empty raw layer.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest

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


@pytest.fixture(scope="module")
def empty_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An empty raw layer with every model built on it (no rows) and the seeds loaded."""
    folder = tmp_path_factory.mktemp("dbt_unit")
    database, target = folder / "warehouse.duckdb", folder / "target"
    with duckdb.connect(str(database)) as con:
        ensure_raw_layer(con)
        con.execute(OVERRIDES_DDL)
    for step in (("seed",), ("run", "--empty")):
        result = _dbt(*step, database=database, target=target)
        assert result.returncode == 0, result.stdout[-3000:]
    return database, target


def test_every_dbt_unit_test_passes_at_the_definitions_defaults(
    empty_build: tuple[Path, Path],
) -> None:
    database, target = empty_build
    result = _dbt("test", "--select", "test_type:unit", database=database, target=target)
    assert result.returncode == 0, result.stdout[-5000:]
    assert " ERROR=0 " in result.stdout and " PASS=" in result.stdout
    passed = int(result.stdout.split(" PASS=")[1].split()[0])
    assert passed >= 30, result.stdout[-2000:]
