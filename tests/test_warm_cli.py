"""The warm CLI the tests start their runs from (tests/warm_cli.py) behaves as a new
interpreter would: the same exit code and output, only the environment it is given, and a
process of its own. A test of the tests' harness: if it drifted from a real `sales-kpi run`,
every run-based test would be testing something else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import run_cli_subprocess
from warm_cli import warm_cli

# not in `make test-fast`: the warm process imports what a whole run imports (≈ 7 s)
pytestmark = pytest.mark.slow


def test_a_warm_run_exits_and_prints_as_a_new_interpreter_does(tmp_path: Path) -> None:
    """A setting the run refuses: exit 2 and the same one line, forked or started anew
    (conftest's `run_cli_subprocess`, warm and `cold`: the two ways the suite starts runs)."""
    args = ("--extracts", str(tmp_path), "--warehouse", str(tmp_path / "warehouse"))
    refused = {"SALES_KPI_DUCKDB_THREADS": "zero"}
    warm = run_cli_subprocess(*args, env=refused, timeout=120)
    cold = run_cli_subprocess(*args, env=refused, timeout=120, cold=True)
    assert (warm["code"], warm["stdout"], warm["stderr"]) == (
        cold["code"], cold["stdout"], cold["stderr"])
    assert warm["code"] == 2 and "SALES_KPI_DUCKDB_THREADS" in warm["stderr"]


def test_a_warm_run_sees_only_the_environment_it_is_given(tmp_path: Path) -> None:
    """The same refused setting, then a run without it: the second does not inherit it."""
    args = ("--extracts", str(tmp_path / "missing"), "--warehouse", str(tmp_path / "w"))
    refused = run_cli_subprocess(*args, env={"SALES_KPI_DUCKDB_THREADS": "zero"}, timeout=120)
    plain = run_cli_subprocess(*args, drop=("SALES_KPI_DUCKDB_THREADS",), timeout=120)
    assert "SALES_KPI_DUCKDB_THREADS" in refused["stderr"]
    assert plain["code"] == 2 and "landing folder" in plain["stderr"], plain["stderr"]
    assert "SALES_KPI_DUCKDB_THREADS" not in plain["stderr"]


def test_a_warm_run_is_a_process_of_its_own_ended_by_its_signal(tmp_path: Path) -> None:
    """Its pid is its own (not the test's, not the warm process's) and SIGKILL ends it with
    Popen's -9 (a run over an empty landing folder, killed as it starts)."""
    (tmp_path / "landing").mkdir()
    run = warm_cli().popen(
        ["run", "--extracts", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "w")],
        env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
    stuck.connect(cli._warm.address)
    try:
        started = time.monotonic()
        run = run_cli_subprocess("--extracts", str(tmp_path), "--warehouse",
                                 str(tmp_path / "w"), env={"SALES_KPI_DUCKDB_THREADS": "zero"},
                                 timeout=120)
        assert run["code"] == 2 and time.monotonic() - started < 30
    finally:
        stuck.close()
