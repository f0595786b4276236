"""Read-only install: a run writes only under its warehouse (and the Dagster home).

A read-only mount is not at hand in every sandbox, so the first test proves the property
directly: every file of the project folder is the same (path, size, modification time)
before and after a whole run whose warehouse and landing folder live elsewhere — the
session's shared run (`published_warehouse` in conftest.py: load, dbt build, checks, publish
and site, through the CLI, on a fresh warehouse, the project folder writable, so that a write
the code would tolerate is seen), which records the project folder before and after itself.
The second proves it for real where the machine allows a private read-only bind mount: the
hostile-names run (`hostile_verbose_run`: a whole run with the site through the CLI, on a copy
of the shared warehouse over new files) ran with the project folder mounted read-only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import HOSTILE_WAREHOUSE, project_snapshot, read_only_mount_works

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


def test_a_run_with_the_project_folder_mounted_read_only_succeeds(
    hostile_verbose_run: Path,
) -> None:
    """The real thing: a whole run (load, dbt build, checks, publish and site through the CLI)
    ran with the project folder bind-mounted read-only (a private mount namespace, as a
    read-only install would be) wherever this machine allows such a mount (conftest.py
    `read_only_mount_works`); it succeeded."""
    folder = hostile_verbose_run
    if (folder / "read_only_project").read_text(encoding="utf-8") != "true":
        assert not read_only_mount_works(PROJECT_ROOT)  # the mount was not at hand
        pytest.skip("no private read-only bind mount on this machine")
    assert (folder / "code").read_text(encoding="utf-8") == "0", (
        (folder / "stdout").read_bytes()[-2000:], (folder / "stderr").read_bytes()[-3000:])
    assert b"succeeded" in (folder / "stdout").read_bytes()
    assert (folder / HOSTILE_WAREHOUSE / "marts.duckdb").is_file()
    assert (folder / HOSTILE_WAREHOUSE / "site" / "dbt_docs" / "index.html").exists()  # whole
