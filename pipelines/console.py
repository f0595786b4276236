"""What `sales-kpi run` shows while the job runs: a console people read, and a log that keeps
everything.

The job is the one job of pipelines/definitions.py, unchanged; this is a presentation layer the
CLI installs around it. It listens to the run's Dagster event log (`DagsterInstance
.add_event_listener`) and turns step events into one line per stage as it starts and ends
(load, dbt build, checks, publish, site) with timing and counts, and collects every check's
outcome for the closing summary. Everything else a run writes — dbt's streamed output, which
dagster-dbt writes to `sys.stdout`, Dagster's log messages, library warnings — goes to
`<warehouse>/logs/run-<run id>.log` instead of the operator's screen; `--verbose` shows it live
as well, `--quiet` only errors and the summary.

Text leaves here only through `_clean`: secret settings redacted and control characters from
data escaped, on the console and in the log file alike. Colour and the progress line (`\\r`) are
used only when the stream is a terminal and `NO_COLOR` is not set; a pipe or a file gets plain
lines without a single escape code.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pipelines.safe_text import TerminalSafeStream, single_line
from pipelines.settings import printable, redact_secrets

if TYPE_CHECKING:
    from dagster import EventLogEntry

Verbosity = Literal["quiet", "normal", "verbose"]

LOGS_FOLDER = "logs"
# Run logs kept under <warehouse>/logs (the newest; older ones are removed when a run starts).
RUN_LOGS_KEPT = 20
# A stage shows the progress line on a terminal once it has run this long.
PROGRESS_AFTER_SECONDS = 1.0
# Longest reason printed for a check (the whole text is in the log file and the Data Docs).
REASON_CHARACTERS = 400

# Which stage a step of the nightly job belongs to, by step key.
STAGE_BY_STEP = {
    "sales_kpi_dbt_models": "dbt build",
    "quality_checks": "checks",
    "published_marts": "publish",
    "kpi_site": "site",
}
LOAD_STAGE = "load"
STAGE_WIDTH = 10

_COLOURS = {"green": "32", "yellow": "33", "red": "31", "bold": "1"}


class Painted(str):
    """Text the console colours on a terminal (`colour`: green, yellow, red, bold)."""

    colour: str

    def __new__(cls, text: str, colour: str) -> Painted:
        painted = super().__new__(cls, text)
        painted.colour = colour
        return painted


# A console line: text, or segments of which some are painted.
Line = str | Sequence[str]


def run_log_path(warehouse_dir: Path, run_id: str) -> Path:
    """Where a run's full log goes: `<warehouse>/logs/run-<run id>.log`."""
    return warehouse_dir / LOGS_FOLDER / f"run-{run_id}.log"


