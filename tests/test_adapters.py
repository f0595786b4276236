"""The declarative source mapping: a CRM's own export → the canonical landing → the loader.

The worked example (tests/fixtures/adapters/benelux_crm*: a Pipedrive/Teamleader-like export
in cp1252 with `;`, decimal commas and day-first dates, plus a team list) runs through the
canonical loader, and once through the whole nightly job whose KPIs are checked against a
computation straight from the export files. Every other test writes a tiny source of its own:
one per mapping feature and one per error message.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import textwrap
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import damaged, fetch, load, manifest, quarantine, without_session_settings

from pipelines.adapters import (
    MARKER_FILE,
    REPORT_TEXT_FILE,
    AdapterError,
    AdapterReport,
    MappingError,
    SourceFileError,
    adapt_source,
    load_mapping,
    source_files,
)
from pipelines.contract import ENTITY_NAMES
from pipelines.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "adapters"
BENELUX_YAML = FIXTURES / "benelux_crm.yaml"
BENELUX_SOURCE = FIXTURES / "benelux_crm"
DELIVERY = "2026-01-31T0600"

# A minimal mapping: users from a people list. Tests append or replace parts of it.
PEOPLE = """
    delivery_time: {from: folder, format: "%Y-%m-%dT%H%M"}
    files:
      people: {glob: "people*.csv"}
    entities:
      users:
        from: people
        columns:
          user_id: id
          full_name: name
          role: {const: ae}
          updated_at: {delivery_time: true}
"""
PEOPLE_CSV = "id,name\nu1,Ann\nu2,Bob\n"


def write_source(root: Path, deliveries: dict[str, dict[str, str | bytes]]) -> Path:
    """`{delivery: {file name: text (UTF-8) or bytes}}` as a source folder."""
    for delivery, files in deliveries.items():
        folder = root / delivery
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            (folder / name).write_bytes(data)
    return root


def run(
    tmp_path: Path,
    mapping: str,
    files: dict[str, str | bytes] | dict[str, dict[str, str | bytes]],
    settings: Settings | None = None,
) -> tuple[AdapterReport, Path]:
    """Write the mapping and the source (one delivery, or `{delivery: files}`), adapt it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    yaml_path = tmp_path / "mapping.yaml"
    yaml_path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    deliveries = files if all(isinstance(v, dict) for v in files.values()) else {DELIVERY: files}
    source = write_source(tmp_path / "source", deliveries)  # type: ignore[arg-type]
    out = tmp_path / "landing"
    return adapt_source(yaml_path, source, out, settings), out


def rows(out: Path, entity: str, delivery: str = DELIVERY) -> list[dict[str, str]]:
    path = out / delivery / f"{entity}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def column(out: Path, entity: str, name: str, delivery: str = DELIVERY) -> list[str]:
    return [r[name] for r in rows(out, entity, delivery)]


def error_of(tmp_path: Path, mapping: str, files: dict, kind: type = AdapterError) -> str:
    with pytest.raises(kind) as caught:
        run(tmp_path, mapping, files)
    return str(caught.value)


def with_columns(**columns: str) -> str:
    """PEOPLE with its users columns extended/replaced (values are YAML flow text)."""
    lines = [f"          {name}: {value}" for name, value in columns.items()]
    base = [line for line in PEOPLE.rstrip().splitlines()
            if line.strip().split(":")[0] not in columns]
    return "\n".join(base + lines) + "\n"


# --- the worked example --------------------------------------------------------------------


def test_benelux_export_maps_onto_canonical_rows_the_loader_accepts(tmp_path, con):
    out = tmp_path / "landing"
    report = adapt_source(BENELUX_YAML, BENELUX_SOURCE, out)

    assert report.ok and not report.problems
    for entity in report.entities.values():  # every row read is accounted for
        assert entity.rows_read == entity.rows_written + entity.dropped + entity.bad
    deals = report.entities["deals"]
    assert (deals.rows_read, deals.rows_written) == (17, 13)
    assert deals.rows_dropped == {
        "files.opportunities.filter": 2, "entities.deals.columns.created_at.if_missing": 2,
    }
    assert deals.values_fixed == {
        "entities.deals.columns.owner_user_id.aliases": 3,
        "entities.deals.columns.currency.default": 2,
    }
    assert "no lifecycle_changes: there are no CRM labels, so the label check has nothing to "\
        "judge" in report.format()
    assert set(report.not_provided) == {
        "lifecycle_changes", "marketing_events", "activities", "quotes", "fx_rates",
    }

    loaded = {entity: load(con, out, entity) for entity in ENTITY_NAMES}
    assert {e: r.rows_loaded for e, r in loaded.items() if r.rows_loaded} == {
        "users": 5, "companies": 10, "contacts": 10, "deals": 12, "deal_stage_changes": 35,
    }
    # The won deal without a close date in the first export is quarantined by the loader,
    # with the way back to the export's file and line.
    (bad,) = quarantine(con)
    assert (bad["delivery"], bad["line"], bad["column_name"]) == ("2026-02-02T0600", 6, "closed_at")
    assert '"source_file":"2026-02-02T0600/opportunities.csv","source_line":"6"' in bad["record"]

    latest = {r["deal_id"]: r for r in fetch(con, "select * from raw.deals order by _load_id")}
    assert latest["BX-1003"]["stage"] == "closed_won"
    assert latest["BX-1003"]["amount"] == Decimal("8000.00")  # "8.000", thousands separator
    assert latest["BX-1003"]["owner_user_id"] == "sanne.dejong@benelux-crm.example"  # S. de Jong
    assert latest["BX-1003"]["closed_at"] == datetime(2026, 2, 9, 23, tzinfo=UTC)  # 10-02-2026
    assert latest["BX-1001"]["created_at"] == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    assert latest["BX-1002"]["amount"] == Decimal("3200.50")
    assert latest["BX-1002"]["company_id"] == "café noord"  # é: read as cp1252
    assert latest["BX-1009"]["currency"] == "EUR"
    assert latest["BX-1004"]["stage"] == "negotiation"
    assert '"title":"Uitbreiding kassa’s"' in latest["BX-1004"]["_extra_columns"]
    users = fetch(con, "select user_id, role, team from raw.users order by _line")
    assert [(u["role"], u["team"]) for u in users] == [
        ("ae", "Noord"), ("ae", "Zuid"), ("manager", "Noord"), ("sdr", "Zuid"),
        ("marketing", None),
    ]
    stages = fetch(con, "select stage, changed_at from raw.deal_stage_changes "
                        "where deal_id = 'BX-1004' and _delivery = '2026-03-02T0600'")
    assert [s["stage"] for s in stages] == ["qualification", "discovery", "negotiation"]


