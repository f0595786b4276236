"""Bad input: rejected files, quarantined rows, the bad-row threshold and skipping a file."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import (
    DELIVERY,
    LATER_DELIVERY,
    damaged,
    fetch,
    load,
    lock_held_elsewhere,
    manifest,
    quarantine,
    row,
    write_file,
)

from pipelines import cli
from pipelines.ingest.loader import EntityLoad
from pipelines.settings import Settings


def only_outcome(result: EntityLoad):
    (outcome,) = result.outcomes
    return outcome


def assert_rejected(con, result: EntityLoad, entity: str, file_name: str, *words: str) -> str:
    """The file is rejected whole: its message names it and `words`, nothing of it in raw."""
    outcome = only_outcome(result)
    assert outcome.status == "rejected"
    described = outcome.describe()
    assert f"{DELIVERY}/{file_name}" in described
    for word in words:
        assert word in described, described
    (entry,) = manifest(con)
    assert (entry["status"], entry["file_name"], entry["rows_loaded"]) == (
        "rejected", file_name, 0,
    )
    for word in words:
        assert word in entry["message"], entry["message"]
    assert fetch(con, f"select count(*) as n from raw.{entity}") == [{"n": 0}]
    assert quarantine(con) == []
    return described


# --- files rejected whole ------------------------------------------------------------------


def test_missing_required_column_rejects_the_file_whole(con, landing):
    columns = [c for c in row("contacts") if c != "created_at"]
    write_file(landing, DELIVERY, "contacts.csv", [row("contacts")] * 3, columns=columns)
    result = load(con, landing, "contacts")
    assert_rejected(con, result, "contacts", "contacts.csv", "created_at", "missing required")


@pytest.mark.parametrize("extension", ["csv", "parquet"])
def test_a_column_named_twice_rejects_the_file_whole(con, landing, extension):
    """Two columns whose names differ only in case are the same contract column: which one
    holds the role? The file is rejected naming both, in every format (DuckDB's Parquet
    reader renames the second `ROLE_1`, which loaded the first and kept the other as an
    extra column)."""
    path = landing / DELIVERY / f"users.{extension}"
    path.parent.mkdir(parents=True)
    names = ["user_id", "full_name", "role", "ROLE", "updated_at"]
    values = ["u1", "Ann Smit", "ae", "bogus", "2026-11-01T09:00:00Z"]
    if extension == "csv":
        path.write_text(",".join(names) + "\n" + ",".join(values) + "\n", encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table([pa.array([v]) for v in values], names=names), path)
    result = load(con, landing, "users")
    assert_rejected(con, result, "users", f"users.{extension}", "ROLE", "same column")


def test_a_file_that_cannot_be_read_when_its_turn_comes_is_rejected_naming_it(con, landing):
    """A file listed by the scan that is gone (or unreadable) when the loader opens it is a
    rejected file, named with the reason: the run fails as for any rejected file, and the
    entity's other files load. (It used to end the load with a bare FileNotFoundError.) It
    is not recorded in the manifest: there is no content to hash, and a later scan sees the
    folder as it is then."""
    from pipelines.ingest.landing import scan_landing
    from pipelines.ingest.loader import load_entity
    from pipelines.ingest.raw_layer import ensure_raw_layer

    write_file(landing, DELIVERY, "users.csv", [row("users")])
    gone = write_file(landing, LATER_DELIVERY, "users.csv", [row("users", user_id="u2")])
    files, _notes = scan_landing(landing)
    gone.unlink()
    ensure_raw_layer(con)
    settings = Settings(extracts_dir=landing, warehouse_dir=landing.parent / "wh")
    result = load_entity(con, "users", files, settings, run_id="test")
    statuses = {outcome.file.delivery: outcome.status for outcome in result.outcomes}
    assert statuses == {DELIVERY: "loaded", LATER_DELIVERY: "rejected"}
    (rejected,) = result.rejected
    assert f"{LATER_DELIVERY}/users.csv" in rejected.describe()
    assert "cannot be read" in rejected.describe()
    assert [entry["delivery"] for entry in manifest(con)] == [DELIVERY]


@pytest.mark.parametrize(("second_line", "problem"), [
    ('{"user_id": "u2", "full_name": "B", "role": "bogus", "role": "ae", '
     '"updated_at": "2026-11-01T09:00:00Z"}', "line 3: a key appears twice in one object"),
    ('{"user_id": "u2", "full_name": "B", "role": "ae", "": "x", '
     '"updated_at": "2026-11-01T09:00:00Z"}', "line 3: a key with an empty name"),
])
def test_a_json_object_with_a_key_twice_or_without_a_name_rejects_the_file(
    con, landing, second_line, problem
):
    """Which of two values of one key is the role? JSON leaves it open (DuckDB read the
    first, silently); a key without a name names no column (it ended in a SQL parser error).
    Either rejects the file, naming the line."""
    path = landing / DELIVERY / "users.jsonl"
    path.parent.mkdir(parents=True)
    first = ('{"user_id": "u1", "full_name": "A", "role": "ae", '
             '"updated_at": "2026-11-01T09:00:00Z"}')
    path.write_text(first + "\n" + second_line + "\n", encoding="utf-8")
    result = load(con, landing, "users")
    assert_rejected(con, result, "users", "users.jsonl", problem)


def test_a_json_line_that_is_not_json_rejects_the_file_naming_the_line_and_byte(con, landing):
    """DuckDB's own message named the file's absolute path and read as a database error; the
    line is the loader's (a blank line is no row: the bad object is the third, line 4)."""
    path = landing / DELIVERY / "users.jsonl"
    path.parent.mkdir(parents=True)
    good = ('{"user_id": "u1", "full_name": "A", "role": "ae", '
            '"updated_at": "2026-11-01T09:00:00Z"}')
    path.write_text(f"{good}\n\n{good}\n{{user_id: \"u2\"}}\n", encoding="utf-8")
    described = assert_rejected(con, load(con, landing, "users"), "users", "users.jsonl",
                                "line 4: not valid JSON (unexpected character at byte 2")
    assert str(landing) not in described
    # DuckDB numbers objects, not physical lines, and the message takes its number: pinned on
    # either side (no blank line: physical line 3 is line 4; two: physical line 5 is line 4)
    for blanks, physical in ((0, 3), (2, 5)):
        con.execute("delete from raw.load_manifest")
        path.write_text(good + "\n" + "\n" * blanks + good + "\n{user_id: 1}\n",
                        encoding="utf-8")
        (outcome,) = load(con, landing, "users").outcomes
        assert outcome.message.startswith("line 4: not valid JSON"), (physical, outcome.message)


