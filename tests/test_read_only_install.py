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
import os
import subprocess
from pathlib import Path

import pytest
from conftest import (
    HOSTILE_WAREHOUSE,
    cli_run_command,
    project_snapshot,
    read_only_mount_works,
    read_only_project_command,
)

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


def test_a_warehouse_the_run_cannot_write_is_refused_in_one_line(tmp_path: Path) -> None:
    """A warehouse folder inside the read-only project (an operator's mistake): one line
    naming it and why, exit 2 — not a traceback from the lock — and nothing written."""
    if not read_only_mount_works(PROJECT_ROOT):
        pytest.skip("no private read-only bind mount on this machine")
    warehouse = PROJECT_ROOT / f"read-only-probe-{os.getpid()}"
    run = subprocess.run(
        read_only_project_command(cli_run_command(
            "--extracts", str(tmp_path), "--warehouse", str(warehouse))),
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=120,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines() == [
        f"error: warehouse folder {warehouse}: cannot be created (Read-only file system)"]
    assert not warehouse.exists()