def test_rerun_writes_byte_identical_files_and_the_loader_loads_nothing_twice(tmp_path, con):
    out = tmp_path / "landing"
    adapt_source(BENELUX_YAML, BENELUX_SOURCE, out)
    first = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.rglob("*.csv"))}
    load(con, out, "deals")
    adapt_source(BENELUX_YAML, BENELUX_SOURCE, out)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.rglob("*.csv"))} == first
    again = load(con, out, "deals")
    assert [o.status for o in again.outcomes] == ["unchanged", "unchanged"]


def _independent_kpis() -> dict[tuple[str, str, str, str], float]:
    """new_revenue and new_sales_leads straight from the export files, not via the adapter:
    each deal's row of the latest export; test deals (Intern) and deals without a creation
    date left out; the agent's team from the team list (two agents spelled two ways)."""
    spelled = {"S. de Jong": "Sanne de Jong", "J. de Vries": "Jan de Vries"}
    deliveries = sorted(p for p in BENELUX_SOURCE.iterdir() if p.is_dir())
    with (deliveries[0] / "team.csv").open(encoding="utf-8-sig", newline="") as handle:
        team_list = {r["Medewerker"]: r for r in csv.DictReader(handle)}
    latest: dict[str, dict[str, str]] = {}
    for delivery in deliveries:
        with (delivery / "opportunities.csv").open(encoding="cp1252", newline="") as handle:
            for record in csv.DictReader(handle, delimiter=";"):
                latest[record["Deal ID"]] = record
    kpis: dict[tuple[str, str, str, str], float] = defaultdict(float)
    first_deal: dict[str, tuple[str, str, str]] = {}  # contact → its first deal
    for deal in latest.values():
        if deal["Organisatie"] == "Intern" or not deal["Aangemaakt"]:
            continue
        agent = team_list[spelled.get(deal["Agent"], deal["Agent"])]
        created = datetime.strptime(deal["Aangemaakt"][:10], "%d-%m-%Y")
        contact = f"{deal['Organisatie']}/{deal['Contactpersoon']}"
        candidate = (created.isoformat(), deal["Deal ID"], agent["E-mail"])
        first_deal[contact] = min(first_deal.get(contact, candidate), candidate)
        if deal["Fase"] == "Gewonnen" and deal["Sluitdatum"]:
            month = datetime.strptime(deal["Sluitdatum"], "%d-%m-%Y").strftime("%Y-%m-01")
            amount = float(deal["Waarde"].replace(".", "").replace(",", "."))
            for scope, scope_id in (("company", "all"), ("team", agent["Team"]),
                                    ("rep", agent["E-mail"])):
                kpis[("new_revenue", month, scope, scope_id)] += amount
    for created, _, owner in first_deal.values():
        month = created[:7] + "-01"
        team = next(r["Team"] for r in team_list.values() if r["E-mail"] == owner)
        for scope, scope_id in (("company", "all"), ("team", team), ("rep", owner)):
            kpis[("new_sales_leads", month, scope, scope_id)] += 1
    return dict(kpis)


@pytest.mark.slow
def test_benelux_kpis_agree_with_a_computation_from_the_export_files(tmp_path, monkeypatch):
    from pipelines.job_runner import run_nightly_job

    without_session_settings(monkeypatch)
    landing = tmp_path / "landing"
    adapt_source(BENELUX_YAML, BENELUX_SOURCE, landing)
    settings = Settings(
        extracts_dir=landing, warehouse_dir=tmp_path / "warehouse", write_site=False
    )
    outcome = run_nightly_job(settings, log_level="WARNING")
    assert outcome.success, outcome.failures

    with duckdb.connect(str(tmp_path / "warehouse" / "marts.duckdb"), read_only=True) as marts:
        found = {
            (kpi, str(period), scope, scope_id): value
            for kpi, period, scope, scope_id, value in marts.execute(
                "select kpi_id, period_start, scope, scope_id, value from marts.kpi_values "
                "where kpi_id in ('new_revenue', 'new_sales_leads') and value <> 0"
            ).fetchall()
        }
        deals = dict(marts.execute(
            "select deal_id, stage from marts.fct_deals"
        ).fetchall())
    assert found == pytest.approx(_independent_kpis())
    assert found[("new_revenue", "2026-01-01", "team", "Noord")] == 17250.0
    assert deals == {
        "BX-1001": "closed_won", "BX-1002": "closed_lost", "BX-1003": "closed_won",
        "BX-1004": "negotiation", "BX-1005": "closed_won", "BX-1008": "closed_lost",
        "BX-1009": "proposal",
    }


# --- columns: name, constant, expression, default, extra -----------------------------------


def test_columns_by_name_case_insensitive_constant_expression_and_extra(tmp_path):
    mapping = with_columns(
        user_id="{expr: \"concat(team, '-', ID)\"}", full_name="NAME", team="Team",
        email="{expr: \"lower(trim(\\\"Account Name\\\")) || '@example.com'\"}",
    ) + "        extra:\n          origin: {const: import}\n"
    _, out = run(tmp_path, mapping, {"people.csv": "ID,Name,team,Account Name\n"
                                                  "1,Ann,North,  ANN  \n"})
    assert rows(out, "users") == [{
        "user_id": "North-1", "full_name": "Ann", "email": "ann@example.com", "role": "ae",
        "team": "North", "updated_at": "2026-01-31 06:00:00", "origin": "import",
        "source_file": f"{DELIVERY}/people.csv", "source_line": "2",
    }]


def test_default_fills_empty_values_and_is_counted(tmp_path):
    mapping = with_columns(team="{column: team, default: Sales}",
                           full_name="{column: name, default: {column: id}}")
    report, out = run(tmp_path, mapping, {"people.csv": "id,name,team\nu1,,\nu2,Bob,North\n"})
    assert column(out, "users", "team") == ["Sales", "North"]
    assert column(out, "users", "full_name") == ["u1", "Bob"]
    assert report.entities["users"].values_fixed == {
        "entities.users.columns.team.default": 1,
        "entities.users.columns.full_name.default": 1,
    }