def test_a_blank_first_line_rejects_the_file_saying_so(con, landing):
    """A CSV whose first line is blank has no header where the contract wants it; the
    rejection says so, not that the file is empty (it said 'the file is empty')."""
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\nuser_id,full_name,role,updated_at\nu1,A,ae,2026-11-01T09:00:00Z\n",
                    encoding="utf-8")
    result = load(con, landing, "users")
    assert_rejected(con, result, "users", "users.csv", "line 1: the header row is blank")


def test_missing_primary_key_column_rejects_the_file_whole(con, landing):
    columns = [c for c in row("users") if c != "user_id"]
    write_file(landing, DELIVERY, "users.jsonl", [row("users")], columns=columns)
    result = load(con, landing, "users")
    assert_rejected(con, result, "users", "users.jsonl", "user_id")


@pytest.mark.parametrize(
    ("entity", "column"), [("deals", "closed_at"), ("quotes", "sent_at")]
)
def test_conditionally_required_column_absent_from_the_header_rejects_the_file(
    con, landing, entity, column
):
    # Even though no row of the file needs the value, the file must carry the column.
    values = row(entity, **({"stage": "proposal"} if entity == "deals" else {"status": "draft"}))
    columns = [c for c in values if c != column]
    write_file(landing, DELIVERY, f"{entity}.csv", [values], columns=columns)
    result = load(con, landing, entity)
    assert_rejected(con, result, entity, f"{entity}.csv", column)


@pytest.mark.parametrize("good_rows_before", [0, 2000], ids=["early", "late"])
def test_csv_that_is_not_utf8_is_rejected_as_unreadable(con, landing, good_rows_before):
    # Early: inside the block read for the header; late: only DuckDB's reader meets it.
    header = "company_id,name,created_at,updated_at\n"
    good = "".join(f"c{i},Acme {i},2026-10-01,2026-10-01\n" for i in range(good_rows_before))
    bad = "c9999,Caf\xe9 Noir,2026-10-01,2026-10-01\n"
    path = landing / DELIVERY / "companies.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes((header + good + bad).encode("latin-1"))
    result = load(con, landing, "companies")
    described = assert_rejected(con, result, "companies", "companies.csv")
    assert "utf-8" in described.lower()


