"""The whole nightly job through the CLI, on a small generated sample: what `make run` does."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.contract import ENTITY_NAMES
from pipelines.sample import generate_sample

MARTS = (
    "dim_reps", "dim_leads", "fct_funnel_stages", "fct_activities", "fct_deals",
    "kpi_values", "kpi_baselines", "kpi_scorecard", "kpi_registry",
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("extracts")
    generate_sample(out, scale=0.1, seed=11)
    return out


@pytest.fixture(scope="module")
def warehouse(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    warehouse = tmp_path_factory.mktemp("warehouse")
    assert main(["run", "--extracts", str(sample), "--warehouse", str(warehouse)]) == 0
    return warehouse


def _raw_counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        counts = {
            e: con.execute(f"select count(*) from raw.{e}").fetchone()[0] for e in ENTITY_NAMES
        }
        counts["manifest"] = con.execute("select count(*) from raw.load_manifest").fetchone()[0]
    return counts


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_leaves_every_raw_entity_in_the_warehouse(warehouse: Path) -> None:
    counts = _raw_counts(warehouse)
    assert all(counts[e] > 0 for e in ENTITY_NAMES), counts


def test_every_file_of_every_delivery_is_in_the_manifest(sample: Path, warehouse: Path) -> None:
    files = sorted(
        f"{p.parent.name}/{p.name}" for p in sample.glob("*/*") if p.is_file()
    )
    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        seen = sorted(
            f"{d}/{f}" for d, f, status in con.execute(
                "select delivery, file_name, status from raw.load_manifest"
            ).fetchall()
            if status in ("loaded", "duplicate")
        )
    assert seen == files


def test_a_second_run_over_the_same_files_loads_nothing_new(
    sample: Path, warehouse: Path
) -> None:
    before = _raw_counts(warehouse)
    assert main(["run", "--extracts", str(sample), "--warehouse", str(warehouse)]) == 0
    assert _raw_counts(warehouse) == before


def test_marts_are_published_as_duckdb_and_parquet(warehouse: Path) -> None:
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse / 'marts.duckdb'}' as published (read_only)")
        for table in MARTS:
            assert con.execute(f"select count(*) from published.marts.{table}").fetchone()[0] > 0
    for table in MARTS:
        assert (warehouse / "parquet" / f"{table}.parquet").exists()


def _first(warehouse: Path, where: str) -> str:
    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(
            f"select contact_id from marts.dim_leads where {where} order by contact_id limit 1"
        ).fetchone()
    assert row, f"the sample has no contact where {where}"
    return row[0]


@pytest.mark.parametrize(
    ("kind", "where", "expected"),
    [
        ("marketing lead", "stage = 'marketing_lead'", ["marketing lead: 20", "QUALIFYING"]),
        ("sales-sourced lead", "lead_origin = 'sales'", ["origin: sales (sales-sourced)"]),
        (
            "newsletter-only subscriber",
            "stage = 'none' and contact_id in (select contact_id from "
            "staging.stg_crm__marketing_events group by contact_id having "
            "bool_and(event_type = 'newsletter_signup'))",
            ["no intent event", "newsletter_signup      not intent"],
        ),
        (
            "free-mail contact with a demo request",
            "is_free_mail and contact_id in (select contact_id from "
            "staging.stg_crm__marketing_events where event_type = 'demo_request')",
            ["fit: no — free-mail domain", "demo_request           intent, but the contact is "
             "not fit"],
        ),
    ],
)
def test_explain_answers_why_a_contact_has_its_stage(
    warehouse: Path, capsys: pytest.CaptureFixture[str], kind: str, where: str,
    expected: list[str],
) -> None:
    contact = _first(warehouse, where)
    assert main(["explain", contact, "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, f"{kind}: {text!r} not in\n{out}"


def test_rejected_input_fails_the_run_naming_file_and_column_and_keeps_the_marts(
    sample: Path, warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = warehouse / "marts.duckdb"
    before = _sha(published)
    broken = tmp_path / "extracts"
    shutil.copytree(sample, broken)
    delivery = broken / "2026-11-27T0200"
    delivery.mkdir()
    (delivery / "deals.csv").write_text(
        "deal_id,owner_user_id,stage,created_at,updated_at\n"
        "D-NEW,USR-0001,qualification,2026-11-26,2026-11-26\n"
    )
    assert main(["run", "--extracts", str(broken), "--warehouse", str(warehouse)]) == 1
    err = capsys.readouterr().err
    assert "2026-11-27T0200/deals.csv" in err and "deal_type" in err, err
    assert _sha(published) == before