def test_delivery_time_from_the_folder_name_and_from_the_file_mtime(tmp_path):
    _, out = run(tmp_path, PEOPLE, {"2026-03-01T2230": {"people.csv": PEOPLE_CSV}})
    assert column(out, "users", "updated_at", "2026-03-01T2230") == ["2026-03-01 22:30:00"] * 2

    mtime = PEOPLE.replace('{from: folder, format: "%Y-%m-%dT%H%M"}', "{from: mtime}")
    source = write_source(tmp_path / "m", {"d1": {"people.csv": PEOPLE_CSV}})
    os.utime(source / "d1" / "people.csv", (1767225600, 1767225600))  # 2026-01-01T00:00Z
    (tmp_path / "m.yaml").write_text(textwrap.dedent(mtime), encoding="utf-8")
    adapt_source(tmp_path / "m.yaml", source, tmp_path / "m-out")
    assert column(tmp_path / "m-out", "users", "updated_at", "d1") == ["2026-01-01T00:00:00Z"] * 2


# --- vocabularies and aliases --------------------------------------------------------------


def test_vocabulary_maps_ignoring_case_and_spacing(tmp_path):
    mapping = with_columns(role="{column: job, map: {Account  Manager: ae, SDR: sdr}}")
    _, out = run(tmp_path, mapping, {"people.csv": "id,name,job\nu1,A,account manager\n"
                                                   "u2,B, Sdr \n"})
    assert column(out, "users", "role") == ["ae", "sdr"]


def test_unmapped_value_error_holds_the_row_back_naming_file_line_column_value(tmp_path):
    mapping = with_columns(role="{column: Functie, map: {Verkoper: ae}}")
    report, out = run(tmp_path, mapping, {"people.csv": "id,name,Functie\nu1,A,Verkoper\n"
                                                        "u2,B,Stagiair\n"})
    assert column(out, "users", "user_id") == ["u1"]
    assert report.entities["users"].rows_bad == {"entities.users.columns.role.unmapped": 1}
    (problem,) = report.problems
    assert problem.describe() == (
        f"{DELIVERY}/people.csv line 3, column Functie: unmapped value 'Stagiair' "
        "(entities.users.columns.role.unmapped)"
    )
    assert report.ok  # 1 bad row: below the loader's rejection thresholds


@pytest.mark.parametrize(("policy", "expected"), [("keep", "Stagiair"), ("null", "")])
def test_unmapped_value_keep_or_null_is_counted_as_fixed(tmp_path, policy, expected):
    mapping = with_columns(team=f"{{column: afdeling, map: {{Verkoop: Sales}}, "
                                f"unmapped: {policy}}}")
    report, out = run(tmp_path, mapping, {"people.csv": "id,name,afdeling\nu1,A,Verkoop\n"
                                                        "u2,B,Stagiair\n"})
    assert column(out, "users", "team") == ["Sales", expected]
    assert report.entities["users"].values_fixed == {"entities.users.columns.team.unmapped": 1}


def test_named_vocabulary_and_aliases_for_names_spelled_two_ways(tmp_path):
    mapping = PEOPLE.replace("files:", "vocabularies:\n      people: {A. Smit: Ann Smit}\n"
                                       "    files:")
    mapping = mapping.replace("full_name: name", "full_name: {column: name, aliases: people}")
    report, out = run(tmp_path, mapping, {"people.csv": "id,name\nu1,a. smit\nu2,Ann Smit\n"})
    assert column(out, "users", "full_name") == ["Ann Smit", "Ann Smit"]
    assert report.entities["users"].values_fixed == {
        "entities.users.columns.full_name.aliases": 1
    }


# --- lookups -------------------------------------------------------------------------------


LOOKUP = """
    files:
      deals: {glob: "deals.csv"}
      team: {glob: "team.csv"}
    entities:
      deals:
        from: deals
        columns:
          deal_id: id
          owner_user_id:
            column: agent
            lookup: {file: team, key: Name, value: {expr: "lower(Mail)"}, %s}
          deal_type: {const: new_business}
          stage: {const: discovery}
          created_at: created
          closed_at: {const: ""}
          updated_at: created
"""
DEALS_CSV = (
    "id,agent,created\nd1,Ann Smit,2026-01-02\nd2,ann smit,2026-01-03\nd3,Nobody,2026-01-04\n"
)
TEAM_CSV = "Name,Mail,active\nAnn Smit,ANN@x.nl,yes\nAnn Smit,second@x.nl,yes\nBob,bob@x.nl,no\n"


def test_lookup_takes_the_first_matching_row_of_another_file(tmp_path):
    report, out = run(tmp_path, LOOKUP % "ignore_case: true, unmatched: null",
                      {"deals.csv": DEALS_CSV, "team.csv": TEAM_CSV})
    assert column(out, "deals", "owner_user_id") == ["ann@x.nl", "ann@x.nl", ""]
    assert report.entities["deals"].values_fixed == {
        "entities.deals.columns.owner_user_id.lookup.unmatched": 1
    }


def test_lookup_where_and_unmatched_keep(tmp_path):
    _, out = run(tmp_path, LOOKUP % "where: \"active = 'no'\", unmatched: keep",
                 {"deals.csv": DEALS_CSV, "team.csv": TEAM_CSV})
    assert column(out, "deals", "owner_user_id") == ["Ann Smit", "ann smit", "Nobody"]


def test_lookup_unmatched_error_is_a_bad_row(tmp_path):
    report, out = run(tmp_path, LOOKUP % "unmatched: error",
                      {"deals.csv": DEALS_CSV, "team.csv": TEAM_CSV})
    assert column(out, "deals", "deal_id") == ["d1"]
    assert [p.describe() for p in report.problems] == [
        f"{DELIVERY}/deals.csv line {line}, column agent: no match in files.team for {name!r} "
        "(entities.deals.columns.owner_user_id.lookup.unmatched)"
        for line, name in ((3, "ann smit"), (4, "Nobody"))
    ]


def test_lookup_uses_the_latest_earlier_delivery_when_this_one_has_no_such_file(tmp_path):
    report, out = run(tmp_path, LOOKUP % "unmatched: null", {
        "d1": {"deals.csv": DEALS_CSV, "team.csv": TEAM_CSV},
        "d2": {"deals.csv": DEALS_CSV},
    })
    assert column(out, "deals", "owner_user_id", "d2") == ["ann@x.nl", "", ""]
    assert any("d2: entities.deals.columns.owner_user_id.lookup looks up files.team of "
               "delivery d1" in note for note in report.notes)


# --- timestamps, numbers -------------------------------------------------------------------


