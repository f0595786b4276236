"""The contract's parsing rules: formats, column matching, value rules, timestamps, lines."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import DELIVERY, fetch, load, manifest, quarantine, row, write_file

from pipelines.ingest.landing import LandingFile
from pipelines.ingest.readers import TEXT_TABLE, read_as_text
from pipelines.settings import Settings


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def deal_values(con: duckdb.DuckDBPyConnection, column: str) -> dict[str, object]:
    return {
        r["deal_id"]: r[column]
        for r in fetch(con, f"select deal_id, {column} from raw.deals order by _line")
    }


def load_deal_timestamps(
    con: duckdb.DuckDBPyConnection, landing: Path, values: dict[str, str],
    settings: Settings | None = None,
) -> dict[str, object]:
    """One deal per value of `created_at`; returns deal_id → loaded created_at."""
    rows = [row("deals", deal_id=key, created_at=text) for key, text in values.items()]
    write_file(landing, DELIVERY, "deals.csv", rows)
    result = load(con, landing, "deals", settings)
    assert result.rows_quarantined == 0, quarantine(con)
    return deal_values(con, "created_at")


# --- formats -------------------------------------------------------------------------------


def test_comma_csv_loads(con, landing):
    write_file(landing, DELIVERY, "deals.csv", [row("deals"), row("deals", deal_id="d2")])
    result = load(con, landing, "deals")
    assert [o.status for o in result.outcomes] == ["loaded"]
    assert fetch(con, "select deal_id, stage, amount from raw.deals order by _line") == [
        {"deal_id": "d1", "stage": "proposal", "amount": Decimal("1000.00")},
        {"deal_id": "d2", "stage": "proposal", "amount": Decimal("1000.00")},
    ]
    (entry,) = manifest(con)
    assert entry["status"] == "loaded"
    assert (entry["rows_read"], entry["rows_loaded"], entry["rows_quarantined"]) == (2, 2, 0)
    assert entry["file_format"] == "csv"


def test_semicolon_csv_with_bom_loads(con, landing):
    # Commas inside values must not fool the delimiter detection.
    rows = [row("companies", name="Acme, Inc."), row("companies", company_id="c2")]
    path = write_file(landing, DELIVERY, "companies.csv", rows, delimiter=";", bom=True)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfcompany_id;")
    result = load(con, landing, "companies")
    assert result.rows_loaded == 2
    assert fetch(con, "select company_id, name from raw.companies order by _line") == [
        {"company_id": "c1", "name": "Acme, Inc."},
        {"company_id": "c2", "name": "Acme BV"},
    ]


def test_gzipped_csv_loads(con, landing):
    path = write_file(landing, DELIVERY, "contacts.csv.gz", [row("contacts")])
    assert gzip.decompress(path.read_bytes()).startswith(b"contact_id,")
    result = load(con, landing, "contacts")
    assert result.rows_loaded == 1
    assert manifest(con)[0]["file_format"] == "csv.gz"
    assert fetch(con, "select contact_id, _file, _line from raw.contacts") == [
        {"contact_id": "p1", "_file": "contacts.csv.gz", "_line": 2}
    ]


def test_parquet_timestamptz_is_exact_naive_timestamp_is_local_and_date_is_local_midnight(
    con, landing
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "deal_id": pa.array(["d1", "d2"]),
            "owner_user_id": pa.array(["u1", "u1"]),
            "deal_type": pa.array(["new_business", "renewal"]),
            "stage": pa.array(["closed_won", "proposal"]),
            "amount": pa.array([1234.5, 0.0], pa.float64()),
            "is_deleted": pa.array([False, True], pa.bool_()),
            # TIMESTAMPTZ: exact, whatever zone the writer used.
            "created_at": pa.array(
                [datetime(2026, 1, 15, 10, 0, tzinfo=timezone(timedelta(hours=-5))),
                 datetime(2026, 7, 15, 10, 0, tzinfo=UTC)],
                pa.timestamp("us", tz="America/New_York"),
            ),
            # Naive TIMESTAMP: local wall time (winter +01:00, summer +02:00).
            "updated_at": pa.array(
                [datetime(2026, 1, 15, 10, 0), datetime(2026, 7, 15, 10, 0)],
                pa.timestamp("us"),
            ),
            # DATE: local midnight.
            "closed_at": pa.array([date(2026, 1, 20), None], pa.date32()),
        }
    )
    path = landing / DELIVERY / "deals.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)

    result = load(con, landing, "deals")
    assert result.rows_quarantined == 0, quarantine(con)
    assert fetch(
        con,
        "select deal_id, amount, is_deleted, created_at, updated_at, closed_at, _line "
        "from raw.deals order by _line",
    ) == [
        {
            "deal_id": "d1", "amount": Decimal("1234.50"), "is_deleted": False,
            "created_at": utc(2026, 1, 15, 15, 0), "updated_at": utc(2026, 1, 15, 9, 0),
            "closed_at": utc(2026, 1, 19, 23, 0), "_line": 2,
        },
        {
            "deal_id": "d2", "amount": Decimal("0.00"), "is_deleted": True,
            "created_at": utc(2026, 7, 15, 10, 0), "updated_at": utc(2026, 7, 15, 8, 0),
            "closed_at": None, "_line": 3,
        },
    ]


def test_jsonl_loads_with_keys_in_any_order_and_typed_json_values(con, landing):
    path = landing / DELIVERY / "activities.jsonl"
    path.parent.mkdir(parents=True)
    first = row("activities")
    second = {  # keys in another order; JSON numbers, booleans and null
        "updated_at": "2026-10-04T09:10:00Z", "is_deleted": True, "duration_seconds": 30,
        "outcome": None, "activity_id": "a2", "activity_type": "email",
        "owner_user_id": "u1", "occurred_at": "2026-10-04T09:00:00Z",
    }
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    result = load(con, landing, "activities")
    assert result.rows_quarantined == 0, quarantine(con)
    assert fetch(
        con,
        "select activity_id, duration_seconds, outcome, is_deleted, _line "
        "from raw.activities order by _line",
    ) == [
        {"activity_id": "a1", "duration_seconds": 420, "outcome": "connected",
         "is_deleted": False, "_line": 2},
        {"activity_id": "a2", "duration_seconds": 30, "outcome": None,
         "is_deleted": True, "_line": 3},
    ]


def test_xlsx_first_sheet_loads_with_sheet_row_numbers(con, landing):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    header = ["deal_id", "owner_user_id", "deal_type", "stage", "amount", "created_at",
              "closed_at", "updated_at"]
    sheet.append(header)
    sheet.append(["d1", "u1", "new_business", "proposal", 250.5,
                  datetime(2026, 1, 15, 10, 0), None, "2026-01-16T10:00:00Z"])
    sheet.append([None] * len(header))  # an empty row keeps its number
    sheet.append(["d2", "u1", "upsell", "closed_won", 100,
                  datetime(2026, 7, 15, 10, 0), datetime(2026, 7, 20), "2026-07-20"])
    other = workbook.create_sheet("notes")
    other.append(["this", "sheet", "is", "ignored"])
    path = landing / DELIVERY / "deals.xlsx"
    path.parent.mkdir(parents=True)
    workbook.save(path)

    result = load(con, landing, "deals")
    assert result.rows_quarantined == 0, quarantine(con)
    assert fetch(
        con,
        "select deal_id, amount, created_at, closed_at, updated_at, _line "
        "from raw.deals order by _line",
    ) == [
        {"deal_id": "d1", "amount": Decimal("250.50"), "created_at": utc(2026, 1, 15, 9, 0),
         "closed_at": None, "updated_at": utc(2026, 1, 16, 10, 0), "_line": 2},
        {"deal_id": "d2", "amount": Decimal("100.00"), "created_at": utc(2026, 7, 15, 8, 0),
         "closed_at": utc(2026, 7, 19, 22, 0), "updated_at": utc(2026, 7, 19, 22, 0),
         "_line": 4},
    ]
    assert manifest(con)[0]["file_format"] == "xlsx"


# --- columns -------------------------------------------------------------------------------


def test_column_names_are_case_insensitive_and_in_any_order(con, landing):
    values = row("users")
    columns = ["UPDATED_AT", "Role", " Full_Name ", "user_ID", "Is_Active"]
    path = landing / DELIVERY / "users.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        ",".join(columns) + "\n"
        + ",".join(values[c.strip().lower()] for c in columns) + "\n",
        encoding="utf-8",
    )
    result = load(con, landing, "users")
    assert result.rows_loaded == 1, result.outcomes
    assert fetch(con, "select user_id, full_name, role, updated_at from raw.users") == [
        {"user_id": "u1", "full_name": "Ann Smit", "role": "ae",
         "updated_at": utc(2026, 11, 1, 9, 0)}
    ]


def test_unknown_extra_columns_are_kept_in_raw_and_ignored(con, landing):
    rows = [row("companies", Segment="SMB", crm_score=" 7 ")]
    write_file(landing, DELIVERY, "companies.csv", rows)
    result = load(con, landing, "companies")
    assert result.rows_loaded == 1
    (loaded,) = fetch(con, "select company_id, name, _extra_columns from raw.companies")
    assert loaded["company_id"] == "c1"
    assert json.loads(loaded["_extra_columns"]) == {"Segment": "SMB", "crm_score": " 7 "}


def test_file_without_extra_columns_has_no_extra_columns_json(con, landing):
    write_file(landing, DELIVERY, "companies.csv", [row("companies")])
    load(con, landing, "companies")
    assert fetch(con, "select _extra_columns from raw.companies") == [{"_extra_columns": None}]


def test_optional_columns_may_be_absent_from_the_file(con, landing):
    required_only = ["contact_id", "created_at", "updated_at"]
    write_file(landing, DELIVERY, "contacts.csv", [row("contacts")], columns=required_only)
    result = load(con, landing, "contacts")
    assert result.rows_loaded == 1
    assert fetch(con, "select contact_id, email, is_deleted from raw.contacts") == [
        {"contact_id": "p1", "email": None, "is_deleted": False}
    ]


# --- values --------------------------------------------------------------------------------


def test_values_are_trimmed_and_empty_means_missing(con, landing):
    rows = [row("contacts", contact_id="  p1 ", email="   ", first_name=" Piet  ",
                created_at=" 2026-10-02T09:00:00Z ", job_title="")]
    write_file(landing, DELIVERY, "contacts.csv", rows)
    result = load(con, landing, "contacts")
    assert result.rows_quarantined == 0, quarantine(con)
    assert fetch(
        con, "select contact_id, email, first_name, job_title, created_at from raw.contacts"
    ) == [
        {"contact_id": "p1", "email": None, "first_name": "Piet", "job_title": None,
         "created_at": utc(2026, 10, 2, 9, 0)}
    ]


def test_currency_is_upper_cased_and_empty_means_eur(con, landing):
    rows = [
        row("deals", deal_id="d1", currency="usd"),
        row("deals", deal_id="d2", currency=" gbp "),
        row("deals", deal_id="d3", currency=""),
        row("deals", deal_id="d4", currency="   "),
    ]
    write_file(landing, DELIVERY, "deals.csv", rows)
    load(con, landing, "deals")
    assert deal_values(con, "currency") == {"d1": "USD", "d2": "GBP", "d3": "EUR", "d4": "EUR"}


def test_currency_column_absent_means_eur(con, landing):
    columns = [c for c in row("quotes") if c != "currency"]
    write_file(landing, DELIVERY, "quotes.csv", [row("quotes")], columns=columns)
    load(con, landing, "quotes")
    assert fetch(con, "select currency from raw.quotes") == [{"currency": "EUR"}]


def test_fx_rate_currency_is_upper_cased(con, landing):
    write_file(landing, DELIVERY, "fx_rates.csv", [row("fx_rates", currency=" usd ")])
    load(con, landing, "fx_rates")
    assert fetch(con, "select currency, month, rate_to_eur from raw.fx_rates") == [
        {"currency": "USD", "month": "2026-10", "rate_to_eur": 0.92}
    ]


def test_an_amount_is_rounded_to_cents_from_its_written_digits(con, landing):
    """An amount with more decimals than cents is rounded from the digits as written, half away
    from zero (`1.005` → 1.01, not the 1.00 of the binary 1.00499…), and a large amount keeps
    its cents (beyond 15 significant digits a double would not)."""
    amounts = {"d1": "1.005", "d2": "2.675", "d3": "-0.004", "d4": "1234567890123456.78",
               "d5": "1.5e2", "d6": "12345678901234567e-1"}
    rows = [row("deals", deal_id=key, amount=text) for key, text in amounts.items()]
    write_file(landing, DELIVERY, "deals.csv", rows)
    load(con, landing, "deals")
    assert deal_values(con, "amount") == {
        "d1": Decimal("1.01"), "d2": Decimal("2.68"), "d4": Decimal("1234567890123456.78"),
        "d5": Decimal("150.00"), "d6": Decimal("1234567890123456.70"),
    }
    # below zero as written, though it rounds to 0.00: quarantined, as before
    assert [q["line"] for q in quarantine(con)] == [4]


def test_integer_accepts_whole_numbers_including_a_float_columns_trailing_zero(con, landing):
    rows = [row("companies", company_id="c1", employee_count=" 40 "),
            row("companies", company_id="c2", employee_count="40.0"),
            row("companies", company_id="c3", employee_count="")]
    write_file(landing, DELIVERY, "companies.csv", rows)
    assert load(con, landing, "companies").rows_quarantined == 0, quarantine(con)
    assert fetch(con, "select employee_count from raw.companies order by _line") == [
        {"employee_count": 40}, {"employee_count": 40}, {"employee_count": None},
    ]


@pytest.mark.parametrize("value", ["1_000", "0x1F", "1,000", "inf", "nan"])
def test_integer_written_otherwise_than_plainly_is_quarantined(con, landing, value):
    """An integer is written as decimals are (no separators, underscores, hex, NaN or
    infinity): DuckDB's cast read `1_000` as a thousand."""
    write_file(landing, DELIVERY, "companies.csv", [row("companies", employee_count=value)])
    result = load(con, landing, "companies")
    assert (result.rows_loaded, result.rows_quarantined) == (0, 1), result.outcomes
    assert [q["column_name"] for q in quarantine(con)] == ["employee_count"]