def test_corrupt_parquet_is_rejected_as_unreadable(con, landing):
    path = write_file(landing, DELIVERY, "deals.parquet", [row("deals")] * 5)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\x00" * 64 + data[-8:])
    result = load(con, landing, "deals")
    assert_rejected(con, result, "deals", "deals.parquet")


def test_a_parquet_file_damaged_inside_is_rejected_without_its_path(con, landing):
    """DuckDB's error for a damaged page names the file's absolute path; the rejection names
    the file by its label, as every message does."""
    path = write_file(landing, DELIVERY, "deals.parquet",
                      [row("deals", deal_id=f"d{i}") for i in range(50)])
    path.write_bytes(damaged(path.read_bytes(), 100, 60))
    described = assert_rejected(con, load(con, landing, "deals"), "deals", "deals.parquet",
                                "the file")
    assert str(landing) not in described, described


def test_a_damaged_workbook_is_rejected_in_one_line_without_its_path(con, landing):
    """openpyxl's message for a workbook whose parts are damaged runs over several lines and
    names the file's absolute path; the rejection says its first line, the file by its label."""
    path = write_file(landing, DELIVERY, "users.xlsx", [row("users")])
    path.write_bytes(damaged(path.read_bytes(), 200, 60))
    described = assert_rejected(con, load(con, landing, "users"), "users", "users.xlsx",
                                "not a readable xlsx workbook")
    assert str(landing) not in described and "\\x0a" not in described, described


