"""What makes a night new (pipelines/no_op.py): the fingerprint a publication records, and
which publication may record it. Unit rules; the whole-run behaviour (a second run ends in
seconds, a stopped run resumes) is in test_end_to_end.py and test_run_guard*.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.no_op import (
    LOADED_PARTS,
    PUBLISHED,
    mark_built,
    mark_loaded,
    mark_published,
    mark_run_started,
    nothing_new_since,
    run_fingerprint,
)
from pipelines.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A landing folder with one delivery of one file, and a warehouse with a publication."""
    delivery = tmp_path / "landing" / "2026-11-24T0200"
    delivery.mkdir(parents=True)
    (delivery / "deals.csv").write_text("deal_id,amount\nD1,1250.00\n", encoding="utf-8")
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    (warehouse / "marts.duckdb").write_bytes(b"")  # a publication exists
    return Settings(extracts_dir=tmp_path / "landing", warehouse_dir=warehouse)


def _published_by(settings: Settings, run_id: str) -> None:
    mark_run_started(settings, run_id)
    mark_published(settings, run_id)


def _built_completely_by(settings: Settings, run_id: str) -> None:
    """Run `run_id` started, loaded every part and built the whole project, then stopped."""
    mark_run_started(settings, run_id)
    for part in LOADED_PARTS:
        mark_loaded(settings, run_id, part)
    settings.build_database.write_bytes(b"")  # its complete build
    assert mark_built(settings, run_id)


def test_a_file_replaced_with_the_same_size_and_modification_time_is_new(
    settings: Settings,
) -> None:
    """`cp -p`, `tar x` or `touch -r` put a corrected file in place with the old file's
    modification time: its change time (the kernel's) still tells."""
    _published_by(settings, "last-night")
    assert nothing_new_since(settings) == "last-night"
    file = settings.extracts_dir / "2026-11-24T0200" / "deals.csv"
    before = file.stat()
    file.write_text("deal_id,amount\nD1,1520.00\n", encoding="utf-8")  # same size
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert file.stat().st_size == before.st_size
    assert file.stat().st_mtime_ns == before.st_mtime_ns
    assert nothing_new_since(settings) is None


def test_names_starting_with_a_dot_are_not_part_of_the_night(settings: Settings) -> None:
    """The loader ignores them by rule: a `.DS_Store` or an upload's `.part` is no rebuild."""
    _published_by(settings, "last-night")
    (settings.extracts_dir / ".DS_Store").write_bytes(b"\0")
    (settings.extracts_dir / "2026-11-24T0200" / ".contacts.csv.part").write_text("x")
    assert nothing_new_since(settings) == "last-night"


def test_a_delivery_entry_that_cannot_be_read_is_a_change_not_a_crash(settings: Settings) -> None:
    _published_by(settings, "last-night")
    (settings.extracts_dir / "2026-11-24T0200" / "quotes.csv").symlink_to("/nonexistent")
    assert nothing_new_since(settings) is None


def test_a_delivery_folder_linked_to_nowhere_is_a_change_not_a_crash(
    settings: Settings,
) -> None:
    _published_by(settings, "last-night")
    (settings.extracts_dir / "2026-11-25T0200").symlink_to(
        settings.extracts_dir / "no-such-folder", target_is_directory=True)
    assert nothing_new_since(settings) is None


def test_a_source_mapping_with_number_keys_is_fingerprinted(
    settings: Settings, tmp_path: Path,
) -> None:
    """HubSpot's custom deal stages have numeric ids: a vocabulary keyed by them is a valid
    mapping, and the fingerprint reads the mapping's files, not a document JSON cannot sort."""
    mapping = tmp_path / "crm.yaml"
    mapping.write_text("extends: hubspot\nvocabularies:\n  deal_stages:\n    1234567: closed_won\n"
                       "    appointmentscheduled: discovery\n", encoding="utf-8")
    assert run_fingerprint(settings.replace(source_mapping=str(mapping)))


