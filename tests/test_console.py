"""A console people read: `sales-kpi run` as an operator (or a cron mail) sees it.

Real runs of the CLI in a subprocess with stdout and stderr piped (not a terminal), on a small
generated sample; the run's log file under the warehouse keeps what the console leaves out.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SHARED_RUN_WEBHOOK, recorded

from pipelines.console import (
    RUN_LOGS_KEPT,
    CheckResult,
    Painted,
    RunConsole,
    check_reason,
    prune_run_logs,
    run_log_path,
    use_colour,
)
from pipelines.settings import Settings

# The tests that read a run are `slow` (conftest.py marks every test of the shared run); the
# console's own rules below them run in `make test-fast` too.
WEBHOOK = SHARED_RUN_WEBHOOK
LINE_BUDGET = 100
STAGES = ("load", "dbt build", "checks", "publish", "site")
ESC = "\x1b"


@dataclass(frozen=True)
class CliRun:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return (self.stdout + self.stderr).splitlines()

    @classmethod
    def of(cls, run: dict) -> CliRun:
        """A run as `run_cli_subprocess` (conftest.py) returned or recorded it."""
        return cls(run["code"], run["stdout"], run["stderr"], run["seconds"])

    def log_file(self) -> Path:
        match = re.search(r"^log:\s+(\S+\.log)", self.stdout + self.stderr, flags=re.MULTILINE)
        assert match, self.stdout[-2000:] + self.stderr[-2000:]
        return Path(match.group(1))


@pytest.fixture(scope="module")
def warehouse(published_warehouse: Path) -> Path:
    """The session's published warehouse (conftest.py); read-only here."""
    return published_warehouse


@pytest.fixture(scope="module")
def default_run(published_warehouse: Path) -> CliRun:
    """The session's shared run (conftest.py): a default `sales-kpi run` (site included) in a
    subprocess with its output piped and a secret setting in the environment, as it printed
    it. The job is run once for the suite; its console is what these tests read."""
    run = CliRun.of(recorded(published_warehouse, "cli"))
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def quiet_run(second_night_warehouse: Path) -> CliRun:
    """The session's second night (conftest.py): `--force --quiet` on a copy of the shared
    run's warehouse, as it printed it."""
    run = CliRun.of(recorded(second_night_warehouse, "cli"))
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def recorded_bytes(folder: Path) -> CliRun:
    """A run kept by conftest.py `run_cli_recording_bytes`, as text."""
    return CliRun(
        code=int((folder / "code").read_text(encoding="utf-8")),
        stdout=(folder / "stdout").read_bytes().decode("utf-8", "replace"),
        stderr=(folder / "stderr").read_bytes().decode("utf-8", "replace"),
        seconds=0.0,
    )


@pytest.fixture(scope="module")
def verbose_run(hostile_verbose_run: Path) -> CliRun:
    """The session's `--force --verbose` run (conftest.py) on a copy of the shared run's
    warehouse, as it printed it; its landing folder has a delivery of hostile names too (the
    trust boundaries' test reads the same run), which changes nothing of what --verbose
    shows."""
    run = recorded_bytes(hostile_verbose_run)
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


# --- the default run --------------------------------------------------------------------------


def test_line_budget_a_default_run_prints_at_most_100_lines(default_run: CliRun) -> None:
    assert len(default_run.lines) <= LINE_BUDGET, "\n".join(default_run.lines)
    assert default_run.stderr == ""


def test_each_stage_says_when_it_starts_and_ends_with_timing_and_counts(
    default_run: CliRun,
) -> None:
    out = default_run.stdout
    for stage in STAGES:
        assert re.search(rf"^{stage}\s+started$", out, flags=re.MULTILINE), (stage, out)
        assert re.search(rf"^{stage}\s+done in \d+\.\ds", out, flags=re.MULTILINE), (stage, out)
    assert re.search(r"^load\s+done in .*: [\d,]+ files, [\d,]+ rows loaded, [\d,]+ quarantined",
                     out, flags=re.MULTILINE), out
    assert re.search(r"^dbt build\s+done in .*: \d+ models and \d+ seeds built, [\d,]+ tests "
                     r"\(\d+ passed, \d+ warned, 0 failed\)", out, flags=re.MULTILINE), out
    assert re.search(r"^checks\s+done in .*: \d+ checks \(\d+ passed, \d+ warned, 0 failed\)",
                     out, flags=re.MULTILINE), out