def test_a_workbook_whose_sheet_is_damaged_is_rejected_naming_it(con, landing):
    """openpyxl reads a sheet as it is iterated: damage inside the sheet's XML showed only
    then, and escaped the step (a ParseError) instead of rejecting the file."""
    import zipfile

    path = write_file(landing, DELIVERY, "users.xlsx", [row("users", user_id=f"u{i}")
                                                        for i in range(50)])
    with zipfile.ZipFile(path) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = parts[sheet][: len(parts[sheet]) // 2]  # cut mid-element
    with zipfile.ZipFile(path, "w") as book:
        for name, data in parts.items():
            book.writestr(name, data)
    described = assert_rejected(con, load(con, landing, "users"), "users", "users.xlsx",
                                "not a readable xlsx workbook")
    assert str(landing) not in described


def test_truncated_gzip_csv_is_rejected_as_unreadable(con, landing):
    path = write_file(landing, DELIVERY, "deals.csv.gz", [row("deals", deal_id=f"d{i}")
                                                          for i in range(200)])
    path.write_bytes(path.read_bytes()[:-40])
    result = load(con, landing, "deals")
    assert_rejected(con, result, "deals", "deals.csv.gz")


@pytest.mark.parametrize("where", ["header", "body"])
def test_corrupt_gzip_csv_is_rejected_as_unreadable(con, landing, where):
    """Damaged compressed data (zlib's "invalid code lengths set", not a short file) in the
    header's block or further on: the file is rejected naming it, as a truncated one is — it
    was a crash of the load step, retried twice, that named no file."""
    path = write_file(landing, DELIVERY, "deals.csv.gz", [row("deals", deal_id=f"d{i}")
                                                          for i in range(2000)])
    data = path.read_bytes()
    path.write_bytes(damaged(data, 12 if where == "header" else len(data) // 2, 28))
    assert_rejected(con, load(con, landing, "deals"), "deals", "deals.csv.gz")


def test_a_quote_never_closed_rejects_the_file_naming_its_line_and_quoting_no_data(
    con, landing
):
    """DuckDB's message for it quotes the row, and the row runs to the end of the file: two
    more lines of the file travelled into the rejection. It names the line the quote opens
    (here the row comes out short: 2 values, the second the rest of the file); a row whose
    fields add up is named by the strict reader."""
    rows = [row("users", user_id=f"u{i}", full_name=f"Person {i}") for i in range(1, 6)]
    path = write_file(landing, DELIVERY, "users.csv", rows)
    path.write_bytes(path.read_bytes().replace(b"u2,Person 2", b'u2,"Person 2'))
    described = assert_rejected(con, load(con, landing, "users"), "users", "users.csv",
                                "line 3: 2 fields where the header has 7, in a row that runs "
                                "to line 6 (is a quote left open on line 3?)")
    assert "Person" not in described and "u3" not in described, described

    other = landing.parent / "other"
    lines = write_file(other, DELIVERY, "users.csv", rows).read_bytes().splitlines(keepends=True)
    last = lines[-1].rstrip(b"\n").split(b",")
    last[-1] = b'"' + last[-1]  # a quote opened in the last row's last field: 7 fields still
    (other / DELIVERY / "users.csv").write_bytes(b"".join(lines[:-1]) + b",".join(last) + b"\n")
    con.execute("delete from raw.load_manifest")
    (outcome,) = load(con, other, "users").outcomes
    assert outcome.message == "line 6: a quote opened in this row is never closed", outcome.message


def test_a_value_quoted_then_followed_by_a_space_is_no_reason_to_reject(con, landing):
    """DuckDB's strict reader takes `"Ann" ` (a space after the closing quote); Python's strict
    one refuses it. The explanation of a refused file goes on to the row DuckDB refused."""
    rows = [row("users", user_id=f"u{i}") for i in range(1, 5)]
    path = write_file(landing, DELIVERY, "users.csv", rows)
    text = path.read_bytes().replace(b"u1,", b'"u1" ,', 1)
    lines = text.splitlines(keepends=True)
    lines[3] = lines[3].rstrip(b"\n") + b",surplus\n"  # line 4
    path.write_bytes(b"".join(lines))
    assert_rejected(con, load(con, landing, "users"), "users", "users.csv",
                    "line 4: 8 fields where the header has 7")


def test_csv_row_with_too_many_fields_is_rejected_naming_the_line(con, landing):
    path = write_file(landing, DELIVERY, "users.csv", [row("users", user_id=f"u{i}")
                                                       for i in range(1, 5)])
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].rstrip("\n") + ",surplus\n"  # line 4
    path.write_text("".join(lines), encoding="utf-8")
    result = load(con, landing, "users")
    assert_rejected(con, result, "users", "users.csv", "line 4", "8 fields")


def test_empty_file_is_rejected(con, landing):
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    result = load(con, landing, "users")
    assert_rejected(con, result, "users", "users.csv", "header")


# --- rows quarantined ----------------------------------------------------------------------


def assert_quarantined(
    con, landing: Path, entity: str, bad: dict[str, str], column: str, reason: str
) -> None:
    """A file of a good row, a bad row and a good row: the bad one (line 3) is quarantined
    with delivery, file, line, column and reason; the good ones load."""
    good = row(entity)  # raw keeps every row: repeating a key is fine here
    write_file(landing, DELIVERY, f"{entity}.csv", [good, {**good, **bad}, good])
    result = load(con, landing, entity)
    outcome = only_outcome(result)
    assert outcome.status == "loaded", outcome.describe()
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (3, 2, 1)
    (entry,) = manifest(con)
    assert (entry["status"], entry["rows_loaded"], entry["rows_quarantined"]) == (
        "loaded", 2, 1,
    )
    (problem,) = quarantine(con)
    assert (problem["entity"], problem["delivery"], problem["file_name"], problem["line"],
            problem["column_name"]) == (entity, DELIVERY, f"{entity}.csv", 3, column)
    assert reason in problem["reason"], problem["reason"]
    assert problem["load_id"] == entry["load_id"]
    assert problem["record"]  # the row as it was read, for the person who fixes it
    assert fetch(con, f"select _line from raw.{entity} order by _line") == [
        {"_line": 2}, {"_line": 4},
    ]


def test_unparsable_timestamp_is_quarantined(con, landing):
    assert_quarantined(con, landing, "users", {"updated_at": "yesterday"}, "updated_at",
                       "unparsable timestamp 'yesterday'")


def test_impossible_date_is_quarantined(con, landing):
    assert_quarantined(con, landing, "users", {"updated_at": "2026-02-30"}, "updated_at",
                       "unparsable timestamp")


def test_timestamp_with_a_zone_name_instead_of_an_offset_is_quarantined(con, landing):
    # Not ISO 8601; must not be silently read as local time with the zone dropped.
    assert_quarantined(con, landing, "users", {"updated_at": "2026-01-15 10:00:00 UTC"},
                       "updated_at", "unparsable timestamp")


def test_unknown_enum_value_is_quarantined(con, landing):
    assert_quarantined(con, landing, "deals", {"stage": "won"}, "stage",
                       "unknown value 'won' (expected one of: qualification")


def test_unparsable_boolean_is_quarantined(con, landing):
    assert_quarantined(con, landing, "deals", {"is_deleted": "maybe"}, "is_deleted",
                       "not a boolean: 'maybe'")


def test_unparsable_number_is_quarantined(con, landing):
    assert_quarantined(con, landing, "deals", {"amount": "1.000,50"}, "amount",
                       "not a number: '1.000,50'")


def test_unparsable_integer_is_quarantined(con, landing):
    assert_quarantined(con, landing, "companies", {"employee_count": "12.5"}, "employee_count",
                       "not an integer: '12.5'")


def test_negative_amount_is_quarantined(con, landing):
    assert_quarantined(con, landing, "quotes", {"amount": "-5"}, "amount",
                       "out of bounds: '-5' (must be ≥ 0)")


def test_tiny_negative_amount_is_quarantined_before_rounding_to_cents(con, landing):
    assert_quarantined(con, landing, "deals", {"amount": "-0.001"}, "amount",
                       "out of bounds: '-0.001'")


def test_number_with_separators_is_quarantined(con, landing):
    assert_quarantined(con, landing, "deals", {"amount": "1_000"}, "amount",
                       "not a number: '1_000'")


def test_zero_amount_loads(con, landing):
    write_file(landing, DELIVERY, "deals.csv", [row("deals", amount="0")])
    assert only_outcome(load(con, landing, "deals")).rows_loaded == 1


def test_rate_to_eur_of_zero_is_quarantined(con, landing):
    assert_quarantined(con, landing, "fx_rates", {"rate_to_eur": "0"}, "rate_to_eur",
                       "out of bounds: '0' (must be > 0)")


def test_rate_to_eur_beyond_a_double_is_quarantined(con, landing):
    """DuckDB's cast reads a plainly written `1e400` as infinity: no rate (it passed `> 0`)."""
    assert_quarantined(con, landing, "fx_rates", {"rate_to_eur": "1e400"}, "rate_to_eur",
                       "out of range: '1e400' (beyond what a double holds)")


def test_an_amount_beyond_decimal_18_2_is_quarantined_as_out_of_range(con, landing):
    """A number, written plainly, that no amount column holds: said so, not "not a number"."""
    assert_quarantined(con, landing, "deals", {"amount": "99999999999999999999"}, "amount",
                       "out of range: '99999999999999999999' (beyond what a decimal(18, 2) "
                       "holds)")


def test_a_reason_quotes_the_value_escaped(con, landing):
    """The reason is a message: the value it quotes is escaped as every message escapes data
    (the row as it was read stays in `record`, as JSON)."""
    assert_quarantined(con, landing, "users", {"updated_at": "\x1b[31m2025\u202e"},
                       "updated_at", "unparsable timestamp '\\x1b[31m2025\\u202e'")
    (problem,) = quarantine(con)
    assert "\x1b" not in problem["reason"] and "\u202e" not in problem["reason"]


@pytest.mark.parametrize("value", ["99999999999999999999", "1e400"])
def test_an_integer_beyond_bigint_is_quarantined_as_out_of_range(con, landing, value):
    """A whole number written plainly that no integer column holds: "out of range", as for
    decimals; `12.5` stays "not an integer" (test_unparsable_integer_is_quarantined)."""
    assert_quarantined(con, landing, "companies", {"employee_count": value}, "employee_count",
                       f"out of range: '{value}' (beyond what a bigint holds)")


def test_malformed_month_is_quarantined(con, landing):
    assert_quarantined(con, landing, "fx_rates", {"month": "2026-13"}, "month",
                       "malformed month '2026-13' (expected YYYY-MM)")


def test_empty_primary_key_is_quarantined(con, landing):
    assert_quarantined(con, landing, "deals", {"deal_id": "  "}, "deal_id",
                       "required value is empty")


def test_empty_required_value_is_quarantined(con, landing):
    assert_quarantined(con, landing, "deals", {"owner_user_id": ""}, "owner_user_id",
                       "required value is empty")


def test_closed_won_deal_without_closed_at_is_quarantined(con, landing):
    assert_quarantined(con, landing, "deals", {"stage": "closed_won", "closed_at": ""},
                       "closed_at", "required when stage is closed_won/closed_lost")


def test_sent_quote_without_sent_at_is_quarantined(con, landing):
    assert_quarantined(con, landing, "quotes", {"status": "sent", "sent_at": ""},
                       "sent_at", "required when status is not draft")


def test_draft_quote_without_sent_at_loads(con, landing):
    write_file(landing, DELIVERY, "quotes.csv", [row("quotes", status="draft", sent_at="")])
    outcome = only_outcome(load(con, landing, "quotes"))
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 0)
    assert fetch(con, "select status, sent_at from raw.quotes") == [
        {"status": "draft", "sent_at": None}
    ]


def test_row_with_several_bad_values_is_one_bad_row_with_one_reason_per_column(con, landing):
    rows = [row("deals", deal_id="d1"), row("deals", deal_id="d2", stage="x", amount="-1")]
    write_file(landing, DELIVERY, "deals.csv", rows)
    outcome = only_outcome(load(con, landing, "deals"))
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 1)
    assert [(q["line"], q["column_name"]) for q in quarantine(con)] == [
        (3, "amount"), (3, "stage"),
    ]


