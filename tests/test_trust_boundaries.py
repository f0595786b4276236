"""Issue 13: the landing folder, the mapping and the settings are trust boundaries.

Each test is named after the rule it holds the pipeline to. They use small hand-made landing
folders and units of the loader; the webhook test runs the (failing, tiny) job in process, and
the two hostile-names tests through the CLI read runs of the session (conftest.py:
`hostile_verbose_run`, `rejected_hostile_run`) that the console tests read too.
"""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import duckdb
import pytest
from conftest import (
    DELIVERY,
    ESC_RED,
    HOSTILE,
    HOSTILE_WAREHOUSE,
    OSC_TITLE,
    csv_text,
    load,
    manifest,
    quarantine,
    row,
    write_file,
)
from test_adapters import PEOPLE, with_columns

from pipelines.contract import MAX_FIELD_CHARACTERS, MAX_LINE_BYTES
from pipelines.ingest.landing import LandingError, OutsideLandingError, scan_landing

SECRET_LINE = "API_TOKEN=s3cr3t-do-not-print"


# --- the landing folder ----------------------------------------------------------------------


def test_symlink_leaving_the_landing_folder_is_refused_and_named(tmp_path, landing):
    secrets = tmp_path / "secrets.env"
    secrets.write_text(SECRET_LINE + "\n", encoding="utf-8")
    write_file(landing, DELIVERY, "users.csv", [row("users")])
    (landing / DELIVERY / "contacts.csv").symlink_to(secrets)
    with pytest.raises(OutsideLandingError) as caught:
        scan_landing(landing)
    message = str(caught.value)
    assert f"{DELIVERY}/contacts.csv" in message and "outside the landing folder" in message
    assert "API_TOKEN" not in message and str(secrets) not in message


def test_delivery_folder_linked_from_outside_the_landing_folder_is_refused(tmp_path, landing):
    elsewhere = tmp_path / "elsewhere"
    write_file(elsewhere, DELIVERY, "users.csv", [row("users")])
    (landing / DELIVERY).symlink_to(elsewhere / DELIVERY, target_is_directory=True)
    with pytest.raises(OutsideLandingError, match=DELIVERY):
        scan_landing(landing)


def test_symlink_swapped_in_after_the_scan_is_refused_by_the_loader(tmp_path, con, landing):
    from pipelines.ingest.loader import load_entity
    from pipelines.settings import Settings

    path = write_file(landing, DELIVERY, "users.csv", [row("users")])
    files, _ = scan_landing(landing)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(SECRET_LINE + "\n", encoding="utf-8")
    path.unlink()
    path.symlink_to(secrets)
    settings = Settings(extracts_dir=landing, warehouse_dir=tmp_path / "wh")
    result = load_entity(con, "users", files, settings, run_id="test")
    assert [o.status for o in result.outcomes] == ["rejected"]
    assert "outside the landing folder" in result.outcomes[0].message
    assert manifest(con) == []  # nothing recorded: not even the hash of the secrets file


@pytest.mark.parametrize("name", ["[.]stash", "*", "2026-11-2?T0200"])
def test_a_delivery_named_like_a_file_pattern_is_refused_and_reads_nothing_else(
    tmp_path, landing, name
):
    """DuckDB's readers take a path as a pattern (`*`, `?`, `[…]`): a delivery named
    `[.]stash` read the files of the hidden `.stash` — there a link to a file outside the
    landing folder, which the scan never looks at — and published them under its own name.
    Such a delivery is refused, named, before anything is read."""
    secrets = tmp_path / "outside-users.csv"
    secrets.write_text(csv_text([row("users")]), encoding="utf-8")
    (landing / ".stash").mkdir()
    (landing / ".stash" / "users.csv").symlink_to(secrets)
    write_file(landing, DELIVERY, "users.csv", [row("users")])
    write_file(landing, name, "users.csv", [row("users")])
    with pytest.raises(LandingError) as caught:
        scan_landing(landing)
    message = str(caught.value)
    assert name in message and "pattern" in message


def test_a_landing_folder_whose_path_reads_as_a_file_pattern_is_refused(tmp_path):
    landing = tmp_path / "landing[1]"
    write_file(landing, DELIVERY, "users.csv", [row("users")])
    with pytest.raises(LandingError, match="pattern"):
        scan_landing(landing)


# A name as a file system may hold it: bytes that are not UTF-8 (Python keeps them as lone
# surrogates, `os.fsdecode`)
NOT_UTF8 = b"\xff\xfe"


def test_a_delivery_folder_named_with_bytes_that_are_not_utf8_is_refused_naming_it(landing):
    """A delivery's name travels with its rows (the manifest, the source traces): one that is
    no text stopped the load in DuckDB, the step was retried for two minutes, and printing the
    landing's notes ended the CLI in a traceback. It is refused, named with its bytes shown."""
    from pipelines.safe_text import single_line

    write_file(landing, DELIVERY, "users.csv", [row("users")])
    name = os.fsdecode(b"2026-11-27T0200" + NOT_UTF8)
    write_file(landing, name, "users.csv", [row("users")])
    with pytest.raises(LandingError) as caught:
        scan_landing(landing)
    message = str(caught.value)
    assert "2026-11-27T0200\\xff\\xfe" in message and "not UTF-8" in message
    assert single_line(message) == message  # printable as it is
    message.encode("utf-8")


