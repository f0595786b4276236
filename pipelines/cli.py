"""`sales-kpi`: generate a sample, run the nightly job, and operator commands.

`sales-kpi run` executes the very job that `dagster dev` and the schedule run, in-process.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.safe_text import terminal_safe_output
from pipelines.settings import (
    ENGINES,
    Settings,
    SettingsError,
    chosen_dbt,
    parse_instant,
    printable,
)

if TYPE_CHECKING:
    from pipelines.console import RunConsole, Verbosity
    from pipelines.job_runner import JobOutcome
    from pipelines.run_guard import RunInterrupted

EXIT_BUSY = 3
# The run's exit codes, as `sales-kpi run --help` shows them (124: RunTimedOut's, as
# timeout(1) ends a command; 128 + n: RunInterrupted's, as a shell reports a signal)
RUN_EXIT_CODES = (
    "exit codes: 0 success; 1 a failed run (rejected input, a blocking check); 2 bad usage "
    f"or settings; {EXIT_BUSY} another run holds the warehouse; 124 stopped by its time "
    "limit (max_run_minutes); 128 + n stopped by signal n (143 SIGTERM, 130 Ctrl-C)"
)
DEFAULT_SAMPLE_SCALE = 1.0
DEFAULT_SAMPLE_SEED = 42


def main(argv: Sequence[str] | None = None) -> int:
    _end_without_the_final_collection()
    # the whole console of a command is escaped: whatever a library prints (Dagster, dbt),
    # argparse's usage errors (which quote the argument back) and an unexpected error's
    # traceback, printed here rather than by Python once the stream is restored
    with terminal_safe_output():
        args = _parser().parse_args(argv)
        try:
            return int(args.handler(args))
        except SettingsError as exc:
            _err(f"error: {exc}")
            return 2
        except Exception:
            _err(traceback.format_exc().rstrip())  # secrets redacted, like every message
            return 1


def _end_without_the_final_collection() -> None:
    """When this process exits, skip the garbage collection that Python runs over everything
    still alive: after a run that is every object Dagster, dbt's manifest and GX made (≈ 600k),
    traversed for nothing — 1.8 s of every `sales-kpi run` at its very end, measured, and
    0.1 s with the objects frozen (`gc.freeze`) once the exit handlers run. Nothing relies on
    that collection: files, DuckDB connections and child processes are closed by the code that
    opened them (a run leaves no DuckDB write-ahead log behind), and objects freed by their
    reference counts still are. Registered once per process however often `main` is called (a
    process that calls it again, as the tests' warm CLI does, keeps collecting normally until
    it exits)."""
    atexit.unregister(gc.freeze)  # atexit would run it once per registration
    atexit.register(gc.freeze)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sales-kpi",
        description="Turn raw CRM extracts into trustworthy sales KPIs.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate", help="write a deterministic sample CRM extract (landing folder)"
    )
    generate.add_argument("--out", type=Path, required=True, help="landing folder to write")
    generate.add_argument("--scale", type=float, default=DEFAULT_SAMPLE_SCALE,
                          help="1 ≈ 10k contacts and 100k activities (default 1)")
    generate.add_argument("--seed", type=int, default=DEFAULT_SAMPLE_SEED,
                          help="the random seed: the same scale and seed write the same files "
                          f"(default {DEFAULT_SAMPLE_SEED}, the bundled sample's)")
    generate.add_argument(
        "--staff-scale", type=float, default=None,
        help="size of the sales organisation apart from the contacts (default: --scale; "
        "1 ≈ 20 users in 3 teams): e.g. --scale 18 --staff-scale 66 ≈ 1,400 users over 180k "
        "contacts, few contacts per rep",
    )
    generate.set_defaults(handler=_generate)

    run = commands.add_parser("run", help="run the nightly job in-process",
                              epilog=RUN_EXIT_CODES)
    run.add_argument("--extracts", type=Path,
                     help="landing folder (default: the bundled sample, generated if missing)")
    run.add_argument("--warehouse", type=Path, help="warehouse folder (default: ./warehouse)")
    run.add_argument(
        "--source",
        help="map a CRM export first: salesforce | hubspot | PATH.yaml (--extracts is then "
        "the export folder; see docs/source-mapping.md)",
    )
    run.add_argument("--as-of", help="the instant that counts as now (ISO 8601; default: "
                     "the latest event in the data)")
    run.add_argument("--engine", choices=ENGINES,
                     help="where the dbt build runs: duckdb (default) or spark (the spark "
                     "extra and Java 17; README, \"Engines\"); default: $SALES_KPI_ENGINE")
    run.add_argument("--force", action="store_true",
                     help="rebuild and publish even when nothing is new since the last run")
    shown = run.add_mutually_exclusive_group()
    shown.add_argument("-v", "--verbose", action="store_true",
                       help="show dbt's and Dagster's full output live (always in the run's "
                       "log file, <warehouse>/logs/run-<run id>.log)")
    shown.add_argument("-q", "--quiet", action="store_true",
                       help="print only errors and the closing summary")
    run.set_defaults(handler=_run)

    skip = commands.add_parser(
        "skip-file",
        help="let runs pass over a rejected file (recorded with who and when)",
    )
    skip.add_argument(
        "file", help="DELIVERY/FILE as named in the error, e.g. 2026-11-25T0200/contacts.csv"
    )
    skip.add_argument("--by", required=True, help="who decides to skip it (name or e-mail)")
    skip.add_argument("--reason", default=None, help="why (kept for auditors)")
    skip.add_argument("--warehouse", type=Path, help="warehouse folder (default: ./warehouse)")
    skip.set_defaults(handler=_skip_file)

    explain = commands.add_parser(
        "explain", help="print why a contact has its lead stage (from the published marts)"
    )
    explain.add_argument("contact_id")
    explain.add_argument("--warehouse", type=Path, help="warehouse folder (default: ./warehouse)")
    explain.set_defaults(handler=_explain)
    return parser


def _explain(args: argparse.Namespace) -> int:
    from pipelines.explain import ContactNotFound, explain_contact
    from pipelines.publish import PublishedFileLocked, published_database

    settings = _settings(args)
    # Explain reads only what was published: the build database may be gone or mid-run.
    published = published_database(settings.warehouse_dir)
    if not published.exists():
        _err(f"error: no published marts at {published}; run `sales-kpi run` first")
        return 2
    try:
        _say(explain_contact(published, args.contact_id, settings.business_timezone))
    except (ContactNotFound, PublishedFileLocked) as exc:
        _err(f"error: {exc}")
        return 1
    return 0


def _generate(args: argparse.Namespace) -> int:
    from pipelines.sample import generate_sample

    try:
        summary = generate_sample(args.out, scale=args.scale, seed=args.seed, progress=_say,
                                  staff_scale=args.staff_scale)
    except ValueError as exc:  # a scale out of range: what to give instead
        _err(f"error: {exc}")
        return 2
    rows = ", ".join(f"{entity} {count:,}" for entity, count in summary.rows.items())
    _say(
        f"wrote {summary.files} files in {len(summary.deliveries)} deliveries to "
        f"{summary.out_dir} in {summary.seconds:.1f}s: {rows}"
    )
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    base = Settings.from_env()
    as_of = getattr(args, "as_of", None)
    source = getattr(args, "source", None)
    if source and Path(source).exists():
        source = str(Path(source).resolve())
    return base.replace(
        source_mapping=source or base.source_mapping,
        extracts_dir=(args.extracts.resolve() if getattr(args, "extracts", None)
                      else base.extracts_dir),
        warehouse_dir=args.warehouse.resolve() if args.warehouse else base.warehouse_dir,
        as_of=parse_instant(as_of, base.business_timezone) if as_of else base.as_of,
        engine=getattr(args, "engine", None) or base.engine,
    )


def _run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except SettingsError:
        raise  # a setting's own message names it (main prints it, exit 2)
    except ValueError as exc:
        _err(f"error: --as-of: {exc}")
        return 2
    from pipelines.engines import require_engine

    require_engine(settings)  # refused before anything is generated, locked or loaded
    chosen_dbt()  # so is a dbt the install names that is not one
    default_sample = Settings().extracts_dir
    if (
        settings.extracts_dir == default_sample
        and not default_sample.exists()
        and not settings.source_mapping
    ):
        _say(f"no landing folder given; generating the bundled sample into {default_sample}")
        from pipelines.sample import generate_sample

        generate_sample(default_sample, scale=DEFAULT_SAMPLE_SCALE, seed=DEFAULT_SAMPLE_SEED)
    if not settings.extracts_dir.is_dir():
        _err(f"error: landing folder {settings.extracts_dir} does not exist")
        return 2

    unwritable = _unwritable_folder(settings.warehouse_dir)
    if unwritable:
        _err(f"error: warehouse folder {settings.warehouse_dir}: {unwritable}")
        return 2
    from pipelines.run_guard import RunInterrupted, WarehouseBusy, warehouse_lock

    try:
        # refused at once, before anything is imported, parsed or touched
        with warehouse_lock(settings.warehouse_dir):
            if not args.force:
                from pipelines.no_op import nothing_new_since

                last = nothing_new_since(settings)
                if last:
                    from pipelines.publish import remove_leftovers

                    remove_leftovers(settings.warehouse_dir)
                    _say(f"nothing new since run {last[:8]}: no file is new and the settings, "
                         "definitions, overrides and as_of are unchanged; nothing was rebuilt "
                         "or re-published (--force rebuilds)")
                    return 0
                from pipelines.no_op import complete_build_since

                built = complete_build_since(settings)
            else:
                built = None
            return _run_locked(settings, _verbosity(args), resume_from=built)
    except WarehouseBusy as exc:
        _err(f"error: {exc}")
        return EXIT_BUSY
    except RunInterrupted as exc:  # a signal before the job started
        return exc.exit_code


def _unwritable_folder(folder: Path) -> str | None:
    """Why the run could not write `folder` (created if missing), or None when it can: a
    read-only mount or missing permission is one line, not a traceback from the lock."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot be created ({exc.strerror or exc})"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "cannot be written (read-only or no permission)"
    return None


