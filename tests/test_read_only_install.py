"""Read-only install: a run writes only under its warehouse (and the Dagster home).

As root a read-only mount is not at hand in every sandbox, so the test proves the property
directly: every file of the project folder is the same (path, size, modification time)
before and after a whole run whose warehouse and landing folder live elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.dbt_project import prepared_dbt_project
from pipelines.sample import generate_sample
from pipelines.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

# Not the project's files: the virtual environment, caches, and what tests themselves write.
OUTSIDE = {".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "artifacts", ".git",
           "warehouse", "data", ".dagster_home"}


def _snapshot() -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(PROJECT_ROOT)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in PROJECT_ROOT.rglob("*")
        if path.is_file() and not OUTSIDE & set(path.relative_to(PROJECT_ROOT).parts)
    }


def test_a_run_writes_nothing_into_the_project_folder(tmp_path: Path) -> None:
    prepared_dbt_project()  # the install step (make setup) prepares the manifest
    extracts = tmp_path / "extracts"
    generate_sample(extracts, scale=0.1, seed=8)
    before = _snapshot()
    assert main(["run", "--extracts", str(extracts), "--warehouse",
                 str(tmp_path / "warehouse")]) == 0
    after = _snapshot()
    changed = sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )
    assert changed == []
