"""`sales-kpi explain` reads meaning from the published marts; it re-derives no rule.

Every rule has one home (dbt). Explain only prints what the published file
(`<warehouse>/marts.duckdb`) already says, so these tests take the published file of a real
run, without its build database (`warehouse.duckdb`), and still expect the whole explanation:
the qualifying event or why none qualified, each marketing event's judgement, what the CRM
label means and the stage at its time, and the stage-order breach.

The contacts are hand-made in one small delivery on top of the generated sample (the run is
the session's derived oracle run, tests/oracle_runs.py, whose marts the oracle tests compare),
so every fact asserted here follows from the definitions by construction (the expected texts
were captured from the explain that read the build database, before it was rewritten):

- CON-EXPL-LABEL: a marketing lead (webinar, then a qualifying demo request, then a later
  pricing request) that a rep labelled `sales_qualified_lead`: the label disagrees.
- CON-EXPL-BREACH: a sales lead whose quote went out the day before its deal was created
  (rule 2, stage order).
- CON-EXPL-LATE: a sales lead whose only intent event came after its deal: sales-sourced.
- CON-EXPL-SAME: a sales lead whose intent event came at exactly sales_lead_at: it qualifies.

The contacts with a stage-order breach must stay below `max_order_breaches` (1 %) of the
contacts with a sales_lead_at or the run would not publish; a sample at scale 0.1 has about
80 sales leads, so the delivery adds plain sales leads (a contact and its new_business deal,
nothing else) to keep the breach a warning whatever sample it is added to.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main

pytestmark = pytest.mark.slow

# After the sample's last delivery (2026-11-26T0200).
EXPLAIN_DELIVERY = "2026-11-26T1200"
LABEL = "CON-EXPL-LABEL"
BREACH = "CON-EXPL-BREACH"
LATE = "CON-EXPL-LATE"
SAME = "CON-EXPL-SAME"
FILLER_SALES_LEADS = 40


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_row(landing: Path, entity: str, accept: Callable[[dict[str, str]], bool]) -> dict:
    """The first row of `entity` in the sample's full (first) delivery that `accept`s."""
    full_delivery = sorted(p for p in landing.iterdir() if p.is_dir())[0]
    with (full_delivery / f"{entity}.csv").open(encoding="utf-8") as handle:
        return next(row for row in csv.DictReader(handle) if accept(row))


