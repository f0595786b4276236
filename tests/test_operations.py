"""Nightly operation: the schedule, the new-delivery sensor and the failure hook are defined
and fire in-process (Dagster's test utilities)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_hook_context,
    build_schedule_context,
    build_sensor_context,
)

from pipelines.assets.raw import RAW_ENTITIES_STEP
from pipelines.definitions import NIGHTLY_JOB, RESUME_JOB, build_definitions
from pipelines.operations import alert_on_failure, alerts_path
from pipelines.resources import PipelineSettings
from pipelines.settings import PROJECT_ROOT, Settings


def landing_with_delivery(root: Path, name: str, age_seconds: float) -> Path:
    delivery = root / name
    delivery.mkdir(parents=True)
    path = delivery / "users.csv"
    path.write_text("user_id,full_name,role,updated_at\nu1,Ann,ae,2026-11-01\n")
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_the_nightly_schedule_runs_the_job_at_2am_amsterdam(tmp_path: Path) -> None:
    defs = build_definitions(Settings(warehouse_dir=tmp_path / "warehouse"))
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/Amsterdam"
    assert schedule.job_name == NIGHTLY_JOB
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
        )
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == 1 and isinstance(requests[0], RunRequest)


def test_the_schedule_time_is_a_setting(tmp_path: Path) -> None:
    defs = build_definitions(
        Settings(warehouse_dir=tmp_path / "warehouse", schedule_cron="30 5 * * 1-5")
    )
    assert defs.resolve_schedule_def("nightly_schedule").cron_schedule == "30 5 * * 1-5"


def delivery_sensor(landing: Path, **settings: Any) -> Any:
    """The new-delivery sensor of a job watching `landing` (its warehouse a folder in it)."""
    return build_definitions(
        Settings(extracts_dir=landing, warehouse_dir=landing / "wh", **settings)
    ).resolve_sensor_def("new_delivery_sensor")


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The sensor's clock moved on by `seconds` (a file's change time cannot be set back)."""
    import pipelines.operations as operations

    now = time.time() + seconds
    monkeypatch.setattr(operations, "_now", lambda: now)


def tick(sensor: Any, instance: DagsterInstance, cursor: str | None = None) -> Any:
    return sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor))


def test_the_sensor_starts_a_run_when_a_new_delivery_has_landed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sensor = delivery_sensor(tmp_path)
    landing_with_delivery(tmp_path, "2026-11-26T0200", age_seconds=600)
    later(monkeypatch, 600)
    with DagsterInstance.ephemeral() as instance:
        first = tick(sensor, instance)
        assert [r.job_name or NIGHTLY_JOB for r in first.run_requests] == [NIGHTLY_JOB]
        assert first.run_requests[0].tags["sales_kpi/latest"] == "2026-11-26T0200"
        # nothing new: skipped
        again = tick(sensor, instance, first.cursor)
        assert not again.run_requests and again.skip_message
        # a new delivery: another run
        landing_with_delivery(tmp_path, "2026-11-27T0200", age_seconds=600)
        later(monkeypatch, 1200)
        second = tick(sensor, instance, first.cursor)
        assert len(second.run_requests) == 1
        assert second.run_requests[0].tags["sales_kpi/latest"] == "2026-11-27T0200"


def test_the_sensor_waits_for_a_delivery_still_being_copied(tmp_path: Path) -> None:
    sensor = delivery_sensor(tmp_path, delivery_settle_seconds=60)
    landing_with_delivery(tmp_path, "2026-11-27T0200", age_seconds=1)
    with DagsterInstance.ephemeral() as instance:
        result = tick(sensor, instance)
    assert not result.run_requests
    assert "still arriving: 2026-11-27T0200" in (result.skip_message or "")