# --- the bad-row threshold -----------------------------------------------------------------


def load_with_bad_rows(con, landing: Path, total: int, bad: int) -> EntityLoad:
    rows = [
        row("activities", activity_id=f"a{i}", activity_type="fax" if i < bad else "call")
        for i in range(total)
    ]
    write_file(landing, DELIVERY, "activities.csv", rows)
    return load(con, landing, "activities")


def test_file_with_10_bad_rows_of_100_is_rejected_whole(con, landing):
    result = load_with_bad_rows(con, landing, 100, 10)
    assert_rejected(con, result, "activities", "activities.csv", "10 of 100 rows")


def test_file_with_9_bad_rows_of_20_loads_because_fewer_than_10_are_bad(con, landing):
    outcome = only_outcome(load_with_bad_rows(con, landing, 20, 9))
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 11, 9)
    assert len(quarantine(con)) == 9


def test_file_with_10_bad_rows_of_200_loads_because_at_most_5_percent_are_bad(con, landing):
    outcome = only_outcome(load_with_bad_rows(con, landing, 200, 10))
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 190, 10)


def test_file_with_11_bad_rows_of_200_is_rejected_whole(con, landing):
    result = load_with_bad_rows(con, landing, 200, 11)
    assert_rejected(con, result, "activities", "activities.csv", "11 of 200 rows")