def test_day_first_timestamps_with_and_without_time_and_with_offset(tmp_path, con):
    mapping = with_columns(updated_at='{column: changed, format: ["%d-%m-%Y %H:%M", '
                                      '"%d-%m-%Y", "%d/%m/%Y %H:%M %z"]}')
    report, out = run(tmp_path, mapping, {"people.csv": (
        "id,name,changed\nu1,A,31-12-2026 23:15\nu2,B,1-2-2026\nu3,C,05/03/2026 10:00 +0100\n"
        "u4,D,2026-03-05\nu5,E,gisteren\n")})
    assert column(out, "users", "updated_at") == [
        "2026-12-31 23:15:00", "2026-02-01 00:00:00", "2026-03-05T09:00:00Z", "2026-03-05",
        "gisteren",
    ]
    assert report.entities["users"].values_unparsable == {
        "entities.users.columns.updated_at.format": 2
    }
    load(con, out, "users")  # naive text = local time; the unparsable value is quarantined
    assert [str(r["updated_at"]) for r in fetch(con, "select updated_at from raw.users")] == [
        "2026-12-31 22:15:00+00:00", "2026-01-31 23:00:00+00:00", "2026-03-05 09:00:00+00:00",
        "2026-03-04 23:00:00+00:00",
    ]
    assert [(q["line"], q["column_name"]) for q in quarantine(con)] == [(6, "updated_at")]


def test_if_unparsable_drop_and_file_level_timestamp_format(tmp_path):
    mapping = with_columns(updated_at="{column: changed, if_unparsable: drop}").replace(
        'people: {glob: "people*.csv"}',
        'people: {glob: "people*.csv", timestamp_format: "%d.%m.%Y"}')
    report, out = run(tmp_path, mapping, {"people.csv": "id,name,changed\nu1,A,24.12.2026\n"
                                                        "u2,B,2026/12/24\n"})
    assert column(out, "users", "updated_at") == ["2026-12-24 00:00:00"]
    assert report.entities["users"].rows_dropped == {
        "entities.users.columns.updated_at.if_unparsable": 1
    }


DEALS = """
    files:
      deals: {glob: "deals*.csv", %s}
    entities:
      deals:
        from: deals
        columns:
          deal_id: id
          owner_user_id: {const: u1}
          deal_type: {const: new_business}
          stage: {const: discovery}
          amount: %s
          created_at: {const: "2026-01-01"}
          closed_at: {const: ""}
          updated_at: {const: "2026-01-01"}
"""


def test_decimal_comma_and_thousands_separator(tmp_path, con):
    mapping = DEALS % ('delimiter: ";", decimal: ",", thousands: "."', "value")
    _, out = run(tmp_path, mapping, {"deals.csv": (
        "id;value\nd1;1.234,50\nd2;12,5\nd3;-7\nd4;,25\nd5;1.234.567\nd6;€ 10\n")})
    assert column(out, "deals", "amount") == ["1234.50", "12.5", "-7", ".25", "1234567", "€ 10"]
    load(con, out, "deals")
    assert [(q["line"], q["column_name"]) for q in quarantine(con)] == [(4, "amount"),
                                                                        (7, "amount")]


def test_column_decimal_overrides_the_file_and_expressions_get_the_file_notation(tmp_path):
    mapping = DEALS % ('decimal: ","', "{expr: \"replace(value, ' EUR', '')\"}")
    _, out = run(tmp_path, mapping, {"deals.csv": 'id,value\nd1,"10,50 EUR"\n'})
    assert column(out, "deals", "amount") == ["10.50"]
    mapping = DEALS % ('decimal: ","', '{column: value, decimal: ".", thousands: ","}')
    _, out = run(tmp_path / "b", mapping, {"deals.csv": 'id,value\nd1,"1,250.5"\n'})
    assert column(out, "deals", "amount") == ["1250.5"]


# --- delimiters, encodings, formats --------------------------------------------------------


def test_cp1252_excel_export_is_transcoded(tmp_path):
    mapping = PEOPLE.replace('{glob: "people*.csv"}',
                             '{glob: "people*.csv", encoding: cp1252, delimiter: ";"}')
    data = "id;name\nu1;Renée d’Hondt – €\n".encode("cp1252")
    _, out = run(tmp_path, mapping, {"people.csv": data})
    assert column(out, "users", "full_name") == ["Renée d’Hondt – €"]


@pytest.mark.parametrize(("encoding", "codec"), [("latin-1", "latin-1"), ("utf-16", "utf-16")])
def test_encodings_duckdb_reads_itself(tmp_path, encoding, codec):
    mapping = PEOPLE.replace('{glob: "people*.csv"}',
                             f'{{glob: "people*.csv", encoding: {encoding}}}')
    _, out = run(tmp_path, mapping, {"people.csv": "id\tname\nu1\tJosé\n".encode(codec)})
    assert column(out, "users", "full_name") == ["José"]  # tab detected from the header