def test_no_ansi_when_piped(default_run: CliRun) -> None:
    for stream in (default_run.stdout, default_run.stderr):
        assert ESC not in stream and "\r" not in stream


def test_every_check_is_listed_with_its_outcome_and_dangling_references_are_named(
    default_run: CliRun,
) -> None:
    out = default_run.stdout
    listed = re.findall(r"^(passed|warning|FAILED): +check (\w+) on ", out, flags=re.MULTILINE)
    from pipelines.quality.checks import CHECKS

    assert {name for _status, name in listed} >= {check.name for check in CHECKS}, out
    assert ("passed", "lead_stages") in listed
    references = re.search(r"^warning: (\d+) reference checks found dangling references.*:\n"
                           r"((?:  - .*\n)+)", out, flags=re.MULTILINE)
    assert references, out
    named = references.group(2).splitlines()
    assert len(named) == int(references.group(1))
    # each names the referring model and column, what it refers to, and how many rows
    pattern = r"  - \w+\.\w+ → \w+\.\w+: [\d,]+ rows?"
    assert all(re.fullmatch(pattern, line) for line in named), named
    assert re.search(r"  - stg_crm__\w+\.contact_id → stg_crm__contacts\.contact_id", out), out


def test_log_file_exists_is_named_in_the_summary_and_holds_dbts_output(
    default_run: CliRun, warehouse: Path,
) -> None:
    log = default_run.log_file()
    assert log.parent == warehouse / "logs" and log.name.startswith("run-")
    text = log.read_text(encoding="utf-8")
    # dbt's streamed output and Dagster's events, none of which reached the console
    assert "Running with dbt=" in text and "START sql table model" in text
    assert "Running with dbt=" not in default_run.stdout
    assert "STEP_SUCCESS" in text and "raw__entities" in text
    assert "docs generate" in text
    assert ESC not in text


def test_dbt_keeps_no_debug_log_of_its_own(default_run: CliRun, warehouse: Path) -> None:
    """dbt's lines are in the run's log; dbt's own debug-level copy (5.5 MB of JSON per build
    of the sample, ≈ 0.6 CPU-s to write) is not written unless an operator asks for it."""
    # a build's folder is named after its run; a parse ahead's scratch folder
    # (`.parse-ahead-*`, removed when it is done) is not a build's
    builds = [p for p in (warehouse / "dbt_runs").iterdir()
              if p.is_dir() and not p.name.startswith(".")]
    assert builds and all((p / "run_results.json").exists() for p in builds)
    # nor of the parse ahead's or the dbt docs' invocations (`logs/dbt`)
    assert (warehouse / "site").is_dir()
    assert not list(warehouse.rglob("dbt.log"))


def test_log_file_has_no_secrets_written_by_a_library_or_dbt(tmp_path: Path) -> None:
    """Whatever reaches stdout, stderr or Python logging during a run is redacted in the file
    (here written the way dbt's output and a library's warning arrive)."""
    Settings(alert_webhook_url=WEBHOOK)  # the process now knows the secret value
    out, err = io.StringIO(), io.StringIO()
    console = RunConsole("verbose", out=out, err=err)
    with console.session(tmp_path, "run-with-a-secret") as log:
        print(f"dbt: POST {WEBHOOK} returned 500")
        print(f"a warning naming {WEBHOOK}", file=sys.stderr)
        logging.getLogger("some.library").warning("retrying %s", WEBHOOK)
    console.close()
    text = log.read_text(encoding="utf-8")
    assert "dbt: POST *** returned 500" in text and "retrying ***" in text
    for written in (text, out.getvalue(), err.getvalue()):
        assert "CONSOLE-SECRET" not in written


# --- --quiet and --verbose --------------------------------------------------------------------


def test_quiet_prints_only_errors_and_the_summary(quiet_run: CliRun) -> None:
    out = quiet_run.stdout
    assert quiet_run.stderr == ""
    assert not re.search(r"\b(started|done in)\b", out), out
    assert "entity " not in out and "passed:" not in out
    assert re.search(r"^run \w{8} succeeded in ", out, flags=re.MULTILINE), out
    assert re.search(r"^checks: \d+ checks: \d+ passed", out, flags=re.MULTILINE), out
    assert quiet_run.log_file().exists()
    assert len(quiet_run.lines) <= 8, out