def test_bad_row_threshold_settings_are_honoured(con, landing):
    write_file(landing, DELIVERY, "activities.csv", [
        row("activities", activity_id=f"a{i}", activity_type="fax" if i < 2 else "call")
        for i in range(10)
    ])
    strict = Settings(extracts_dir=landing, warehouse_dir=landing.parent / "wh",
                      max_bad_row_share=0.1, min_bad_rows_to_reject=2)
    assert only_outcome(load(con, landing, "activities", strict)).status == "rejected"


# --- a rejected file keeps failing until replaced, removed or skipped ----------------------


def test_rejected_file_keeps_failing_in_later_runs_until_replaced(con, landing):
    columns = [c for c in row("deals") if c != "stage"]
    path = write_file(landing, DELIVERY, "deals.csv", [row("deals")], columns=columns)
    assert only_outcome(load(con, landing, "deals")).status == "rejected"

    again = only_outcome(load(con, landing, "deals"))
    assert again.status == "rejected"
    assert f"{DELIVERY}/deals.csv" in again.describe()
    assert "stage" in again.message and "earlier run" in again.message
    assert len(manifest(con)) == 1

    path.unlink()
    write_file(landing, DELIVERY, "deals.csv", [row("deals")])  # same name, new content
    replaced = only_outcome(load(con, landing, "deals"))
    assert (replaced.status, replaced.rows_loaded) == ("loaded", 1)
    assert [m["status"] for m in manifest(con)] == ["rejected", "loaded"]


def test_rejected_file_stops_failing_when_removed(con, landing):
    columns = [c for c in row("deals") if c != "stage"]
    path = write_file(landing, DELIVERY, "deals.csv", [row("deals")], columns=columns)
    write_file(landing, LATER_DELIVERY, "deals.csv", [row("deals", deal_id="d2")])
    first = load(con, landing, "deals")
    assert [o.status for o in first.outcomes] == ["rejected", "loaded"]
    path.unlink()
    later = load(con, landing, "deals")
    assert later.rejected == []
    assert [o.status for o in later.outcomes] == ["unchanged"]