def _verbosity(args: argparse.Namespace) -> Verbosity:
    if getattr(args, "verbose", False):
        return "verbose"
    return "quiet" if getattr(args, "quiet", False) else "normal"


def _run_locked(
    settings: Settings, verbosity: Verbosity = "normal", resume_from: str | None = None
) -> int:
    """The run, as the operator reads it: one line per stage, the checks, the summary.

    The console (pipelines/console.py) listens to the job's event log and keeps dbt's and
    Dagster's full output in the run's log file; the job is the one `dagster dev` runs."""
    from pipelines.console import RunConsole
    from pipelines.run_guard import RunInterrupted

    console = RunConsole(verbosity)
    console.say(f"extracts:  {settings.extracts_dir}")
    console.say(f"warehouse: {settings.warehouse_dir}")
    if resume_from:
        console.say(f"resuming:  run {resume_from[:8]} built these files with these settings and "
                    "stopped before publishing; its build is checked and published, not "
                    "loaded and built again (--force rebuilds)")
    started = time.perf_counter()
    began = datetime.now(UTC)
    run_id = str(uuid.uuid4())  # known before the job starts: it names the log file
    try:
        from pipelines.job_runner import run_nightly_job

        with console.session(settings.warehouse_dir, run_id) as log:
            console.say(f"log:       {log}")
            # Dagster's own console logger stays silent (CRITICAL only): the console above
            # shows the run, the log file keeps every line
            outcome = run_nightly_job(
                settings, log_level="CRITICAL", run_id=run_id, listener=console.on_event,
                resume=resume_from is not None,
            )
    except RunInterrupted as exc:
        console.close()
        return _interrupted(settings, exc, time.perf_counter() - started, began)
    try:
        return _closing_summary(settings, outcome, console, time.perf_counter() - started,
                                loaded_by=resume_from)
    finally:
        console.close()