BOOLEAN_SPELLINGS = {
    "true": True, "TRUE": True, "True": True, "1": True, "yes": True, "Yes": True, "y": True,
    "Y": True, "false": False, "FALSE": False, "0": False, "no": False, "NO": False, "n": False,
    "N": False, " yes ": True,
}


def test_booleans_accept_true_false_1_0_yes_no_y_n_in_any_case(con, landing):
    rows = [row("deals", deal_id=f"d{i}", is_deleted=text)
            for i, text in enumerate(BOOLEAN_SPELLINGS)]
    write_file(landing, DELIVERY, "deals.csv", rows)
    result = load(con, landing, "deals")
    assert result.rows_quarantined == 0, quarantine(con)
    loaded = deal_values(con, "is_deleted")
    assert loaded == {f"d{i}": value for i, value in enumerate(BOOLEAN_SPELLINGS.values())}


def test_empty_boolean_takes_the_column_default(con, landing):
    write_file(landing, DELIVERY, "deals.csv", [row("deals", is_deleted="")])
    write_file(landing, DELIVERY, "users.csv", [row("users", is_active=" ")])
    load(con, landing, "deals")
    load(con, landing, "users")
    assert deal_values(con, "is_deleted") == {"d1": False}
    assert fetch(con, "select is_active from raw.users") == [{"is_active": True}]