def test_verbose_shows_dbt_lines_and_dagster_logs_live(verbose_run: CliRun) -> None:
    out = verbose_run.stdout
    assert "Running with dbt=" in out and "START sql table model" in out
    # Dagster's log lines, the run id shortened
    assert re.search(r"^\d\d:\d\d:\d\d INFO +\w{8} - raw__\w+ - ", out, flags=re.MULTILINE), out
    assert "comparing with published run" in out
    assert ESC not in out + verbose_run.stderr
    assert re.search(r"^run \w{8} succeeded in ", out, flags=re.MULTILINE)


# --- exit codes, log retention, terminals ----------------------------------------------------


@pytest.mark.slow  # a run of the job (that fails at the load)
def test_rejected_input_still_exits_1_naming_the_file_and_the_log(
    rejected_hostile_run: Path,
) -> None:
    """The session's run that fails at the load (conftest.py `rejected_hostile_run`: a
    users.csv without the contract's columns, a secret webhook set, no retries; its names
    carry escape sequences too, for the trust boundaries' test)."""
    run = recorded_bytes(rejected_hostile_run)
    assert run.code == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert "users.csv" in run.stderr and "FAILED" in run.stderr
    assert re.search(r"^load\s+FAILED after", run.stdout, flags=re.MULTILINE), run.stdout
    text = run.log_file().read_text(encoding="utf-8")
    assert "ALERT" in text  # the failure alert (to the unreachable webhook) is in the log ...
    assert "CONSOLE-SECRET" not in text + run.stdout + run.stderr  # ... without the secret
    assert ESC not in run.stdout + run.stderr


def test_old_run_logs_are_pruned_to_a_bounded_number(tmp_path: Path) -> None:
    folder = run_log_path(tmp_path, "x").parent
    folder.mkdir(parents=True)
    for n in range(RUN_LOGS_KEPT + 5):
        path = folder / f"run-{n:03d}.log"
        path.write_text("old\n", encoding="utf-8")
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
    (folder / "dbt").mkdir()  # dbt's own logs are not run logs
    prune_run_logs(folder)
    kept = sorted(p.name for p in folder.glob("run-*.log"))
    assert kept == [f"run-{n:03d}.log" for n in range(5, RUN_LOGS_KEPT + 5)]
    assert (folder / "dbt").is_dir()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_and_progress_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(_Terminal()) and not use_colour(io.StringIO())
    assert RunConsole("normal", out=_Terminal()).progress
    assert not RunConsole("normal", out=io.StringIO()).progress
    assert not RunConsole("quiet", out=_Terminal()).progress
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(_Terminal())
    console = RunConsole("normal", out=_Terminal())
    assert console.render([Painted("warning:", "yellow"), " a \x1b[2J b"]) == (
        "warning: a \\x1b[2J b"
    )
    monkeypatch.delenv("NO_COLOR")
    coloured = RunConsole("normal", out=_Terminal()).render([Painted("warning:", "yellow"),
                                                            " a \x1b[2J b"])
    # the console's own colour, and the data's escape code shown, not obeyed
    assert coloured == "\x1b[33mwarning:\x1b[0m a \\x1b[2J b"


def test_the_cli_console_colours_and_draws_progress_on_a_terminal_beneath_its_safe_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI wraps stdout so that libraries write no escape codes (terminal_safe_output):
    the console it creates inside still sees the terminal beneath, colours its own words and
    draws its progress line there — and still shows a data's escape code escaped."""
    from pipelines.safe_text import terminal_safe_output

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    with terminal_safe_output():
        assert not sys.stdout.isatty()  # what the libraries see
        console = RunConsole("normal")
        assert console.progress and console.colour
        console.say([Painted("warning:", "yellow"), " a \x1b[2J b"])
    assert terminal.getvalue() == "\x1b[33mwarning:\x1b[0m a \\x1b[2J b\n"


