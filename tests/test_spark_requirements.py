"""A Spark test that cannot run is skipped, saying why — and fails under
SALES_KPI_REQUIRE_SPARK=1, as `make test-spark` and CI run it, so a machine without Java 17 or
the spark extra cannot pass the suite by skipping the Spark path (conftest.py, `spark_missing`).

Shown on a machine without Java: the Spark tests run in a pytest of their own whose PATH has
no `java`; the hook stops them before any fixture is built, so nothing of Spark starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REQUIRE_SPARK_ENV, spark_missing

TESTS_DIR = Path(__file__).parent
A_SPARK_TEST = "test_spark_cluster.py::test_both_workers_ran_tasks_of_the_job"


def _pytest_without_java(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    no_java = tmp_path / "bin"
    no_java.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if k != REQUIRE_SPARK_ENV}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "-p", "no:xdist", str(TESTS_DIR / A_SPARK_TEST)],
        env={**environment, "PATH": str(no_java), **env},
        cwd=TESTS_DIR.parent, capture_output=True, text=True, check=False, timeout=300,
    )


@pytest.fixture
def reason_without_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    reason = spark_missing()
    assert reason is not None
    return reason


def test_a_spark_test_is_skipped_saying_why_when_spark_cannot_run(
    tmp_path: Path, reason_without_java: str
) -> None:
    result = _pytest_without_java(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 skipped" in result.stdout
    assert reason_without_java in result.stdout


def test_a_spark_test_fails_saying_why_when_spark_is_required_and_cannot_run(
    tmp_path: Path, reason_without_java: str
) -> None:
    result = _pytest_without_java(tmp_path, **{REQUIRE_SPARK_ENV: "1"})
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 error" in result.stdout  # it fails in its setup, before any fixture
    assert f"{REQUIRE_SPARK_ENV}=1 but the Spark tests cannot run: {reason_without_java}" in (
        result.stdout
    )