def test_absent_boolean_column_takes_the_column_default(con, landing):
    columns = [c for c in row("users") if c != "is_active"]
    write_file(landing, DELIVERY, "users.csv", [row("users")], columns=columns)
    load(con, landing, "users")
    assert fetch(con, "select is_active from raw.users") == [{"is_active": True}]


def test_enumerations_are_matched_case_insensitively_after_trimming(con, landing):
    rows = [row("deals", deal_id="d1", stage=" Closed_Won ", deal_type="RENEWAL",
                closed_at="2026-11-01")]
    write_file(landing, DELIVERY, "deals.csv", rows)
    write_file(landing, DELIVERY, "activities.csv",
               [row("activities", activity_type=" CALL", direction="Inbound", outcome="")])
    assert load(con, landing, "deals").rows_quarantined == 0, quarantine(con)
    assert load(con, landing, "activities").rows_quarantined == 0, quarantine(con)
    assert fetch(con, "select stage, deal_type from raw.deals") == [
        {"stage": "closed_won", "deal_type": "renewal"}
    ]
    assert fetch(con, "select activity_type, direction, outcome from raw.activities") == [
        {"activity_type": "call", "direction": "inbound", "outcome": None}
    ]


# --- timestamps ----------------------------------------------------------------------------


def test_timestamp_with_offset_or_z_is_exact(con, landing):
    loaded = load_deal_timestamps(con, landing, {
        "z": "2026-01-15T10:00:00Z",
        "lower_z": "2026-01-15T10:00:00z",
        "plus": "2026-01-15T10:00:00+05:30",
        "minus_compact": "2026-07-15 10:00-0400",
        "hours_only": "2026-07-15T10:00:00+03",
        "fraction": "2026-01-15T10:00:00.250+00:00",
        "comma_fraction": "2026-01-15T10:00:00,5Z",
    })
    assert loaded == {
        "z": utc(2026, 1, 15, 10, 0),
        "lower_z": utc(2026, 1, 15, 10, 0),
        "plus": utc(2026, 1, 15, 4, 30),
        "minus_compact": utc(2026, 7, 15, 14, 0),
        "hours_only": utc(2026, 7, 15, 7, 0),
        "fraction": utc(2026, 1, 15, 10, 0) + timedelta(milliseconds=250),
        "comma_fraction": utc(2026, 1, 15, 10, 0) + timedelta(milliseconds=500),
    }