def test_a_landing_folder_whose_path_is_not_utf8_is_refused(tmp_path):
    landing = tmp_path / os.fsdecode(b"landing" + NOT_UTF8)
    write_file(landing, DELIVERY, "users.csv", [row("users")])
    with pytest.raises(LandingError, match="not UTF-8"):
        scan_landing(landing)


def test_a_file_named_with_bytes_that_are_not_utf8_is_listed_as_ignored_escaped(landing):
    write_file(landing, DELIVERY, "users.csv", [row("users")])
    (landing / DELIVERY / os.fsdecode(b"note" + NOT_UTF8 + b".txt")).write_text("x")
    files, notes = scan_landing(landing)
    assert [f.name for f in files] == ["users.csv"]
    assert f"{DELIVERY}/note\\xff\\xfe.txt: not an entity file, ignored" in notes
    "".join(notes).encode("utf-8")


def test_the_adapters_own_files_are_read_only_as_regular_files(landing):
    """The landing folder is anyone's to write: a FIFO under the name of the adapter's report
    held the load up for good (it was read as a file). It is not read, and it is listed."""
    from pipelines.ingest.landing import (
        ADAPTER_MARKER_FILE,
        ADAPTER_REPORT_JSON_FILE,
        read_own_file,
    )
    from pipelines.ingest.loader import _mapped_columns
    from pipelines.settings import Settings

    write_file(landing, DELIVERY, "users.csv", [row("users")])
    (landing / ADAPTER_MARKER_FILE).write_text("")
    report = landing / ADAPTER_REPORT_JSON_FILE
    os.mkfifo(report)
    settings = Settings(extracts_dir=landing, warehouse_dir=landing.parent / "wh")
    done: list[object] = []
    reader = threading.Thread(target=lambda: done.append(_mapped_columns(settings)),
                              daemon=True)
    reader.start()
    reader.join(10)
    assert done == [{}], "reading the adapter's report waited on a FIFO"
    _, notes = scan_landing(landing)
    assert any(note.startswith(f"{ADAPTER_REPORT_JSON_FILE}: not a regular file")
               for note in notes), notes

    report.unlink()
    report.write_text('{"columns": {"users": {"full_name": "Name"}}}', encoding="utf-8")
    assert read_own_file(report) is not None
    assert _mapped_columns(settings) == {"users": {"full_name": "Name"}}


def test_single_line_shows_the_bytes_of_a_name_that_is_not_utf8():
    from pipelines.safe_text import single_line, terminal_safe

    name = os.fsdecode(b"users" + NOT_UTF8 + b".csv")
    assert single_line(name) == "users\\xff\\xfe.csv" == terminal_safe(name)
    assert single_line("a\ud800b") == "a\\ud800b"  # a surrogate no byte stands for


def test_symlink_inside_the_landing_folder_is_followed(con, landing):
    target = write_file(landing, "2026-11-23T0200", "users.csv", [row("users")])
    (landing / DELIVERY).mkdir()
    (landing / DELIVERY / "users.csv").symlink_to(target)
    files, _ = scan_landing(landing)
    assert [f.label for f in files] == ["2026-11-23T0200/users.csv", f"{DELIVERY}/users.csv"]
    assert [o.status for o in load(con, landing, "users").outcomes] == ["loaded", "duplicate"]


def test_dot_named_delivery_is_listed_as_ignored_with_what_it_holds(landing):
    write_file(landing, DELIVERY, "users.csv", [row("users")])
    write_file(landing, "..2026-11-26T0200", "users.csv", [row("users")])
    write_file(landing, "..2026-11-26T0200", "deals.csv", [row("deals")])
    files, notes = scan_landing(landing)
    assert [f.delivery for f in files] == [DELIVERY]
    (note,) = [n for n in notes if n.startswith("..2026-11-26T0200")]
    assert "ignored by rule" in note and "2 entity file(s) that were NOT loaded" in note


def test_a_dot_named_export_delivery_is_listed_with_what_it_holds_and_own_names_too(tmp_path):
    """The export folder of `--source` is a trust boundary like the landing folder: a hidden
    delivery says how many export files it holds, and the adapter's own file names (it writes
    them in the landing, never in an export) are listed like any dot-name, not passed over."""
    from pipelines.adapters.mapping import load_mapping
    from pipelines.adapters.sources import scan_source
    from pipelines.ingest.landing import ADAPTER_MARKER_FILE

    export = tmp_path / "export"
    for delivery in ("2026-11-26T0200", ".2026-11-27T0200"):
        (export / delivery).mkdir(parents=True)
        (export / delivery / "User.csv").write_text("Id\n", encoding="utf-8")
        (export / delivery / "Account.csv").write_text("Id\n", encoding="utf-8")
    os.mkfifo(export / ADAPTER_MARKER_FILE)
    notes = scan_source(export, load_mapping("salesforce")).notes
    (hidden,) = [n for n in notes if n.startswith(".2026-11-27T0200")]
    assert "2 export file(s) that were NOT read" in hidden
    assert any(n.startswith(f"{ADAPTER_MARKER_FILE}: name starts with a dot") for n in notes)


