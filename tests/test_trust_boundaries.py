"""Issue 13: the landing folder, the mapping and the settings are trust boundaries.

Each test is named after the rule it holds the pipeline to. They use small hand-made landing
folders and units of the loader; only the webhook test runs the (failing, tiny) job.
"""

from __future__ import annotations

import pytest
from conftest import DELIVERY, csv_text, load, manifest, quarantine, row, write_file

from pipelines.contract import MAX_FIELD_CHARACTERS, MAX_LINE_BYTES
from pipelines.ingest.landing import OutsideLandingError, scan_landing

SECRET_LINE = "API_TOKEN=s3cr3t-do-not-print"
ESC_RED = "\x1b[31m"
OSC_TITLE = "\x1b]0;pwned\x07"


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