def test_naive_timestamp_is_local_time_in_business_timezone(con, landing):
    loaded = load_deal_timestamps(con, landing, {
        "space": "2026-01-15 10:00:00",
        "t": "2026-01-15T10:00",
        "lower_t": "2026-01-15t10:00",
        "fraction": "2026-01-15T10:00:00.5",
        "comma_fraction": "2026-01-15T10:00:00,5",
    })
    assert loaded == {
        "space": utc(2026, 1, 15, 9, 0),
        "t": utc(2026, 1, 15, 9, 0),
        "lower_t": utc(2026, 1, 15, 9, 0),
        "fraction": utc(2026, 1, 15, 9, 0) + timedelta(milliseconds=500),
        "comma_fraction": utc(2026, 1, 15, 9, 0) + timedelta(milliseconds=500),
    }


def test_bare_date_is_local_midnight(con, landing):
    loaded = load_deal_timestamps(con, landing, {"winter": "2026-01-15", "summer": "2026-07-15"})
    assert loaded == {"winter": utc(2026, 1, 14, 23, 0), "summer": utc(2026, 7, 14, 22, 0)}


def test_naive_time_in_spring_forward_gap_moves_forward_by_the_gap(con, landing):
    # 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist → 03:30 CEST.
    loaded = load_deal_timestamps(con, landing, {
        "before": "2026-03-29 01:30", "gap": "2026-03-29 02:30", "after": "2026-03-29 03:30",
    })
    assert loaded == {
        "before": utc(2026, 3, 29, 0, 30),
        "gap": utc(2026, 3, 29, 1, 30),
        "after": utc(2026, 3, 29, 1, 30),
    }


