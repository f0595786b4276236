"""Read-only install: a run writes only under its warehouse (and the Dagster home).

As root a read-only mount is not at hand in every sandbox, so the test proves the property
directly: every file of the project folder is the same (path, size, modification time)
before and after a whole run whose warehouse and landing folder live elsewhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
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