def test_xlsx_source_with_bom_less_header_and_several_files_for_one_entity(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(["id", "name"])
    workbook.active.append(["u3", "Cas"])
    source = tmp_path / "x.xlsx"
    workbook.save(source)
    mapping = PEOPLE.replace('{glob: "people*.csv"}', '{glob: ["people*.csv", "people*.xlsx"]}')
    _, out = run(tmp_path, mapping, {"people-a.csv": "id,name\nu1,Ann\n",
                                     "people-b.xlsx": source.read_bytes()})
    assert [(r["user_id"], r["source_file"]) for r in rows(out, "users")] == [
        ("u1", f"{DELIVERY}/people-a.csv"), ("u3", f"{DELIVERY}/people-b.xlsx"),
    ]


def test_source_lines_are_counted_like_the_canonical_loader(tmp_path):
    text = 'id,name\nu1,"Ann\nSmit"\n\nu2,Bob\n'
    _, out = run(tmp_path, PEOPLE, {"people.csv": text})
    assert column(out, "users", "source_line") == ["2", "3"]


# --- filters, missing values, unique, parts ------------------------------------------------


def test_filters_drop_rows_and_count_them_per_yaml_key(tmp_path):
    mapping = PEOPLE.replace('{glob: "people*.csv"}',
                             "{glob: \"people*.csv\", filter: \"kind <> 'test'\"}")
    mapping = mapping.replace("from: people", "from: people\n        filter: \"id like 'u%'\"")
    report, out = run(tmp_path, mapping, {"people.csv": (
        "id,name,kind\nu1,A,real\nu2,B,test\nx3,C,real\nu4,D,\n")})
    assert column(out, "users", "user_id") == ["u1"]
    assert report.entities["users"].rows_dropped == {
        "files.people.filter": 2, "entities.users.filter": 1,  # an empty kind is no match
    }


def test_if_missing_drop_or_leave_it_to_the_loader_to_quarantine(tmp_path, con):
    mapping = with_columns(full_name="{column: name, if_missing: drop}")
    report, out = run(tmp_path, mapping, {"people.csv": "id,name\nu1,\n,B\n"})
    assert rows(out, "users")[0]["user_id"] == ""
    assert report.entities["users"].rows_dropped == {
        "entities.users.columns.full_name.if_missing": 1
    }
    load(con, out, "users")
    assert [(q["line"], q["column_name"]) for q in quarantine(con)] == [(2, "user_id")]


TIP_CONTACT_PER_ACCOUNT = """
    delivery_time: {from: folder, format: "%Y-%m-%dT%H%M"}
    files:
      pipeline: {glob: "sales_pipeline.csv", filter: "stage <> 'Test'"}
    entities:
      contacts:
        from: pipeline
        unique: {key: contact_id}
        columns:
          contact_id: account
          company_id: account
          created_at: engage_date
          updated_at: {delivery_time: true}
"""


def _pipeline_export(accounts: list[str]) -> str:
    lines = ["opportunity_id,account,stage,engage_date"]
    lines += [f"OP{i},{account},{'Test' if account == 'test' else 'Won'},2025-11-03"
              for i, account in enumerate(accounts)]
    return "\n".join(lines) + "\n"


def test_empty_key_after_mapping_is_reported_with_the_source_file_line_and_column(tmp_path, con):
    """The docs' tip `contact_id: account` with `unique` on deals without an account: the
    quarantined rows and the rejection name the export's file, line and column (and the YAML
    key), not only the line of the generated landing file — which differs, since `unique`
    and the filter took rows out."""
    # one empty account: quarantined. Source lines: 2 Acme, 3 test (filtered), 4 Acme (merged),
    # 5 empty → line 3 of the canonical file.
    _, out = run(tmp_path / "one", TIP_CONTACT_PER_ACCOUNT,
                 {"sales_pipeline.csv": _pipeline_export(["Acme", "test", "Acme", ""])})
    assert load(con, out, "contacts").rows_quarantined == 1
    (problem,) = quarantine(con)
    assert (problem["line"], problem["column_name"]) == (3, "contact_id")
    assert problem["reason"] == (
        f"required value is empty (source: {DELIVERY}/sales_pipeline.csv line 5, column "
        "account (entities.contacts.columns.contact_id))"
    )
    (loaded,) = manifest(con)
    assert f"{DELIVERY}/sales_pipeline.csv line 5, column account" in loaded["message"]
    # many empty accounts: the file is rejected, and the message leads with the export's lines
    accounts = ["Acme", "test", "Acme"] + ["", "Initech"] * 10
    _, out = run(tmp_path / "many", TIP_CONTACT_PER_ACCOUNT,
                 {"sales_pipeline.csv": _pipeline_export(accounts)})
    (outcome,) = load(con, out, "contacts").outcomes
    assert outcome.status == "rejected"
    assert outcome.message.split("first: ")[1].startswith(
        f"{DELIVERY}/sales_pipeline.csv line 5, column account "
        "(entities.contacts.columns.contact_id) → contact_id: required value is empty "
        "(canonical line 3); "
        f"{DELIVERY}/sales_pipeline.csv line 7, column account"
    )


def test_a_canonical_extract_names_its_own_lines_only(con, landing):
    """Without the adapter's trace columns a problem is named by the landing file's line."""
    from conftest import row, write_file

    write_file(landing, "2026-01-31T0600", "users.csv", [row("users", user_id="")])
    load(con, landing, "users")
    (problem,) = quarantine(con)
    assert problem["reason"] == "required value is empty"


def test_unique_keeps_one_row_per_key_first_or_last_by_order(tmp_path):
    text = "id,name,since\nu1,Old,2026-01-02\nu1,Older,2026-01-01\nu2,B,\nu1,New,2026-01-03\n"
    mapping = PEOPLE.replace("        from: people",
                             "        unique: {key: user_id, order_by: updated_at, keep: KEEP}\n"
                             "        from: people").replace(
                                 "updated_at: {delivery_time: true}", "updated_at: since")
    report, out = run(tmp_path, mapping.replace("KEEP", "first"), {"people.csv": text})
    assert column(out, "users", "full_name") == ["Older", "B"]
    assert report.entities["users"].rows_dropped == {"entities.users.unique": 2}
    _, out = run(tmp_path / "last", mapping.replace("KEEP", "last"), {"people.csv": text})
    assert column(out, "users", "full_name") == ["B", "New"]


def test_parts_derive_several_rows_from_one_source_row(tmp_path):
    mapping = """
        files:
          deals: {glob: "deals.csv"}
        entities:
          deal_stage_changes:
            parts:
              - from: deals
                columns: {deal_id: id, stage: {const: qualification}, changed_at: created}
              - from: deals
                filter: "closed is not null"
                columns:
                  deal_id: id
                  stage: {column: result, map: {won: closed_won, lost: closed_lost}}
                  changed_at: closed
    """
    report, out = run(tmp_path, mapping, {"deals.csv": "id,created,closed,result\n"
                                                       "d1,2026-01-01,2026-01-09,won\n"
                                                       "d2,2026-01-02,,\n"})
    assert [(r["deal_id"], r["stage"], r["source_line"]) for r in rows(
        out, "deal_stage_changes")] == [
        ("d1", "qualification", "2"), ("d2", "qualification", "3"), ("d1", "closed_won", "2"),
    ]
    assert report.entities["deal_stage_changes"].rows_dropped == {
        "entities.deal_stage_changes.parts[1].filter": 1
    }


def test_entities_the_source_lacks_are_stated_with_their_consequence(tmp_path):
    report, out = run(tmp_path, PEOPLE, {"people.csv": PEOPLE_CSV, "notes.txt": "x"})
    assert sorted(p.name for p in (out / DELIVERY).iterdir()) == ["users.csv"]
    assert set(report.not_provided) == set(ENTITY_NAMES) - {"users"}
    assert "the label check has nothing to judge" in report.not_provided["lifecycle_changes"]
    assert f"{DELIVERY}/notes.txt: matches no files.*.glob, ignored" in report.notes
    assert [f.label for f in source_files(tmp_path / "mapping.yaml", tmp_path / "source")] == [
        f"{DELIVERY}/people.csv"
    ]


def test_preset_extends_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text(textwrap.dedent(PEOPLE), encoding="utf-8")
    (tmp_path / "mine.yaml").write_text(
        "extends: base.yaml\nentities:\n  users:\n    columns:\n      role: {const: sdr}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(tmp_path / "mine.yaml")
    assert mapping.entities["users"].parts[0].columns["role"].text == "sdr"
    assert mapping.entities["users"].parts[0].columns["user_id"].text == "id"


def test_stale_files_are_removed_and_a_foreign_folder_is_refused(tmp_path):
    _, out = run(tmp_path, PEOPLE, {"people.csv": PEOPLE_CSV})
    (out / DELIVERY / "deals.csv").write_text("left over", encoding="utf-8")
    adapt_source(tmp_path / "mapping.yaml", tmp_path / "source", out)
    assert sorted(p.name for p in (out / DELIVERY).iterdir()) == ["users.csv"]
    assert (out / MARKER_FILE).exists()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(AdapterError, match="is not empty and was not written by the adapter"):
        adapt_source(tmp_path / "mapping.yaml", tmp_path / "source", foreign)


def test_too_many_bad_rows_reject_the_entity_file_like_the_loader(tmp_path):
    mapping = with_columns(role="{column: job, map: {Sales: ae}}")
    text = "id,name,job\n" + "".join(f"u{i},N,Stagiair\n" for i in range(10))
    report, out = run(tmp_path, mapping, {"people.csv": text})
    assert not report.ok
    assert report.rejected[0].startswith(f"{DELIVERY}/users.csv: not written: 10 of 10 source "
                                         "rows are bad")
    assert not (out / DELIVERY / "users.csv").exists()


# --- error messages ------------------------------------------------------------------------


def test_error_source_column_not_found_names_key_file_and_columns(tmp_path):
    message = error_of(tmp_path, with_columns(full_name="Bedrag"),
                       {"people.csv": PEOPLE_CSV}, MappingError)
    assert message == (f"mapping.yaml: entities.users.columns.full_name: source column 'Bedrag' "
                       f"not found in {DELIVERY}/people.csv (columns: id, name)")


def test_error_expression_column_not_found_and_type_error(tmp_path):
    message = error_of(tmp_path, with_columns(full_name='{expr: "upper(nam)"}'),
                       {"people.csv": PEOPLE_CSV}, MappingError)
    assert "entities.users.columns.full_name.expr: source column 'nam' not found" in message
    message = error_of(tmp_path / "b", with_columns(full_name='{expr: "cast(name as integer)"}'),
                       {"people.csv": PEOPLE_CSV}, MappingError)
    assert message.startswith("mapping.yaml: entities.users.columns.full_name.expr: ")
    assert "Ann" in message and f"{DELIVERY}/people.csv" in message
    message = error_of(tmp_path / "c", with_columns(full_name='{expr: "name + 1"}'),
                       {"people.csv": PEOPLE_CSV}, MappingError)
    assert message.startswith("mapping.yaml: entities.users.columns.full_name.expr: Binder "
                              "Error: No function matches")
    assert message.endswith("(source columns are text: convert them, e.g. "
                            'try_cast("Waarde" as double))')


@pytest.mark.parametrize(("expression", "reason"), [
    ("(select 1)", "subqueries are not allowed"),
    ("random()", "random() is not allowed"),
    ("row_number() over ()", "window functions are not allowed"),
    ("t.name", "qualified name 't.name' is not allowed"),
    ("name) from x; drop table y; select (1", "not a valid SQL expression"),
])
def test_error_unsafe_or_invalid_expressions_are_refused_before_reading(tmp_path, expression,
                                                                        reason):
    quoted = expression.replace("'", "''")
    mapping = with_columns(full_name=f"{{expr: '{quoted}'}}")
    message = error_of(tmp_path, mapping, {"people.csv": PEOPLE_CSV}, MappingError)
    assert message.startswith("mapping.yaml: entities.users.columns.full_name.expr: ")
    assert reason in message


def test_error_yaml_keys_values_and_contract(tmp_path):
    mapping = """
        delivery_time: {from: folder}
        files:
          people: {glob: "people*.csv", encoding: cp-1252, decimal: ";"}
        entities:
          leads: {from: people}
          users:
            from: peeple
          deals:
            from: people
            colums: {}
            columns:
              deal_id: id
              stage: {column: s, map: {Won: won, yes: closed_won}, unmaped: error}
              deal_type: {const: newbusiness}
              amount: 12
              created_at: {column: c, format: "%d-%q"}
              currency: {column: c, format: "%d"}
    """
    message = error_of(tmp_path, mapping, {"people.csv": PEOPLE_CSV}, MappingError)
    for expected in (
        "mapping.yaml: delivery_time.format: a folder name needs a strptime format",
        "mapping.yaml: files.people.encoding: unknown encoding 'cp-1252'",
        "mapping.yaml: files.people.decimal: expected '.' or ','",
        "mapping.yaml: entities.leads: not a canonical entity",
        "mapping.yaml: entities.users.from: 'peeple' is not a key under files (files: people)",
        "mapping.yaml: entities.deals.colums: unknown key",
        "mapping.yaml: entities.deals.columns.stage.unmaped: unknown key",
        "mapping.yaml: entities.deals.columns.stage.map.Won: 'won' is not a value of "
        "deals.stage (expected one of: qualification, discovery, proposal, negotiation, "
        "closed_won, closed_lost)",
        "mapping.yaml: entities.deals.columns.stage.map: key True is not text: quote it",
        "mapping.yaml: entities.deals.columns.deal_type.const: 'newbusiness' is not a value "
        "of deals.deal_type",
        "mapping.yaml: entities.deals.columns.amount: expected a source column name, or a "
        "mapping with one of column, expr, const, delivery_time (a number or boolean needs "
        "const:)",
        "mapping.yaml: entities.deals.columns.created_at.format: invalid strptime format "
        "'%d-%q'",
        "mapping.yaml: entities.deals.columns.currency.format: only timestamp columns take a "
        "format (currency is string)",
        "mapping.yaml: entities.deals.columns: owner_user_id, closed_at, updated_at not "
        "mapped: the contract requires deals files to carry them",
    ):
        assert expected in message, expected


def test_error_delivery_time_not_configured_or_folder_not_matching(tmp_path):
    no_setting = PEOPLE.replace('delivery_time: {from: folder, format: "%Y-%m-%dT%H%M"}', "")
    message = error_of(tmp_path, no_setting, {"people.csv": PEOPLE_CSV}, MappingError)
    assert "entities.users.columns.updated_at.delivery_time: the mapping has no top-level " \
        "delivery_time" in message
    message = error_of(tmp_path / "b", PEOPLE, {"latest": {"people.csv": PEOPLE_CSV}},
                       MappingError)
    assert message == ("mapping.yaml: delivery_time.format: delivery folder 'latest' does not "
                       "match '%Y-%m-%dT%H%M'")


def test_error_filter_must_be_true_or_false(tmp_path):
    mapping = PEOPLE.replace("from: people", "from: people\n        filter: name")
    message = error_of(tmp_path, mapping, {"people.csv": PEOPLE_CSV}, MappingError)
    assert message == ("mapping.yaml: entities.users.filter: not a true/false expression "
                       "(it gives VARCHAR)")


def test_error_wrong_encoding_names_the_line_and_the_key_to_fix(tmp_path):
    data = "id,name\nu1,Ann\nu2,Renée\n".encode("cp1252")
    message = error_of(tmp_path, PEOPLE, {"people.csv": data}, SourceFileError)
    assert message.startswith(f"mapping.yaml: files.people: {DELIVERY}/people.csv: line 3: "
                              "not valid UTF-8")
    assert "set files.people.encoding (e.g. cp1252 for Excel exports)" in message

    cp1252 = PEOPLE.replace('{glob: "people*.csv"}', '{glob: "people*.csv", encoding: cp1252}')
    message = error_of(tmp_path / "b", cp1252, {"people.csv": b"id,name\nu1,A\x81n\n"},
                       SourceFileError)
    assert f"{DELIVERY}/people.csv: line 2: not valid cp1252 (byte 0x81" in message


def test_error_row_with_more_fields_than_the_header(tmp_path):
    message = error_of(tmp_path, PEOPLE, {"people.csv": "id,name\nu1,Ann\nu2,Bob,extra\n"},
                       SourceFileError)
    assert message == (f"mapping.yaml: files.people: {DELIVERY}/people.csv: line 3: 3 fields "
                       "where the header has 2 (is files.people.delimiter right?)")


@pytest.mark.parametrize("ending", [b"\r", b"\r\n"])
def test_an_export_of_carriage_return_ended_lines_loads(tmp_path, ending):
    """A line ends at CR, LF or CR LF, in an export as in a canonical file ("CSV (Macintosh)"
    writes CR): the header was read to the end of the file, and Python's csv module's error
    escaped the step, which the run retried twice."""
    report, out = run(tmp_path, PEOPLE, {"people.csv": PEOPLE_CSV.encode().replace(b"\n", ending)})
    assert report.ok, report.format()
    assert column(out, "users", "full_name") == ["Ann", "Bob"]


def test_error_a_carriage_return_in_the_header_or_a_value_that_is_not_quoted(tmp_path):
    """...so a carriage return inside a header name or an unquoted value ends its line: the
    row comes out short, named by its line (no retry, no Python csv message)."""
    message = error_of(tmp_path, PEOPLE, {"people.csv": b"id,na\rme\nu1,Ann\n"},
                       SourceFileError)
    assert message.endswith(f"{DELIVERY}/people.csv: line 2: 1 fields where the header has 2 "
                            "(is files.people.delimiter right?)"), message
    message = error_of(tmp_path / "b", PEOPLE, {"people.csv": b"id,name\nu1,An\rn\nu2,Bob\n"},
                       SourceFileError)
    assert f"{DELIVERY}/people.csv: line 3: 1 fields where the header has 2" in message
    assert "universal-newline" not in message


def test_error_a_quote_left_open_names_the_line_it_opens_and_quotes_no_data(tmp_path):
    """The row runs to the end of the file: named by the line where it opens (it was "line 20",
    the file's end, then DuckDB's message with two lines of the file in it); a quote closed
    further down, a row of too few fields, is named by both lines."""
    data = "id,name\nu1,Ann\nu2,\"Bob\n" + "".join(f"u{i},P{i}\n" for i in range(3, 20))
    message = error_of(tmp_path, PEOPLE, {"people.csv": data}, SourceFileError)
    assert message.endswith(f"{DELIVERY}/people.csv: line 3: a quote opened in this row is "
                            "never closed"), message
    assert "P3" not in message
    closed = "id,name\nu1,Ann\n\"u2\nBob\"\nu3,Cas\n"  # `u2⏎Bob` one value: a row of 1
    message = error_of(tmp_path / "b", PEOPLE, {"people.csv": closed}, SourceFileError)
    assert message.endswith("line 3: 1 fields where the header has 2, in a row that runs to "
                            "line 4 (is a quote left open on line 3?)"), message


def test_error_a_corrupt_gzip_export_names_the_file(tmp_path):
    data = damaged(gzip.compress(("id,name\n" + "u1,Ann\n" * 2000).encode()), 12, 28)
    message = error_of(tmp_path, PEOPLE.replace("people*.csv", "people*.csv.gz"),
                       {"people.csv.gz": data}, SourceFileError)
    assert f"{DELIVERY}/people.csv.gz: cannot read" in message


def test_error_duckdbs_own_reason_is_kept_and_the_row_it_quotes_left_out(tmp_path):
    """A UTF-16 export is explained by DuckDB alone: its message quotes the row ("Original
    Line:", the row on the next line) before it says what is wrong. The row is left out, the
    reason kept (it was dropped with the row)."""
    utf16 = PEOPLE.replace('{glob: "people*.csv"}', '{glob: "people*.csv", encoding: utf-16}')
    message = error_of(tmp_path, utf16,
                       {"people.csv": "id,name\nu1,Ann\nu2,Bob,x\n".encode("utf-16")},
                       SourceFileError)
    assert "Line: 3" in message and "Expected Number of Columns: 2 Found: 3" in message, message
    assert "Bob" not in message


def test_error_a_corrupt_utf16_gzip_export_names_the_file(tmp_path):
    """Exports in an encoding DuckDB does not read are transcoded first: damage there is the
    export's, said so (it escaped the step as zlib.error)."""
    data = damaged(gzip.compress(("id,name\n" + "u1,Ann\n" * 2000).encode("utf-16")), 12, 28)
    utf16 = PEOPLE.replace('{glob: "people*.csv"}',
                           '{glob: "people*.csv.gz", encoding: utf-16}')
    message = error_of(tmp_path, utf16, {"people.csv.gz": data}, SourceFileError)
    assert f"{DELIVERY}/people.csv.gz: cannot read" in message, message
    assert str(tmp_path) not in message


def test_error_an_extends_chain_beyond_its_limit_or_a_mapping_file_too_large(tmp_path):
    """A chain of a thousand mapping files ended in a RecursionError, which the run retried as
    a passing fault; it stops at MAX_EXTENDS, naming where. A file larger than a mapping can
    be is not read."""
    from pipelines.adapters.mapping import MAX_EXTENDS, MAX_MAPPING_BYTES, mapping_files

    (tmp_path / "m0.yaml").write_text(textwrap.dedent(PEOPLE), encoding="utf-8")
    for i in range(1, MAX_EXTENDS + 2):
        (tmp_path / f"m{i}.yaml").write_text(f"extends: m{i - 1}.yaml\n", encoding="utf-8")
    deepest = tmp_path / f"m{MAX_EXTENDS + 1}.yaml"
    for read in (load_mapping, mapping_files):
        with pytest.raises(MappingError, match=f"a chain of more than {MAX_EXTENDS} mapping"):
            read(deepest)
    assert load_mapping(tmp_path / f"m{MAX_EXTENDS - 1}.yaml").entities
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * MAX_MAPPING_BYTES + "\n", encoding="utf-8")
    with pytest.raises(MappingError, match="larger than a mapping file may be"):
        load_mapping(huge)
    nested = tmp_path / "nested.yaml"
    nested.write_text("files: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"nested\.yaml: not a readable YAML file"):
        load_mapping(nested)


@pytest.mark.parametrize("glob", ["../../outside/people*.csv", "/etc/passwd", "sub\\\\people.csv"])
def test_error_a_glob_that_is_a_path(tmp_path, glob):
    """A glob matches the names inside a delivery folder: a path matched nothing, and the run
    published an empty entity with only a note. Refused, naming the key."""
    mapping = PEOPLE.replace('"people*.csv"', repr(glob).replace("'", '"'))
    message = error_of(tmp_path, mapping, {"people.csv": PEOPLE_CSV}, MappingError)
    assert "files.people.glob" in message and "is a path" in message, message


def test_error_unknown_mapping_or_preset_and_unreadable_yaml(tmp_path):
    with pytest.raises(MappingError, match="no such mapping file, and no preset of that name"):
        load_mapping("no-such-crm")
    bad = tmp_path / "bad.yaml"
    bad.write_text("files: [unclosed\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"bad\.yaml: not a readable YAML file"):
        load_mapping(bad)


def test_report_text_names_every_count(tmp_path):
    mapping = with_columns(role="{column: job, map: {Sales: ae}}",
                           team="{column: team, default: Sales}")
    report, out = run(tmp_path, mapping, {"people.csv": "id,name,job,team\nu1,A,Sales,\n"
                                                      "u2,B,Intern,x\n"})
    text = report.format()
    assert (out / REPORT_TEXT_FILE).read_text(encoding="utf-8") == text + "\n"
    assert "users                      2        1        0     1      1" in text
    assert "  users: 1 × entities.users.columns.team.default" in text
    assert "  users: 1 × entities.users.columns.role.unmapped" in text
    assert f"{DELIVERY}/people.csv line 3, column job: unmapped value 'Intern'" in text
    assert json.loads(report.to_json())["entities"]["users"]["rows_bad"] == {
        "entities.users.columns.role.unmapped": 1
    }


def test_sample_crm_shape_without_creation_dates_or_contacts(tmp_path, con):
    """The shape of the usual public sample CRM: opportunities with agent, stage, engage and
    close dates and a value, but no creation date and no contact; a sales-team list without
    roles or ids; a product spelled two ways. The mapping makes the contact from the account,
    takes the engage date as creation date (a deal still prospecting has none: dropped and
    counted), gives everyone in the team list the role `ae` and the deals one currency."""
    mapping = """
        delivery_time: {from: folder, format: "%Y-%m-%d"}
        files:
          pipeline: {glob: "sales_pipeline.csv"}
          teams: {glob: "sales_teams.csv"}
        entities:
          users:
            from: teams
            columns:
              user_id: sales_agent
              full_name: sales_agent
              role: {const: ae}
              team: regional_office
              updated_at: {delivery_time: true}
          contacts:
            from: pipeline
            unique: {key: contact_id, order_by: created_at}
            columns:
              contact_id: account
              company_id: account
              owner_user_id: sales_agent
              created_at: {column: engage_date, if_missing: drop}
              updated_at: {delivery_time: true}
          deals:
            from: pipeline
            columns:
              deal_id: opportunity_id
              contact_id: account
              company_id: account
              owner_user_id: sales_agent
              deal_type: {const: new_business}
              stage:
                column: deal_stage
                map: {Prospecting: qualification, Engaging: discovery, Won: closed_won,
                      Lost: closed_lost}
              amount: close_value
              currency: {const: EUR}
              created_at: {column: engage_date, if_missing: drop}
              closed_at: close_date
              updated_at: {delivery_time: true}
            extra:
              product: {column: product, aliases: {GTXPro: GTX Pro}}
    """
    report, out = run(tmp_path, mapping, {"2026-01-31": {
        "sales_pipeline.csv": (
            "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,"
            "close_value\n"
            "OP1,Ann Smit,GTXPro,Acme,Won,2025-11-03,2025-12-01,1054\n"
            "OP2,Ann Smit,GTX Basic,Acme,Lost,2025-11-20,2025-12-15,0\n"
            "OP3,Bob Kok,GTX Pro,Initech,Engaging,2025-12-08,,\n"
            "OP4,Bob Kok,MG Special,Umbrella,Prospecting,,,\n"
        ),
        "sales_teams.csv": "sales_agent,manager,regional_office\nAnn Smit,Cara Lee,West\n"
                           "Bob Kok,Cara Lee,East\n",
    }})
    assert report.entities["deals"].rows_dropped == {
        "entities.deals.columns.created_at.if_missing": 1
    }
    assert report.entities["deals"].values_fixed == {"entities.deals.extra.product.aliases": 1}
    for entity in ("users", "contacts", "deals"):
        assert load(con, out, entity).rows_quarantined == 0
    assert fetch(con, "select deal_id, stage, amount, closed_at is not null as closed "
                      "from raw.deals order by _line") == [
        {"deal_id": "OP1", "stage": "closed_won", "amount": Decimal("1054.00"), "closed": True},
        {"deal_id": "OP2", "stage": "closed_lost", "amount": Decimal("0.00"), "closed": True},
        {"deal_id": "OP3", "stage": "discovery", "amount": None, "closed": False},
    ]
    assert [r["contact_id"] for r in fetch(con, "select contact_id from raw.contacts")] == [
        "Acme", "Initech",
    ]