def test_naive_time_in_autumn_overlap_takes_the_later_standard_time_instant(con, landing):
    # 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 happens twice; the later (CET) wins.
    loaded = load_deal_timestamps(con, landing, {
        "before": "2026-10-25 01:30", "overlap": "2026-10-25 02:30", "after": "2026-10-25 03:30",
    })
    assert loaded == {
        "before": utc(2026, 10, 24, 23, 30),
        "overlap": utc(2026, 10, 25, 1, 30),
        "after": utc(2026, 10, 25, 2, 30),
    }


def test_naive_winter_and_summer_times_get_plus_one_and_plus_two_hours(con, landing):
    loaded = load_deal_timestamps(con, landing, {
        "winter": "2026-02-10 12:00:00", "summer": "2026-08-10 12:00:00",
    })
    assert loaded == {"winter": utc(2026, 2, 10, 11, 0), "summer": utc(2026, 8, 10, 10, 0)}


def test_business_timezone_setting_changes_the_interpretation_of_naive_times(con, landing):
    settings = Settings(
        extracts_dir=landing, warehouse_dir=landing.parent / "wh",
        business_timezone="America/New_York",
    )
    loaded = load_deal_timestamps(con, landing, {
        "naive": "2026-01-15 10:00", "date": "2026-07-15", "exact": "2026-01-15T10:00:00Z",
    }, settings)
    assert loaded == {
        "naive": utc(2026, 1, 15, 15, 0),
        "date": utc(2026, 7, 15, 4, 0),
        "exact": utc(2026, 1, 15, 10, 0),
    }


# --- line numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("extension", ["csv", "csv.gz", "parquet", "jsonl", "xlsx"])
def test_line_numbers_count_the_header_as_line_one(con, landing, extension):
    rows = [row("deals", deal_id=f"d{i}") for i in range(1, 4)]
    rows[1]["stage"] = "bogus"  # the second data row: line 3
    write_file(landing, DELIVERY, f"deals.{extension}", rows)
    result = load(con, landing, "deals")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    assert fetch(con, "select deal_id, _file, _line from raw.deals order by _line") == [
        {"deal_id": "d1", "_file": f"deals.{extension}", "_line": 2},
        {"deal_id": "d3", "_file": f"deals.{extension}", "_line": 4},
    ]
    assert [(q["line"], q["column_name"]) for q in quarantine(con)] == [(3, "stage")]


