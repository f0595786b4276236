"""dbt's parse of a fresh warehouse: the install's, when the run's settings are those it was
made with, or one started with the run so that it runs beside the load
(pipelines/dbt_parse_ahead.py). That the build then re-parses nothing is pinned where a whole
run is: test_end_to_end.py, test_a_fresh_warehouse_builds_from_the_parse_made_while_it_loaded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from pipelines.dbt_parse_ahead import (
    PARTIAL_PARSE,
    SCRATCH_PREFIX,
    dbt_runs_dir,
    start_parse_ahead,
)
from pipelines.dbt_project import (
    DBT_PROJECT_DIR,
    dbt_executable,
    install_parse_serves,
    parse_inputs,
    prepared_dbt_project,
)
from pipelines.run_guard import GUARDED
from pipelines.settings import DBT_EXECUTABLE_ENV, Settings

# A setting the install did not parse with (it parsed with the defaults): such a run's vars
# differ from the install's parse, so a fresh warehouse needs a parse of its own
NOT_THE_INSTALLS = {"target_uplift": 0.2}


@pytest.mark.skipif(not GUARDED, reason="dbt changes to the warehouse folder through its "
                    "launcher, which only Linux has; elsewhere the profile names the file in full")
def test_the_profile_renders_the_same_for_every_warehouse(tmp_path: Path) -> None:
    """What dbt keys a saved parse on (vars, the rendered profile) does not name the
    warehouse: dbt runs in the warehouse folder and the profile names the file from there."""
    one, other = tmp_path / "one", tmp_path / "elsewhere" / "other"
    assert parse_inputs(Settings(warehouse_dir=one)) == parse_inputs(Settings(warehouse_dir=other))
    assert str(tmp_path) not in str(parse_inputs(Settings(warehouse_dir=one)))


def test_a_fresh_warehouse_with_the_installs_settings_starts_from_the_installs_parse(
    tmp_path: Path,
) -> None:
    """No parse ahead: the state `make setup` saved is copied in for the build to start from."""
    prepared_dbt_project()
    settings = Settings(warehouse_dir=tmp_path / "warehouse")
    installed = install_parse_serves(settings)
    assert installed == DBT_PROJECT_DIR / "target" / PARTIAL_PARSE
    assert start_parse_ahead(settings, dbt_executable()) is None
    assert (dbt_runs_dir(settings) / PARTIAL_PARSE).read_bytes() == installed.read_bytes()
    assert list(dbt_runs_dir(settings).glob(f"{SCRATCH_PREFIX}*")) == []


def test_a_run_with_other_settings_than_the_installs_gets_a_parse_of_its_own(
    tmp_path: Path,
) -> None:
    settings = Settings(warehouse_dir=tmp_path / "warehouse", **NOT_THE_INSTALLS)
    assert install_parse_serves(settings) is None
    ahead = start_parse_ahead(settings, dbt_executable())
    assert ahead is not None
    assert ahead.finish()  # the parse ran to the end and its state is kept for the build
    assert (dbt_runs_dir(settings) / PARTIAL_PARSE).is_file()


def test_a_warehouse_that_kept_its_parse_state_gets_no_parse_ahead(tmp_path: Path) -> None:
    settings = Settings(warehouse_dir=tmp_path / "warehouse")
    dbt_runs_dir(settings).mkdir(parents=True)
    (dbt_runs_dir(settings) / PARTIAL_PARSE).write_bytes(b"kept by the last build")
    assert start_parse_ahead(settings, dbt_executable()) is None


def test_the_spark_build_gets_no_parse_ahead(tmp_path: Path) -> None:
    """Its vars name the raw layer's Parquet export, known only after the load."""
    settings = Settings(warehouse_dir=tmp_path / "warehouse", engine="spark")
    assert start_parse_ahead(settings, dbt_executable()) is None


