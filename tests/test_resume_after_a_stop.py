"""A run stopped after its build is resumed from it: the next run over the same inputs checks,
publishes and writes the site from the complete build, without loading and building again
(pipelines/no_op.py). What may be resumed from is exactly a complete build of the same files,
settings, engine, overrides and project, made by the run that loaded them; the checks gate a
resumed publication as they gate any other.

The resumed runs of the stop tests (test_run_guard_kill_at_each_step.py,
test_run_guard_sigterm_at_each_step.py) show the resumption itself; here are its rules.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from run_guard_steps import RESUMING

from pipelines.cli import main
from pipelines.no_op import (
    LOADED_PARTS,
    complete_build_since,
    mark_built,
    mark_loaded,
    mark_run_started,
)
from pipelines.settings import Settings


def loads(settings: Settings, run_id: str, parts: tuple[str, ...] = LOADED_PARTS) -> None:
    """Run `run_id`'s first step, then its raw steps of `parts`, each loaded to the end."""
    mark_run_started(settings, run_id)
    for part in parts:
        mark_loaded(settings, run_id, part)


@pytest.fixture
def built(tmp_path: Path) -> Settings:
    """Settings over a landing folder with one file, whose warehouse holds the record of a
    complete build by run-1, the run that loaded it (no real build: these are the record's
    rules)."""
    landing = tmp_path / "landing" / "2026-11-26T0200"
    landing.mkdir(parents=True)
    (landing / "users.csv").write_text("user_id\nu1\n", encoding="utf-8")
    settings = Settings(extracts_dir=tmp_path / "landing", warehouse_dir=tmp_path / "warehouse")
    settings.warehouse_dir.mkdir()
    settings.build_database.write_bytes(b"")
    loads(settings, "run-1")
    assert mark_built(settings, "run-1")
    return settings


def test_a_complete_build_of_the_same_inputs_is_resumed_from(built: Settings) -> None:
    assert complete_build_since(built) == "run-1"


def test_a_new_or_touched_file_is_not_resumed_from(built: Settings) -> None:
    users = next(built.extracts_dir.rglob("users.csv"))
    os.utime(users, (time.time() + 5, time.time() + 5))
    assert complete_build_since(built) is None


def test_other_settings_are_not_resumed_from(built: Settings) -> None:
    assert complete_build_since(built.replace(min_conversation_seconds=240)) is None
    assert complete_build_since(built.replace(engine="spark")) is None


def test_a_run_that_starts_loading_forgets_the_build(built: Settings) -> None:
    mark_run_started(built, "run-2")
    assert complete_build_since(built) is None


def test_a_build_by_another_run_than_the_one_that_loaded_is_not_recorded(tmp_path: Path
                                                                         ) -> None:
    """A dbt build on its own (a few models materialized in `dagster dev`, a run whose load
    was not this one) leaves nothing to resume from."""
    settings = Settings(extracts_dir=tmp_path, warehouse_dir=tmp_path / "warehouse")
    loads(settings, "run-1")
    settings.build_database.write_bytes(b"")
    assert not mark_built(settings, "run-2")
    assert complete_build_since(settings) is None


def test_a_build_after_a_run_that_left_out_a_load_is_not_recorded(tmp_path: Path) -> None:
    """A run of some of the job's steps (`dagster dev`: the landing and the build, one raw
    step left out) built over a raw layer without that load: nothing to resume from."""
    settings = Settings(extracts_dir=tmp_path, warehouse_dir=tmp_path / "warehouse")
    loads(settings, "run-1", LOADED_PARTS[1:])
    settings.build_database.write_bytes(b"")
    assert not mark_built(settings, "run-1")
    assert complete_build_since(settings) is None


def test_an_unreadable_record_means_no_build_to_resume_from(built: Settings) -> None:
    (built.warehouse_dir / ".built-fingerprint.json").write_text("{half a rec", encoding="utf-8")
    assert complete_build_since(built) is None


def test_a_record_of_an_older_release_is_not_trusted(built: Settings) -> None:
    """A record without this release's format (written before a build was recorded only
    after every load of its run) is not resumed from."""
    import json

    record = built.warehouse_dir / ".built-fingerprint.json"
    state = json.loads(record.read_text(encoding="utf-8"))
    record.write_text(json.dumps({k: v for k, v in state.items() if k != "format"}),
                      encoding="utf-8")
    assert complete_build_since(built) is None


def test_a_spark_build_is_not_resumed_from_a_copied_warehouse(tmp_path: Path) -> None:
    """A Spark build names its tables by absolute path: a copy of its warehouse would read the
    original's tables. A DuckDB build is one file, whole where it is copied to."""
    landing = tmp_path / "landing"
    landing.mkdir()
    for engine in ("duckdb", "spark"):
        settings = Settings(extracts_dir=landing, warehouse_dir=tmp_path / engine / "warehouse",
                            engine=engine)
        loads(settings, "run-1")
        settings.build_database.parent.mkdir(parents=True, exist_ok=True)
        settings.build_database.write_bytes(b"")
        assert mark_built(settings, "run-1")
        assert complete_build_since(settings) == "run-1"
        copied = shutil.copytree(settings.warehouse_dir, tmp_path / engine / "copy")
        moved = complete_build_since(settings.replace(warehouse_dir=copied))
        assert moved == ("run-1" if engine == "duckdb" else None), engine


@pytest.mark.slow
def test_a_resumed_run_is_gated_by_the_same_blocking_checks(
    stopped_after_build: Path, tmp_path: Path
) -> None:
    """The build a stopped run left is audited like any: one contact twice in dim_leads
    (rule 1) blocks the resumed publication, which leaves the published file as it was and
    exits 1."""
    warehouse = shutil.copytree(stopped_after_build / "warehouse", tmp_path / "warehouse",
                                symlinks=True)
    with duckdb.connect(str(warehouse / "warehouse.duckdb")) as con:
        con.execute("insert into marts.dim_leads select * from marts.dim_leads limit 1")
    before = (warehouse / "marts.duckdb").read_bytes()
    out, err = io.StringIO(), io.StringIO()
    with (contextlib.redirect_stdout(out), contextlib.redirect_stderr(err),
          pytest.MonkeyPatch.context() as patch):
        patch.setenv("SALES_KPI_WRITE_SITE", "false")
        code = main(["run", "--extracts", str(stopped_after_build / "extracts"),
                     "--warehouse", str(warehouse)])
    assert code == 1, out.getvalue()[-3000:]
    assert RESUMING in out.getvalue()
    assert "lead_stages" in err.getvalue() + out.getvalue()
    assert (warehouse / "marts.duckdb").read_bytes() == before


@pytest.mark.slow
def test_a_resume_without_a_complete_build_of_its_inputs_publishes_nothing(
    copy_of_published_warehouse: Path, sample_extracts: Path
) -> None:
    """The resume job launched by hand (`dagster dev`) on a warehouse whose build is of other
    settings: its first step refuses, naming why, and nothing is published."""
    from pipelines.job_runner import run_nightly_job

    warehouse = copy_of_published_warehouse
    settings = Settings(extracts_dir=sample_extracts, warehouse_dir=warehouse,
                        min_conversation_seconds=240, write_site=False)
    before = (warehouse / "marts.duckdb").read_bytes()
    outcome = run_nightly_job(settings, log_level="CRITICAL", resume=True)
    assert not outcome.success
    assert any("nothing to resume from" in failure for failure in outcome.failures), outcome
    assert (warehouse / "marts.duckdb").read_bytes() == before