def _closing_summary(
    settings: Settings, outcome: JobOutcome, console: RunConsole, seconds: float,
    loaded_by: str | None = None,
) -> int:
    """What the run did: the load per entity (a resumed run's: that of the run whose build it
    published, `loaded_by`), what was ignored, every check, the outcome."""
    from pipelines.console import Painted
    from pipelines.ingest.landing import ADAPTER_REPORT_TEXT_FILE, read_own_file

    say = console.say
    warning_word = Painted("warning:", "yellow")
    say()
    if settings.source_mapping and (
        adapter_report := read_own_file(settings.landing_dir / ADAPTER_REPORT_TEXT_FILE)
    ) is not None:
        say(adapter_report)
    if loaded_by:
        say(f"loaded by run {loaded_by[:8]}, whose build this run resumed from:")
    say(_summary(settings, loaded_by or outcome.run_id))
    _print_landing_notes(settings, say)
    say()
    for line in console.check_lines():
        say(line)
    for warning in outcome.warnings:
        if not warning.startswith("check "):  # checks are listed above, one line each
            say([warning_word, f" {warning}"])
    if console.verbosity == "quiet" and console.checks:
        say(f"checks: {console.check_counts()}", always=True)
    log = console.log.path if console.log else None
    if outcome.success:
        from pipelines.publish import PublishedFileLocked, published_database, published_parquet
        from pipelines.run_summary import flagged_labellers, format_flagged_labeller

        published = published_database(settings.warehouse_dir)
        try:
            flagged = flagged_labellers(published)
        except PublishedFileLocked as exc:  # taken by a writer the moment it was swapped in
            flagged = []
            say([warning_word, f" the labellers above the threshold were not read: {exc}"])
        for labeller in flagged:
            say([warning_word, f" {format_flagged_labeller(*labeller)}"])
        say(f"run {outcome.run_id[:8]} succeeded in {seconds:.1f}s", always=True)
        if settings.engine == "spark":
            say(f"warehouse: {settings.raw_database} (schema raw); the build on Spark: "
                f"{settings.spark_dir / 'tables'} (Parquet), read through "
                f"{settings.build_database}", always=True)
        else:
            say(f"warehouse: {settings.raw_database} (schema raw; the build)", always=True)
        say(f"published: {published} (e.g. `select * from kpi_scorecard`) and "
            f"{published_parquet(settings.warehouse_dir)}", always=True)
        if settings.engine == "spark":
            from pipelines.spark_build import PUBLISHED_DATABASE

            say(f"           and in Spark's catalog, database {PUBLISHED_DATABASE} (e.g. "
                f"`select * from {PUBLISHED_DATABASE}.kpi_scorecard`)", always=True)
        site = settings.warehouse_dir / "site"
        if (site / "index.html").exists():
            say(f"dashboard: {site / 'index.html'} (auditor's pack: {site / 'definitions.html'},"
                f" Data Docs: {settings.warehouse_dir / 'quality' / 'data_docs' / 'index.html'})",
                always=True)
        if log:
            say(f"log:       {log} (dbt's and Dagster's full output)", always=True)
        return 0
    console.error(f"run {outcome.run_id[:8]} FAILED after {seconds:.1f}s:")
    for failure in outcome.failures:
        console.error(f"  - {failure}")
    from pipelines.publish import published_state

    console.error(published_state(settings.warehouse_dir, outcome.run_id))
    if log:
        console.error(f"log: {log} (dbt's and Dagster's full output)")
    return 1