def test_rejected_file_skipped_with_the_cli_is_recorded_with_who_and_when(tmp_path, landing):
    warehouse = tmp_path / "warehouse"
    settings = Settings(extracts_dir=landing, warehouse_dir=warehouse)
    warehouse.mkdir()
    columns = [c for c in row("deals") if c != "stage"]
    write_file(landing, DELIVERY, "deals.csv", [row("deals")], columns=columns)

    def run() -> EntityLoad:
        with duckdb.connect(str(settings.raw_database)) as connection:
            connection.execute("set TimeZone = 'UTC'")
            return load(connection, landing, "deals", settings)

    assert only_outcome(run()).status == "rejected"
    assert only_outcome(run()).status == "rejected"

    before = datetime.now(UTC)
    code = cli.main([
        "skip-file", f"{DELIVERY}/deals.csv", "--by", "Ann Smit", "--reason", "re-sent later",
        "--warehouse", str(warehouse),
    ])
    assert code == 0

    skipped = only_outcome(run())
    assert skipped.status == "skipped"
    assert "skipped by Ann Smit" in skipped.message
    assert only_outcome(run()).status == "unchanged"  # and it stays out of the way

    with duckdb.connect(str(settings.raw_database)) as connection:
        connection.execute("set TimeZone = 'UTC'")
        (entry,) = fetch(connection, "select * from raw.skipped_files")
        statuses = [m["status"] for m in manifest(connection)]
        rows = fetch(connection, "select count(*) as n from raw.deals")
    assert (entry["delivery"], entry["file_name"], entry["skipped_by"], entry["reason"]) == (
        DELIVERY, "deals.csv", "Ann Smit", "re-sent later",
    )
    assert before - timedelta(seconds=1) <= entry["skipped_at"] <= datetime.now(UTC)
    assert statuses == ["rejected", "skipped"]
    assert rows == [{"n": 0}]


def test_skip_file_refuses_a_file_that_was_never_rejected(tmp_path, landing, capsys):
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    write_file(landing, DELIVERY, "deals.csv", [row("deals")])
    settings = Settings(extracts_dir=landing, warehouse_dir=warehouse)
    with duckdb.connect(str(settings.raw_database)) as connection:
        load(connection, landing, "deals", settings)
    code = cli.main(["skip-file", f"{DELIVERY}/deals.csv", "--by", "x", "--warehouse",
                     str(warehouse)])
    assert code == 2
    assert "never rejected" in capsys.readouterr().err


def test_skip_file_waits_for_no_run_it_is_refused_while_a_run_holds_the_warehouse(
    tmp_path, landing, capsys
):
    """`skip-file` writes the run's warehouse file: while a run holds the warehouse it is
    refused at once (exit 3, naming the holder), as a second run is, and records nothing."""
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    settings = Settings(extracts_dir=landing, warehouse_dir=warehouse)
    columns = [c for c in row("deals") if c != "stage"]
    write_file(landing, DELIVERY, "deals.csv", [row("deals")], columns=columns)
    with duckdb.connect(str(settings.raw_database)) as connection:
        assert only_outcome(load(connection, landing, "deals", settings)).status == "rejected"
    with lock_held_elsewhere(warehouse) as holder:
        code = cli.main(["skip-file", f"{DELIVERY}/deals.csv", "--by", "ops",
                         "--warehouse", str(warehouse)])
    assert code == cli.EXIT_BUSY
    assert f"another run (pid {holder.pid}" in capsys.readouterr().err
    with duckdb.connect(str(settings.raw_database)) as connection:
        assert fetch(connection, "select count(*) as n from raw.skipped_files") == [{"n": 0}]


def test_skipped_file_replaced_with_new_content_is_loaded(tmp_path, landing):
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    settings = Settings(extracts_dir=landing, warehouse_dir=warehouse)
    columns = [c for c in row("deals") if c != "stage"]
    path = write_file(landing, DELIVERY, "deals.csv", [row("deals")], columns=columns)
    with duckdb.connect(str(settings.raw_database)) as connection:
        load(connection, landing, "deals", settings)
    assert cli.main(["skip-file", f"{DELIVERY}/deals.csv", "--by", "ops",
                     "--warehouse", str(warehouse)]) == 0
    path.unlink()
    write_file(landing, DELIVERY, "deals.csv", [row("deals")])
    with duckdb.connect(str(settings.raw_database)) as connection:
        outcome = only_outcome(load(connection, landing, "deals", settings))
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 1)


