"""The build's dbt started ahead (pipelines/dbt_ahead.py): the build's launcher hands its
command to it, and starts the real dbt when there is none to take it.

The job's side is tested where the job runs: the session's cold run (conftest.py
`published_warehouse`, the real dbt) says its build ran in the dbt started during the load; the
stop and kill tests (test_run_guard*.py) stop runs whose build runs there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from warm_dbt import real_dbt

from pipelines.dbt_ahead import AHEAD_ENV
from pipelines.dbt_project import dbt_executable


def _start_ahead(socket_path: Path) -> subprocess.Popen[bytes]:
    """`python -m pipelines.dbt_ahead`, once it listens (a launcher may connect from then on:
    it waits while dbt is imported)."""
    ahead = subprocess.Popen(
        [sys.executable, "-m", "pipelines.dbt_ahead", str(socket_path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not socket_path.exists():
        assert ahead.poll() is None, ahead.communicate()[1]
        assert time.monotonic() < deadline, "the dbt started ahead never listened"
        time.sleep(0.05)
    return ahead


def _launch_dbt(
    args: list[str], socket_path: Path, cwd: Path, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """dbt as the build's launcher starts it (the run guard's, with the hand-over), the real
    dbt named as the install's own; `env` set (or, for None, removed) on top of this one."""
    environment = {**real_dbt(os.environ), AHEAD_ENV: str(socket_path)}
    for name, value in (env or {}).items():
        environment.pop(name, None)
        if value is not None:
            environment[name] = value
    return subprocess.run([dbt_executable(), *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_launcher_hands_its_command_to_the_dbt_started_ahead_with_its_folder_and_environment(
    tmp_path: Path,
) -> None:
    """The command runs there (a dbt started ahead that takes none keeps waiting), writing to
    the launcher's own stdout, in the launcher's working folder and environment: `dbt debug
    --config-dir` names the profiles folder dbt finds from its environment (DBT_PROFILES_DIR)
    or else its working folder, not the ones the ahead dbt was started with."""
    folder = tmp_path / "launched here"
    folder.mkdir()
    (folder / "profiles.yml").write_text("", encoding="utf-8")
    named = tmp_path / "named by the environment"
    named.mkdir()
    environments = ({"DBT_PROFILES_DIR": None}, {"DBT_PROFILES_DIR": str(named)})
    sockets = [tmp_path / f"ahead-{n}" for n in range(len(environments))]
    aheads = [_start_ahead(path) for path in sockets]  # importing dbt side by side
    seen = []
    try:
        for env, socket_path, ahead in zip(environments, sockets, aheads, strict=True):
            done = _launch_dbt(["debug", "--config-dir"], socket_path, folder, env)
            assert ahead.wait(timeout=60) == 0
            assert done.returncode == 0, done.stderr
            seen.append(done.stdout)
    finally:
        for ahead in aheads:
            ahead.kill()
            ahead.wait()
    assert str(folder) in seen[0]
    assert str(named) in seen[1]


def test_without_a_dbt_started_ahead_the_launcher_starts_the_real_dbt(tmp_path: Path) -> None:
    done = _launch_dbt(["--version"], tmp_path / "nobody-listens-here", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Core:" in done.stdout


def test_the_sessions_cold_run_built_in_the_dbt_started_during_the_load(
    published_warehouse: Path,
) -> None:
    logs = "".join(
        p.read_text(encoding="utf-8") for p in (published_warehouse / "logs").glob("*.log")
    )
    assert "dbt build ran in the dbt started during the load" in logs
