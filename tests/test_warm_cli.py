"""The warm CLI the tests start their runs from (tests/warm_cli.py) behaves as a new
interpreter would: the same exit code and output, only the environment it is given, and a
process of its own. A test of the tests' harness: if
it drifted from a real `sales-kpi run`, every run-based test would be testing something else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from warm_cli import run_warm, warm_cli

from pipelines.settings import PROJECT_ROOT

# not in `make test-fast`: the warm process imports what a whole run imports (≈ 7 s)
pytestmark = pytest.mark.slow


def _cold(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c",
         "import sys; from pipelines.cli import main; raise SystemExit(main(sys.argv[1:]))",
         *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
        timeout=120,
    )


def test_a_warm_run_exits_and_prints_as_a_new_interpreter_does(tmp_path: Path) -> None:
    """A setting the run refuses: exit 2 and the same one line, forked or started anew."""
    args = ["run", "--extracts", str(tmp_path), "--warehouse", str(tmp_path / "warehouse")]
    env = {**os.environ, "SALES_KPI_DUCKDB_THREADS": "zero"}
    warm = run_warm(args, env=env, cwd=PROJECT_ROOT, timeout=120, text=True)
    cold = _cold(args, env)
    assert (warm.returncode, warm.stdout, warm.stderr) == (
        cold.returncode, cold.stdout, cold.stderr)
    assert warm.returncode == 2 and "SALES_KPI_DUCKDB_THREADS" in warm.stderr


def test_a_warm_run_sees_only_the_environment_it_is_given(tmp_path: Path) -> None:
    """The same refused setting, then a run without it: the second does not inherit it."""
    args = ["run", "--extracts", str(tmp_path / "missing"), "--warehouse", str(tmp_path / "w")]
    env = {k: v for k, v in os.environ.items() if k != "SALES_KPI_DUCKDB_THREADS"}
    refused = run_warm(args, env={**env, "SALES_KPI_DUCKDB_THREADS": "zero"}, cwd=PROJECT_ROOT,
                       timeout=120, text=True)
    plain = run_warm(args, env=env, cwd=PROJECT_ROOT, timeout=120, text=True)
    assert "SALES_KPI_DUCKDB_THREADS" in refused.stderr
    assert plain.returncode == 2 and "landing folder" in plain.stderr, plain.stderr
    assert "SALES_KPI_DUCKDB_THREADS" not in plain.stderr


def test_a_warm_run_is_a_process_of_its_own_ended_by_its_signal(tmp_path: Path) -> None:
    """Its pid is its own (not the test's, not the warm process's) and SIGKILL ends it with
    Popen's -9 (a run over an empty landing folder, killed as it starts)."""
    (tmp_path / "landing").mkdir()
    run = warm_cli().popen(
        ["run", "--extracts", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "w")],
        env=dict(os.environ), cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    assert run.pid not in (os.getpid(), *(c.pid for c in psutil.Process().children()))
    run.kill()
    assert run.wait(timeout=60) == -signal.SIGKILL


def test_a_request_that_never_comes_does_not_hold_up_the_other_runs(tmp_path: Path) -> None:
    """A test that connects and then fails before sending its request (or hangs) costs the
    warm process a few seconds, not the rest of the worker's runs."""
    import socket

    cli = warm_cli()
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stuck.connect(cli._address)
    try:
        started = time.monotonic()
        run = run_warm(["run", "--extracts", str(tmp_path), "--warehouse", str(tmp_path / "w")],
                       env={**os.environ, "SALES_KPI_DUCKDB_THREADS": "zero"},
                       cwd=PROJECT_ROOT, timeout=120, text=True)
        assert run.returncode == 2 and time.monotonic() - started < 30
    finally:
        stuck.close()