def test_a_parse_ahead_stopped_before_the_build_leaves_no_process_and_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails or is stopped during the load ends its parse ahead (the resource's
    teardown) and keeps nothing half-written for the next night. (The real dbt: the process
    that is stopped is what is looked at; tests/warm_dbt.py.)"""
    monkeypatch.delenv(DBT_EXECUTABLE_ENV, raising=False)
    settings = Settings(warehouse_dir=tmp_path / "warehouse", **NOT_THE_INSTALLS)
    ahead = start_parse_ahead(settings, dbt_executable())
    assert ahead is not None and ahead.folder.is_dir()
    ahead.stop()
    assert ahead.process.returncode is not None  # ended and reaped
    assert not psutil.pid_exists(ahead.process.pid)
    assert not ahead.folder.exists()
    assert not (dbt_runs_dir(settings) / PARTIAL_PARSE).exists()


def test_a_missing_dbt_starts_no_parse_ahead_and_leaves_no_folder(tmp_path: Path) -> None:
    settings = Settings(warehouse_dir=tmp_path / "warehouse", **NOT_THE_INSTALLS)
    assert start_parse_ahead(settings, str(tmp_path / "no-dbt-here")) is None
    assert list(dbt_runs_dir(settings).iterdir()) == []


def test_what_a_killed_runs_parse_ahead_left_is_removed_by_the_next(tmp_path: Path) -> None:
    settings = Settings(warehouse_dir=tmp_path / "warehouse", **NOT_THE_INSTALLS)
    left = dbt_runs_dir(settings) / f"{SCRATCH_PREFIX}0123"
    left.mkdir(parents=True)
    (left / PARTIAL_PARSE).write_bytes(b"half written")
    ahead = start_parse_ahead(settings, dbt_executable())
    assert ahead is not None
    ahead.stop()
    assert not left.exists()
    assert not (dbt_runs_dir(settings) / PARTIAL_PARSE).exists()


def test_settings_replaced_in_a_runs_config_reach_the_parse_ahead(tmp_path: Path) -> None:
    """The launchpad (or a schedule) may replace the `pipeline` resource's settings; the dbt
    resource reads the replaced ones: here the definitions are bound to a Spark warehouse
    (no parse ahead) and the run's config names a fresh DuckDB one, which gets its parse."""
    from dagster import build_resources

    from pipelines.definitions import build_definitions
    from pipelines.resources import PipelineSettings

    bound = Settings(warehouse_dir=tmp_path / "bound", engine="spark")
    launched = Settings(warehouse_dir=tmp_path / "launched", **NOT_THE_INSTALLS)
    resources = build_definitions(bound).resources
    config = {"settings_json": PipelineSettings.from_settings(launched).settings_json}
    with build_resources(
        {"pipeline": resources["pipeline"], "dbt": resources["dbt"]},
        resource_config={"pipeline": {"config": config}},
    ) as built:
        assert built.pipeline.settings().warehouse_dir == launched.warehouse_dir
        ahead = built.dbt._parse_ahead
        assert ahead is not None
        assert ahead.folder.parent == dbt_runs_dir(launched)
    assert not ahead.folder.exists()  # stopped with the resource


# Reads a manifest.json whenever it changes, until the stop file exists: how many reads were
# whole JSON and how many were not (half a file)
MANIFEST_READER = """
import json, os, sys, time
manifest, stop = sys.argv[1], sys.argv[2]
seen, reads = None, {"whole": 0, "partial": 0}
while True:
    last = os.path.exists(stop)  # once told to stop: one more look, then stop
    try:
        stat = os.stat(manifest)
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != seen:
            seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            with open(manifest, encoding="utf-8") as handle:
                json.loads(handle.read())
            reads["whole"] += 1
    except FileNotFoundError:
        pass
    except ValueError:
        reads["partial"] += 1
    if last:
        break
    time.sleep(0.002)
print(json.dumps(reads))
"""


@pytest.mark.slow
def test_a_process_reading_the_manifest_while_it_is_parsed_reads_it_whole(
    tmp_path: Path,
) -> None:
    """Without `make setup` the first process to load the definitions parses the project;
    another one loading them meanwhile reads manifest.json: never half of it. (A copy of the
    project without its parse; a second process reads the manifest each time it changes.)"""
    project = shutil.copytree(DBT_PROJECT_DIR, tmp_path / "dbt_project",
                              ignore=shutil.ignore_patterns("target", "logs"))
    manifest, stop = project / "target" / "manifest.json", tmp_path / "stop"
    # what a parse killed on its way left (its process is gone): removed by the next one
    leftover = project / "target" / ".parse-999999999-killed"
    leftover.mkdir(parents=True)
    (leftover / "manifest.json").write_text("{\"nodes\": {", encoding="utf-8")
    reader = subprocess.Popen([sys.executable, "-c", MANIFEST_READER, str(manifest), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    try:
        prepared_dbt_project(project)
        prepared_dbt_project(project)  # a second time: fresh, so nothing is parsed again
    finally:
        stop.touch()
        reads = json.loads(reader.communicate(timeout=60)[0])
    # (when dbt wrote the file in place, this reader found half of it 11 and 17 times in two
    # parses)
    assert reads["partial"] == 0, reads
    assert reads["whole"] == 1, reads  # it changed once: the parse, renamed into place
    assert json.loads(manifest.read_text(encoding="utf-8"))["nodes"]
    assert [p.name for p in (project / "target").iterdir() if p.is_dir()] == []