def test_the_freshness_check_says_when_the_marts_were_published_and_until_when_they_are_fresh(
) -> None:
    published = datetime(2026, 12, 3, 22, 18, 5, tzinfo=UTC).timestamp()
    fresh = CheckResult(
        step="freshness_check", name="freshness_check", asset="published_marts", passed=True,
        blocking=False,
        description="Asset is currently fresh. The last update was  ago, within the allowed "
                    "time range of 1 day, 2 hours.",
        metadata={"dagster/freshness_params": {"lower_bound_delta_seconds": 93600},
                  "dagster/last_updated_timestamp": published,
                  "dagster/fresh_until_timestamp": published + 93600},
    )
    assert check_reason(fresh) == ("the marts were last published 2026-12-03 22:18 UTC; "
                              "fresh until 2026-12-05 00:18 UTC")
    overdue = CheckResult(
        step="freshness_check", name="freshness_check", asset="published_marts", passed=False,
        blocking=False, description="Asset is overdue for an update.",
        metadata={"dagster/freshness_params": {"lower_bound_delta_seconds": 93600},
                  "dagster/last_updated_timestamp": published,
                  "dagster/freshness_lower_bound_timestamp": published + 3600},
    )
    assert check_reason(overdue) == ("the marts were last published 2026-12-03 22:18 UTC, "
                                "before 2026-12-03 23:18 UTC: overdue")
    never = CheckResult(
        step="freshness_check", name="freshness_check", asset="published_marts", passed=False,
        blocking=False, description="Asset has never been observed/materialized.",
        metadata={"dagster/freshness_params": {"lower_bound_delta_seconds": 93600}},
    )
    assert check_reason(never) == "the marts were never published"


@pytest.mark.slow  # a real dbt
def test_a_failed_dbt_build_is_one_line_naming_how_dbt_ended_and_what_failed(
    tmp_path: Path,
) -> None:
    """The dbt stage's FAILED line says how dbt ended (its exit code, or the signal by name)
    and the errors dbt logged — what an operator acts on — and not dagster-dbt's echo of the
    whole command line (the launcher's path and every var), which used to fill the line. The
    error is dagster-dbt's own (`DbtCliInvocation.get_error`) for a real dbt that failed; the
    signal's is dagster-dbt's text for a dbt ended by SIGTERM (as a stopped run's shows)."""
    from dagster_dbt import DagsterDbtCliRuntimeError, DbtCliResource

    from pipelines.assets.dbt import dbt_environment, dbt_failure_reason
    from pipelines.dbt_project import DBT_PROJECT_DIR, dbt_executable

    settings = Settings(warehouse_dir=tmp_path / "warehouse")
    settings.warehouse_dir.mkdir()
    with dbt_environment(settings):
        dbt = DbtCliResource(project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable())
        # a model over a raw layer that was never loaded: dbt fails the model
        invocation = dbt.cli(
            ["build", "--select", "stg_crm__users", "--profiles-dir", str(DBT_PROJECT_DIR)],
            raise_on_error=False,
            target_path=tmp_path / "target",
        )
        list(invocation.stream_raw_events())
    error = invocation.get_error()
    assert error is not None and "--select" in str(error)  # the command line is in it
    reason = dbt_failure_reason(error)
    assert reason.startswith("dbt build failed (exit code 1): "), reason
    assert reason.startswith(
        "dbt build failed (exit code 1): Failure in model stg_crm__users "
        "(models/staging/stg_crm__users.sql) | Runtime Error in model stg_crm__users"
    ), reason
    assert "--select" not in reason
    assert "\n" not in reason
    stopped = DagsterDbtCliRuntimeError(
        description="The dbt CLI process with command\n\n`/tmp/sales-kpi-0/dbt-guard-1 build "
        "--vars {}`\n\nfailed with exit code `-15`. Check the stdout in the Dagster compute "
        "logs for the full information about the error."
    )
    assert dbt_failure_reason(stopped) == (
        "dbt build was ended by SIGTERM (dbt's output is in the run's log)"
    )
    many = DagsterDbtCliRuntimeError(
        description="The dbt CLI process with command\n\n`dbt build`\n\nfailed with exit code "
        "`-40`. Check the stdout in the Dagster compute logs for the full information about "
        "the error.\n\nErrors parsed from dbt logs:\n\n"
        + "\n\n".join(f"Failure in test t{n} (models/m.yml)" for n in range(5))
        # a value quoted from the data that reads like dagster-dbt's sentence changes nothing
        + "\n\nfailed with exit code `-9`. Check the stdout in the Dagster compute logs"
    )
    assert dbt_failure_reason(many) == (
        "dbt build was ended by signal 40: Failure in test t0 (models/m.yml) | Failure in "
        "test t1 (models/m.yml) | Failure in test t2 (models/m.yml) (and 3 more in the "
        "run's log)"
    )
