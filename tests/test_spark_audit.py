"""The audit on Spark when it cannot run (pipelines/quality/spark_audit.py, README "The audit
on Spark"): the run must fail saying why — the line Spark or GX gave, and where the whole
output is — and leave no Spark process behind. The audit that runs is tested on the shared
Spark night (tests/test_spark_job.py)."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import psutil
import pytest

from pipelines.audit import stage_previous_publication
from pipelines.quality.checks import CHECKS
from pipelines.quality.spark_audit import LOG_FILE, SparkAuditError, run_checks_in_spark_process
from pipelines.settings import Settings

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _spark_processes_of(folder: Path) -> list[psutil.Process]:
    """Java processes whose command line names `folder` (a driver started for it)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "java" and str(folder) in " ".join(
            process.info["cmdline"] or []
        ):
            found.append(process)
    return found


def test_a_check_spark_cannot_run_fails_the_audit_naming_why_and_its_log(
    tmp_path: Path,
) -> None:
    """A Spark warehouse without the build's tables: the check's query cannot be analysed,
    the audit fails with Spark's reason and the path of its log (this run's output there),
    and the child's JVM is gone."""
    settings = Settings(warehouse_dir=tmp_path / "warehouse", engine="spark",
                        spark_master="local[1]")
    settings.spark_dir.mkdir(parents=True)
    with duckdb.connect(str(settings.build_database)) as con:
        stage_previous_publication(con, settings.warehouse_dir, "audit-test",
                                   settings.run_settings())

    with pytest.raises(SparkAuditError) as failed:
        run_checks_in_spark_process(settings, "audit-test", CHECKS[:1])

    message = str(failed.value)
    assert "could not run on Spark" in message
    assert "dim_leads" in message  # Spark's own reason: the mart it cannot find
    log = settings.spark_dir / "logs" / LOG_FILE
    assert str(log) in message
    assert "--- checks of run audit-test: exit 1" in log.read_text(encoding="utf-8")
    deadline = time.monotonic() + 60
    while _spark_processes_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(1)
    assert _spark_processes_of(tmp_path) == []