def test_the_sensor_starts_no_run_while_a_file_of_a_delivery_it_ran_is_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job loads the whole landing folder: a file being written anywhere in it holds
    every run back, and once it is quiet the sensor runs again, even at the same size."""
    sensor = delivery_sensor(tmp_path)
    path = landing_with_delivery(tmp_path, "2026-11-26T0200", age_seconds=600)
    later(monkeypatch, 600)
    with DagsterInstance.ephemeral() as instance:
        first = tick(sensor, instance)
        assert len(first.run_requests) == 1
        half = path.read_text().replace("Ann", "Bob")  # the same size, other content
        path.write_text(half[: len(half) // 2])
        later(monkeypatch, 0)  # being written now
        writing = tick(sensor, instance, first.cursor)
        assert not writing.run_requests and "still arriving" in (writing.skip_message or "")
        path.write_text(half)
        later(monkeypatch, 600)  # quiet again
        replaced = tick(sensor, instance, first.cursor)
        assert len(replaced.run_requests) == 1
        assert replaced.run_requests[0].run_key != first.run_requests[0].run_key


def test_a_delivery_copied_with_its_old_times_is_still_arriving_until_quiet(
    tmp_path: Path,
) -> None:
    """`cp -p` and `rsync -a` keep a file's modification time, not its change time."""
    sensor = delivery_sensor(tmp_path, delivery_settle_seconds=60)
    landing_with_delivery(tmp_path, "2026-11-27T0200", age_seconds=86_400)
    with DagsterInstance.ephemeral() as instance:
        result = tick(sensor, instance)
    assert not result.run_requests and "still arriving" in (result.skip_message or "")


def test_the_sensors_run_key_is_the_same_in_every_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dagster drops a run request whose key it has seen: the same deliveries must give the
    same key after a restart (Python's hash() of a text changes with each process). The key
    of this process and of an interpreter with another hash seed."""
    landing_with_delivery(tmp_path, "2026-11-26T0200", age_seconds=600)
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from dagster import DagsterInstance, build_sensor_context\n"
        "import pipelines.operations as operations\n"
        "from pipelines.definitions import build_definitions\n"
        "from pipelines.settings import Settings\n"
        "operations._now = lambda: time.time() + 600\n"
        "root = Path(sys.argv[1])\n"
        "settings = Settings(extracts_dir=root, warehouse_dir=root / 'wh')\n"
        "sensor = build_definitions(settings).resolve_sensor_def('new_delivery_sensor')\n"
        "with DagsterInstance.ephemeral() as instance:\n"
        "    result = sensor.evaluate_tick(build_sensor_context(instance=instance))\n"
        "print(result.run_requests[0].run_key)\n"
    )
    # another seed than this process's (random unless PYTHONHASHSEED is set)
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    elsewhere = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=PROJECT_ROOT, capture_output=True,
        text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed},
    ).stdout.strip()
    later(monkeypatch, 600)
    with DagsterInstance.ephemeral() as instance:
        (here,) = tick(delivery_sensor(tmp_path), instance).run_requests
    assert here.run_key == elsewhere and elsewhere.startswith("deliveries-")


def test_the_sensor_starts_no_run_for_what_the_last_publication_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its first tick (no cursor yet: the sensor just turned on) on a folder the last run
    published: skipped as the schedule skips it, not a rebuild of everything."""
    from pipelines.no_op import mark_published, mark_run_started

    landing = tmp_path / "landing"
    landing_with_delivery(landing, "2026-11-24T0200", age_seconds=3600)
    later(monkeypatch, 3600)
    settings = Settings(extracts_dir=landing, warehouse_dir=tmp_path / "warehouse")
    mark_run_started(settings, "run-of-last-night")
    mark_published(settings, "run-of-last-night")
    (settings.warehouse_dir / "marts.duckdb").write_bytes(b"")  # a publication exists
    sensor = build_definitions(settings).resolve_sensor_def("new_delivery_sensor")
    with DagsterInstance.ephemeral() as instance:
        result = tick(sensor, instance)
    assert not result.run_requests
    assert "nothing new since run run-of-" in (result.skip_message or "")


def test_the_sensor_skips_a_missing_landing_folder(tmp_path: Path) -> None:
    settings = Settings(extracts_dir=tmp_path / "absent", warehouse_dir=tmp_path / "wh")
    sensor = build_definitions(settings).resolve_sensor_def("new_delivery_sensor")
    with DagsterInstance.ephemeral() as instance:
        result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    assert not result.run_requests and "does not exist" in (result.skip_message or "")
    assert not isinstance(result, SkipReason)


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Webhook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> str:
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Webhook.received.clear()
    yield f"http://127.0.0.1:{server.server_port}/alert"
    server.shutdown()


def test_the_failure_hook_writes_a_clear_alert_and_calls_the_webhook(
    tmp_path: Path, webhook: str
) -> None:
    settings = Settings(
        extracts_dir=tmp_path, warehouse_dir=tmp_path / "wh", alert_webhook_url=webhook
    )
    context = build_hook_context(
        resources={"pipeline": PipelineSettings.from_settings(settings)},
        op_exception=RuntimeError("database is locked"),
        run_id="run-123",
    )
    alert_on_failure.decorated_fn(context)
    (alert,) = [json.loads(line) for line in alerts_path(settings).read_text().splitlines()]
    assert alert["run_id"] == "run-123"
    assert "RuntimeError: database is locked" in alert["error"]
    assert "nothing is published yet" in alert["published_marts"]  # a fresh warehouse
    assert _Webhook.received == [alert]


def test_an_unreachable_webhook_does_not_hide_the_failure(tmp_path: Path) -> None:
    settings = Settings(
        extracts_dir=tmp_path, warehouse_dir=tmp_path / "wh",
        alert_webhook_url="http://127.0.0.1:9/nothing-listens-here",
    )
    context = build_hook_context(
        resources={"pipeline": PipelineSettings.from_settings(settings)},
        op_exception=RuntimeError("boom"),
    )
    alert_on_failure.decorated_fn(context)
    assert "boom" in alerts_path(settings).read_text()


def test_a_failed_run_fires_the_hook_in_process(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "2026-11-26T0200").mkdir(parents=True)
    (landing / "2026-11-26T0200" / "users.csv").write_text("user_id,role\nu1,ae\n")
    settings = Settings(extracts_dir=landing, warehouse_dir=tmp_path / "wh")
    job = build_definitions(settings).resolve_job_def(NIGHTLY_JOB)
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            asset_selection=[*(key for key in job.asset_layer.executable_asset_keys
                               if key.path[0] == "raw" and key.path[-1] == "users")],
        )
    assert not result.success
    alert = json.loads(alerts_path(settings).read_text().splitlines()[-1])
    assert alert["step"] == RAW_ENTITIES_STEP
    assert "full_name" in alert["error"] and "users.csv" in alert["error"]


