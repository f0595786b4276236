"""Read-only install: a run writes only under its warehouse (and the Dagster home).

As root a read-only mount is not at hand in every sandbox, so the test proves the property
directly: every file of the project folder is the same (path, size, modification time)
before and after a whole run whose warehouse and landing folder live elsewhere. The run is the
session's shared one (`published_warehouse` in conftest.py: load, dbt build, checks, publish
and site, through the CLI), which records the project folder before and after itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import project_snapshot

from pipelines.dbt_project import prepared_dbt_project
from pipelines.sample import generate_sample
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


def _read_only_mount_works(folder: Path) -> bool:
    """Whether this machine lets a test bind-mount a folder read-only in a private mount
    namespace (root in a container usually may; elsewhere the test is skipped)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         'mount --rbind "$1" "$1" && mount -o remount,bind,ro "$1" && [ ! -w "$1" ]',
         "probe", str(folder)],
        capture_output=True,
    )
    return probe.returncode == 0


def test_a_run_with_the_project_folder_mounted_read_only_succeeds(tmp_path: Path) -> None:
    """The real thing: the project folder bind-mounted read-only (a private mount namespace,
    as a read-only install would be), the whole job run from it through the CLI."""
    if not _read_only_mount_works(PROJECT_ROOT):
        pytest.skip("no private read-only bind mount on this machine")
    prepared_dbt_project()  # the install step (make setup) prepares the manifest
    extracts = tmp_path / "extracts"
    generate_sample(extracts, scale=0.1, seed=8)
    script = (
        'mount --rbind "$1" "$1" && mount -o remount,bind,ro "$1" && '
        'cd "$1" && [ ! -w "$1" ] && '
        'exec "$2" -c "import sys; from pipelines.cli import main; '
        "raise SystemExit(main(['run', '--extracts', sys.argv[1], '--warehouse', sys.argv[2]]))\" "
        '"$3" "$4"'
    )
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "run", str(PROJECT_ROOT), sys.executable,
         str(extracts), str(tmp_path / "warehouse")],
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    assert "succeeded" in run.stdout
    assert (tmp_path / "warehouse" / "marts.duckdb").is_file()
