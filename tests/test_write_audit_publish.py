"""Write–audit–publish, rule by rule ("Consistency rules" of the definitions; MARTS.md "Where").

A build is audited before anything is published: rules 1, 2 (above `max_order_breaches`), 3, 5
and 6, and the EUR rule for revenue, stop the publication and leave the published file as it
was; rule 4 and a few stage-order breaches only warn, and the marts still publish. Readers of
`<warehouse>/marts.duckdb` are never blocked by a run and never see half of one, and the
published file keeps one entry set per published run.

Real job runs are few (they are slow): a first good run and a second run over the same input
(with a reader attached) on one warehouse, and one tampered-data run on a copy of that
warehouse whose delivery breaks both rules that data can break (rule 2 and the EUR rule): its
checks fail for both reasons at once, and each rule's test reads its own failure. The rules
that hold by construction are broken on a copy of the build database and audited with the
real GX suites (`run_quality_checks`).

The sample is generated at scale 0.2: rule 2 must see a single breach stay below 1 % of the
sales leads, which needs more than 100 of them (scale 0.1 has about 60).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import held_for_writing, wait_for

from pipelines import job_runner
from pipelines.audit import stage_previous_publication
from pipelines.cli import main
from pipelines.job_runner import JobOutcome
from pipelines.publish import (
    PUBLISHED_TABLES,
    Published,
    PublishedFileLocked,
    RunRecord,
    publish_marts,
    published_database,
    published_parquet,
    published_state,
    write_marts_ahead,
)
from pipelines.quality.checks import CheckOutcome
from pipelines.quality.run_checks import run_quality_checks
from pipelines.sample import generate_sample
from pipelines.settings import PROJECT_ROOT, Settings, SettingsError

SCALE = 0.2
SEED = 7
# The agreed thresholds, restated from the definitions (not read from the code).
MAX_ORDER_BREACHES = 0.01
MAX_LABEL_DISAGREEMENT = 0.05
MIN_LABELS_JUDGED = 20
HABITUAL_MISLABELLERS = {"USR-0005", "USR-0011"}

# Deliveries this module adds after the sample's last one (2026-11-26T0200).
BREACH_DELIVERY = "2026-11-26T1200"
TAMPERED_DELIVERY = "2026-11-27T0200"
# The one sales lead whose quote went out before its deal was created (in every run).
BREACHING_CONTACT = "CON-WAP-0001"
# The won deal in a currency without a rate (the blocked run's).
DEAL_WITHOUT_RATE = "DEAL-WAP-0002"
BLOCKING = ("lead_stages", "stage_order", "marketing_leads_qualified",
            "classification_stability", "kpi_sanity", "kpi_reconciliation", "revenue_in_eur")
HISTORY_TABLES = ("runs", "dim_leads_history", "kpi_scorecard_history")

pytestmark = pytest.mark.slow


# --- running the job through the CLI --------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    stdout: str
    stderr: str
    outcome: JobOutcome

    @property
    def failed_checks(self) -> set[str]:
        return _check_names(self.outcome.failures)

    @property
    def warned_checks(self) -> set[str]:
        return _check_names(self.outcome.warnings)


def _check_names(messages: list[str]) -> set[str]:
    """The checks named by JobOutcome messages (any other failure, e.g. of a step, as is)."""
    return {m.split()[1] if m.startswith("check ") else m for m in messages}


def run_cli(landing: Path, warehouse: Path) -> CliRun:
    """`sales-kpi run --extracts landing --warehouse warehouse`, with its output and the
    JobOutcome the CLI got from `run_nightly_job`."""
    outcomes: list[JobOutcome] = []
    real = job_runner.run_nightly_job

    def recording(*args, **kwargs) -> JobOutcome:
        outcome = real(*args, **kwargs)
        outcomes.append(outcome)
        return outcome

    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        patch.setattr(job_runner, "run_nightly_job", recording)
        # the dashboard and auditor's pack are not what is audited here (test_reporting pins
        # that every publication writes them); without them a run is about half as long
        patch.setenv("SALES_KPI_WRITE_SITE", "false")
        # --force: these runs are the job under test, even on files already loaded
        code = main(["run", "--extracts", str(landing), "--warehouse", str(warehouse),
                     "--force"])
    assert len(outcomes) == 1, (code, err.getvalue()[-3000:])
    return CliRun(code, out.getvalue(), err.getvalue(), outcomes[0])


# --- the published file -----------------------------------------------------------------------


def published(warehouse: Path) -> Path:
    return warehouse / "marts.duckdb"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parquet_fingerprint(warehouse: Path) -> dict[str, str]:
    """What `<warehouse>/parquet` points at, and the bytes of every file behind it."""
    link = warehouse / "parquet"
    files = {p.name: _sha(p) for p in sorted(link.resolve().iterdir())}
    return {"->": str(link.readlink()), **files}


def published_query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of `sql` on a fresh read-only connection to the published file (catalog `marts`)."""
    with duckdb.connect(str(published(warehouse)), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def history(warehouse: Path) -> dict[str, dict[str, int]]:
    """Per history table of the published file: rows per run_id."""
    return {
        table: dict(published_query(
            warehouse, f"select run_id, count(*) from marts.{table} group by run_id"
        ))
        for table in HISTORY_TABLES
    }


# --- deliveries -------------------------------------------------------------------------------


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_delivery(landing: Path, delivery: str, files: dict[str, list[dict[str, str]]]) -> None:
    folder = landing / delivery
    folder.mkdir(parents=True)
    for entity, rows in files.items():
        with (folder / f"{entity}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def _first_row(landing: Path, entity: str, accept: Callable[[dict[str, str]], bool]) -> dict:
    full_delivery = sorted(p for p in landing.iterdir() if p.is_dir())[0]
    with (full_delivery / f"{entity}.csv").open(encoding="utf-8") as handle:
        return next(row for row in csv.DictReader(handle) if accept(row))


def new_sales_lead(
    landing: Path, contact_id: str, deal_id: str, *, stage: str, currency: str,
    created_at: datetime, closed_at: datetime | None = None,
) -> dict[str, list[dict[str, str]]]:
    """A new contact, and the new_business deal that makes it a sales lead (definitions, lead
    stages 2), owned by an account executive of the sample, at a company of the sample."""
    owner = _first_row(landing, "users", lambda r: r["role"] == "ae")["user_id"]
    company = _first_row(landing, "companies", lambda r: True)["company_id"]
    contact = {
        "contact_id": contact_id, "company_id": company,
        "email": f"{contact_id.lower()}@{company.lower()}.example", "first_name": "Wap",
        "last_name": contact_id, "job_title": "Directeur", "owner_user_id": owner,
        "created_at": _text(created_at - timedelta(days=30)),
        "updated_at": _text(created_at - timedelta(days=30)), "is_deleted": "false",
    }
    deal = {
        "deal_id": deal_id, "contact_id": contact_id, "company_id": company,
        "owner_user_id": owner, "deal_type": "new_business", "stage": stage,
        "amount": "120000.00", "currency": currency, "created_at": _text(created_at),
        "closed_at": _text(closed_at) if closed_at else "", "lost_reason": "",
        "updated_at": _text(closed_at or created_at), "is_deleted": "false",
    }
    return {"contacts": [contact], "deals": [deal]}


def quote_sent_before(quote_id: str, deal_id: str, deal_created_at: datetime) -> dict[str, str]:
    """A non-draft quote sent a day before its deal was created (a stage-order breach)."""
    return {
        "quote_id": quote_id, "deal_id": deal_id, "status": "sent", "amount": "1000.00",
        "currency": "EUR", "created_at": _text(deal_created_at - timedelta(days=2)),
        "sent_at": _text(deal_created_at - timedelta(days=1)),
        "updated_at": _text(deal_created_at - timedelta(days=1)), "is_deleted": "false",
    }


# --- module fixtures: the sample and the real runs ------------------------------------------


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated sample, plus one delivery with one sales lead whose quote was sent the day
    before its deal was created: a single stage-order breach (< 1 % of the sales leads)."""
    landing = tmp_path_factory.mktemp("landing")
    generate_sample(landing, scale=SCALE, seed=SEED)
    created = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    files = new_sales_lead(
        landing, BREACHING_CONTACT, "DEAL-WAP-0001", stage="proposal", currency="EUR",
        created_at=created,
    )
    files["quotes"] = [quote_sent_before("QUO-WAP-0001", "DEAL-WAP-0001", created)]
    write_delivery(landing, BREACH_DELIVERY, files)
    return landing


@dataclass(frozen=True)
class FirstRun:
    run: CliRun
    warehouse: Path
    build_copy: Path  # warehouse.duckdb and marts.duckdb as the first run left them


@pytest.fixture(scope="module")
def first_run(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    warehouse = tmp_path_factory.mktemp("warehouse")
    run = run_cli(landing, warehouse)
    assert run.exit_code == 0, run.stderr[-3000:]
    build_copy = tmp_path_factory.mktemp("build_after_first_run")
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal", "marts.duckdb"):
        if (warehouse / name).exists():
            shutil.copy2(warehouse / name, build_copy / name)
    return FirstRun(run, warehouse, build_copy)


READER = """
import sys, time
from pathlib import Path
import duckdb

path, stop, seconds = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + seconds
con = duckdb.connect(path, read_only=True)
while not stop.exists() and time.monotonic() < deadline:
    try:
        count, last = con.execute(
            "select count(*), max(run_id) from marts.runs"
        ).fetchone()
        print(f"ok {count} {last}", flush=True)
    except Exception as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
    time.sleep(0.2)
con.close()
print("closed", flush=True)
"""


@dataclass(frozen=True)
class ReadDuringRun:
    lines_before_run: list[str]
    lines_during_run: list[str]
    lines_after_run: list[str]
    exit_code: int | None


@dataclass(frozen=True)
class SecondRun:
    run: CliRun
    reader: ReadDuringRun


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture(scope="module")
def second_run(first_run: FirstRun, landing: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> SecondRun:
    """The same input again, on the same warehouse, while another process has the published
    file open read-only and queries it every 0.2 s."""
    folder = tmp_path_factory.mktemp("reader")
    output, stop = folder / "reader.out", folder / "stop"
    with output.open("w", encoding="utf-8") as handle:
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(published(first_run.warehouse)), str(stop), "900"],
            stdout=handle, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: bool(_lines(output)), 30, "the reader's first query")
        before = len(_lines(output))
        run = run_cli(landing, first_run.warehouse)
        during = len(_lines(output))
        # the open connection keeps being queried after the publication
        wait_for(lambda: len(_lines(output)) >= during + 3, 10, "the reader after the run")
        stop.touch()
        exit_code = reader.wait(timeout=15)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    lines = _lines(output)
    return SecondRun(
        run, ReadDuringRun(lines[:before], lines[before:during], lines[during:], exit_code)
    )


@dataclass(frozen=True)
class TamperedRun:
    run: CliRun
    warehouse: Path
    tampered_keys: list[str]
    published_sha_before: str
    parquet_before: dict[str, str]
    history_before: dict[str, dict[str, int]]


def tampered_run(
    first_run: FirstRun, landing: Path, root: Path,
    tamper: Callable[[Path, Path], tuple[dict[str, list[dict[str, str]]], list[str]]],
) -> TamperedRun:
    """Copy the published warehouse and the landing folder, add the delivery `tamper(landing
    copy, warehouse copy)` returns, and run the job on the copies."""
    warehouse, extracts = root / "warehouse", root / "landing"
    shutil.copytree(first_run.warehouse, warehouse, symlinks=True)
    shutil.copytree(landing, extracts)
    files, keys = tamper(extracts, warehouse)
    write_delivery(extracts, TAMPERED_DELIVERY, files)
    sha, parquet, before = (
        _sha(published(warehouse)), parquet_fingerprint(warehouse), history(warehouse)
    )
    return TamperedRun(run_cli(extracts, warehouse), warehouse, keys, sha, parquet, before)


def _quotes_before_their_deals(landing: Path, warehouse: Path
                               ) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
    """Quotes sent before the creation of their deal, for the sales-lead deals of more than
    1 % of the sales leads (ids and creation times read from the build, read-only)."""
    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        sales_leads = con.execute(
            "select count(*) from marts.dim_leads where sales_lead_at is not null"
        ).fetchone()[0]
        wanted = max(2, math.ceil(2 * MAX_ORDER_BREACHES * sales_leads))
        deals = con.execute(
            "select leads.contact_id, deals.deal_id, deals.created_at "
            "from marts.dim_leads as leads "
            "inner join marts.fct_deals as deals on leads.sales_lead_deal_id = deals.deal_id "
            "where leads.contact_id <> ? order by leads.contact_id limit ?",
            [BREACHING_CONTACT, wanted],
        ).fetchall()
    assert len(deals) == wanted
    assert (len(deals) + 1) / sales_leads > MAX_ORDER_BREACHES
    quotes = [
        quote_sent_before(f"QUO-WAP-1{i:03d}", deal_id, created_at)
        for i, (_contact, deal_id, created_at) in enumerate(deals)
    ]
    return {"quotes": quotes}, [contact for contact, _deal, _created in deals]


def _won_deal_in_a_currency_without_rate(landing: Path, warehouse: Path
                                         ) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
    files = new_sales_lead(
        landing, "CON-WAP-0002", DEAL_WITHOUT_RATE, stage="closed_won", currency="JPY",
        created_at=datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
        closed_at=datetime(2026, 8, 3, 15, 0, tzinfo=UTC),
    )
    return files, [DEAL_WITHOUT_RATE]


def _stage_order_breaches_and_a_won_deal_without_rate(
    landing: Path, warehouse: Path
) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
    """Both blocking inputs in one delivery: quotes sent before their deals for more than 1 %
    of the sales leads (rule 2), and a won deal in a currency without a rate (the EUR rule).
    Neither touches what the other checks: the new deal has no quote, and the quotes' deals
    are the sample's, all in currencies with a rate."""
    quotes, contacts = _quotes_before_their_deals(landing, warehouse)
    fx_files, deals = _won_deal_in_a_currency_without_rate(landing, warehouse)
    return {**fx_files, **quotes}, contacts + deals


# The checks the blocked run's delivery breaks, and nothing else.
BLOCKED_BY = {"stage_order", "revenue_in_eur"}


@pytest.fixture(scope="module")
def blocked_run(first_run: FirstRun, landing: Path,
                tmp_path_factory: pytest.TempPathFactory) -> TamperedRun:
    """One run whose checks fail for two reasons at once (rule 2 above its threshold and the
    EUR rule): each blocking rule's test reads its own failure here, and that nothing was
    published — one job run instead of one per rule."""
    return tampered_run(first_run, landing, tmp_path_factory.mktemp("blocked_run"),
                        _stage_order_breaches_and_a_won_deal_without_rate)


# --- auditing a tampered copy of the build --------------------------------------------------


@dataclass(frozen=True)
class Audit:
    outcomes: dict[str, CheckOutcome]

    def assert_blocks(self, check: str, offender: str | None = None) -> CheckOutcome:
        """`check` fails (naming `offender` among its first offending keys) and every other
        blocking check passes."""
        outcome = self.outcomes[check]
        assert outcome.check.blocking
        assert not outcome.passed, outcome.describe()
        if offender is not None:
            assert offender in outcome.first_offenders, outcome.describe()
        others = [
            o.describe() for o in self.outcomes.values()
            if o.check.blocking and o.check.name != check and not o.passed
        ]
        assert others == []
        return outcome


def audit_tampered_copy(
    first_run: FirstRun, landing: Path, tmp_path: Path,
    tamper: Callable[[duckdb.DuckDBPyConnection, Settings], str | None],
) -> tuple[Audit, str | None]:
    """Copy the first run's build (and its published file), let `tamper` change the copy, and
    validate every GX suite against it, as the audit step does."""
    folder = tmp_path / "warehouse"
    shutil.copytree(first_run.build_copy, folder)
    settings = Settings.from_env().replace(extracts_dir=landing, warehouse_dir=folder)
    with duckdb.connect(str(settings.raw_database)) as con:
        key = tamper(con, settings)
    outcomes = run_quality_checks(settings)
    assert {o.check.name for o in outcomes} >= set(BLOCKING)
    return Audit({o.check.name: o for o in outcomes}), key


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> tuple:
    row = con.execute(sql, list(params)).fetchone()
    assert row is not None, f"the sample has no row for: {sql}"
    return row


# === 1. Each blocking rule fails on purpose, and publishing is refused with the old marts ====


def test_rule_2_stage_order_above_max_order_breaches_blocks_publishing(
    blocked_run: TamperedRun,
) -> None:
    run = blocked_run.run
    assert run.exit_code != 0
    # rule 2 failed, and nothing but the rules this run's delivery breaks
    assert "stage_order" in run.failed_checks, run.outcome.failures
    assert run.failed_checks == BLOCKED_BY, run.outcome.failures
    assert "check stage_order on marts/dim_leads" in run.stderr
    breaching = [key for key in blocked_run.tampered_keys if key != DEAL_WITHOUT_RATE]
    assert len(breaching) >= 2
    for contact in breaching:
        assert contact in run.stderr, contact
    assert "the published marts were left as they were" in run.stderr
    warehouse = blocked_run.warehouse
    assert _sha(published(warehouse)) == blocked_run.published_sha_before
    assert parquet_fingerprint(warehouse) == blocked_run.parquet_before


def _breaches_without_a_sales_lead_just_above_the_threshold(
    con: duckdb.DuckDBPyConnection, settings: Settings
) -> str:
    """Contacts without a sales_lead_at given a breach (a quote sent before its own deal was
    created: an upsell deal's contact, say), as many as take the breaching contacts just
    past max_order_breaches of the contacts with a sales_lead_at — and not past it when only
    breaching sales leads count."""
    sales_leads, breaching = _one(
        con,
        "select count(sales_lead_at), count(*) filter (where has_order_breach) "
        "from marts.dim_leads",
    )
    allowed = int(settings.max_order_breaches * sales_leads)
    added = allowed - breaching + 1
    assert added > 0
    contacts = [contact for (contact,) in con.execute(
        "select contact_id from marts.dim_leads where sales_lead_at is null "
        "and not has_order_breach order by contact_id limit ?", [added],
    ).fetchall()]
    assert len(contacts) == added
    con.execute(
        "update marts.dim_leads set has_order_breach = true, order_breach = 'quote q sent "
        "before its deal d was created' where list_contains(?, contact_id)", [contacts],
    )
    return contacts[0]


def test_rule_2_breaching_contacts_without_a_sales_lead_count_towards_the_threshold(
    first_run: FirstRun, landing: Path, tmp_path: Path
) -> None:
    """Rule 2 stops publishing when *the contacts with at least one breach* exceed
    max_order_breaches of the contacts with a sales_lead_at: a breaching contact without a
    sales lead counts too (the check counted breaching sales leads only)."""
    audit, contact = audit_tampered_copy(
        first_run, landing, tmp_path, _breaches_without_a_sales_lead_just_above_the_threshold
    )
    audit.assert_blocks("stage_order", contact)
    assert not audit.outcomes["stage_order_breaches"].passed
    assert contact in audit.outcomes["stage_order_breaches"].first_offenders


def test_revenue_in_eur_a_won_deal_without_fx_rate_blocks_publishing(
    blocked_run: TamperedRun,
) -> None:
    run = blocked_run.run
    assert run.exit_code != 0
    # the EUR rule failed, and nothing but the rules this run's delivery breaks
    assert "revenue_in_eur" in run.failed_checks, run.outcome.failures
    assert run.failed_checks == BLOCKED_BY, run.outcome.failures
    assert "check revenue_in_eur on marts/fct_deals" in run.stderr
    assert DEAL_WITHOUT_RATE in run.stderr
    assert "the published marts were left as they were" in run.stderr
    assert _sha(published(blocked_run.warehouse)) == blocked_run.published_sha_before
    assert parquet_fingerprint(blocked_run.warehouse) == blocked_run.parquet_before


def _stage_outside_the_agreed_set(con: duckdb.DuckDBPyConnection, _: Settings) -> str:
    contact = _one(con, "select min(contact_id) from marts.dim_leads where stage = 'none'")[0]
    con.execute("update marts.dim_leads set stage = 'lead' where contact_id = ?", [contact])
    return contact


def _live_contact_without_stage(con: duckdb.DuckDBPyConnection, _: Settings) -> None:
    contact = _one(con, "select min(contact_id) from marts.dim_leads")[0]
    con.execute("delete from marts.dim_leads where contact_id = ?", [contact])


@pytest.mark.parametrize(
    ("tamper", "expectation"),
    [
        pytest.param(_stage_outside_the_agreed_set, "expect_column_values_to_be_in_set(stage)",
                     id="a stage outside the agreed set"),
        pytest.param(_live_contact_without_stage,
                     "expect_column_pair_values_to_be_equal(live_contacts,classified_contacts)",
                     id="a live contact left out of dim_leads"),
    ],
)
def test_rule_1_lead_stages_blocks_a_contact_without_exactly_one_agreed_stage(
    first_run: FirstRun, landing: Path, tmp_path: Path,
    tamper: Callable[[duckdb.DuckDBPyConnection, Settings], str | None], expectation: str,
) -> None:
    audit, contact = audit_tampered_copy(first_run, landing, tmp_path, tamper)
    outcome = audit.assert_blocks("lead_stages", contact)
    assert any(f.startswith(expectation) for f in outcome.failing_expectations), outcome.describe()


def _qualified_by_a_non_intent_event(con: duckdb.DuckDBPyConnection, _: Settings) -> str:
    contact, event = _one(
        con,
        """
        select leads.contact_id, min(events.event_id)
        from marts.dim_leads as leads
        inner join staging.stg_crm__marketing_events as events using (contact_id)
        inner join definitions.intent_event_types as types using (event_type)
        where leads.marketing_lead_at is not null and not types.is_intent
        group by leads.contact_id order by leads.contact_id limit 1
        """,
    )
    con.execute("update marts.dim_leads set qualifying_event_id = ? where contact_id = ?",
                [event, contact])
    return contact


def _marketing_lead_not_fit(con: duckdb.DuckDBPyConnection, _: Settings) -> str:
    contact = _one(
        con, "select min(contact_id) from marts.dim_leads where marketing_lead_at is not null"
    )[0]
    con.execute("update marts.dim_leads set is_fit = false where contact_id = ?", [contact])
    return contact


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_qualified_by_a_non_intent_event, id="a non-intent qualifying event"),
        pytest.param(_marketing_lead_not_fit, id="a contact that is not fit"),
    ],
)
def test_rule_3_marketing_leads_qualified_blocks_an_unqualified_marketing_lead(
    first_run: FirstRun, landing: Path, tmp_path: Path,
    tamper: Callable[[duckdb.DuckDBPyConnection, Settings], str],
) -> None:
    audit, contact = audit_tampered_copy(first_run, landing, tmp_path, tamper)
    audit.assert_blocks("marketing_leads_qualified", contact)