def test_an_edited_source_mapping_is_new_whichever_file_of_its_chain_changed(
    settings: Settings, tmp_path: Path,
) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("source: crm\ndelivery_time: folder\n", encoding="utf-8")
    mapping = tmp_path / "crm.yaml"
    mapping.write_text("extends: base.yaml\nsource: crm\n", encoding="utf-8")
    mapped = settings.replace(source_mapping=str(mapping))
    first = run_fingerprint(mapped)
    assert run_fingerprint(mapped) == first
    base.write_text("source: crm\ndelivery_time: file\n", encoding="utf-8")
    second = run_fingerprint(mapped)
    assert second != first
    mapping.write_text("extends: base.yaml\nsource: crm2\n", encoding="utf-8")
    assert run_fingerprint(mapped) not in (first, second)


def test_a_publication_of_another_runs_build_vouches_for_nothing(settings: Settings) -> None:
    """Run A's first step wrote its fingerprint, then A failed; the publication materialized
    alone afterwards (`dagster dev`) republished an older build: it records nothing, and the
    next night builds A's inputs instead of finding "nothing new"."""
    _published_by(settings, "last-night")
    mark_run_started(settings, "run-a")  # a new delivery's run, failed before its build
    mark_published(settings, "publication-alone")
    assert not (settings.warehouse_dir / PUBLISHED).exists()
    assert nothing_new_since(settings) is None


def test_a_resumed_run_records_the_fingerprint_of_the_build_it_resumed(
    settings: Settings,
) -> None:
    _built_completely_by(settings, "killed-run")
    mark_published(settings, "resumed-run")
    assert nothing_new_since(settings) == "resumed-run"


def test_a_publication_re_executed_after_a_failure_records_its_builds_fingerprint(
    settings: Settings,
) -> None:
    """The UI's "re-execute from failure" of a night whose publication failed is a run of its
    own: it publishes the complete build of the night's inputs, and records them."""
    _built_completely_by(settings, "night")
    mark_published(settings, "night-re-executed")
    assert nothing_new_since(settings) == "night-re-executed"


def test_a_pinned_as_of_counts_by_its_instant_not_by_how_it_is_written(
    settings: Settings,
) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    instant = datetime(2026, 11, 26, 22, 59, 59, tzinfo=UTC)
    in_utc = settings.replace(as_of=instant)
    in_amsterdam = settings.replace(as_of=instant.astimezone(timezone(timedelta(hours=1))))
    assert run_fingerprint(in_utc) == run_fingerprint(in_amsterdam)
    assert run_fingerprint(in_utc) != run_fingerprint(settings.replace(
        as_of=instant + timedelta(seconds=1)))


@pytest.mark.slow  # a run of the job
def test_a_dbt_that_ends_well_without_building_fails_the_run_and_records_no_build(
    sample_extracts: Path, tmp_path: Path
) -> None:
    """dbt ended with exit 0 but built nothing (a wrapper that exits 0 once its dbt was
    ended): the dbt step fails, naming why — it does not succeed with every later step
    skipped, the run reported a success and the empty build recorded as complete for the
    next night to "resume" from."""
    from conftest import run_cli_subprocess

    from pipelines.no_op import BUILT

    quiet_dbt = tmp_path / "quiet-dbt"
    quiet_dbt.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    quiet_dbt.chmod(0o755)
    warehouse = tmp_path / "warehouse"
    outcome = run_cli_subprocess(
        "--extracts", str(sample_extracts), "--warehouse", str(warehouse),
        env={"SALES_KPI_DBT_EXECUTABLE": str(quiet_dbt), "SALES_KPI_WRITE_SITE": "false"},
    )
    shown = outcome["stdout"] + outcome["stderr"]
    assert outcome["code"] == 1, shown
    assert "dbt ended without writing its run results" in shown and "built nothing" in shown
    assert not (warehouse / BUILT).exists()
    assert not (warehouse / "marts.duckdb").exists()