def test_the_published_marts_have_a_freshness_check(tmp_path: Path) -> None:
    defs = build_definitions(Settings(warehouse_dir=tmp_path / "warehouse"))
    sensor = defs.resolve_sensor_def("published_marts_freshness_sensor")
    assert sensor is not None
    keys = {key for checks in defs.asset_checks or [] for key in checks.check_keys}
    assert any(k.asset_key.path == ["published_marts"] for k in keys)


def test_automations_start_stopped_in_development_and_running_in_production(
    tmp_path: Path,
) -> None:
    for running, expected in ((False, "STOPPED"), (True, "RUNNING")):
        defs = build_definitions(
            Settings(warehouse_dir=tmp_path / "warehouse", automations_running=running)
        )
        schedule = defs.resolve_schedule_def("nightly_schedule")
        sensors = [defs.resolve_sensor_def(name) for name in (
            "new_delivery_sensor", "published_marts_freshness_sensor")]
        assert schedule.default_status.name == expected
        assert {sensor.default_status.name for sensor in sensors} == {expected}


def test_every_check_has_a_description_without_repeated_words(tmp_path: Path) -> None:
    graph = build_definitions(Settings(warehouse_dir=tmp_path / "warehouse")).resolve_asset_graph()
    problems = []
    for key in graph.asset_check_keys:
        description = graph.get_check_spec(key).description or ""
        words = description.lower().split()
        if not words or any(a == b for a, b in itertools.pairwise(words)):
            problems.append(f"{key.name}: {description!r}")
    assert problems == []


def test_every_asset_names_its_owners(tmp_path: Path) -> None:
    graph = build_definitions(Settings(warehouse_dir=tmp_path / "warehouse")).resolve_asset_graph()
    unowned = [
        key.to_user_string() for key in graph.get_all_asset_keys()
        if graph.get(key).is_materializable and not graph.get(key).owners
    ]
    assert unowned == []