def prune_run_logs(folder: Path, keep: int = RUN_LOGS_KEPT) -> None:
    """Keep the newest `keep` run logs in `folder` (by modification time)."""
    if not folder.is_dir():
        return
    logs = sorted(folder.glob("run-*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[: max(0, len(logs) - keep)]:
        with suppress(OSError):
            old.unlink()


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org) or
    the terminal says it cannot (`TERM=dumb`)."""
    return (
        is_terminal(stream)
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM", "") != "dumb"
    )


def is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _own_stream(stream: IO[str]) -> IO[str]:
    """The stream the console writes its own lines to: beneath the CLI's terminal-safe wrapper
    (pipelines/safe_text.py), which says it is no terminal so that libraries draw no colours,
    and would escape the console's colour codes and progress line. The console needs no
    wrapper: every text it writes is cleaned first (`_clean`, `single_line`), and the escape
    codes it adds are its own."""
    return stream.wrapped if isinstance(stream, TerminalSafeStream) else stream


def _clean(text: object) -> str:
    """The one door out: secrets redacted, control characters escaped, line breaks kept."""
    return printable(text)


class RunLog:
    """The run's log file. Every line is redacted and escaped like the console's."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        prune_run_logs(path.parent, keep=RUN_LOGS_KEPT - 1)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            if self._file.closed:
                return
            for line in _clean(text).splitlines() or [""]:
                self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _Captured(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr during a run: whole lines go to the log file (and,
    verbose, to the console). dbt's output arrives here through dagster-dbt."""

    def __init__(self, log: RunLog, echo: IO[str] | None, lock: threading.Lock) -> None:
        super().__init__()
        self._log, self._echo, self._lock = log, echo, lock
        self._partial = ""

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False  # libraries must not draw progress bars or colours into the log

    def write(self, text: str) -> int:
        data = self._partial + str(text).replace("\r\n", "\n").replace("\r", "\n")
        *lines, self._partial = data.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._echo is not None:
            with self._lock:
                self._echo.flush()

    def close_line(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = ""

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        self._log.write(line)
        if self._echo is not None:
            with self._lock:
                self._echo.write(_clean(line) + "\n")
                self._echo.flush()


@dataclass
class _Stage:
    name: str
    started: float
    ended: float = 0.0
    last_end: float = 0.0
    steps: int = 0
    running: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    detail: str = ""  # the latest message, for the progress line

    def add(self, name: str, value: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(value)


@dataclass(frozen=True)
class CheckResult:
    """One evaluated check: a quality check (GX suite), a dbt test or the freshness check."""

    step: str
    name: str
    asset: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict[str, Any]

    @property
    def status(self) -> str:
        return "passed" if self.passed else ("FAILED" if self.blocking else "warning")

    @property
    def is_dbt_test(self) -> bool:
        return self.step == "sales_kpi_dbt_models"


class RunConsole:
    """The CLI's view of one run (see the module docstring)."""

    def __init__(
        self,
        verbosity: Verbosity = "normal",
        out: IO[str] | None = None,
        err: IO[str] | None = None,
    ) -> None:
        self.verbosity = verbosity
        self.out = _own_stream(out or sys.stdout)
        self.err = _own_stream(err or sys.stderr)
        self.colour = use_colour(self.out)
        self.progress = verbosity == "normal" and is_terminal(self.out)
        self.checks: list[CheckResult] = []
        self.log: RunLog | None = None
        self._stage: _Stage | None = None
        self._lock = threading.Lock()
        self._status_width = 0
        self._stop = threading.Event()

    # --- printing -------------------------------------------------------------------------

    def say(self, line: Line = "", *, always: bool = False) -> None:
        """A line of the console (not in --quiet unless `always`), also kept in the log."""
        segments = [line] if isinstance(line, str) else list(line)
        if self.log is not None:
            self.log.write("".join(str(segment) for segment in segments))
        if self.verbosity == "quiet" and not always:
            return
        self._print(self.out, self.render(segments))

    def error(self, text: object) -> None:
        """An error: always shown (stderr), also kept in the log."""
        if self.log is not None:
            self.log.write(str(text))
        self._print(self.err, _clean(text))

    def render(self, segments: Sequence[str | Painted]) -> str:
        """The segments cleaned, painted ones in their colour on a terminal (the colour codes
        are added after cleaning, so they are the only escape codes that can reach it)."""
        out = []
        for segment in segments:
            text = _clean(segment)
            if isinstance(segment, Painted) and self.colour:
                text = f"\x1b[{_COLOURS[segment.colour]}m{text}\x1b[0m"
            out.append(text)
        return "".join(out)

    def _print(self, stream: IO[str], clean: str) -> None:
        with self._lock:
            self._clear_status()
            stream.write(clean + "\n")
            stream.flush()

    def _clear_status(self) -> None:
        if self._status_width:
            self.out.write("\r" + " " * self._status_width + "\r")
            self._status_width = 0

    def _show_status(self) -> None:
        """The progress line of a running stage, redrawn in place (terminals only)."""
        stage = self._stage
        if stage is None or stage.ended:
            return
        elapsed = time.time() - stage.started
        if elapsed < PROGRESS_AFTER_SECONDS:
            return
        width = max(20, _terminal_columns() - 1)
        text = single_line(redact_secrets(f"{stage.name:<{STAGE_WIDTH}} … {elapsed:.0f}s "
                                          f"{stage.detail}"))[:width]
        with self._lock:
            self.out.write("\r" + text.ljust(self._status_width))
            self.out.flush()
            self._status_width = len(text)

    # --- the run --------------------------------------------------------------------------

    @contextmanager
    def session(self, warehouse_dir: Path, run_id: str) -> Iterator[Path]:
        """For the duration: the log file open, sys.stdout/sys.stderr captured into it (echoed
        live with --verbose), and the progress line drawn on a terminal."""
        self.log = RunLog(run_log_path(warehouse_dir, run_id))
        self.log.write(f"run {run_id} started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
        echo_out = self.out if self.verbosity == "verbose" else None
        echo_err = self.err if self.verbosity == "verbose" else None
        captured_out = _Captured(self.log, echo_out, self._lock)
        captured_err = _Captured(self.log, echo_err, self._lock)
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = captured_out, captured_err
        handler = _LogFileHandler(self.log)
        logging.getLogger().addHandler(handler)
        ticker = None
        if self.progress:
            ticker = threading.Thread(target=self._tick, name="run-console", daemon=True)
            ticker.start()
        try:
            yield self.log.path
        finally:
            self._stop.set()
            if ticker is not None:
                ticker.join(1.0)
            logging.getLogger().removeHandler(handler)
            captured_out.close_line()
            captured_err.close_line()
            sys.stdout, sys.stderr = saved
            self._end_stage(time.time())
            with self._lock:
                self._clear_status()

    def close(self) -> None:
        """Close the log file (after the closing summary was written to it too)."""
        if self.log is not None:
            self.log.close()

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            with suppress(Exception):
                self._show_status()

    def on_event(self, entry: EventLogEntry) -> None:
        """The Dagster event-log listener: every event to the log file, stage lines and
        check outcomes to the console. Never raises into the run."""
        try:
            self._on_event(entry)
        except Exception as exc:  # a console problem must not fail the job
            if self.log is not None:
                self.log.write(f"(console: {type(exc).__name__}: {exc})")

    def _on_event(self, entry: EventLogEntry) -> None:
        event = entry.dagster_event
        level = logging.getLevelName(entry.level) if isinstance(entry.level, int) else entry.level
        step = entry.step_key or "-"
        kind = event.event_type_value if event is not None else "LOG"
        when = datetime.fromtimestamp(entry.timestamp, UTC)
        if self.log is not None:
            self.log.write(f"{when:%Y-%m-%d %H:%M:%S} {level:<7} {step} - {kind} - "
                           f"{entry.user_message}")
            error = _error_of(event)
            if error is not None:
                self.log.write(error.to_string())
        numeric = entry.level if isinstance(entry.level, int) else logging.INFO
        if self.verbosity == "verbose" and numeric >= logging.INFO:
            self._print(self.out, _clean(
                f"{when.astimezone():%H:%M:%S} {level:<7} {entry.run_id[:8]} - {step} - "
                f"{entry.user_message}"
            ))
        if entry.step_key and event is None and self._stage is not None:
            self._stage.detail = f"{entry.step_key}: {entry.user_message.splitlines()[0]}"
        if event is None:
            return
        self._on_dagster_event(entry, event)

    def _on_dagster_event(self, entry: EventLogEntry, event: Any) -> None:
        from dagster import AssetCheckSeverity, DagsterEventType

        kind = event.event_type
        step = entry.step_key or ""
        if kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
            self._end_stage(entry.timestamp)
            return
        if not step:
            return
        stage_name = stage_of(step)
        if kind == DagsterEventType.STEP_START:
            if self._stage is None or self._stage.name != stage_name or self._stage.ended:
                self._end_stage(entry.timestamp)
                self._stage = _Stage(stage_name, entry.timestamp)
                self.say(f"{stage_name:<{STAGE_WIDTH}} started")
            self._stage.steps += 1
            self._stage.running.add(step)
            self._stage.detail = step
            return
        stage = self._stage if self._stage and self._stage.name == stage_name else None
        if kind == DagsterEventType.STEP_SKIPPED:
            if stage is None:
                self._end_stage(entry.timestamp)
                self.say(f"{stage_name:<{STAGE_WIDTH}} skipped ({step}: an upstream step did "
                         "not succeed or a blocking check failed)")
            else:
                stage.skipped += 1
            return
        if stage is None:
            return
        if kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            stage.last_end = entry.timestamp
            stage.running.discard(step)
            stage.detail = ""
            if kind == DagsterEventType.STEP_FAILURE:
                data = event.step_failure_data
                user = data.user_failure_data if data else None
                reason = (user.description if user is not None and user.description
                          else (data.error.message.strip().splitlines()[-1]
                                if data is not None and data.error else "failed"))
                stage.failed.append(f"{step}: {reason}")
        elif kind == DagsterEventType.STEP_UP_FOR_RETRY:
            error = _error_of(event)
            reason = error.message.strip().splitlines()[-1] if error is not None else "failed"
            self.say(f"{stage_name:<{STAGE_WIDTH}} {step} will be retried: "
                     f"{single_line(reason)[:REASON_CHARACTERS]}")
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            metadata = event.step_materialization_data.materialization.metadata
            self._count_materialization(stage, metadata)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            result = CheckResult(
                step=step,
                name=evaluation.check_name,
                asset=evaluation.asset_key.to_user_string(),
                passed=evaluation.passed,
                blocking=evaluation.severity == AssetCheckSeverity.ERROR,
                description=evaluation.description or "",
                metadata={k: getattr(v, "value", v) for k, v in evaluation.metadata.items()},
            )
            self.checks.append(result)
            stage.add({"passed": "passed", "warning": "warned", "FAILED": "failed"}[
                result.status], 1)

    def _count_materialization(self, stage: _Stage, metadata: dict[str, Any]) -> None:
        def value(name: str) -> int:
            raw = metadata.get(name)
            return int(getattr(raw, "value", raw) or 0)

        if stage.name == LOAD_STAGE:
            for name in ("files_loaded", "rows_loaded", "rows_quarantined", "files_rejected"):
                stage.add(name, value(name))
        elif stage.name == "dbt build":
            unique_id = str(getattr(metadata.get("unique_id"), "value", metadata.get("unique_id")))
            stage.add("seeds" if unique_id.startswith("seed.") else "models", 1)
        elif stage.name == "publish":
            tables = metadata.get("tables")
            stage.add("tables", len(getattr(tables, "value", tables) or []))
        elif stage.name == "site":
            stage.add("site_written", 1 if "dashboard" in metadata else 0)

    def _end_stage(self, when: float) -> None:
        stage = self._stage
        if stage is None or stage.ended:
            return
        # a stage ends with its last step (the next stage's first event may come later)
        stage.ended = stage.last_end or when
        seconds = stage.ended - stage.started
        counts = describe_stage_counts(stage.name, stage.counts)
        if stage.running and not stage.failed:  # the run was stopped mid-stage
            seconds = when - stage.started
            self.say(f"{stage.name:<{STAGE_WIDTH}} stopped after {seconds:.1f}s "
                     f"({', '.join(sorted(stage.running))} did not finish)")
            return
        if stage.failed:
            self.say([f"{stage.name:<{STAGE_WIDTH}} ", Painted("FAILED", "red"),
                      f" after {seconds:.1f}s: {single_line(stage.failed[0])[:REASON_CHARACTERS]}"
                      + (f" (and {len(stage.failed) - 1} more)" if len(stage.failed) > 1
                         else "")])
        else:
            self.say(f"{stage.name:<{STAGE_WIDTH}} done in {seconds:.1f}s"
                     + (f": {counts}" if counts else ""))

    # --- the closing summary ----------------------------------------------------------------

    def check_counts(self) -> str:
        """'12 checks: 9 passed, 3 warned, 0 failed; 372 dbt tests: …' — for the summary."""
        parts = []
        for label, results in (
            ("checks", [c for c in self.checks if not c.is_dbt_test]),
            ("dbt tests", [c for c in self.checks if c.is_dbt_test]),
        ):
            if results:
                parts.append(f"{len(results)} {label}: " + _tally(results))
        return "; ".join(parts)

    def check_lines(self) -> list[Line]:
        """Each check with passed/warning/FAILED and a one-line reason; dbt tests that passed
        are counted, not listed, and dangling references are named one per line."""
        lines: list[Line] = [f"checks: {self.check_counts()}"] if self.checks else []
        for check in self.checks:
            if check.is_dbt_test:
                continue
            lines.append(
                [*self._status(check),
                 f"check {check.name} on {check.asset}: {check_reason(check)}"]
            )
        dbt_problems = [c for c in self.checks if c.is_dbt_test and not c.passed]
        if not dbt_problems:
            return lines
        nodes = _manifest_tests()
        references = [c for c in dbt_problems if _test_kind(nodes, c) == "relationships"]
        for check in dbt_problems:
            if check in references:
                continue
            lines.append([*self._status(check), f"dbt test {check.name} on {check.asset}: "
                          f"{_dbt_reason(nodes, check)}"])
        if references:
            lines.append([
                *self._status(references[0]),
                f"{len(references)} reference checks found dangling references (records "
                "pointing at missing or deleted ones; they count as empty):",
            ])
            lines += [f"  - {_dangling(nodes, check)}" for check in references]
        return lines

    @staticmethod
    def _status(check: CheckResult) -> tuple[Painted, str]:
        """'passed: ', 'warning: ' or 'FAILED: ', coloured on a terminal, padded to align."""
        word = f"{check.status}:"
        colour = {"passed": "green", "warning": "yellow", "FAILED": "red"}[check.status]
        return Painted(word, colour), " " * (len("warning:") - len(word) + 1)


class _LogFileHandler(logging.Handler):
    """Python logging outside Dagster's own (libraries, warnings) into the run's log file."""

    def __init__(self, log: RunLog) -> None:
        super().__init__(logging.INFO)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        with suppress(Exception):
            self._log.write(f"{record.levelname:<7} {record.name} - {record.getMessage()}")


def stage_of(step_key: str) -> str:
    """The console's stage of a step: every `raw__…` step (the landing, the entities, the
    overrides) is part of the load."""
    if step_key.startswith("raw__"):
        return LOAD_STAGE
    if "freshness" in step_key:
        return "freshness"  # the published marts' age, checked after publishing
    return STAGE_BY_STEP.get(step_key, step_key)


def describe_stage_counts(stage: str, counts: dict[str, int]) -> str:
    """The counts of a stage's closing line."""
    if stage == LOAD_STAGE:
        return (
            f"{counts.get('files_loaded', 0):,} files, {counts.get('rows_loaded', 0):,} rows "
            f"loaded, {counts.get('rows_quarantined', 0):,} quarantined, "
            f"{counts.get('files_rejected', 0):,} files rejected"
        )
    tests = (
        f"{counts.get('passed', 0):,} passed, {counts.get('warned', 0):,} warned, "
        f"{counts.get('failed', 0):,} failed"
    )
    if stage == "dbt build":
        return (f"{counts.get('models', 0):,} models and {counts.get('seeds', 0):,} seeds built, "
                f"{sum(counts.get(k, 0) for k in ('passed', 'warned', 'failed')):,} tests "
                f"({tests})")
    if stage in ("checks", "freshness"):
        checks = sum(counts.get(k, 0) for k in ("passed", "warned", "failed"))
        return f"{checks:,} check{'' if checks == 1 else 's'} ({tests})"
    if stage == "publish":
        return f"{counts.get('tables', 0):,} tables"
    if stage == "site":
        return ("dashboard (en, nl), definitions page and dbt docs written"
                if counts.get("site_written") else "nothing written (write_site is off)")
    return ""


def _error_of(event: Any) -> Any:
    """The error (SerializableErrorInfo) a Dagster event carries, if any."""
    if event is None:
        return None
    error = getattr(event.event_specific_data, "error", None)
    return error if hasattr(error, "to_string") else None


def _tally(results: list[CheckResult]) -> str:
    statuses = [c.status for c in results]
    return (f"{statuses.count('passed')} passed, {statuses.count('warning')} warned, "
            f"{statuses.count('FAILED')} failed")


# What Dagster's last-update freshness check records (its description says "The last update
# was  ago" for an update less than a second old: the console says it from these instead).
FRESHNESS_PARAMS = "dagster/freshness_params"
FRESHNESS_LAST_UPDATE = "dagster/last_updated_timestamp"
FRESHNESS_FRESH_UNTIL = "dagster/fresh_until_timestamp"
FRESHNESS_LOWER_BOUND = "dagster/freshness_lower_bound_timestamp"


def _utc(timestamp: float) -> str:
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M} UTC"


def _freshness_reason(check: CheckResult) -> str | None:
    """The freshness check's outcome in dates a reader can compare with the clock; None for
    any other check."""
    if FRESHNESS_PARAMS not in check.metadata:
        return None
    updated = check.metadata.get(FRESHNESS_LAST_UPDATE)
    if updated is None:
        return "the marts were never published"
    text = f"the marts were last published {_utc(float(updated))}"
    fresh_until = check.metadata.get(FRESHNESS_FRESH_UNTIL)
    lower_bound = check.metadata.get(FRESHNESS_LOWER_BOUND)
    if check.passed and fresh_until is not None:
        return f"{text}; fresh until {_utc(float(fresh_until))}"
    if not check.passed and lower_bound is not None:
        return f"{text}, before {_utc(float(lower_bound))}: overdue"
    return text


def check_reason(check: CheckResult) -> str:
    """A check's description as one line, without repeating its name and status."""
    freshness = _freshness_reason(check)
    if freshness is not None:
        return freshness
    text = check.description.strip()
    for prefix in (f"{check.name}: ", "FAILED — ", "FAILED - "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text.startswith("passed (") and text.endswith(" rows)"):
        text = text[len("passed ("):-1] + " checked"
    text = single_line(" ".join(text.split()))
    if len(text) > REASON_CHARACTERS:
        text = text[: REASON_CHARACTERS - 1] + "…"
    return text or ("passed" if check.passed else "did not pass")


def _manifest_tests() -> dict[str, Any]:
    """The dbt tests of the prepared manifest, by unique id (names what a test guards)."""
    from pipelines.dbt_project import prepared_dbt_project

    try:
        manifest = json.loads(prepared_dbt_project().manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {uid: node for uid, node in manifest.get("nodes", {}).items()
            if node.get("resource_type") == "test"}


def _test_node(nodes: dict[str, Any], check: CheckResult) -> dict[str, Any]:
    return nodes.get(str(check.metadata.get("unique_id", "")), {})


def _test_kind(nodes: dict[str, Any], check: CheckResult) -> str:
    node = _test_node(nodes, check)
    if node:
        return str((node.get("test_metadata") or {}).get("name", ""))
    return "relationships" if check.name.startswith("relationships_") else ""


def _failed_rows(check: CheckResult) -> str:
    count = check.metadata.get("dagster_dbt/failed_row_count")
    if count is None:
        return "rows"
    return f"{int(count):,} row{'' if int(count) == 1 else 's'}"


def _dangling(nodes: dict[str, Any], check: CheckResult) -> str:
    """'stg_crm__contacts.company_id → stg_crm__companies.company_id: 34 rows'."""
    node = _test_node(nodes, check)
    kwargs = (node.get("test_metadata") or {}).get("kwargs") or {}
    arguments = kwargs.get("arguments") or kwargs
    model = check.asset.rsplit("/", 1)[-1]
    column = kwargs.get("column_name") or node.get("column_name")
    target = str(arguments.get("to", ""))
    for wrapper in ("ref(", "source("):
        if target.startswith(wrapper):
            target = target[len(wrapper):].rstrip(")").replace("'", "").replace('"', "")
            target = target.replace(", ", ".")
    if not column or not target:
        return f"{check.name}: {_failed_rows(check)}"
    return f"{model}.{column} → {target}.{arguments.get('field', '')}: {_failed_rows(check)}"


def _dbt_reason(nodes: dict[str, Any], check: CheckResult) -> str:
    from pipelines.assets.dbt import describe_data_test

    node = _test_node(nodes, check)
    rule = check.description or (describe_data_test(node) if node else "")
    return single_line(f"{rule} — {_failed_rows(check)} failing".strip(" —"))


def _terminal_columns() -> int:
    """The terminal's width (COLUMNS first; 100 when the terminal does not say)."""
    return shutil.get_terminal_size(fallback=(100, 24)).columns or 100