def test_every_entry_the_scan_sees_is_loaded_or_listed(landing):
    write_file(landing, DELIVERY, "users.csv", [row("users")])
    (landing / DELIVERY / "archive").mkdir()
    (landing / DELIVERY / ".partial.csv").write_text("x", encoding="utf-8")
    (landing / "README.txt").write_text("hello", encoding="utf-8")
    (landing / ".hidden").mkdir()
    _files, notes = scan_landing(landing)
    listed = " | ".join(notes)
    for name in (f"{DELIVERY}/archive", f"{DELIVERY}/.partial.csv", "README.txt", ".hidden"):
        assert name in listed


def test_ignored_entries_are_reported_in_the_run_summary(tmp_path, landing, capsys):
    from pipelines.cli import _print_landing_notes
    from pipelines.settings import Settings

    write_file(landing, "..2026-11-26T0200", "users.csv", [row("users")])
    _print_landing_notes(Settings(extracts_dir=landing, warehouse_dir=tmp_path / "wh"))
    out = capsys.readouterr().out
    assert "..2026-11-26T0200" in out and "NOT loaded" in out


def test_file_content_never_reaches_a_rejection_message_beyond_a_bounded_excerpt(con, landing):
    # A "CSV" whose header is a secret and whose lines do not match it.
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True)
    path.write_text(f"{SECRET_LINE}\na,b,c\n", encoding="utf-8")
    (outcome,) = load(con, landing, "users").outcomes
    assert outcome.status == "rejected"
    assert len(outcome.message) < 400
    assert "\n" not in outcome.message


# --- size limits -----------------------------------------------------------------------------


def test_ten_megabyte_field_rejects_the_file_naming_line_column_and_the_limit(con, landing):
    rows = [row("users"), row("users", user_id="u2", full_name="x" * 10_000_000)]
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True)
    path.write_text(csv_text(rows), encoding="utf-8")
    (outcome,) = load(con, landing, "users").outcomes
    assert outcome.status == "rejected"
    assert "line 3, column full_name" in outcome.message
    assert f"line limit ({MAX_LINE_BYTES:,} bytes)" in outcome.message
    assert "131072" not in outcome.message and "xxxxxxxxxx" not in outcome.message


@pytest.mark.slow  # seconds of reading: not a rule of test-fast
@pytest.mark.parametrize("name", ["users.csv", "users.csv.gz"])
@pytest.mark.parametrize("ending", ["\n", "", "\n\n", "\r\n\r\n"])
def test_a_last_line_beyond_the_readers_buffer_rejects_the_file_not_drops_the_line(
    con, landing, name, ending
):
    """DuckDB's CSV reader returns the other rows and no error when the file's last record
    is a line larger than its 32 MB buffer (blank lines after it included): that row was
    gone without a word. The file is rejected, naming the line and its column, as a long
    line anywhere else is."""
    rows = [row("users"), row("users", user_id="u2"),
            row("users", user_id="u3", full_name="x" * 33_000_000)]
    write_file(landing, DELIVERY, name, rows)
    path = landing / DELIVERY / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    with opener(path, "wb") as handle:  # the same file, ended as the case says
        handle.write(data.rstrip(b"\r\n") + ending.encode())
    (outcome,) = load(con, landing, "users").outcomes
    assert outcome.status == "rejected", outcome
    assert "line 4, column full_name" in outcome.message
    assert f"line limit ({MAX_LINE_BYTES:,} bytes)" in outcome.message


def test_a_crlf_line_of_exactly_the_limit_is_read(con, landing):
    """The line limit counts a line without its ending: CR LF is an ending, as LF is."""
    rows = [row("users"), row("users", user_id="u2")]
    path = write_file(landing, DELIVERY, "users.csv", rows)
    lines = path.read_bytes().splitlines()
    filler = MAX_LINE_BYTES - len(lines[-1])  # the last line made exactly the limit long
    lines[-1] = lines[-1].replace(b"u2", b"u2" + b"9" * filler, 1)
    assert len(lines[-1]) == MAX_LINE_BYTES
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    outcome = load(con, landing, "users").outcomes[0]
    assert "line limit" not in outcome.message, outcome.message