def test_importing_the_definitions_runs_no_dbt_and_takes_seconds() -> None:
    """Dagster loads the definitions lazily: importing the module parses no dbt project."""
    code = (
        "import subprocess, time\n"
        "class Refused(subprocess.Popen):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        if 'dbt' in repr(args[0] if args else kwargs.get('args')):\n"
        "            raise AssertionError(f'dbt ran at import time: {args!r}')\n"
        "        super().__init__(*args, **kwargs)\n"
        "subprocess.Popen = Refused\n"
        "started = time.perf_counter()\n"
        "import pipelines.definitions\n"
        "print(time.perf_counter() - started)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip()) < 10


def test_the_schedule_skips_a_night_with_nothing_new(tmp_path: Path) -> None:
    from pipelines.no_op import mark_published, mark_run_started

    landing = tmp_path / "landing"
    landing_with_delivery(landing, "2026-11-24T0200", age_seconds=3600)
    settings = Settings(extracts_dir=landing, warehouse_dir=tmp_path / "warehouse")
    mark_run_started(settings, "run-of-last-night")
    mark_published(settings, "run-of-last-night")
    (settings.warehouse_dir / "marts.duckdb").write_bytes(b"")  # a publication exists
    schedule = build_definitions(settings).resolve_schedule_def("nightly_schedule")
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
        )
        result = schedule.evaluate_tick(context)
    assert not result.run_requests
    assert "nothing new since run run-of-" in (result.skip_message or "")


def test_a_selection_of_dbt_assets_on_spark_is_refused_before_anything_is_built(
    tmp_path: Path,
) -> None:
    """Every Spark build starts from an empty metastore: a few dbt models materialized alone
    (`dagster dev`) would find none of the tables they read and leave the last complete Spark
    build wiped. The step refuses at once, saying what to materialize instead."""
    settings = Settings(warehouse_dir=tmp_path / "wh", engine="spark")
    job = build_definitions(settings).resolve_job_def(NIGHTLY_JOB)
    model = next(key for key in job.asset_layer.executable_asset_keys
                 if key.path[-1] == "kpi_scorecard")
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        asset_selection=[model])
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert "a Spark build is the whole dbt project" in str(failure.event_specific_data)
    assert not (settings.warehouse_dir / "spark").exists()


def test_the_jobs_carry_the_time_limit_and_the_instance_settings_turn_on_run_monitoring(
    tmp_path: Path,
) -> None:
    """Both jobs carry `dagster/max_runtime` from `max_run_minutes` (none when it is 0), and
    the instance settings `make dev` installs (dagster.yaml) turn on the run monitoring that
    enforces it, so the daemon stops a run of either job past its limit as the CLI stops its
    own (seen by hand with a real daemon: "Exceeded maximum runtime of 15 seconds")."""
    from dagster._core.instance.config import dagster_instance_config

    for minutes, tags in ((30, {"dagster/max_runtime": "1800"}), (0, {})):
        defs = build_definitions(
            Settings(warehouse_dir=tmp_path / "warehouse", max_run_minutes=minutes)
        )
        for job in (NIGHTLY_JOB, RESUME_JOB):
            carried = defs.resolve_job_def(job).tags
            assert {k: v for k, v in carried.items() if k == "dagster/max_runtime"} == tags
    config, _ = dagster_instance_config(str(PROJECT_ROOT), config_filename="dagster.yaml")
    assert config["run_monitoring"]["enabled"] is True


def test_a_step_that_failed_as_the_run_was_stopped_alerts_that_the_run_was_stopped_and_why(
    tmp_path: Path,
) -> None:
    """The stop ends the run's dbt, and the dbt step fails with "ended by SIGTERM" even when
    the stop was the run's time limit: the alert says the run was stopped, and by what."""
    from pipelines import run_guard

    settings = Settings(extracts_dir=tmp_path, warehouse_dir=tmp_path / "wh")
    context = build_hook_context(
        resources={"pipeline": PipelineSettings.from_settings(settings)},
        op_exception=RuntimeError("dbt build was ended by SIGTERM"),
    )
    run_guard._stops[threading.current_thread()] = run_guard.RunTimedOut(240)
    try:
        alert_on_failure.decorated_fn(context)
    finally:
        run_guard._stops.pop(threading.current_thread(), None)
    alert_on_failure.decorated_fn(context)  # a failure of a run nobody stopped
    stopped, failed = [json.loads(line) for line in alerts_path(settings).read_text().splitlines()]
    assert stopped["alert"] == "sales-kpi nightly run stopped"
    assert stopped["stopped_by"] == "its time limit of 240 minutes (max_run_minutes)"
    assert failed["alert"] == "sales-kpi nightly run failed" and "stopped_by" not in failed
