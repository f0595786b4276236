"""The loader reads, types and checks a file in one pass (issue 14): the rules that pass
relies on — what is trimmed, and which DuckDB errors are about the file at all."""

from __future__ import annotations

import duckdb
import pytest
from conftest import DELIVERY, fetch, load, manifest, row, write_file


@pytest.mark.parametrize("extension", ["csv", "parquet"])
def test_values_are_trimmed_at_either_end_alone_and_inner_whitespace_is_kept(
    con, landing, extension
):
    # The loader trims only a value that starts or ends with a space, tab or line end: each
    # end alone, every trimmed character, and a value of nothing but them (empty = missing).
    rows = [
        row("users", user_id="u1", full_name="Piet de Vries\r\n", team="\nNorth",
            role="ae\t", email=" \t\r\n"),
        row("users", user_id="u2", full_name="\tAnna  Bakker", team="South \n",
            role=" sdr", email="anna@example.nl"),
    ]
    write_file(landing, DELIVERY, f"users.{extension}", rows)
    result = load(con, landing, "users")
    assert result.rows_quarantined == 0
    assert fetch(
        con, "select user_id, full_name, team, role, email from raw.users order by _line"
    ) == [
        {"user_id": "u1", "full_name": "Piet de Vries", "team": "North", "role": "ae",
         "email": None},
        {"user_id": "u2", "full_name": "Anna  Bakker", "team": "South", "role": "sdr",
         "email": "anna@example.nl"},
    ]


def test_a_load_out_of_memory_fails_the_run_without_rejecting_the_file(con, landing):
    # DuckDB's memory budget is the run's limit, not a fault of the file: recording the file
    # as rejected would keep a good file out of every later run until someone replaced it.
    rows = [row("activities", activity_id=f"a{n}", deal_id="d" * 200) for n in range(50_000)]
    write_file(landing, DELIVERY, "activities.csv", rows)
    con.execute("set memory_limit = '2MB'")
    with pytest.raises(duckdb.OutOfMemoryException):
        load(con, landing, "activities")
    con.execute("reset memory_limit")
    assert manifest(con) == []
    assert fetch(con, "select count(*) as n from raw.activities") == [{"n": 0}]

    result = load(con, landing, "activities")  # the next run loads it
    assert result.rows_loaded == 50_000
    assert [m["status"] for m in manifest(con)] == ["loaded"]
