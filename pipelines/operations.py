"""Nightly operation: the schedule, the new-delivery sensor, retries, the failure alert and
the freshness check of the published marts. All of it runs the one `nightly` job."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    Backoff,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    HookContext,
    RetryPolicy,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
    failure_hook,
    sensor,
)
from dagster._utils.schedules import is_valid_cron_string  # Dagster's own check

from pipelines.ingest.landing import LandingError, scan_landing
from pipelines.publish import published_state
from pipelines.run_guard import stop_reason
from pipelines.safe_text import excerpt, single_line
from pipelines.settings import Settings, SettingsError, redact_secrets

NIGHTLY_JOB = "nightly"
PUBLISHED_KEY = AssetKey(["published_marts"])
ALERTS_FILE = "alerts.log"
logger = logging.getLogger(__name__)


def nightly_schedule(settings: Settings) -> ScheduleDefinition:
    """The full job every night (02:00 in the business timezone by default) — skipped, with
    the reason, when nothing it depends on changed since the last publication."""

    def evaluate(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        skipped = _published_already(settings)
        return skipped if skipped is not None else RunRequest()

    if not is_valid_cron_string(settings.schedule_cron):
        # refused as settings are, in one escaped line (Dagster's own error is a traceback
        # quoting the value raw); Dagster's parser is the judge
        raise SettingsError(
            f"schedule_cron: {excerpt(settings.schedule_cron)} is not a cron schedule Dagster "
            "runs: five fields (minute hour day month weekday, e.g. '0 2 * * *') or a "
            "shorthand such as @daily"
        )
    return ScheduleDefinition(
        name="nightly_schedule",
        job_name=NIGHTLY_JOB,
        cron_schedule=settings.schedule_cron,
        execution_fn=evaluate,
        execution_timezone=settings.business_timezone,
        default_status=(
            DefaultScheduleStatus.RUNNING if settings.automations_running
            else DefaultScheduleStatus.STOPPED
        ),
        description="Load new CRM extracts, rebuild, audit and publish the KPI marts.",
    )


def _published_already(settings: Settings) -> SkipReason | None:
    """Why the schedule or the sensor starts no run: the last publication has everything the
    run would build from (pipelines/no_op.py); None when something is new."""
    from pipelines.no_op import nothing_new_since

    last = nothing_new_since(settings)
    if last is None:
        return None
    return SkipReason(f"nothing new since run {last[:8]}: no rebuild, no publication")


def retry_policy(settings: Settings) -> RetryPolicy:
    """Retries for transient failures; rejected input and failed checks are not retried."""
    return RetryPolicy(
        max_retries=settings.step_retries,
        delay=settings.step_retry_delay_seconds,
        backoff=Backoff.EXPONENTIAL,
    )


def delivery_signature(settings: Settings) -> tuple[str, list[str], list[str]]:
    """The landing folder as the sensor compares it: a signature of every file (its delivery,
    name, size and modification time, so that a file replaced by one of the same size counts),
    the deliveries, and those still arriving.

    A delivery is still arriving while one of its files was written within
    `delivery_settle_seconds`: by its modification time or, for a copy that keeps the source's
    times (`cp -p`, `rsync -a`), its change time, which a copy cannot keep.
    """
    if settings.source_mapping:  # an export to map: watch the export files themselves
        from pipelines.adapters import source_files

        files = list(source_files(settings.source_mapping, settings.extracts_dir))
    else:
        files, _ = scan_landing(settings.extracts_dir)
    now = _now()
    entries: dict[str, list[str]] = {}
    arriving: set[str] = set()
    for file in files:
        stat = file.path.stat()
        if now - max(stat.st_mtime, stat.st_ctime) < settings.delivery_settle_seconds:
            arriving.add(file.delivery)
        entries.setdefault(file.delivery, []).append(
            f"{file.path.name}:{stat.st_size}:{stat.st_mtime_ns}"
        )
    signature = json.dumps({d: sorted(names) for d, names in entries.items()}, sort_keys=True)
    return signature, sorted(entries), sorted(arriving)


def _now() -> float:
    """The sensor's clock (tests move it on instead of ageing files: a change time cannot be
    set)."""
    return time.time()


def new_delivery_sensor(settings: Settings) -> SensorDefinition:
    @sensor(
        name="new_delivery_sensor",
        job_name=NIGHTLY_JOB,
        minimum_interval_seconds=60,
        default_status=_sensor_status(settings),
        description=(
            "Starts the nightly job when a new delivery (or a replaced file) has landed in "
            "the landing folder and the whole folder has been quiet for "
            "delivery_settle_seconds; not when the last publication already has it."
        ),
    )
    def _sensor(context: SensorEvaluationContext) -> Any:
        try:
            signature, deliveries, arriving = delivery_signature(settings)
        except LandingError as exc:
            return SkipReason(str(exc))
        if arriving:  # the job loads the whole folder: no run while any of it is changing
            return SkipReason(
                f"still arriving: {', '.join(arriving)} (a file written within the last "
                f"{settings.delivery_settle_seconds} s); waiting until the folder is quiet"
            )
        if not deliveries:
            return SkipReason(f"no delivery in {settings.extracts_dir}")
        if signature == context.cursor:
            return SkipReason("no new delivery since the last run")
        context.update_cursor(signature)
        skipped = _published_already(settings)  # e.g. its first tick, on a published folder
        if skipped is not None:
            return skipped
        return RunRequest(
            # a digest, the same in every process (Python's hash() of a text is not)
            run_key="deliveries-" + hashlib.sha256(signature.encode()).hexdigest()[:20],
            tags={"sales_kpi/trigger": "new_delivery", "sales_kpi/latest": deliveries[-1]},
        )

    return _sensor


def _context_value(context: HookContext, name: str) -> str:
    """A property of the hook's context, or `unknown` where Dagster has none to give."""
    try:
        return str(getattr(context, name))
    except Exception:  # an unbound context (built outside a run) raises for missing values
        return "unknown"


