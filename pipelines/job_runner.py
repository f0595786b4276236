"""Execute the nightly job in-process: the CLI's (and the tests') way into the one job."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance, EventLogEntry

from pipelines.definitions import NIGHTLY_JOB, RESUME_JOB, build_definitions
from pipelines.run_guard import run_interruptibly, warehouse_lock
from pipelines.run_instance import ephemeral_instance
from pipelines.settings import Settings


@dataclass(frozen=True)
class JobOutcome:
    run_id: str
    success: bool
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


EventListener = Callable[[EventLogEntry], None]


def run_nightly_job(
    settings: Settings,
    log_level: str = "INFO",
    instance: DagsterInstance | None = None,
    *,
    run_id: str | None = None,
    listener: EventListener | None = None,
    resume: bool = False,
) -> JobOutcome:
    """Run the job with `settings`; failures are returned as messages, not raised.

    With `resume` the job's last steps run alone (RESUME_JOB: the checks, the publication and
    the site) on the complete build the warehouse holds; the caller has made sure it holds one
    of these inputs (pipelines/no_op.py `complete_build_since`).

    `listener` receives every event of the run's event log as it is stored (the CLI's console
    is one: pipelines/console.py); `log_level` is the threshold of Dagster's own console
    logger (stderr). The job itself is the same whoever watches it.

    The run holds the warehouse's lock throughout (a second run raises WarehouseBusy before
    touching anything), and SIGTERM/SIGINT stop it (RunInterrupted) with its children ended,
    as does its time limit (`max_run_minutes`: RunTimedOut).
    With DAGSTER_HOME set the run is recorded in that instance (visible in `dagster dev`);
    otherwise an ephemeral one (pipelines/run_instance.py).
    """
    with warehouse_lock(settings.warehouse_dir):
        return run_interruptibly(
            lambda: _run(settings, log_level, instance, run_id or str(uuid.uuid4()), listener,
                         RESUME_JOB if resume else NIGHTLY_JOB),
            time_limit_seconds=settings.run_time_limit_seconds,
            succeeded=lambda outcome: outcome.success,
        )


def _run(
    settings: Settings,
    log_level: str,
    instance: DagsterInstance | None,
    run_id: str,
    listener: EventListener | None,
    job_name: str,
) -> JobOutcome:
    """The job in the calling (worker) thread. An instance made here is disposed of here: its
    SQLite storage may only be closed by the thread that opened it."""
    owned = instance is None
    if instance is None:
        instance = (
            DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else ephemeral_instance()
        )
    try:
        if listener is not None:
            instance.add_event_listener(run_id, listener)
        return _execute(settings, log_level, instance, run_id, job_name)
    finally:
        if owned:
            instance.dispose()


def _execute(
    settings: Settings, log_level: str, instance: DagsterInstance, run_id: str, job_name: str
) -> JobOutcome:
    job = build_definitions(settings).resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance,
        run_id=run_id,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    failures: list[str] = []
    warnings: list[str] = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if not evaluation.passed:
                text = f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()}"
                if evaluation.description:
                    text += f": {evaluation.description}"
                blocking = evaluation.severity == AssetCheckSeverity.ERROR
                (failures if blocking else warnings).append(text)
            continue
        if event.event_type != DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        user = data.user_failure_data if data else None
        if user is not None and user.description:
            message = user.description
        elif data is not None and data.error is not None:
            error = data.error.cause or data.error
            message = error.message.strip().splitlines()[-1]
        else:
            message = "failed"
        if event.step_key == "quality_checks" and failures:
            continue  # a blocking check failed: already named above
        failures.append(f"{event.step_key}: {message}")
    # A failed blocking check skips publishing without failing a step: the run did not succeed.
    return JobOutcome(result.run_id, result.success and not failures, failures, warnings)