def _stage_previous(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """Stage the first run's publication as the previous one, as the audit step does, and
    return a sales lead that is comparable with it (same inputs fingerprint)."""
    previous = stage_previous_publication(
        con, settings.warehouse_dir, "re-run-of-the-same-input", settings.run_settings()
    )
    assert previous is not None
    return _one(
        con,
        """
        select min(current_leads.contact_id)
        from marts.dim_leads as current_leads
        inner join audit.previous_dim_leads as previous_leads using (contact_id)
        where current_leads.inputs_fingerprint = previous_leads.inputs_fingerprint
          and current_leads.sales_lead_at is not null
        """,
    )[0]


def _previous_stage_differs(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    contact = _stage_previous(con, settings)
    con.execute("update audit.previous_dim_leads set stage = 'marketing_lead' "
                "where contact_id = ?", [contact])
    return contact


def _previous_stage_timestamp_differs(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    contact = _stage_previous(con, settings)
    con.execute("update audit.previous_dim_leads set sales_lead_at = sales_lead_at - "
                "interval 1 day where contact_id = ?", [contact])
    return contact


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_previous_stage_differs, id="another stage"),
        pytest.param(_previous_stage_timestamp_differs, id="another sales_lead_at"),
    ],
)
def test_rule_5_classification_stability_blocks_a_changed_classification_of_unchanged_inputs(
    first_run: FirstRun, landing: Path, tmp_path: Path,
    tamper: Callable[[duckdb.DuckDBPyConnection, Settings], str],
) -> None:
    audit, contact = audit_tampered_copy(first_run, landing, tmp_path, tamper)
    outcome = audit.assert_blocks("classification_stability", contact)
    assert outcome.first_offenders == [contact]
    assert outcome.evaluated_rows > 1  # every other comparable contact stayed stable