def explain_files(landing: Path) -> dict[str, list[dict[str, str]]]:
    """The four hand-made contacts (fit: a business domain at a live company of the sample,
    owned by an account executive of the sample), their events, deals, quote and labels."""
    owner = _first_row(landing, "users", lambda r: r["role"] == "ae")["user_id"]
    company = _first_row(
        landing, "companies", lambda r: r["is_deleted"].lower() in ("", "0", "false", "no")
    )["company_id"]

    def contact(contact_id: str) -> dict[str, str]:
        created = _text(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
        return {
            "contact_id": contact_id, "company_id": company,
            "email": f"{contact_id.lower()}@{company.lower()}.example", "first_name": "Ex",
            "last_name": contact_id, "job_title": "Directeur", "owner_user_id": owner,
            "created_at": created, "updated_at": created, "is_deleted": "false",
        }

    def event(event_id: str, contact_id: str, event_type: str, at: datetime) -> dict[str, str]:
        return {
            "event_id": event_id, "contact_id": contact_id, "event_type": event_type,
            "occurred_at": _text(at), "campaign": "explain", "channel": "web",
            "is_deleted": "false",
        }

    def deal(deal_id: str, contact_id: str, created: datetime) -> dict[str, str]:
        return {
            "deal_id": deal_id, "contact_id": contact_id, "company_id": company,
            "owner_user_id": owner, "deal_type": "new_business", "stage": "proposal",
            "amount": "50000.00", "currency": "EUR", "created_at": _text(created),
            "closed_at": "", "lost_reason": "", "updated_at": _text(created),
            "is_deleted": "false",
        }

    def label(change_id: str, contact_id: str, stage: str, at: datetime) -> dict[str, str]:
        return {
            "change_id": change_id, "contact_id": contact_id, "lifecycle_stage": stage,
            "changed_at": _text(at), "changed_by_user_id": owner, "is_deleted": "false",
        }

    breach_deal_at = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    late_deal_at = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
    same_deal_at = datetime(2026, 4, 15, 9, 0, tzinfo=UTC)
    fillers = [f"CON-EXPL-F{i:02d}" for i in range(FILLER_SALES_LEADS)]
    return {
        "contacts": [contact(c) for c in (LABEL, BREACH, LATE, SAME, *fillers)],
        "marketing_events": [
            event("EVT-EXPL-01", LABEL, "webinar_attended", datetime(2026, 5, 1, 9, 0, tzinfo=UTC)),
            event("EVT-EXPL-02", LABEL, "demo_request", datetime(2026, 5, 10, 9, 0, tzinfo=UTC)),
            event("EVT-EXPL-03", LABEL, "pricing_request",
                  datetime(2026, 5, 20, 9, 0, tzinfo=UTC)),
            event("EVT-EXPL-04", BREACH, "demo_request", datetime(2026, 6, 1, 9, 0, tzinfo=UTC)),
            event("EVT-EXPL-05", LATE, "newsletter_signup",
                  datetime(2026, 4, 1, 9, 0, tzinfo=UTC)),
            event("EVT-EXPL-06", LATE, "demo_request", late_deal_at + timedelta(days=10)),
            event("EVT-EXPL-07", SAME, "contact_form", same_deal_at),
        ],
        "deals": [
            deal("DEAL-EXPL-BREACH", BREACH, breach_deal_at),
            deal("DEAL-EXPL-LATE", LATE, late_deal_at),
            deal("DEAL-EXPL-SAME", SAME, same_deal_at),
            *(deal(f"DEAL-EXPL-F{i:02d}", c, late_deal_at) for i, c in enumerate(fillers)),
        ],
        "quotes": [{
            "quote_id": "QUO-EXPL-BREACH", "deal_id": "DEAL-EXPL-BREACH", "status": "sent",
            "amount": "50000.00", "currency": "EUR",
            "created_at": _text(breach_deal_at - timedelta(days=2)),
            "sent_at": _text(breach_deal_at - timedelta(days=1)),
            "updated_at": _text(breach_deal_at - timedelta(days=1)), "is_deleted": "false",
        }],
        "lifecycle_changes": [
            label("LC-EXPL-01", LABEL, "sales_qualified_lead",
                  datetime(2026, 6, 1, 9, 0, tzinfo=UTC)),
            label("LC-EXPL-02", BREACH, "opportunity", datetime(2026, 6, 15, 9, 0, tzinfo=UTC)),
        ],
    }


def write_explain_delivery(landing: Path) -> None:
    """Write the hand-made contacts as one CSV delivery after the sample's last one."""
    folder = landing / EXPLAIN_DELIVERY
    folder.mkdir(parents=True)
    for entity, rows in explain_files(landing).items():
        with (folder / f"{entity}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


# --- the job, then the published file alone -------------------------------------------------


@pytest.fixture(scope="module")
def published_only(derived_oracle_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse folder holding only the published marts of a real run over a generated
    sample plus the hand-made delivery: the session's derived oracle run (conftest.py,
    tests/oracle_runs.py: the sample at scale 0.3, seed 5, with this file's delivery among
    others, as_of derived from the data, no site), of which only `marts.duckdb` is copied —
    no build database to explain from."""
    return _copy_of(derived_oracle_run / "warehouse", tmp_path_factory.mktemp("explain"))


def _copy_of(warehouse: Path, folder: Path) -> Path:
    """A warehouse folder under `folder` holding a copy of `warehouse`'s published marts (a
    test may change it)."""
    copy = folder / "warehouse"
    copy.mkdir()
    shutil.copyfile(warehouse / "marts.duckdb", copy / "marts.duckdb")
    return copy


def explain(warehouse: Path, contact: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`sales-kpi explain CONTACT --warehouse WAREHOUSE`'s output (it must succeed)."""
    capsys.readouterr()
    assert main(["explain", contact, "--warehouse", str(warehouse)]) == 0
    return capsys.readouterr().out


def assert_says(out: str, *facts: str) -> None:
    for fact in facts:
        assert fact in out, f"{fact!r} not in\n{out}"


def test_explain_needs_only_the_published_marts(
    published_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not (published_only / "warehouse.duckdb").exists()
    out = explain(published_only, LABEL, capsys)
    assert_says(
        out,
        f"Contact {LABEL} — stage: marketing_lead (definitions v",
        "as of 2026-11-25 21:31:07 CET)",  # derived from the sample (scale 0.3, seed 5)
        "), a sales rep",
        "fit: yes (domain ",
        "sales lead: no — no new_business deal with this contact as primary contact",
        "origin: marketing",
    )
    assert "stage order" not in out


def test_lead_stages_1_the_qualifying_event_and_every_events_judgement_are_read(
    published_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain(published_only, LABEL, capsys)
    assert_says(
        out,
        "marketing lead: 2026-05-10 11:00:00 CEST — qualifying event EVT-EXPL-02 (demo_request)",
        "EVT-EXPL-01  webinar_attended       not intent",
        "EVT-EXPL-02  demo_request           QUALIFYING",
        "EVT-EXPL-03  pricing_request        intent, later than the qualifying event",
    )


def test_rule_4_a_disagreeing_label_says_what_it_means_and_the_stage_then(
    published_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain(published_only, LABEL, capsys)
    assert_says(
        out,
        "CRM label: sales_qualified_lead, set by USR-",
        " on 2026-06-01 11:00:00 CEST — INCONSISTENT — it means sales_lead or quote, the agreed "
        "stage then was marketing_lead",
    )


def test_rule_2_a_stage_order_breach_is_named(
    published_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain(published_only, BREACH, capsys)
    assert_says(
        out,
        f"Contact {BREACH} — stage: quote",
        "marketing lead: 2026-06-01 11:00:00 CEST — qualifying event EVT-EXPL-04 (demo_request)",
        "sales lead: 2026-06-10 11:00:00 CEST — deal DEAL-EXPL-BREACH (new_business, now proposal, "
        "owner USR-",
        "quote: 2026-06-09 11:00:00 CEST",
        "CRM label: opportunity, set by USR-",
        "on 2026-06-15 11:00:00 CEST — consistent",
        "stage order: BREACH — sales_lead_at after quote_at; quote QUO-EXPL-BREACH sent before "
        "its deal DEAL-EXPL-BREACH was created",
        "EVT-EXPL-04  demo_request           QUALIFYING",
    )


def test_lead_stages_1_intent_after_becoming_a_sales_lead_does_not_qualify(
    published_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain(published_only, LATE, capsys)
    assert_says(
        out,
        f"Contact {LATE} — stage: sales_lead",
        "marketing lead: no — intent only after becoming a sales lead",
        "sales lead: 2026-04-10 11:00:00 CEST — deal DEAL-EXPL-LATE (new_business, now proposal",
        "origin: sales (sales-sourced)",
        "CRM label: none (nothing to judge)",
        "EVT-EXPL-05  newsletter_signup      not intent",
        "EVT-EXPL-06  demo_request           intent, but after becoming a sales lead",
    )
    assert "stage order" not in out


def test_lead_stages_1_intent_at_exactly_sales_lead_at_still_qualifies(
    published_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain(published_only, SAME, capsys)
    assert_says(
        out,
        "marketing lead: 2026-04-15 11:00:00 CEST — qualifying event EVT-EXPL-07 (contact_form)",
        "sales lead: 2026-04-15 11:00:00 CEST — deal DEAL-EXPL-SAME",
        "origin: marketing",
        "EVT-EXPL-07  contact_form           QUALIFYING",
    )


def test_explain_of_a_contact_that_is_not_published_fails(
    published_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "CON-NOBODY", "--warehouse", str(published_only)]) == 1
    assert "is not a live contact of the last published run" in capsys.readouterr().err


def test_a_crm_value_cannot_forge_a_line_of_the_explanation(
    published_only: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Names and labels are data: a rep's name holding a line break and a made-up verdict
    stays on its own line, escaped, so the explanation an auditor reads has only its own
    lines (one per fact)."""
    warehouse = _copy_of(published_only, tmp_path)
    forged = "Lotte\n  CRM label: lead, set by USR-0003 on 2024-01-01 — consistent"
    with duckdb.connect(str(warehouse / "marts.duckdb")) as con:
        con.execute("update dim_reps set full_name = ? where user_id = (select owner_user_id "
                    "from dim_leads where contact_id = ?)", [forged, LABEL])
    out = explain(warehouse, LABEL, capsys)
    labels = [line for line in out.splitlines() if line.startswith("  CRM label:")]
    assert len(labels) == 1 and labels[0].startswith("  CRM label: sales_qualified_lead")
    assert "(Lotte\\x0a  CRM label: lead, set by USR-0003" in out  # on the owner's line


def test_an_owner_id_holding_a_control_character_still_finds_its_owner(
    published_only: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Escaping is for showing: the owner and the deal are looked up by the ids as they are,
    so an id with a character the explanation escapes still finds its rep."""
    warehouse = _copy_of(published_only, tmp_path)
    with duckdb.connect(str(warehouse / "marts.duckdb")) as con:
        (owner,) = con.execute("select owner_user_id from dim_leads where contact_id = ?",
                               [LABEL]).fetchone()
        (name,) = con.execute("select full_name from dim_reps where user_id = ?",
                              [owner]).fetchone()
        odd = owner + "\u200b"
        con.execute("update dim_reps set user_id = ? where user_id = ?", [odd, owner])
        con.execute("update dim_leads set owner_user_id = ? where owner_user_id = ?",
                    [odd, owner])
    out = explain(warehouse, LABEL, capsys)
    assert f"({name}), a sales rep" in out
    assert "unknown" not in out


def test_a_contact_without_an_owner_says_it_has_none(
    published_only: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No owner is not an unknown owner: the line says the contact has none (it read "owner
    none unknown"), and an owner id naming no published user is called unknown, by its id."""
    warehouse = _copy_of(published_only, tmp_path)
    with duckdb.connect(str(warehouse / "marts.duckdb")) as con:
        con.execute("update dim_leads set owner_user_id = null where contact_id = ?", [LABEL])
        con.execute("update dim_leads set owner_user_id = 'USR-GONE' where contact_id = ?",
                    [BREACH])
    out = explain(warehouse, LABEL, capsys)
    team = next(line for line in out.splitlines() if line.startswith("  team:"))
    assert team.endswith("— no owner") and "unknown" not in team
    out = explain(warehouse, BREACH, capsys)
    team = next(line for line in out.splitlines() if line.startswith("  team:"))
    assert team.endswith("— owner USR-GONE, not a known user")


def test_explain_of_a_file_held_for_writing_says_so_in_one_line(
    published_only: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The published file opened for writing by another program (the DuckDB CLI's default):
    explain says which program holds it and that readers open it read-only, in one line (it
    was DuckDB's lock error as a traceback)."""
    from conftest import held_for_writing

    warehouse = _copy_of(published_only, tmp_path)
    with held_for_writing(warehouse / "marts.duckdb") as holder:
        assert main(["explain", LABEL, "--warehouse", str(warehouse)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"PID {holder.pid}" in err and "read-only" in err
