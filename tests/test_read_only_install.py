"""Read-only install: a run writes only under its warehouse (and the Dagster home).

As root a read-only mount is not at hand in every sandbox, so the test proves the property
directly: every file of the project folder is the same (path, size, modification time)
before and after a whole run whose warehouse and landing folder live elsewhere. The run is the
session's shared one (`published_warehouse` in conftest.py: load, dbt build, checks, publish
and site, through the CLI), which records the project folder before and after itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import project_snapshot

from pipelines.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _recorded(warehouse: Path, when: str) -> dict[str, list[int]]:
    path = warehouse.parent / f"{warehouse.name}.project-{when}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_run_writes_nothing_into_the_project_folder(published_warehouse: Path) -> None:
    assert not published_warehouse.is_relative_to(PROJECT_ROOT)
    assert (published_warehouse / "site" / "dbt_docs" / "index.html").exists()  # a whole run
    before, after = _recorded(published_warehouse, "before"), _recorded(published_warehouse,
                                                                         "after")
    assert before and len(before) == len(project_snapshot())  # the snapshot sees the project
    changed = sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )
    assert changed == []