KPI_KEY = "kpi_id, scope, scope_id, period_start"


def _key(row: tuple) -> str:
    return "/".join(str(v) for v in row)


def _conversion_rate_above_one(con: duckdb.DuckDBPyConnection, _: Settings) -> str:
    key = _one(con, f"select {KPI_KEY} from marts.kpi_values where kpi_id like 'conv_%' "
                    f"and value is not null order by {KPI_KEY} limit 1")
    con.execute(f"update marts.kpi_values set value = 1.5 where ({KPI_KEY}) = (?, ?, ?, ?)",
                list(key))
    return _key(key)


def _kpi_key_twice(con: duckdb.DuckDBPyConnection, _: Settings) -> str:
    key = _one(con, f"select {KPI_KEY} from marts.kpi_values "
                    f"where kpi_id = 'new_sales_leads' order by {KPI_KEY} limit 1")
    con.execute(f"insert into marts.kpi_values select * from marts.kpi_values "
                f"where ({KPI_KEY}) = (?, ?, ?, ?)", list(key))
    return _key(key)


def _period_missing_from_a_zero_filled_series(con: duckdb.DuckDBPyConnection, _: Settings) -> str:
    """A rep's week with 0 cold calls, in the middle of its series, goes missing (the week's
    facts, none, still reconcile: only the zero-filling is broken)."""
    rep, week = _one(con, """
        select scope_id, period_start from marts.kpi_values as v
        where kpi_id = 'cold_calls' and scope = 'rep' and value = 0
          and period_start > (select min(period_start) from marts.kpi_values as w
                              where w.kpi_id = v.kpi_id and w.scope = v.scope
                                and w.scope_id = v.scope_id)
          and period_start < (select max(period_start) from marts.kpi_values as w
                              where w.kpi_id = v.kpi_id and w.scope = v.scope
                                and w.scope_id = v.scope_id)
        order by scope_id, period_start limit 1
    """)
    con.execute("delete from marts.kpi_values where kpi_id = 'cold_calls' and scope = 'rep' "
                "and scope_id = ? and period_start = ?", [rep, week])
    first = _one(con, "select min(period_start) from marts.kpi_values where kpi_id = "
                      "'cold_calls' and scope = 'rep' and scope_id = ?", [rep])[0]
    return _key(("cold_calls", "rep", rep, first))


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_conversion_rate_above_one, id="a conversion rate of 1.5"),
        pytest.param(_kpi_key_twice, id="a KPI key twice"),
        pytest.param(_period_missing_from_a_zero_filled_series, id="a missing period"),
    ],
)
def test_rule_6_kpi_sanity_blocks_insane_kpi_values(
    first_run: FirstRun, landing: Path, tmp_path: Path,
    tamper: Callable[[duckdb.DuckDBPyConnection, Settings], str],
) -> None:
    audit, key = audit_tampered_copy(first_run, landing, tmp_path, tamper)
    audit.assert_blocks("kpi_sanity", key)