def test_duckdb_read_csv_with_ordinality_numbers_rows_in_file_order(tmp_path):
    """The loader's line numbers come from `read_csv(...) with ordinality`; pin that DuckDB
    numbers a multi-megabyte file (read by the parallel reader) in file order."""
    rows = 400_000
    path = tmp_path / DELIVERY / "activities.csv"
    path.parent.mkdir(parents=True)
    body = "".join(f"{i},filler text to make the file a few megabytes long\n" for i in range(rows))
    path.write_text("n,pad\n" + body, encoding="utf-8")
    assert path.stat().st_size > 20_000_000

    connection = duckdb.connect()
    connection.execute("set threads = 4")
    try:
        unordered = connection.execute(
            f"""
            select count(*), count(*) filter (where cast(n as bigint) + 1 <> ordinality)
            from read_csv('{path}', header = true, auto_detect = false, delim = ',',
                          quote = '"', escape = '"', strict_mode = true,
                          columns = {{'n': 'VARCHAR', 'pad': 'VARCHAR'}}) with ordinality
            """
        ).fetchone()
        assert unordered == (rows, 0)
        # The very reader the loader uses: `_line` is the file's line number.
        text = read_as_text(connection, LandingFile(DELIVERY, "activities", path, "csv"))
        assert text.rows == rows
        wrong = connection.execute(
            f"select count(*) from {TEXT_TABLE} where cast(n as bigint) + 2 <> _line"
        ).fetchone()
        assert wrong == (0,)
    finally:
        connection.close()


def test_tabs_around_values_are_trimmed(con, landing):
    write_file(landing, DELIVERY, "users.csv", [row("users", role="\tae\t", team=" \tNorth ")])
    load(con, landing, "users")
    assert fetch(con, "select role, team from raw.users") == [{"role": "ae", "team": "North"}]


def test_xlsx_rows_beyond_the_size_the_sheet_records_are_read(con, landing):
    """A workbook whose sheet records a smaller size than it holds (`<dimension ref>`, which
    some exporters write wrong) is read to its last row: openpyxl's read-only mode stops at
    the recorded size, which dropped every row past it — the bad row that should have been
    quarantined with them — without a word."""
    import re
    import zipfile

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    header = ["user_id", "full_name", "role", "updated_at"]
    sheet.append(header)
    for user, role in (("u1", "ae"), ("u2", "sdr"), ("u3", "bogus"), ("u4", "ae")):
        sheet.append([user, f"Name {user}", role, "2026-01-01T09:00:00Z"])
    written = landing.parent / "users-as-written.xlsx"
    workbook.save(written)
    path = landing / DELIVERY / "users.xlsx"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, changed = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:D2"',
                                        data)
                assert changed == 1
            target.writestr(item, data)

    result = load(con, landing, "users")
    assert (result.rows_loaded, result.rows_quarantined) == (3, 1), result.outcomes
    assert [(q["line"], q["column_name"]) for q in quarantine(con)] == [(4, "role")]


@pytest.mark.parametrize("extension", ["csv", "csv.gz", "parquet", "jsonl", "xlsx"])
def test_a_column_named_like_the_loaders_line_number_is_an_extra_column(
    con, landing, extension
):
    """A file column named `_line` (any case) is an unknown extra column like any other: kept
    in raw and ignored. It used to take the place of the loader's own line numbers, so
    "the later line wins" and the quarantine's lines followed the file's column."""
    rows = [row("users", full_name="Old", _LINE="9"), row("users", full_name="New", _LINE="2"),
            row("users", user_id="u2", role="bogus", _LINE="66")]
    write_file(landing, DELIVERY, f"users.{extension}", rows)
    result = load(con, landing, "users")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1), result.outcomes
    loaded = fetch(con, "select full_name, _line, _extra_columns from raw.users order by _line")
    assert [(r["full_name"], r["_line"]) for r in loaded] == [("Old", 2), ("New", 3)]
    assert [json.loads(r["_extra_columns"]) for r in loaded] == [{"_LINE": "9"}, {"_LINE": "2"}]
    assert [(q["line"], q["column_name"]) for q in quarantine(con)] == [(4, "role")]