def test_trailing_delimiter_in_the_header_keeps_the_unnamed_column_as_extra(con, landing):
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "user_id;full_name;role;updated_at;\n"
        "u1;Ann Smit;ae;2026-11-01T09:00:00Z;\n"
        "u2;Bob Bos;sdr;2026-11-01T09:00:00Z;note\n"
    )
    result = load(con, landing, "users")
    assert only_outcome(result).status == "loaded"
    assert fetch(con, "select user_id, _extra_columns from raw.users order by user_id") == [
        {"user_id": "u1", "_extra_columns": '{"_unnamed_5":null}'},
        {"user_id": "u2", "_extra_columns": '{"_unnamed_5":"note"}'},
    ]


def test_a_header_with_an_empty_name_in_the_middle_is_rejected_naming_the_column(con, landing):
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("user_id,,role,updated_at,full_name\nu1,x,ae,2026-11-01,Ann\n")
    result = load(con, landing, "users")
    outcome = only_outcome(result)
    assert outcome.status == "rejected"
    assert "column 2 of the header has no name" in outcome.message


def test_a_csv_that_is_not_utf8_names_the_first_bad_line(con, landing):
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    good = "u{0},Ann,ae,2026-11-01T09:00:00Z\n"
    body = "user_id,full_name,role,updated_at\n" + "".join(good.format(i) for i in range(3))
    path.write_bytes(body.encode() + "u9,Caf\xe9,ae,2026-11-01\n".encode("latin-1"))
    outcome = only_outcome(load(con, landing, "users"))
    assert outcome.status == "rejected"
    assert "line 5: not UTF-8" in outcome.message


def test_a_carriage_return_ends_the_header_row_as_a_line_feed_does(con, landing):
    """A line ends at CR, LF or CR LF, the header's too: a bare carriage return inside the
    header ends it there (the file then lacks the columns after it), not a crash of the step
    that a retry would repeat."""
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"user_id,full\rname\nu1,Ann\n")
    (outcome,) = load(con, landing, "users").outcomes
    assert outcome.status == "rejected"
    assert outcome.message.startswith("missing required columns full_name"), outcome.message
    assert "(the file has: user_id, full)" in outcome.message


@pytest.mark.parametrize("extension", ["csv", "csv.gz"])
def test_a_csv_of_carriage_return_ended_lines_loads_with_its_line_numbers(
    con, landing, extension
):
    """Lines ended by a carriage return alone (old Mac exports) are lines: the file loads, and a
    bad value is quarantined naming its line."""
    rows = [row("users", user_id=f"u{i}") for i in range(1, 4)]
    rows[1]["updated_at"] = "yesterday"  # line 3
    path = write_file(landing, DELIVERY, f"users.{extension}", rows)
    text = (gzip.decompress(path.read_bytes()) if extension == "csv.gz" else path.read_bytes())
    text = text.replace(b"\n", b"\r")
    path.write_bytes(gzip.compress(text) if extension == "csv.gz" else text)
    outcome = only_outcome(load(con, landing, "users"))
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 2, 1)
    (problem,) = quarantine(con)
    assert (problem["line"], problem["column_name"]) == (3, "updated_at")


def test_a_carriage_return_inside_a_value_that_is_not_quoted_rejects_the_file_naming_the_line(
    con, landing
):
    """A carriage return ends a line as a line feed does, so one inside a value that is not
    quoted cuts its row in two: the file is rejected naming the physical line where the row
    ends short (it was Python's "new-line character seen in unquoted field - do you need to
    open the file in universal-newline mode?", with no line). Quoted, the same value loads."""
    rows = [row("users", user_id=f"u{i}") for i in range(1, 5)]
    rows[2]["full_name"] = "Ann\rSmit"  # line 4; the tests' writer quotes only for a line feed
    write_file(landing, DELIVERY, "users.csv", rows)
    described = assert_rejected(con, load(con, landing, "users"), "users", "users.csv",
                                "line 4: 2 fields where the header has 7")
    assert "universal-newline" not in described

    quoted = landing.parent / "quoted"
    path = write_file(quoted, DELIVERY, "users.csv", rows)
    path.write_bytes(path.read_bytes().replace(b"Ann\rSmit", b'"Ann\rSmit"'))
    con.execute("delete from raw.load_manifest")
    outcome = only_outcome(load(con, quoted, "users"))
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 4), outcome.describe()
