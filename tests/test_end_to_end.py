"""The whole nightly job through the CLI, on a small generated sample: what `make run` does."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import copy_warehouse, raw_counts, recorded

from pipelines.cli import main
from pipelines.contract import ENTITY_NAMES
from pipelines.dbt_project import DBT_DATABASE_ENV, prepared_dbt_project
from pipelines.publish import PUBLISHED_TABLES

MARTS = (
    "dim_reps", "dim_leads", "fct_funnel_stages", "fct_activities", "fct_deals",
    "kpi_values", "kpi_baselines", "kpi_scorecard", "kpi_registry",
)


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample(sample_extracts: Path) -> Path:
    """The session's generated sample (scale 0.1, seed 11); read-only."""
    return sample_extracts


@pytest.fixture(scope="module")
def warehouse(second_night_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's copy of the session's second night (conftest.py): the shared whole run
    through the CLI, as `make run`, and a second one (`--force`, without the site) over the
    same files; the tests below run the job on it again."""
    return copy_warehouse(second_night_warehouse, tmp_path_factory.mktemp("e2e") / "warehouse")


@dataclass(frozen=True)
class Rerun:
    raw_before: dict[str, int]
    raw_after: dict[str, int]


@pytest.fixture(scope="module")
def rerun(second_night_warehouse: Path) -> Rerun:
    """The raw layer before and after the second whole run over the same files. The site is
    not written (the reporting tests pin it): what is tested here is what the load and the
    publication do on a second night."""
    counts = recorded(second_night_warehouse, "raw-counts")
    return Rerun(counts["before"], counts["after"])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_leaves_every_raw_entity_in_the_warehouse(warehouse: Path) -> None:
    counts = raw_counts(warehouse)
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


def test_a_second_run_over_the_same_files_loads_nothing_new(rerun: Rerun) -> None:
    assert rerun.raw_after == rerun.raw_before


def _published_runs(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        return con.execute("select count(*) from runs").fetchone()[0]


def test_a_night_with_nothing_new_ends_in_seconds_and_says_so(
    sample: Path, warehouse: Path, rerun: Rerun, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _published_runs(warehouse)
    capsys.readouterr()
    started = time.perf_counter()
    assert main(["run", "--extracts", str(sample), "--warehouse", str(warehouse)]) == 0
    seconds = time.perf_counter() - started
    assert "nothing new since run " in capsys.readouterr().out
    assert seconds <= 10 and _published_runs(warehouse) == runs


def test_a_night_with_nothing_new_removes_what_a_stopped_run_left(
    sample: Path, warehouse: Path, rerun: Rerun
) -> None:
    """A run stopped in its checks leaves the candidate its copy wrote (`.marts-<run>` and a
    Parquet folder never published); a night with nothing new publishes nothing, so it is the
    one to remove them — not the next delivery, days later — and leaves what is published."""
    stopped = warehouse / ".marts-stopped-run.duckdb"
    stopped.write_bytes(b"a candidate whose run was stopped")
    Path(f"{stopped}.ready").write_text("{}", encoding="utf-8")
    unpublished = warehouse / "parquet-runs" / "stopped-run"
    unpublished.mkdir(parents=True)
    (unpublished / "dim_leads.parquet").write_bytes(b"never published")
    published = (warehouse / "parquet").resolve()
    assert main(["run", "--extracts", str(sample), "--warehouse", str(warehouse)]) == 0
    assert list(warehouse.glob(".marts-*")) == []
    assert not unpublished.exists()
    assert (warehouse / "parquet").resolve() == published and published.is_dir()


def test_a_new_file_or_a_changed_setting_is_not_a_quiet_night(
    sample: Path, warehouse: Path, rerun: Rerun, tmp_path: Path
) -> None:
    from pipelines.no_op import nothing_new_since, run_fingerprint
    from pipelines.settings import Settings

    settings = Settings.from_env().replace(extracts_dir=sample, warehouse_dir=warehouse)
    assert nothing_new_since(settings)
    assert not nothing_new_since(settings.replace(min_conversation_seconds=240))
    # the same marts from the other engine, but a switch of engine is a rebuild
    assert not nothing_new_since(settings.replace(engine="spark"))
    # the site's settings are not the build's: a stopped run resumes whatever they are, and
    # `--force` writes the site again
    assert nothing_new_since(settings.replace(dashboard_language="nl", write_site=False))
    # a copy of the landing folder to add a delivery to (the session's sample is shared and
    # stays as it is): a new file is a new night, and taking it away again is the same night
    landing = tmp_path / "extracts"
    shutil.copytree(sample, landing)
    copied = settings.replace(extracts_dir=landing)
    before = run_fingerprint(copied)
    extra = landing / "2099-01-01T0000"
    extra.mkdir()
    (extra / "users.csv").write_text("user_id,full_name\n", encoding="utf-8")
    assert run_fingerprint(copied) != before
    shutil.rmtree(extra)
    assert run_fingerprint(copied) == before


def test_a_fresh_warehouse_builds_from_the_parse_made_while_it_loaded(
    published_warehouse: Path,
) -> None:
    """dbt parses a fresh warehouse's project beside the load (pipelines/dbt_parse_ahead.py),
    with the build's own vars and profile: the build then re-parses nothing, and the parse
    state is kept for the next night."""
    (log,) = (published_warehouse / "logs").glob("run-*.log")
    text = log.read_text(encoding="utf-8")
    assert "Running with dbt" in text  # dbt's own lines are in the run's log
    assert "Unable to do partial parsing" not in text
    runs = published_warehouse / "dbt_runs"
    assert (runs / "partial_parse.msgpack").is_file()
    assert not list(runs.glob(".parse-ahead-*"))


def test_marts_are_published_as_duckdb_and_parquet(warehouse: Path) -> None:
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse / 'marts.duckdb'}' as published (read_only)")
        for table in MARTS:
            assert con.execute(f"select count(*) from published.{table}").fetchone()[0] > 0
    for table in MARTS:
        assert (warehouse / "parquet" / f"{table}.parquet").exists()


def test_parquet_columns_are_nullable_every_night_as_in_the_published_file(
    warehouse: Path,
) -> None:
    """A BI tool or catalog that pins the Parquet files' schema sees the same schema every
    night: every column OPTIONAL (DuckDB 2 would mark REQUIRED each column that held no NULL
    that night, e.g. `fct_deals.rate_to_eur` on a night without an FX gap), with the types
    of the published file."""
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse / 'marts.duckdb'}' as published (read_only)")
        for file in sorted((warehouse / "parquet").glob("*.parquet")):
            schema = con.execute(
                "select name, repetition_type from parquet_schema(?) where num_children is "
                "null or num_children = 0", [str(file)],
            ).fetchall()
            assert [name for name, repetition in schema if repetition != "OPTIONAL"] == [], (
                file.name)
            def types(relation: str) -> list[tuple[str, str]]:
                return [row[:2] for row in con.execute(f"describe {relation}").fetchall()]

            assert types(f"select * from '{file}'") == types(f"published.{file.stem}"), file.name


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


# --- the published file, as BI tools and auditors meet it (marts contract v1.1) -------------

OLDER_DUCKDBS = ("1.1.3", "1.4.5")  # the oldest supported, and the 1.4 LTS line


def _older_duckdb(version: str) -> Path:
    """A separate virtual environment with an older DuckDB (as BI drivers ship), made once per
    machine under ~/.cache so repeated test runs don't reinstall it."""
    home = Path.home() / ".cache" / "sales-kpi-tests" / f"duckdb-{version}"
    python = home / "bin" / "python"
    if not (home / ".ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"duckdb=={version}", "pytz"],
            check=True,
        )
        (home / ".ready").touch()
    return python


@pytest.mark.parametrize("version", OLDER_DUCKDBS)
def test_an_older_duckdb_opens_the_published_file_and_reads_every_mart(
    warehouse: Path, version: str
) -> None:
    """The file of a later night — the night's copies appended to a copy of the file before
    (pipelines/publish.py) — as much as a first night's."""
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        last = con.execute("select run_id from runs order by published_at desc limit 1")
        last_run = last.fetchone()[0]
    log = (warehouse / "logs" / f"run-{last_run}.log").read_text(encoding="utf-8")
    assert "the run's history appended to the published file's" in log
    script = (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "tables = [t for (t,) in con.execute(\n"
        "    'select table_name from duckdb_tables()').fetchall()]\n"
        "print(json.dumps({'version': duckdb.__version__, 'rows': {t: con.execute("
        "f'select count(*) from (select * from \"{t}\")').fetchone()[0] for t in tables}}))\n"
    )
    result = subprocess.run(
        [str(_older_duckdb(version)), "-c", script, str(warehouse / "marts.duckdb")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert seen["version"] == version
    assert set(PUBLISHED_TABLES) <= set(seen["rows"])
    assert all(seen["rows"][table] > 0 for table in MARTS)


def test_published_marts_resolve_by_bare_name_and_under_an_attached_alias(
    warehouse: Path,
) -> None:
    published = warehouse / "marts.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        bare = con.execute("select count(*) from kpi_scorecard").fetchone()[0]
        # the file is the catalog `marts`: its name alone qualifies, without ambiguity
        assert con.execute("select count(*) from marts.kpi_scorecard").fetchone()[0] == bare
    with duckdb.connect() as con:
        con.execute(f"attach '{published}' as m (read_only)")
        assert con.execute("select count(*) from m.kpi_scorecard").fetchone()[0] == bare
    assert bare > 0


def test_every_published_table_and_column_carries_its_description(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        tables = con.execute(
            "select table_name from duckdb_tables() where not internal "
            "and coalesce(comment, '') = ''"
        ).fetchall()
        columns = con.execute(
            "select table_name, column_name from duckdb_columns() where not internal "
            "and coalesce(comment, '') = ''"
        ).fetchall()
        described = con.execute(
            "select comment from duckdb_columns() where table_name = 'kpi_scorecard' "
            "and column_name = 'attainment'"
        ).fetchone()[0]
    assert tables == [] and columns == []
    assert "target" in described


def test_scorecard_rows_carry_the_reps_and_teams_names(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        wrong = con.execute(
            """
            select s.scope, s.scope_id, s.scope_name, s.team
            from kpi_scorecard as s left join dim_reps as r on s.scope_id = r.user_id
            where s.scope_name is null
               or (s.scope = 'rep' and (s.scope_name <> r.full_name or s.team <> r.team))
               or (s.scope = 'team' and (s.scope_name <> s.scope_id or s.team <> s.scope_id))
            """
        ).fetchall()
        reps = con.execute("select count(*) from kpi_scorecard where scope = 'rep'").fetchone()[0]
    assert wrong == [] and reps > 0


def test_the_manifest_lists_the_dashboard_and_the_auditors_pack_as_exposures() -> None:
    manifest = json.loads(prepared_dbt_project().manifest_path.read_text(encoding="utf-8"))
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert {"kpi_dashboard", "auditors_pack"} <= set(exposures)
    for exposure in exposures.values():
        assert exposure["owner"]["name"] and exposure["depends_on"]["nodes"]
    assert "model.sales_kpi.kpi_scorecard" in exposures["kpi_dashboard"]["depends_on"]["nodes"]


def test_the_semantic_layer_answers_kpi_values_as_the_marts_have_them(
    warehouse: Path, tmp_path: Path
) -> None:
    """dbt's semantic layer (MetricFlow) over the build: the company's marketing leads per
    month, as `mf query` returns them, equal kpi_values. MetricFlow reads the semantic
    manifest the build's own dbt invocation wrote (`<warehouse>/dbt_runs/<run id>/`, with the
    build's vars and profile; it names the build's catalog) from the target folder of a copy
    of the dbt project: the project folder is read-only to runs and tests (tests run in
    parallel with the read-only install test)."""
    with duckdb.connect(str(warehouse / "marts.duckdb"), read_only=True) as con:
        (kpi_id,) = con.execute(
            "select kpi_id from kpi_registry where fact = 'marketing_lead' "
            "and computation = 'count'"
        ).fetchone()
        (run_id,) = con.execute(
            "select run_id from runs order by published_at desc limit 1"
        ).fetchone()
        expected = {
            (str(period), float(value)) for period, value in con.execute(
                "select period_start, value from kpi_values where scope = 'company' "
                "and kpi_id = ?", [kpi_id],
            ).fetchall()
        }
    mf = Path(sys.executable).with_name("mf")
    env = {**os.environ, DBT_DATABASE_ENV: str(warehouse / "warehouse.duckdb")}
    project = tmp_path / "dbt_project"
    shutil.copytree(prepared_dbt_project().project_dir, project)
    # MetricFlow reads target/semantic_manifest.json: the build's, not the install's
    build = warehouse / "dbt_runs" / run_id
    for artifact in ("semantic_manifest.json", "manifest.json"):
        shutil.copy2(build / artifact, project / "target" / artifact)
    result = subprocess.run(
        [str(mf), "query", "--metrics", "kpi_value",
         "--group-by", "kpi_value__kpi_id,metric_time__month",
         "--where", "{{ Dimension('kpi_value__scope') }} = 'company'",
         "--csv", str(warehouse / "mf.csv")],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    with (warehouse / "mf.csv").open(newline="") as handle:
        answered = {
            (row["metric_time__month"][:10], float(row["kpi_value"]))
            for row in csv.DictReader(handle) if row["kpi_value__kpi_id"] == kpi_id
        }
    assert answered == expected and len(expected) > 3