def test_revenue_in_eur_blocks_a_negative_eur_amount(
    first_run: FirstRun, landing: Path, tmp_path: Path
) -> None:
    def negative_amount(con: duckdb.DuckDBPyConnection, _: Settings) -> str:
        # an open deal: no KPI counts it, so only this rule sees the change
        deal = _one(con, "select min(deal_id) from marts.fct_deals "
                         "where amount_eur > 0 and not is_won")[0]
        con.execute("update marts.fct_deals set amount_eur = -amount_eur where deal_id = ?",
                    [deal])
        return deal

    audit, deal = audit_tampered_copy(first_run, landing, tmp_path, negative_amount)
    outcome = audit.assert_blocks("revenue_in_eur", deal)
    assert outcome.first_offenders == [deal]


def _a_sales_lead_falls_out_of_the_company_value(
    con: duckdb.DuckDBPyConnection, _: Settings
) -> str:
    """What v1 did to early marketing leads: the company's value misses a fact."""
    key = _one(con, f"select {KPI_KEY} from marts.kpi_values where kpi_id = 'new_sales_leads' "
                    f"and scope = 'company' order by value desc, period_start limit 1")
    con.execute(f"update marts.kpi_values set value = value - 1, numerator = numerator - 1 "
                f"where ({KPI_KEY}) = (?, ?, ?, ?)", list(key))
    return _key(key)


def _a_team_is_not_the_sum_of_its_reps(con: duckdb.DuckDBPyConnection, _: Settings) -> str:
    key = _one(con, f"select {KPI_KEY} from marts.kpi_values where kpi_id = 'cold_emails' "
                    f"and scope = 'team' and value > 0 order by {KPI_KEY} limit 1")
    con.execute(f"update marts.kpi_values set value = value + 1, numerator = numerator + 1 "
                f"where ({KPI_KEY}) = (?, ?, ?, ?)", list(key))
    return _key(key)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_a_sales_lead_falls_out_of_the_company_value, id="a fact falls out"),
        pytest.param(_a_team_is_not_the_sum_of_its_reps, id="a team is not its reps' sum"),
    ],
)
def test_facts_reconcile_kpi_reconciliation_blocks_a_fact_that_falls_out_of_a_kpi(
    first_run: FirstRun, landing: Path, tmp_path: Path,
    tamper: Callable[[duckdb.DuckDBPyConnection, Settings], str],
) -> None:
    audit, key = audit_tampered_copy(first_run, landing, tmp_path, tamper)
    audit.assert_blocks("kpi_reconciliation", key)