@pytest.mark.parametrize("value", ["2026-01-15T10:00:00+25:00", "2026-01-15T10:00:00+01:60",
                                   "2026-01-15T10:00:00-24:30"])
def test_an_offset_no_clock_has_is_an_unparsable_timestamp(con, landing, value):
    """ISO 8601 offsets run from -23:59 to +23:59 with minutes below 60: `+25:00` or `+01:60`
    is not a time anywhere, so the value is quarantined as unparsable, not moved by it."""
    write_file(landing, DELIVERY, "deals.csv", [row("deals", created_at=value)])
    result = load(con, landing, "deals")
    assert (result.rows_loaded, result.rows_quarantined) == (0, 1), result.outcomes
    assert [q["column_name"] for q in quarantine(con)] == ["created_at"]


def _users_workbook_with_cell(landing: Path, cell_xml: str) -> None:
    """users.xlsx: two users (a header of seven columns, user_id … updated_at), the second
    one's `team` (cell E3) written as `cell_xml`, or `cell_xml` added after its last cell
    (G3) when it is a cell of column H."""
    import re
    import zipfile

    write_file(landing, DELIVERY, "users.xlsx",
               [row("users"), row("users", user_id="u2", team="placeholder")])
    path = landing / DELIVERY / "users.xlsx"
    with zipfile.ZipFile(path) as source:
        parts = {item.filename: source.read(item.filename) for item in source.infolist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode("utf-8")
    if cell_xml.startswith('<c r="H3"'):
        sheet, changed = re.subn(r'(<c r="G3"[^>]*>.*?</c>)',
                                 lambda found: found.group(1) + cell_xml, sheet)
    else:
        sheet, changed = re.subn(r'<c r="E3"[^>]*>.*?</c>', cell_xml, sheet)
    assert changed == 1, sheet
    parts["xl/worksheets/sheet1.xml"] = sheet.encode("utf-8")
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)


@pytest.mark.parametrize(("cell", "column"), [
    ('<c r="E3"><f>"North"</f><v></v></c>', "team"),  # as a library writes it
    ('<c r="E3" t="array"><f t="array" ref="E3">"North"</f></c>', "team"),  # an array formula
    ('<c r="H3"><f>"stray"</f><v></v></c>', "#8"),  # beyond the header's seven columns
])
def test_an_xlsx_formula_without_a_saved_value_rejects_the_file_naming_its_cell(
    con, landing, cell, column
):
    """A formula cell whose workbook holds no saved result (written by a library, never opened
    in a spreadsheet app) has no value to load: the file is rejected naming the line and the
    column. It was read as empty: an optional team silently became `Unassigned`."""
    _users_workbook_with_cell(landing, cell)
    result = load(con, landing, "users")
    (outcome,) = result.outcomes
    assert outcome.status == "rejected", outcome
    assert f"line 3, column {column}: a formula without a saved value" in outcome.describe()


def test_an_xlsx_formula_whose_saved_result_is_empty_text_is_an_empty_value(con, landing):
    """`=IF(…, "", …)` saved by a spreadsheet app: the result is the empty text (`t="str"`,
    an empty `<v>`), an empty value like any other — the row loads, the team empty."""
    _users_workbook_with_cell(landing, '<c r="E3" t="str"><f>IF(A3="x","North","")</f><v></v></c>')
    result = load(con, landing, "users")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 0), result.outcomes
    assert fetch(con, "select user_id, team from raw.users order by _line") == [
        {"user_id": "u1", "team": "North"}, {"user_id": "u2", "team": None}]


def test_a_parquet_column_named_like_duckdbs_row_number_is_an_extra_column(con, landing):
    """A Parquet column named `file_row_number` is an unknown extra column, kept in raw: it
    used to clash with DuckDB's own row-number column and reject the file with a binder
    error. The rows are still numbered in file order."""
    rows = [row("users", file_row_number="7", ordinality="x"),
            row("users", user_id="u2", role="bogus", file_row_number="8", ordinality="y")]
    write_file(landing, DELIVERY, "users.parquet", rows)
    result = load(con, landing, "users")
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1), result.outcomes
    (loaded,) = fetch(con, "select _line, _extra_columns from raw.users")
    assert (loaded["_line"], json.loads(loaded["_extra_columns"])) == (
        2, {"file_row_number": "7", "ordinality": "x"})
    assert [(q["line"], q["column_name"]) for q in quarantine(con)] == [(3, "role")]