def _summary(settings: Settings, run_id: str) -> str:
    """The closing summary; a failure to read it is said in one line, never a traceback."""
    from pipelines.run_summary import format_summary, summarise_run

    try:
        return format_summary(summarise_run(settings.raw_database, run_id))
    except Exception as exc:  # the summary must not hide the run's own outcome
        return f"(no load summary: {type(exc).__name__}: {str(exc).splitlines()[0][:200]})"


def _interrupted(
    settings: Settings, exc: RunInterrupted, seconds: float, began: datetime
) -> int:
    """A run stopped by SIGTERM or SIGINT, or by its time limit: the same guarantees as a
    failure, and a summary."""
    from pipelines.publish import published_state

    _err(f"run STOPPED by {exc} after {seconds:.1f}s; its child processes were ended")
    # the interrupted run's id is not known here: what it published, if its publish step
    # had finished, is a run published since it began
    _err(published_state(settings.warehouse_dir, since=began))
    code = exc.exit_code
    # the abandoned job thread must not hold the exit up: leave now (the kernel releases the
    # warehouse lock; the children are already ended)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_landing_notes(settings: Settings, say: Callable[[str], None] | None = None) -> None:
    """What the landing scan ignored, and why (hidden folders, stray files): part of the run
    summary, so nothing in the landing folder is passed over without the operator seeing it.
    A landing that cannot be scanned is already a failure of the run; nothing to add here."""
    from pipelines.ingest.landing import LandingError, scan_landing

    try:
        _files, notes = scan_landing(settings.landing_dir)
    except LandingError:
        return
    say = say or _say
    if notes:
        say(f"ignored in the landing folder ({len(notes)}):")
        for note in notes:
            say(f"  - {note}")


def _skip_file(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _delivery, _, file_name = args.file.strip("/").partition("/")
    if not file_name:
        _err("error: name the file as DELIVERY/FILE")
        return 2
    if not settings.raw_database.exists():
        _err(f"error: no warehouse at {settings.raw_database}")
        return 2
    from pipelines.run_guard import WarehouseBusy, warehouse_lock

    try:
        with warehouse_lock(settings.warehouse_dir):  # a run writes the same file
            return _record_skip(args, settings)
    except WarehouseBusy as exc:
        _err(f"error: {exc}")
        return EXIT_BUSY


def _record_skip(args: argparse.Namespace, settings: Settings) -> int:
    """`skip-file`'s record, written while the warehouse's lock is held."""
    import duckdb

    delivery, _, file_name = args.file.strip("/").partition("/")
    with duckdb.connect(str(settings.raw_database)) as con:
        row = con.execute(
            "select content_hash, message from raw.load_manifest where delivery = ? "
            "and file_name = ? and status = 'rejected' order by load_id desc limit 1",
            [delivery, file_name],
        ).fetchone()
        if row is None:
            _err(f"error: {args.file} was never rejected; nothing to skip")
            return 2
        con.execute(
            "insert into raw.skipped_files values (?, ?, ?, ?, ?, ?)",
            [delivery, file_name, row[0], args.by, args.reason, datetime.now(UTC)],
        )
    _say(f"{args.file} (rejected: {row[1]}) will be skipped by later runs; "
         f"recorded as skipped by {args.by}")
    return 0


def _safe(message: object) -> str:
    """Every CLI message passes here: secrets redacted, control characters from data (ESC
    sequences, OSC titles, C1 controls, bidi overrides) escaped. Line breaks are kept."""
    return printable(message)


def _say(message: object = "") -> None:
    print(_safe(message), flush=True)


def _err(message: object) -> None:
    print(_safe(message), file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