def test_facts_reconcile_on_an_untampered_build(first_run: FirstRun) -> None:
    assert first_run.run.exit_code == 0
    with duckdb.connect(str(first_run.build_copy / "warehouse.duckdb"), read_only=True) as con:
        rows, unreconciled = con.execute(
            "select count(*), count(*) filter (where not is_reconciled) from ("
            + (PROJECT_ROOT / "expectations" / "queries" / "kpi_reconciliation.sql").read_text()
            + ")"
        ).fetchone()
    assert rows > 1000 and unreconciled == 0


# === 2. A warning-only run still publishes =================================================


def test_rule_4_label_agreement_warns_about_habitual_mislabellers_and_still_publishes(
    first_run: FirstRun,
) -> None:
    run, warehouse = first_run.run, first_run.warehouse
    assert run.exit_code == 0 and run.outcome.success
    assert "label_agreement" in run.warned_checks
    assert published_query(warehouse, "select max(run_id) from marts.runs") == [
        (run.outcome.run_id,)
    ]
    judged = published_query(
        warehouse,
        "select crm_label_set_by, count(*), count(*) filter (where not crm_label_consistent) "
        "from marts.dim_leads where crm_label_consistent is not null group by all",
    )
    expected = {
        labeller for labeller, labels, inconsistent in judged
        if labels >= MIN_LABELS_JUDGED and inconsistent / labels > MAX_LABEL_DISAGREEMENT
    }
    assert expected == HABITUAL_MISLABELLERS
    flagged = published_query(
        warehouse, "select labeller from marts.label_consistency where exceeds_threshold"
    )
    assert {labeller for (labeller,) in flagged} == expected
    named = set(re.findall(r"^warning: labeller (\S+):", run.stdout, flags=re.MULTILINE))
    assert named == expected


def test_rule_2_a_few_stage_order_breaches_warn_and_still_publish(first_run: FirstRun) -> None:
    run, warehouse = first_run.run, first_run.warehouse
    assert run.exit_code == 0
    assert "stage_order" not in run.failed_checks
    assert "stage_order_breaches" in run.warned_checks
    assert re.search(rf"^warning: check stage_order_breaches .*{BREACHING_CONTACT}",
                     run.stdout, flags=re.MULTILINE), run.stdout[-3000:]
    breaching = published_query(
        warehouse,
        """
        select leads.contact_id
        from marts.dim_leads as leads
        where leads.sales_lead_at is not null and (
            coalesce(leads.marketing_lead_at > leads.sales_lead_at, false)
            or coalesce(leads.sales_lead_at > leads.customer_at, false)
            or coalesce(leads.sales_lead_at > leads.quote_at, false)
            or leads.contact_id in (
                select contact_id from marts.fct_deals
                where first_quote_sent_at < created_at
            )
        )
        """,
    )
    sales_leads = published_query(
        warehouse, "select count(*) from marts.dim_leads where sales_lead_at is not null"
    )[0][0]
    assert breaching == [(BREACHING_CONTACT,)]
    assert 0 < len(breaching) / sales_leads <= MAX_ORDER_BREACHES


# === 3. Running twice on the same input passes the stability rule ==========================