def test_value_over_the_field_limit_is_quarantined_naming_line_and_column(con, landing):
    long_value = "y" * (MAX_FIELD_CHARACTERS + 1)
    write_file(landing, DELIVERY, "users.csv",
               [row("users"), row("users", user_id="u2", team=long_value)])
    (outcome,) = load(con, landing, "users").outcomes
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 1, 1)
    (problem,) = quarantine(con)
    assert (problem["line"], problem["column_name"]) == (3, "team")
    assert f"field limit ({MAX_FIELD_CHARACTERS:,} characters)" in problem["reason"]


def test_bad_value_is_quoted_in_a_bounded_excerpt(con, landing):
    write_file(landing, DELIVERY, "users.csv",
               [row("users"), row("users", user_id="u2", role="z" * 5000)])
    load(con, landing, "users")
    (problem,) = quarantine(con)
    assert len(problem["reason"]) < 200 and "characters)" in problem["reason"]


def test_hostile_header_names_are_escaped_in_the_rejection(con, landing):
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True)
    path.write_text(f"user_id,{ESC_RED}evil,{OSC_TITLE}\nu1,a,b\n", encoding="utf-8")
    (outcome,) = load(con, landing, "users").outcomes
    assert outcome.status == "rejected"
    assert "\x1b" not in outcome.message and "\x07" not in outcome.message
    assert "\\x1b[31m" in outcome.message


# --- terminal-safe output --------------------------------------------------------------------


def test_terminal_safe_escapes_escape_sequences_c1_controls_and_bidi_overrides():
    from pipelines.safe_text import excerpt, single_line, terminal_safe

    hostile = f"{ESC_RED}red{OSC_TITLE}\x9b31m\u202eevil\u2066\x00"
    safe = terminal_safe(hostile + "\nnext\tline")
    assert not any(ch in safe for ch in "\x1b\x07\x9b\u202e\u2066\x00")
    assert "\\x1b[31m" in safe and "\\u202e" in safe and "\nnext\tline" in safe
    assert "\n" not in single_line("a\nb") and "\t" not in single_line("a\tb")
    assert excerpt("x" * 100, 10) == "x" * 10 + "…(+90 characters)"


def test_a_usage_error_reaches_the_terminal_escaped(capsys):
    """argparse prints a usage error (an unknown argument quoted back) itself: that too goes
    through the escaping stream."""
    from pipelines.cli import main

    with pytest.raises(SystemExit) as ended:
        main(["run", f"{OSC_TITLE}{ESC_RED}x"])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err
    assert "\x1b" not in err and "\x07" not in err and "\\x1b]0;" in err