def build_alert(context: HookContext, settings: Settings) -> dict[str, Any]:
    error = context.op_exception
    # a step that failed as the run was being stopped (its dbt ended by the stop) failed
    # because of the stop: the alert says which, not only "ended by SIGTERM"
    stopped_by = stop_reason()
    return {
        "alert": "sales-kpi nightly run " + ("stopped" if stopped_by else "failed"),
        **({"stopped_by": stopped_by} if stopped_by else {}),
        "run_id": _context_value(context, "run_id"),
        "step": _context_value(context, "step_key"),
        # Redacted and escaped: an exception may quote a secret setting or hostile data.
        "error": (
            single_line(redact_secrets(f"{type(error).__name__}: {error}")) if error
            else "unknown error"
        ),
        "warehouse": str(settings.warehouse_dir),
        "published_marts": published_state(
            settings.warehouse_dir, _context_value(context, "run_id")
        ),
        "at": datetime.now(UTC).isoformat(),
    }


def send_alert(alert: dict[str, Any], settings: Settings) -> None:
    """Append the alert to `<warehouse>/alerts.log` and POST it to the webhook, if set.

    An unreachable (or malformed) webhook is logged, never raised: the alert must not hide
    the failure. The URL is a secret (Slack and Teams put the credential in it): it is never
    logged, and anything an error says about it is redacted.
    """
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    with (settings.warehouse_dir / ALERTS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(alert) + "\n")
    if settings.alert_webhook_url:
        try:
            request = urllib.request.Request(
                settings.alert_webhook_url,
                data=json.dumps(alert).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10):
                pass
        except Exception as exc:  # any failure to deliver, never the run's failure
            logger.error("the alert webhook (alert_webhook_url) failed: %s",
                         redact_secrets(f"{type(exc).__name__}: {exc}"))


@failure_hook(required_resource_keys={"pipeline"}, name="alert_on_failure")
def alert_on_failure(context: HookContext) -> None:
    """A clear alert for every failed step: in the run's log, in alerts.log, and to the
    webhook of `SALES_KPI_ALERT_WEBHOOK_URL` when set."""
    settings = context.resources.pipeline.settings()
    alert = build_alert(context, settings)
    context.log.error(f"ALERT: {alert['alert']}: step {alert['step']}: {alert['error']}")
    send_alert(alert, settings)


def freshness_checks(settings: Settings) -> list[Any]:
    """The published marts must have been refreshed within `published_max_age_hours`."""
    checks = build_last_update_freshness_checks(
        assets=[PUBLISHED_KEY],
        lower_bound_delta=timedelta(hours=settings.published_max_age_hours),
    )
    return [*checks]


def freshness_sensor(checks: list[Any], settings: Settings) -> SensorDefinition:
    return build_sensor_for_freshness_checks(
        freshness_checks=checks, name="published_marts_freshness_sensor",
        default_status=_sensor_status(settings),
    )


def _sensor_status(settings: Settings) -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if settings.automations_running else (
        DefaultSensorStatus.STOPPED
    )


def alerts_path(settings: Settings) -> Path:
    return settings.warehouse_dir / ALERTS_FILE