def _validation(warehouse: Path, suite: str, run_id: str) -> dict:
    files = list((warehouse / "quality" / "validations" / suite / run_id).glob("*/*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text(encoding="utf-8"))


def test_rule_5_running_twice_on_the_same_input_passes_classification_stability(
    first_run: FirstRun, second_run: SecondRun
) -> None:
    run, warehouse = second_run.run, first_run.warehouse
    assert run.exit_code == 0, run.stderr[-3000:]
    assert "classification_stability" not in run.failed_checks
    result = _validation(warehouse, "classification_stability", run.outcome.run_id)
    assert result["success"] is True
    assert result["results"][0]["result"]["element_count"] > 0
    contacts = published_query(warehouse, "select count(*) from marts.dim_leads")[0][0]
    assert result["results"][0]["result"]["element_count"] == contacts

    run_ids = [r[0] for r in published_query(
        warehouse, "select run_id from marts.runs order by published_at"
    )]
    assert run_ids == [first_run.run.outcome.run_id, run.outcome.run_id]
    docs = warehouse / "quality" / "data_docs"
    index = (docs / "index.html").read_text(encoding="utf-8")
    for run_id in run_ids:
        assert run_id in index
        assert list((docs / "validations" / "classification_stability" / run_id).glob("*/*.html"))


# === 4. Readers are never blocked by a run and never see half of one ========================


def test_a_read_only_reader_is_never_blocked_and_sees_only_whole_publications(
    first_run: FirstRun, second_run: SecondRun
) -> None:
    first_id, second_id = first_run.run.outcome.run_id, second_run.run.outcome.run_id
    reader = second_run.reader
    assert second_run.run.exit_code == 0, second_run.run.stderr[-3000:]
    assert reader.exit_code == 0
    lines = reader.lines_before_run + reader.lines_during_run + reader.lines_after_run
    assert lines[-1] == "closed"
    answers = lines[:-1]
    assert not [line for line in answers if not line.startswith("ok ")], answers
    # the open connection kept seeing the old publication, before, during and after the run
    assert set(answers) == {f"ok 1 {first_id}"}
    assert len(reader.lines_during_run) >= 10  # it was really reading while the job ran
    assert published_query(first_run.warehouse, "select run_id from marts.runs "
                           "order by published_at") == [(first_id,), (second_id,)]



def test_a_reader_holding_the_published_file_for_writing_is_named_with_what_to_do(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A reader that opens the published file for writing (the DuckDB CLI's default) holds
    DuckDB's lock on it, and a run cannot read the last publication's history through it.
    Said as such — which program holds it, and that readers open it read-only — where
    DuckDB's own words were "Could not set lock on file … Conflicting lock is held"."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    path = published_database(target.warehouse)
    with held_for_writing(path) as holder:
        with duckdb.connect() as con, pytest.raises(PublishedFileLocked) as raised:
            stage_previous_publication(con, target.warehouse, "B", {})
        # the closing summary of the run that failed on it still says what is published
        assert published_state(target.warehouse, "B").endswith(
            "could not be read to say (open for writing in another program)"
        )
    message = str(raised.value)
    assert f"PID {holder.pid}" in message
    assert "open for writing" in message and "read-only" in message
    assert "Conflicting lock" not in message
    assert target.publish("B").tables  # closed, the next run publishes as ever

# === 5. The published file keeps one entry set per published run ===========================


def test_published_history_keeps_every_published_runs_copy_under_its_run_id(
    first_run: FirstRun, second_run: SecondRun, blocked_run: TamperedRun,
) -> None:
    """Every published run's classification and scorecard are kept with its run_id (the marts
    contract): the second run (same input) reported exactly what the first did and still has
    its own copy, so an auditor who filters by its run_id finds it. A blocked run adds
    nothing."""
    warehouse = first_run.warehouse
    first, second = first_run.run.outcome.run_id, second_run.run.outcome.run_id
    contacts, scorecard = published_query(
        warehouse,
        "select (select count(*) from marts.dim_leads), "
        "(select count(*) from marts.kpi_scorecard)",
    )[0]
    assert contacts > 0 and scorecard > 0
    assert history(warehouse) == {
        "runs": {first: 1, second: 1},
        "dim_leads_history": {first: contacts, second: contacts},
        "kpi_scorecard_history": {first: scorecard, second: scorecard},
    }
    assert dict(published_query(warehouse, "select run_id, history_kept from marts.runs")) == {
        first: True, second: True,
    }
    failed = blocked_run
    assert failed.run.exit_code != 0
    assert history(failed.warehouse) == failed.history_before
    assert failed.run.outcome.run_id not in history(failed.warehouse)["runs"]


@dataclass(frozen=True)
class Publisher:
    """A copy of the first run's build and an empty warehouse to publish it into, by hand."""

    build: Path
    warehouse: Path
    history_runs_kept: int

    def publish(self, run_id: str) -> Published:
        return publish_marts(self.build, self.warehouse, RunRecord(run_id, None, "v1.1", {}, 1),
                             "1GB", history_runs_kept=self.history_runs_kept)


def publisher(first_run: FirstRun, folder: Path, history_runs_kept: int = 0) -> Publisher:
    build = folder / "warehouse.duckdb"
    shutil.copy2(first_run.build_copy / "warehouse.duckdb", build)
    warehouse = folder / "published"
    warehouse.mkdir()
    return Publisher(build, warehouse, history_runs_kept)


def test_the_marts_are_copied_for_publication_while_the_checks_run(first_run: FirstRun) -> None:
    """The W of write–audit–publish runs beside the A: the checks step's child copied the
    marts into the run's candidate, the publication swapped that candidate in (its log says
    which way it went), and nothing of the candidate is left beside the published file."""
    warehouse, run_id = first_run.warehouse, first_run.run.outcome.run_id
    log = (warehouse / "logs" / f"run-{run_id}.log").read_text(encoding="utf-8")
    assert "the marts were copied for publication while the checks ran" in log
    assert "(the marts as copied during the checks;" in log
    with duckdb.connect(str(first_run.build_copy / "warehouse.duckdb"), read_only=True) as con:
        built = {name: con.execute(f"select count(*) from marts.{name}").fetchone()[0]
                 for name in PUBLISHED_TABLES}
    assert {name: published_query(warehouse, f"select count(*) from marts.{name}")[0][0]
            for name in PUBLISHED_TABLES} == built
    assert list(warehouse.glob(".marts-*")) == []


def test_a_blocked_run_discards_the_copy_written_during_its_checks(
    blocked_run: TamperedRun,
) -> None:
    """A blocking check failed: the candidate the checks step's child wrote (file, marker,
    Parquet folder) is gone, not left for a later run to find."""
    warehouse, run_id = blocked_run.warehouse, blocked_run.run.outcome.run_id
    assert blocked_run.run.exit_code != 0
    log = (warehouse / "logs" / f"run-{run_id}.log").read_text(encoding="utf-8")
    assert "the marts copied for publication during the checks are discarded" in log
    assert list(warehouse.glob(".marts-*")) == []
    assert not (warehouse / "parquet-runs" / run_id).exists()


def test_a_run_stopped_before_its_publication_swaps_publishes_nothing(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """SIGTERM or Ctrl-C during the checks: the CLI abandons the job's thread, which may reach
    the publication in the seconds it winds down — the swap sees the stop and does not
    happen. The published file, its Parquet link and its history stay those of the run before."""
    from pipelines import run_guard

    target = publisher(first_run, tmp_path)
    target.publish("A")
    published = published_database(target.warehouse)
    before = published.read_bytes()
    run_guard._stops[threading.current_thread()] = run_guard.RunInterrupted(signal.SIGINT)
    try:
        with pytest.raises(run_guard.RunInterrupted):
            target.publish("B")
    finally:
        run_guard._stops.pop(threading.current_thread(), None)
    assert published.read_bytes() == before
    assert published_parquet(target.warehouse).resolve().name == "A"
    assert list(target.warehouse.glob(".marts-*")) == []
    assert target.publish("C").tables  # the next run publishes as ever


def test_a_link_planted_as_the_parquet_runs_folder_is_refused_and_what_it_names_is_untouched(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """The publisher writes every run's Parquet copies under `<warehouse>/parquet-runs` and
    removes the folders of runs it does not keep: through a link there it would remove
    folders wherever the link pointed. A link is refused, naming it; nothing it names is
    touched, and nothing is published."""
    target = publisher(first_run, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "precious").mkdir(parents=True)
    (elsewhere / "precious" / "keep.txt").write_text("keep me\n", encoding="utf-8")
    (target.warehouse / "parquet-runs").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(RuntimeError, match="parquet-runs is a symbolic link"):
        target.publish("A")
    assert (elsewhere / "precious" / "keep.txt").read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["precious"]
    assert not published_database(target.warehouse).exists()


def test_a_copy_written_ahead_is_published_only_from_the_build_it_was_copied_from(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A candidate is swapped in only when it is complete and its build is unchanged since it
    was copied; else the publication copies the marts itself, so what is published is always
    the build the checks passed."""
    target = publisher(first_run, tmp_path)
    build, warehouse, publish = target.build, target.warehouse, target.publish
    write_marts_ahead(build, warehouse, "A", "1GB")
    assert publish("A").written_ahead
    assert {p.stem for p in published_parquet(warehouse).glob("*.parquet")} >= set(
        PUBLISHED_TABLES
    )
    candidate = write_marts_ahead(build, warehouse, "gone", "1GB")
    candidate.unlink()  # its marker is left: without the file there is nothing to swap in
    assert not publish("gone").written_ahead
    write_marts_ahead(build, warehouse, "B", "1GB")
    with duckdb.connect(str(build)) as con:  # the build changes after the copy
        con.execute("update marts.dim_leads set team = 'changed after the copy'")
    assert not publish("B").written_ahead
    assert published_query(warehouse, "select distinct team from marts.dim_leads") == [
        ("changed after the copy",)
    ]
    with duckdb.connect() as con:
        parquet = published_parquet(warehouse, "dim_leads")
        assert con.execute(f"select distinct team from '{parquet}'").fetchall() == [
            ("changed after the copy",)
        ]
    assert list(warehouse.glob(".marts-*")) == []


def test_a_publication_run_again_after_its_swap_adds_nothing(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A publication step retried after its file was swapped in (it failed later — here,
    before its Parquet link moved): `runs` keeps one row for the run and the history no
    second copy, and the link is pointed at the run's Parquet as the first attempt would."""
    target = publisher(first_run, tmp_path)
    warehouse = target.warehouse
    first = target.publish("A")
    earlier = warehouse / "parquet-runs" / "earlier"
    earlier.mkdir()
    link = published_parquet(warehouse)
    link.unlink()
    link.symlink_to(earlier.relative_to(warehouse), target_is_directory=True)
    history_before = history(warehouse)
    again = target.publish("A")
    assert again.tables == first.tables
    assert history(warehouse) == history_before == {
        "runs": {"A": 1},
        "dim_leads_history": {"A": first.tables["dim_leads"]},
        "kpi_scorecard_history": {"A": first.tables["kpi_scorecard"]},
    }
    assert link.resolve() == (warehouse / "parquet-runs" / "A").resolve()


def _report_something_else(build: Path) -> None:
    """The next night reports something else: one contact's stage changes in the build."""
    with duckdb.connect(str(build)) as con:
        con.execute("update marts.dim_leads set stage = 'none' where contact_id = "
                    "(select min(contact_id) from marts.dim_leads where stage <> 'none')")


def test_history_keeps_every_runs_copy_by_default(first_run: FirstRun, tmp_path: Path) -> None:
    """The default keeps them all (`history_runs_kept` 0: no limit), an identical
    re-publication included, each under its own run_id."""
    assert Settings().history_runs_kept == 0
    target = publisher(first_run, tmp_path)
    target.publish("A")
    _report_something_else(target.build)
    assert target.publish("B").history_appended
    assert target.publish("C").history_appended  # the same as B
    copies = history(target.warehouse)
    assert copies["dim_leads_history"].keys() == copies["kpi_scorecard_history"].keys() == {
        "A", "B", "C",
    }
    assert copies["dim_leads_history"]["B"] == copies["dim_leads_history"]["C"]
    assert published_query(
        target.warehouse,
        "select count(*) from (select * exclude (run_id) from dim_leads_history "
        "where run_id = 'B' except all select * exclude (run_id) from dim_leads_history "
        "where run_id = 'C')",
    ) == [(0,)]


def test_history_retention_keeps_the_last_runs_copies_and_says_whose_are_gone(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """history_runs_kept, where an operator sets it, bounds the copies to the last runs'; every
    run keeps its row in `runs`, whose `history_kept` says which runs' copies are gone."""
    target = publisher(first_run, tmp_path, history_runs_kept=1)
    target.publish("A")
    _report_something_else(target.build)
    assert target.publish("B").history_appended
    assert target.publish("C").history_appended  # the same as B: a copy of its own all the same
    warehouse = target.warehouse
    assert [r for (r,) in published_query(warehouse, "select run_id from runs "
                                                     "order by published_at")] == ["A", "B", "C"]
    assert dict(published_query(warehouse, "select run_id, history_kept from runs")) == {
        "A": False, "B": False, "C": True,
    }
    assert history(warehouse)["dim_leads_history"].keys() == {"C"}
    assert history(warehouse)["kpi_scorecard_history"].keys() == {"C"}


def test_history_retention_is_a_whole_number_of_runs_zero_for_no_limit() -> None:
    with pytest.raises(SettingsError, match="history_runs_kept"):
        Settings(history_runs_kept=-1)


def test_a_run_that_pointed_at_an_earlier_identical_copy_gets_its_own(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A file published before every run kept its own copy: a re-publication identical to the
    last copy added none and its `runs.history_run_id` named the run whose rows held it. The
    next publication gives that run its own copy (the rows it pointed at), so every run's rows
    are found by its run_id, and leaves the pointer column out."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    with duckdb.connect(str(published(target.warehouse))) as con:  # the earlier layout
        con.execute("alter table runs drop column history_kept")
        con.execute("alter table runs add column history_run_id varchar")
        con.execute("update runs set history_run_id = run_id")
        con.execute("insert into runs select 'B', as_of, published_at + interval 1 minute, "
                    "definitions_version, settings, source_files, 'A' from runs")
    assert not target.publish("C").history_appended  # an earlier layout: rebuilt
    warehouse = target.warehouse
    contacts = published_query(warehouse, "select count(*) from dim_leads")[0][0]
    assert history(warehouse)["dim_leads_history"] == {"A": contacts, "B": contacts,
                                                      "C": contacts}
    assert dict(published_query(warehouse, "select run_id, history_kept from runs")) == {
        "A": True, "B": True, "C": True,
    }
    assert "history_run_id" not in _columns(warehouse, "runs")



def test_a_run_listed_twice_in_an_earlier_file_keeps_one_copy(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """An earlier file whose `runs` lists a run twice (merged or edited by hand): its copy is
    carried once, not once per listing (which the next night would double again)."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    with duckdb.connect(str(published(target.warehouse))) as con:
        con.execute("insert into runs select * from runs")
    target.publish("B")
    contacts = published_query(target.warehouse, "select count(*) from dim_leads")[0][0]
    assert history(target.warehouse)["dim_leads_history"] == {"A": contacts, "B": contacts}

# The columns MARTS.md lists for dim_leads (restated): what an auditor reads of a contact's
# classification on the night it was published.
DIM_LEADS_CONTRACT_COLUMNS = (
    "contact_id", "company_id", "owner_user_id", "team", "stage", "lead_origin",
    "marketing_lead_at", "sales_lead_at", "quote_at", "customer_at", "qualifying_event_id",
    "qualifying_event_type", "is_fit", "sales_lead_deal_id", "crm_label", "crm_label_set_by",
    "crm_label_consistent", "definitions_version",
)


def _columns(warehouse: Path, table: str) -> list[str]:
    return [name for (name,) in published_query(
        warehouse, "select column_name from duckdb_columns() where table_name = ? "
        "order by column_index", [table],
    )]


def test_dim_leads_history_keeps_every_dim_leads_column_of_the_contract(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """What was reported when (the marts contract v1.1, history for auditors): a run's copy
    of dim_leads holds every column the contract requires of it — why a contact was a
    marketing lead that night (`qualifying_event_type`, `is_fit`), whose it was
    (`company_id`, `owner_user_id`) and who set its CRM label (`crm_label_set_by`) — with
    the values dim_leads had."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    columns = _columns(target.warehouse, "dim_leads_history")
    assert set(DIM_LEADS_CONTRACT_COLUMNS) <= set(columns), columns
    listed = ", ".join(DIM_LEADS_CONTRACT_COLUMNS)
    assert published_query(
        target.warehouse,
        f"select count(*) from (select {listed} from dim_leads except all "
        f"select {listed} from dim_leads_history where run_id = 'A')",
    ) == [(0,)]


def test_a_history_published_before_columns_were_added_keeps_its_copies_with_them_empty(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A published file whose dim_leads_history predates some of its columns (an upgrade):
    the next publication keeps the old copies, those columns empty (NULL: not recorded
    then), and adds its own complete copy — even when it reports the same classification,
    since the old copy cannot show what the new one holds."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    added = ("company_id", "owner_user_id", "qualifying_event_type", "is_fit",
             "crm_label_set_by")
    with duckdb.connect(str(published(target.warehouse))) as con:
        for column in added:
            con.execute(f"alter table dim_leads_history drop column {column}")
    # the same build: the same classification as A's; an earlier layout: rebuilt
    assert not target.publish("B").history_appended
    warehouse = target.warehouse
    contacts = published_query(warehouse, "select count(*) from dim_leads")[0][0]
    assert history(warehouse)["dim_leads_history"] == {"A": contacts, "B": contacts}
    assert dict(published_query(warehouse, "select run_id, history_kept from runs")) == {
        "A": True, "B": True,
    }
    empty = " and ".join(f"{column} is null" for column in added)
    assert published_query(
        warehouse, f"select count(*) from dim_leads_history where run_id = 'A' and {empty}"
    ) == [(contacts,)]
    assert published_query(
        warehouse, "select count(*) from dim_leads_history where run_id = 'B' and is_fit is null"
    ) == [(0,)]


def _everything(warehouse: Path) -> dict[str, list[tuple]]:
    """Every published table's rows, sorted (but when each run was published)."""
    tables = [name for (name,) in published_query(
        warehouse, "select table_name from duckdb_tables() order by table_name"
    )]
    return {
        table: sorted(published_query(
            warehouse, f"select * exclude (published_at) from {table}" if table == "runs"
            else f"select * from {table}"
        ), key=repr)
        for table in tables
    }


def test_a_publication_appends_its_copies_to_a_copy_of_the_published_file(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A run costs what changed: the publication begins as a byte copy of the published file
    and appends the night's copies to its history, instead of carrying every earlier night's
    copy over row by row. What it publishes is what a rebuild publishes: the same tables, the
    same rows, night after night and when an operator bounds the history (the rebuild forced
    here by a sequence another program left in the file, which makes the file not the
    publisher's own)."""
    (tmp_path / "appended").mkdir()
    (tmp_path / "rebuilt").mkdir()
    appended = publisher(first_run, tmp_path / "appended")
    rebuilt = publisher(first_run, tmp_path / "rebuilt")
    for target in (appended, rebuilt):
        assert not target.publish("A").history_appended  # nothing published yet: a new file
    _report_something_else(appended.build)
    _report_something_else(rebuilt.build)
    for night, kept in (("B", 0), ("C", 2)):  # C: an operator bounds the history to 2 runs
        with duckdb.connect(str(published(rebuilt.warehouse))) as con:
            con.execute("create sequence left_by_a_reader")
        assert replace(appended, history_runs_kept=kept).publish(night).history_appended
        assert not replace(rebuilt, history_runs_kept=kept).publish(night).history_appended
    assert history(appended.warehouse)["dim_leads_history"].keys() == {"B", "C"}
    assert _everything(appended.warehouse) == _everything(rebuilt.warehouse)


def test_a_published_file_another_program_changed_is_rebuilt_without_what_it_added(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A reader that opened the published file for writing and added a table of its own: the
    next publication does not copy that file — it rebuilds it, the history carried over row
    by row and the reader's table left out, so what is published is the publisher's alone."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    with duckdb.connect(str(published(target.warehouse))) as con:
        con.execute("create table my_notes as select 'a reader wrote this' as note")
    rebuilt = target.publish("B")
    tables = {name for (name,) in published_query(
        target.warehouse, "select table_name from duckdb_tables()"
    )}
    assert "my_notes" not in tables
    assert not rebuilt.history_appended
    assert history(target.warehouse)["dim_leads_history"].keys() == {"A", "B"}
    assert target.publish("C").history_appended  # the publisher's own again


def test_a_copy_written_ahead_is_appended_to_only_while_the_file_it_copied_is_published(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """The candidate written during the checks begins as a copy of the file published then.
    Had the published file changed before the publication (here another program rewrote a
    row of it; a file restored from a backup would do the same), appending to that copy
    would publish the old file's contents: the publication then writes its candidate itself,
    from the file published now."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    write_marts_ahead(target.build, target.warehouse, "B", "1GB")
    with duckdb.connect(str(published(target.warehouse))) as con:
        con.execute("""update runs set settings = '{"noted": "after the copy"}'""")
    late = target.publish("B")
    assert dict(published_query(target.warehouse, "select run_id, settings from runs")) == {
        "A": '{"noted": "after the copy"}', "B": "{}",
    }
    assert not late.written_ahead and late.history_appended
    assert history(target.warehouse)["dim_leads_history"].keys() == {"A", "B"}
    assert list(target.warehouse.glob(".marts-*")) == []


def test_a_published_file_in_a_newer_storage_format_is_rebuilt_in_the_published_one(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A copy keeps its file's storage format: a published file in a format older DuckDBs
    cannot read (written before the publisher chose its format, or by hand) is not copied but
    rebuilt, in the format the contract's readers open (DuckDB 1.1 and later)."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    file = published(target.warehouse)
    newer = tmp_path / "newer.duckdb"
    with duckdb.connect() as con:
        con.execute(f"attach '{file}' as old (read_only)")
        con.execute(f"attach '{newer}' as new (storage_version 'latest')")
        con.execute("copy from database old to new")
    newer.replace(file)

    def storage(path: Path) -> str:
        with duckdb.connect() as con:
            con.execute(f"attach '{path}' as p (read_only)")
            return con.execute("select tags['storage_version'] from duckdb_databases() "
                               "where database_name = 'p'").fetchone()[0]

    assert storage(file) != "v1.0.0+"
    rebuilt = target.publish("B")
    assert storage(file) == "v1.0.0+"  # DuckDB's tag for the format of PUBLISHED_STORAGE_VERSION
    assert not rebuilt.history_appended
    assert history(target.warehouse)["dim_leads_history"].keys() == {"A", "B"}


def test_a_key_another_program_put_on_the_history_makes_the_file_rebuilt_not_every_night_fail(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A primary key (or a NOT NULL) added to a history table by hand: appended to, the next
    night's copy of the same contacts would break it — every night. The file is rebuilt
    instead, the history carried over without it, and the nights after append again."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    with duckdb.connect(str(published(target.warehouse))) as con:
        con.execute("alter table dim_leads_history add primary key (contact_id)")
    rebuilt = target.publish("B")  # the same contacts again
    assert history(target.warehouse)["dim_leads_history"].keys() == {"A", "B"}
    assert not rebuilt.history_appended
    assert published_query(target.warehouse, "select count(*) from duckdb_constraints() "
                                             "where table_name = 'dim_leads_history'") == [(0,)]
    assert target.publish("C").history_appended


def test_history_retention_never_drops_the_copy_of_the_run_it_publishes(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """Retention keeps the last runs' copies by `published_at`; an earlier run recorded as
    published later (a clock set back since) must not push out the copy of the run being
    published, which an auditor finds by its run_id."""
    target = publisher(first_run, tmp_path, history_runs_kept=1)
    target.publish("A")
    with duckdb.connect(str(published(target.warehouse))) as con:
        con.execute("update runs set published_at = published_at + interval 1 hour")
    assert target.publish("B").history_appended
    assert dict(published_query(target.warehouse, "select run_id, history_kept from runs")) == {
        "A": True, "B": True,
    }
    assert history(target.warehouse)["dim_leads_history"].keys() == {"A", "B"}


# A program that writes to a DuckDB file and dies before a checkpoint: its change is in the
# file's write-ahead log alone.
DIES_AFTER_WRITING = """
import duckdb, os, sys
con = duckdb.connect(sys.argv[1])
con.execute("pragma disable_checkpoint_on_shutdown")
con.execute("update runs set settings = ?", [sys.argv[2]])
os._exit(0)
"""


def test_a_write_ahead_log_left_beside_the_published_file_is_read_once_and_removed(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A program that wrote to the published file and died left its changes in a
    write-ahead log beside it. The next publication reads the file with them (a rebuild: a
    byte copy would miss them) and removes the log with the file it replaced — left there,
    it would keep every later night from appending."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    file = published(target.warehouse)
    subprocess.run(
        [sys.executable, "-c", DIES_AFTER_WRITING, str(file), '{"noted": "in the log"}'],
        check=True, timeout=120,
    )
    wal = Path(f"{file}.wal")
    assert wal.exists()
    rebuilt = target.publish("B")
    assert dict(published_query(target.warehouse, "select run_id, settings from runs")) == {
        "A": '{"noted": "in the log"}', "B": "{}",
    }
    assert not rebuilt.history_appended and not wal.exists()
    assert target.publish("C").history_appended


def test_history_rows_edited_by_hand_are_set_right_by_a_rebuild(
    first_run: FirstRun, tmp_path: Path
) -> None:
    """A run's copies deleted by hand: appended to, the file would keep saying they are
    there (`history_kept` true, no rows). The history's rows and `runs.history_kept` must
    agree for the file to be appended to; else it is rebuilt, which judges `history_kept`
    from the rows it carries."""
    target = publisher(first_run, tmp_path)
    target.publish("A")
    with duckdb.connect(str(published(target.warehouse))) as con:
        for table in ("dim_leads_history", "kpi_scorecard_history"):
            con.execute(f"delete from {table} where run_id = 'A'")
    rebuilt = target.publish("B")
    assert dict(published_query(target.warehouse, "select run_id, history_kept from runs")) == {
        "A": False, "B": True,
    }
    assert not rebuilt.history_appended
    assert target.publish("C").history_appended