def test_a_schedule_that_is_no_cron_expression_is_a_settings_error_in_one_escaped_line(
    tmp_path, monkeypatch, capsys
):
    """A bad `schedule_cron` ended in Dagster's traceback quoting it raw (exit 1): it is
    refused as settings are, one line, escaped (exit 2). Dagster's parser judges: its
    shorthands and forms stay good."""
    from pipelines.cli import main
    from pipelines.operations import nightly_schedule
    from pipelines.settings import Settings, SettingsError

    for schedule in ("0 2 * *", "0 2 31 2 *", "H 2 * * *"):
        with pytest.raises(SettingsError, match="schedule_cron"):
            nightly_schedule(Settings(schedule_cron=schedule))
    for schedule in ("*/15 6-18 * * MON-FRI", "@daily", "0 2 * * 1#2"):
        nightly_schedule(Settings(schedule_cron=schedule))
    monkeypatch.setenv("SALES_KPI_SCHEDULE_CRON", f"bad{OSC_TITLE}")
    assert main(["run", "--extracts", str(tmp_path), "--warehouse", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "schedule_cron" in err
    assert "\x1b" not in err and "\x07" not in err and "Traceback" not in err


def test_an_unexpected_error_is_told_through_the_escaping_stream(monkeypatch, capsys):
    """Whatever escapes a command — a library's exception quoting a value — is printed as a
    traceback on the escaping stream (exit 1), not by Python after the stream is gone."""
    from pipelines import cli

    def fail(args):
        raise ValueError(f"a library quoting {OSC_TITLE}{ESC_RED}")

    monkeypatch.setattr(cli, "_explain", fail)
    assert cli.main(["explain", "CON-1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: a library quoting" in err
    assert "\x1b" not in err and "\x07" not in err


def test_explain_output_reaches_the_terminal_escaped(tmp_path, monkeypatch, capsys):
    """Every line `explain` prints (values from CRM data) goes through the one escaping helper;
    so does its error message, which repeats the contact id the operator typed."""
    import pipelines.explain as explain
    from pipelines.cli import main
    from pipelines.publish import published_database

    published_database(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    published_database(tmp_path).write_bytes(b"")
    monkeypatch.setattr(
        explain, "explain_contact",
        lambda _db, contact, _tz: f"Contact {contact} — team: {ESC_RED}North{OSC_TITLE}",
    )
    assert main(["explain", "p1", "--warehouse", str(tmp_path)]) == 0

    def not_found(_db: object, contact: str, _tz: str) -> str:
        raise explain.ContactNotFound(f"contact {contact!r} is not a live contact")

    monkeypatch.setattr(explain, "explain_contact", not_found)
    assert main(["explain", f"p{OSC_TITLE}", "--warehouse", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert "\x1b" not in stream and "\x07" not in stream
    assert "\\x1b[31mNorth" in captured.out


def test_hostile_names_never_reach_the_run_summary_as_escape_sequences(
    tmp_path, landing, capsys
):
    from pipelines.cli import _print_landing_notes
    from pipelines.settings import Settings

    (landing / DELIVERY).mkdir()
    (landing / DELIVERY / f"{ESC_RED}notes{OSC_TITLE}.txt").write_text("x", encoding="utf-8")
    (landing / f".{ESC_RED}hidden").mkdir()
    _print_landing_notes(Settings(extracts_dir=landing, warehouse_dir=tmp_path / "wh"))
    out = capsys.readouterr().out
    assert "notes" in out and "hidden" in out
    assert "\x1b" not in out and "\x07" not in out


# HOSTILE (conftest.py): every kind of character that can steer a terminal.


def _terminal_controls(data: bytes) -> list[str]:
    """Characters of `data` (UTF-8) that a terminal would act on: C0 controls other than
    newline and tab, DEL, C1 controls (0x80-0x9f, e.g. 0x9b) and bidi overrides, each with
    what precedes it (so a failure shows which line let it through)."""
    text = data.decode("utf-8")  # strict: no raw stray byte either
    return [
        text[max(0, i - 120):i + 1] for i, ch in enumerate(text)
        if (ord(ch) < 0x20 and ch not in "\n\t") or 0x7f <= ord(ch) <= 0x9f
        or 0x202a <= ord(ch) <= 0x202e
    ]


def test_dagster_console_log_escapes_data_before_it_is_printed(capfd):
    """The job's `console` logger on its own (no CLI around it): a message with data prints
    escaped."""
    from dagster import build_init_logger_context

    from pipelines.console_log import terminal_safe_console_logger

    console = terminal_safe_console_logger.logger_fn(build_init_logger_context(
        logger_config={"log_level": "INFO", "name": "dagster-test"}))
    console.warning("loaded %s", f"{DELIVERY}{HOSTILE}/users.csv")
    err = capfd.readouterr().err
    assert _terminal_controls(err.encode("utf-8")) == []
    assert "\\x1b[31m\\x1b]0;pwned\\x07\\x0d\\x08\\x7f\\x9b2J\\u202e/users.csv" in err


def test_hostile_names_never_reach_the_terminal_from_any_part_of_a_run(
    hostile_verbose_run: Path,
) -> None:
    """The real job through the CLI, on the shared sample plus a delivery whose reps, teams,
    folder name and a stray file carry escape sequences (conftest.py `hostile_verbose_run`,
    which the console's --verbose test reads too): Dagster's console lines, dbt's lines, the
    checks, the summary and the closing lines all print them escaped — no byte a terminal
    acts on."""
    folder = hostile_verbose_run
    stdout, stderr = (folder / "stdout").read_bytes(), (folder / "stderr").read_bytes()
    # --verbose: everything live, Dagster's and dbt's lines included (the most data shown)
    assert (folder / "code").read_text(encoding="utf-8") == "0", stderr.decode(
        "utf-8", "replace")[-3000:]
    assert _terminal_controls(stdout) == []
    assert _terminal_controls(stderr) == []
    escaped = "\\x1b[31m\\x1b]0;pwned\\x07\\x0d\\x08\\x7f\\x9b2J\\u202e"
    out, err = stdout.decode("utf-8"), stderr.decode("utf-8")
    both = out + err
    assert f"notes{escaped}.txt" in out  # the run summary's landing notes
    escaped_folder = escaped.removeprefix("\\x1b[31m")  # HOSTILE_FOLDER_NAME, escaped
    assert f"2026-11-27T0200{escaped_folder}/users.csv: loaded" in both  # Dagster's event
    assert any(escaped in line for line in both.splitlines()
               if "label_agreement" in line)  # a check naming a rep


def test_a_quote_and_a_space_in_the_warehouse_path_are_only_a_name(
    hostile_verbose_run: Path,
) -> None:
    """The same run wrote into a warehouse folder named HOSTILE_WAREHOUSE (`o'brien's
    warehouse`): every statement that names a file of it (attaching the build and the
    published file, Parquet copies, dbt's profile, GX, the site) took the quote as part of
    the name, and the run published (before, the publication's `attach '…'` failed on it)."""
    folder = hostile_verbose_run
    warehouse = folder / HOSTILE_WAREHOUSE
    assert (folder / "code").read_text(encoding="utf-8") == "0"
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 2  # copied + this
        assert con.execute("select count(*) from kpi_scorecard").fetchone()[0] > 0
    assert list((warehouse / "parquet").glob("kpi_scorecard*"))
    assert (warehouse / "site" / "index.html").is_file()
    assert f"published: {warehouse / 'marts.duckdb'}" in (folder / "stdout").read_bytes(
    ).decode("utf-8")


@pytest.mark.slow  # a run of the job (that fails at the load)
def test_hostile_values_in_a_failure_never_reach_the_terminal(rejected_hostile_run: Path):
    """A run that fails on a file with a hostile header and name (conftest.py
    `rejected_hostile_run`, which the console's exit-code test reads too): the rejection,
    Dagster's failure lines and the closing lines print them escaped."""
    folder = rejected_hostile_run
    stdout, stderr = (folder / "stdout").read_bytes(), (folder / "stderr").read_bytes()
    err = stderr.decode("utf-8")
    assert (folder / "code").read_text(encoding="utf-8") == "1", err[-3000:]
    assert "FAILED" in err and "users.csv" in err and "rejected" in err
    assert _terminal_controls(stdout) == []
    assert _terminal_controls(stderr) == []


# --- secrets ---------------------------------------------------------------------------------

WEBHOOK = "http://127.0.0.1:9/services/T000/B000/SECRET-TOKEN-4711"


def test_secret_settings_are_references_in_config_and_redacted_in_text():
    from pipelines.resources import PipelineSettings
    from pipelines.settings import Settings, redact_secrets

    settings = Settings(alert_webhook_url=WEBHOOK)
    resource = PipelineSettings.from_settings(settings)
    assert "SECRET-TOKEN" not in resource.settings_json
    assert "SECRET-TOKEN" not in repr(settings) and "SECRET-TOKEN" not in str(settings.as_dict())
    assert resource.settings().alert_webhook_url == WEBHOOK  # resolved inside the process
    assert redact_secrets(f"POST {WEBHOOK} failed") == "POST *** failed"


def test_a_secret_reference_offers_no_fast_hash_to_test_guesses_against() -> None:
    """A reference stands in Dagster's run storage and UI: were it a plain hash of the value,
    a human-chosen password (the Thrift server's) would fall to a dictionary of guesses hashed
    at billions a second. It is none of the fast hashes of the value (it is scrypt's), and
    another process that holds the secret in its environment — `dagster dev`'s run worker —
    still recognises the reference and resolves it."""
    import hashlib
    import json
    import subprocess
    import sys

    from pipelines.settings import Settings, secret_reference

    password = "Summer2026!"
    digest = secret_reference(password).removeprefix("secret:")
    assert len(digest) == 16
    fast = [hashlib.new(name, password.encode("utf-8")).hexdigest()
            for name in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b",
                         "blake2s", "sha3_256", "sha3_512")]
    assert not [hexdigest for hexdigest in fast if digest in hexdigest]
    reference = Settings(alert_webhook_url=WEBHOOK).as_dict()["alert_webhook_url"]
    resolved = subprocess.run(
        [sys.executable, "-c",
         "import json, sys\n"
         "from pipelines.settings import Settings\n"
         "settings = Settings.from_text(json.loads(sys.argv[1]))\n"
         "print(settings.alert_webhook_url == sys.argv[2])",
         json.dumps({"alert_webhook_url": reference}), WEBHOOK],
        env={**os.environ, "SALES_KPI_ALERT_WEBHOOK_URL": WEBHOOK},
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert resolved.stdout.strip() == "True", resolved.stderr[-2000:]


def test_webhook_url_is_absent_from_stderr_alerts_log_and_dagster_event_log(
    tmp_path, landing, capfd, caplog
):
    """A failed in-process run with an (unreachable) webhook: the URL is in no log."""
    from dagster import DagsterInstance

    from pipelines.definitions import NIGHTLY_JOB, build_definitions
    from pipelines.operations import alerts_path
    from pipelines.settings import Settings

    (landing / DELIVERY).mkdir()
    (landing / DELIVERY / "users.csv").write_text("user_id,role\nu1,ae\n", encoding="utf-8")
    settings = Settings(extracts_dir=landing, warehouse_dir=tmp_path / "wh",
                        alert_webhook_url=WEBHOOK, step_retries=0)
    job = build_definitions(settings).resolve_job_def(NIGHTLY_JOB)
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            asset_selection=[key for key in job.asset_layer.executable_asset_keys
                             if key.path == ["raw", "users"]],
        )
        assert not result.success
        stored = [record.to_json() if hasattr(record, "to_json") else str(record)
                  for record in instance.all_logs(result.run_id)]
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        snapshot = instance.get_job_snapshot(run.job_snapshot_id) if run.job_snapshot_id else None
        stored += [str(run.run_config), str(snapshot)]
    captured = capfd.readouterr()
    alerts = alerts_path(settings).read_text(encoding="utf-8")
    assert "alert_on_failure" in " ".join(stored) or "ALERT" in " ".join(stored)
    assert any("secret:" in text for text in stored)  # the config was stored: by reference
    for text in (captured.out, captured.err, alerts, caplog.text, *stored):
        assert "SECRET-TOKEN" not in text


# --- mappings are parsed, not screened -------------------------------------------------------


@pytest.mark.parametrize("expression", [
    "read_csv('/etc/passwd')",
    "sql_auto_complete('sel')",
    "getenv('HOME')",
    "lower(name) || (select 1)",
    "list_transform([name], x -> x)",
    "main.lower(name)",
    "name -- hidden\n || read_text('/etc/passwd')",
])
def test_mapping_calling_a_table_function_or_sql_auto_complete_is_refused_at_parse_time(
    tmp_path, monkeypatch, expression
):
    """Refused by load_mapping (the parse), naming the key; no SQL is executed to find out."""
    import duckdb

    from pipelines.adapters import MappingError, load_mapping

    executed: list[str] = []
    real_connect = duckdb.connect

    class Spy:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self._con = real_connect(*args, **kwargs)

        def execute(self, sql: str, *args: object) -> object:
            if "json_serialize_sql" not in sql:
                executed.append(sql)
            return self._con.execute(sql, *args)

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self._con.close()

    monkeypatch.setattr(duckdb, "connect", Spy)
    quoted = expression.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    path = tmp_path / "mapping.yaml"
    path.write_text(with_columns(full_name=f'{{expr: "{quoted}"}}'), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert "entities.users.columns.full_name.expr: " in str(caught.value)
    assert "not allowed" in str(caught.value)
    assert executed == []


def test_mapping_extends_reaches_only_presets_and_files_beside_it(tmp_path):
    from pipelines.adapters import MappingError, load_mapping

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "base.yaml").write_text(PEOPLE, encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    for target in (str(elsewhere / "base.yaml"), "../elsewhere/base.yaml"):
        (mine / "mapping.yaml").write_text(f"extends: {target}\n", encoding="utf-8")
        with pytest.raises(MappingError, match=r"extends: .* is not allowed"):
            load_mapping(mine / "mapping.yaml")
    (mine / "link.yaml").symlink_to(elsewhere / "base.yaml")
    (mine / "mapping.yaml").write_text("extends: link.yaml\n", encoding="utf-8")
    with pytest.raises(MappingError, match="link leading out"):
        load_mapping(mine / "mapping.yaml")
    (mine / "base.yaml").write_text(PEOPLE, encoding="utf-8")
    (mine / "mapping.yaml").write_text("extends: base.yaml\n", encoding="utf-8")
    assert "users" in load_mapping(mine / "mapping.yaml").entities


def test_an_export_file_or_delivery_named_like_a_file_pattern_is_refused(tmp_path):
    """The export folder of `--source` is read by the same readers: `User_[1].csv` would
    read `User_1.csv`, and a delivery `*` every delivery."""
    from pipelines.adapters.errors import SourceFileError
    from pipelines.adapters.mapping import load_mapping
    from pipelines.adapters.sources import scan_source

    mapping = load_mapping("salesforce")
    export = tmp_path / "export"
    (export / "2026-11-26T0200").mkdir(parents=True)
    (export / "2026-11-26T0200" / "User_[1].csv").write_text("Id\n", encoding="utf-8")
    with pytest.raises(SourceFileError, match=r"pattern.*User_\[1\]\.csv"):
        scan_source(export, mapping)
    (export / "2026-11-26T0200" / "User_[1].csv").unlink()
    (export / "*").mkdir()
    with pytest.raises(SourceFileError, match="pattern"):
        scan_source(export, mapping)


def test_an_export_delivery_or_file_named_with_bytes_that_are_not_utf8_is_refused(tmp_path):
    from pipelines.adapters.errors import SourceFileError
    from pipelines.adapters.mapping import load_mapping
    from pipelines.adapters.sources import scan_source

    mapping = load_mapping("salesforce")
    export = tmp_path / "export"
    delivery = export / os.fsdecode(b"2026-11-26T0200" + NOT_UTF8)
    delivery.mkdir(parents=True)
    (delivery / "User.csv").write_text("Id\n", encoding="utf-8")
    with pytest.raises(SourceFileError, match=r"not UTF-8.*2026-11-26T0200\\xff\\xfe"):
        scan_source(export, mapping)
    delivery.rename(export / "2026-11-26T0200")
    (export / "2026-11-26T0200" / "User.csv").rename(
        export / "2026-11-26T0200" / os.fsdecode(b"User_" + NOT_UTF8 + b".csv"))
    with pytest.raises(SourceFileError, match=r"not UTF-8.*User_\\xff\\xfe\.csv"):
        scan_source(export, mapping)


@pytest.mark.slow  # seconds of reading: not a rule of test-fast
def test_a_huge_line_in_a_compressed_csv_is_named_without_holding_it(con, landing):
    """A few megabytes of .gz can hold a line of a gigabyte: the reader that names the
    line of a refused file reads it a bounded piece at a time, so the rejection costs
    memory by the limit, not by the line."""
    import resource

    path = landing / DELIVERY / "fx_rates.csv.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(b"currency,month,rate_to_eur\nUSD,2026-01,1.1\nUSD,2026-02,")
        for _ in range(512):
            handle.write(b"9" * (1 << 20))  # one line of 512 MiB
        handle.write(b"\nUSD,2026-03,1.2\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    (outcome,) = load(con, landing, "fx_rates").outcomes
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert outcome.status == "rejected"
    assert "line 3" in outcome.message
    assert grown_mib < 400, f"the peak grew by {grown_mib:.0f} MiB"


def test_a_piece_of_a_secret_quoted_by_an_error_is_redacted_too():
    """A webhook URL pasted with a space in it: the HTTP library's error quotes only its
    path — the part that is the credential — and a tab in it as `\\t`, so redacting the
    whole value left the token in the run's log. The secret parts of a secret are redacted
    wherever they stand; the host, which names no one's credential, stays for diagnosis."""
    from pipelines.settings import Settings, redact_secrets

    url = "https://hooks.slack.com/services/T0000/B0000/AbCdEfGh\tIjKlMnOpQrStUvWx"
    Settings(alert_webhook_url=url)
    message = ("InvalidURL: URL can't contain control characters. "
               "'/services/T0000/B0000/AbCdEfGh\\tIjKlMnOpQrStUvWx' (found at least '\\t')")
    assert redact_secrets(message) == ("InvalidURL: URL can't contain control characters. "
                                       "'/services/T0000/B0000/***' (found at least '\\t')")
    assert redact_secrets(f"POST to {url} failed") == "POST to *** failed"
    # the host and the path's words name no credential: they stay readable
    assert redact_secrets("hooks.slack.com did not answer; see /srv/services/alerts.log") == (
        "hooks.slack.com did not answer; see /srv/services/alerts.log")


@pytest.mark.slow  # seconds of reading: not a rule of test-fast
def test_a_spreadsheet_padded_to_its_last_column_is_refused_at_its_cell_limit(con, landing):
    """openpyxl hands every row over padded to the row's last cell: one empty, formatted cell
    in column XFD makes 16,384 cells of each row (a small file of a few million such rows
    would read for hours). A sheet is read up to MAX_XLSX_CELLS cells and refused beyond."""
    import openpyxl
    from openpyxl.styles import Font

    from pipelines.contract import MAX_XLSX_CELLS

    rows = MAX_XLSX_CELLS // 16_384 + 2
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    header = list(row("users"))
    sheet.append(header)
    far = openpyxl.cell.WriteOnlyCell(sheet, value=None)
    far.font = Font(bold=True)
    for number in range(rows):
        values = [*row("users", user_id=f"u{number}").values()]
        sheet.append(values + [None] * (16_384 - len(values) - 1) + [far])
    path = landing / DELIVERY / "users.xlsx"
    path.parent.mkdir(parents=True)
    workbook.save(path)
    (outcome,) = load(con, landing, "users").outcomes
    assert outcome.status == "rejected", outcome
    assert f"{MAX_XLSX_CELLS:,} cells" in outcome.message


def test_file_names_and_messages_in_dagsters_metadata_are_text_not_markdown(tmp_path):
    """The raw assets' `files` metadata is Markdown in Dagster's UI: a rejection message
    quotes a file's header, so a header `[sign in](https://evil.example)` became a link
    there, and a run of backticks could close a code block early. The list is one code
    block fenced longer than any backtick run in it: every byte of data is shown as text."""
    from markdown_it import MarkdownIt

    from pipelines.assets.raw import _load_metadata
    from pipelines.ingest.landing import LandingFile
    from pipelines.ingest.loader import EntityLoad, FileOutcome

    hostile = "missing required column user_id (the file has: [sign in](https://evil.example), ```)"
    outcome = FileOutcome(
        file=LandingFile(DELIVERY, "users", tmp_path / "users.csv", "csv"), status="rejected",
        rows_read=0, rows_loaded=0, rows_quarantined=0, message=hostile, seconds=0.1,
    )
    markdown = _load_metadata(EntityLoad("users", [outcome]), 0)["files"].value
    rendered = MarkdownIt("commonmark").render(markdown)
    assert "<a " not in rendered
    assert "[sign in](https://evil.example), ```)" in rendered  # shown, in one code block
    assert rendered.count("<code") == 1


def test_a_labeller_named_at_length_is_quoted_bounded_in_the_run_summary():
    """The closing summary's line for a habitual mislabeller quotes the labeller (a user id:
    data) as the check lines quote data: bounded and escaped (an id of 60,000 characters
    made a line of 60,391)."""
    from pipelines.run_summary import format_flagged_labeller
    from pipelines.safe_text import EXCERPT_CHARACTERS

    line = format_flagged_labeller(f"U1{OSC_TITLE}" + "A" * 60_000, 40, 30, 0.75)
    assert len(line) < EXCERPT_CHARACTERS + 200
    assert line.endswith("30 of 40 CRM labels (75%) disagree with the agreed definitions "
                         "(see label_consistency)")
    assert "\x1b" not in line and "…(+" in line
