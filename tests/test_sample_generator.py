"""The sample generator: deterministic, in the contract's shape, and realistic where it matters.

The files are read back here with plain readers (csv, pyarrow, json, openpyxl), independent of
the generator's own tables, so the tests check what a loader would actually see.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pyarrow.parquet as pq
import pytest

from pipelines.sample import SampleSummary, generate_sample

END = dt.date(2026, 11, 26)
DELIVERIES = ["2026-11-24T0200", "2026-11-25T0200", "2026-11-26T0200"]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def words(text: str) -> set[str]:
    return set(text.split())


# The contract's columns per entity (CONTRACT.md, v1).
CONTRACT_COLUMNS = {
    entity: set(columns.split())
    for entity, columns in {
        "users": "user_id full_name email role team is_active updated_at",
        "companies": "company_id name domain industry employee_count country created_at "
        "updated_at is_deleted",
        "contacts": "contact_id company_id email first_name last_name job_title owner_user_id "
        "created_at updated_at is_deleted",
        "lifecycle_changes": "change_id contact_id lifecycle_stage changed_at changed_by_user_id "
        "is_deleted",
        "marketing_events": "event_id contact_id event_type occurred_at campaign channel "
        "is_deleted",
        "activities": "activity_id activity_type direction owner_user_id contact_id deal_id "
        "occurred_at duration_seconds outcome updated_at is_deleted",
        "deals": "deal_id contact_id company_id owner_user_id deal_type stage amount currency "
        "created_at closed_at lost_reason updated_at is_deleted",
        "deal_stage_changes": "deal_id stage changed_at changed_by_user_id is_deleted",
        "quotes": "quote_id deal_id status amount currency created_at sent_at updated_at "
        "is_deleted",
        "fx_rates": "currency month rate_to_eur",
    }.items()
}
PRIMARY_KEY = {
    "users": ("user_id",),
    "companies": ("company_id",),
    "contacts": ("contact_id",),
    "lifecycle_changes": ("change_id",),
    "marketing_events": ("event_id",),
    "activities": ("activity_id",),
    "deals": ("deal_id",),
    "deal_stage_changes": ("deal_id", "stage", "changed_at"),
    "quotes": ("quote_id",),
    "fx_rates": ("currency", "month"),
}
STAGES = "qualification discovery proposal negotiation closed_won closed_lost"
ENUMS = {
    key: set(values.split())
    for key, values in {
        ("users", "role"): "sdr ae manager marketing other",
        ("lifecycle_changes", "lifecycle_stage"): "subscriber lead marketing_qualified_lead "
        "sales_qualified_lead opportunity customer other",
        ("marketing_events", "event_type"): "newsletter_signup linkedin_follow content_download "
        "webinar_registration webinar_attended event_visit chat_conversation contact_form "
        "demo_request pricing_request trial_signup",
        ("activities", "activity_type"): "email call meeting linkedin_message task note",
        ("activities", "direction"): "outbound inbound",
        ("activities", "outcome"): "sent replied bounced connected no_answer voicemail busy "
        "wrong_number held no_show cancelled",
        ("deals", "deal_type"): "new_business upsell renewal",
        ("deals", "stage"): STAGES,
        ("deal_stage_changes", "stage"): STAGES,
        ("quotes", "status"): "draft sent accepted rejected expired",
    }.items()
}
INTENT = {"demo_request", "contact_form", "pricing_request", "trial_signup"}
FREE_MAIL = words(
    "gmail.com googlemail.com hotmail.com outlook.com live.com msn.com yahoo.com icloud.com "
    "me.com aol.com proton.me protonmail.com gmx.com hotmail.nl live.nl outlook.nl ziggo.nl "
    "kpnmail.nl planet.nl home.nl xs4all.nl hotmail.be telenet.be skynet.be"
)
REQUIRED = {
    "users": ("user_id", "full_name", "role", "updated_at"),
    "companies": ("company_id", "name", "created_at", "updated_at"),
    "contacts": ("contact_id", "created_at", "updated_at"),
    "lifecycle_changes": ("change_id", "contact_id", "lifecycle_stage", "changed_at"),
    "marketing_events": ("event_id", "contact_id", "event_type", "occurred_at"),
    "activities": ("activity_id", "activity_type", "owner_user_id", "occurred_at", "updated_at"),
    "deals": ("deal_id", "owner_user_id", "deal_type", "stage", "created_at", "updated_at"),
    "deal_stage_changes": ("deal_id", "stage", "changed_at"),
    "quotes": ("quote_id", "deal_id", "status", "created_at", "updated_at"),
    "fx_rates": ("currency", "month", "rate_to_eur"),
}
TIMESTAMP_COLUMNS = words("updated_at created_at changed_at occurred_at closed_at sent_at")
BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
BOOLEANS |= {"y": True, "n": False}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?)?$")


# --- reading the files back ------------------------------------------------------------------


def _text(value: object) -> str:
    """A typed cell as the contract's text (naive datetimes stay naive = local time)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value).strip()


def read_file(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header (lower-cased, as matched by the loader) and rows as text, for any format."""
    name = path.name
    if name.endswith((".csv", ".csv.gz")):
        raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        text = raw.decode("utf-8-sig")
        first = text.split("\n", 1)[0]
        delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = [h.strip().lower() for h in next(reader)]
        rows = [dict(zip(header, (v.strip() for v in rec), strict=True)) for rec in reader]
    elif name.endswith(".parquet"):
        table = pq.read_table(path)
        header = [c.lower() for c in table.column_names]
        rows = [{k.lower(): _text(v) for k, v in r.items()} for r in table.to_pylist()]
    elif name.endswith(".jsonl"):
        records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        header = [k.lower() for k in records[0]] if records else []
        rows = [{k.lower(): _text(v) for k, v in r.items()} for r in records]
    else:
        sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        values = list(sheet.iter_rows(values_only=True))
        header = [str(h).lower() for h in values[0]]
        rows = [dict(zip(header, map(_text, r), strict=True)) for r in values[1:]]
    return header, rows


def instant(text: str) -> dt.datetime:
    """A contract timestamp as a UTC instant (naive = Amsterdam local, later on a repeat)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=AMSTERDAM, fold=1)
    return value.astimezone(dt.UTC)


def entity_files(root: Path) -> Iterator[tuple[str, str, Path]]:
    """(delivery, entity, path) for every landing file, in delivery order."""
    for delivery in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(delivery.iterdir()):
            yield delivery.name, path.name.split(".", 1)[0], path


def merged(root: Path) -> dict[str, dict[tuple[str, ...], dict[str, str]]]:
    """Per entity and primary key the winning version, by the contract's rules."""
    out: dict[str, dict[tuple[str, ...], dict[str, str]]] = defaultdict(dict)
    for _, entity, path in entity_files(root):
        for row in read_file(path)[1]:
            key = tuple(row[k] for k in PRIMARY_KEY[entity])
            old = out[entity].get(key)
            if (
                old is None
                or "updated_at" not in row
                or instant(row["updated_at"]) >= instant(old["updated_at"])
            ):
                out[entity][key] = row
    return out


def is_true(value: str, default: bool = False) -> bool:
    return default if value == "" else BOOLEANS[value.lower()]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate_sample(out, scale=0.2, seed=7, end=END)


@pytest.fixture(scope="module")
def data(sample: tuple[Path, SampleSummary]) -> dict[str, dict[tuple[str, ...], dict[str, str]]]:
    return merged(sample[0])


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- the rules -------------------------------------------------------------------------------


def test_same_scale_seed_and_end_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate_sample(tmp_path / "a", scale=0.05, seed=3, end=END)
    second = generate_sample(tmp_path / "b", scale=0.05, seed=3, end=END)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert first.rows == second.rows
    other_seed = generate_sample(tmp_path / "c", scale=0.05, seed=4, end=END)
    assert other_seed.rows != first.rows or _hashes(tmp_path / "c") != _hashes(tmp_path / "a")


def test_rerun_into_the_same_folder_replaces_the_previous_files(tmp_path: Path) -> None:
    generate_sample(tmp_path, scale=0.1, seed=1, end=END)
    before = _hashes(tmp_path)
    generate_sample(tmp_path, scale=0.05, seed=1, end=END)
    generate_sample(tmp_path, scale=0.1, seed=1, end=END)
    assert _hashes(tmp_path) == before


def test_deliveries_are_named_after_end_full_first_then_two_deltas(
    sample: tuple[Path, SampleSummary],
) -> None:
    root, summary = sample
    assert summary.deliveries == DELIVERIES
    assert sorted(p.name for p in root.iterdir()) == DELIVERIES
    other = generate_sample(root.parent / "other_end", scale=0.05, end=dt.date(2025, 3, 31))
    assert other.deliveries == ["2025-03-29T0200", "2025-03-30T0200", "2025-03-31T0200"]


def test_full_delivery_has_every_entity_with_the_contract_columns(
    sample: tuple[Path, SampleSummary],
) -> None:
    root, _ = sample
    full = root / DELIVERIES[0]
    found = {p.name.split(".", 1)[0]: p for p in full.iterdir()}
    assert set(found) == set(CONTRACT_COLUMNS)
    for entity, path in found.items():
        header, rows = read_file(path)
        assert CONTRACT_COLUMNS[entity] <= set(header), (entity, header)
        assert len(rows) >= 5, entity


def test_every_delta_file_carries_the_entitys_required_columns(
    sample: tuple[Path, SampleSummary],
) -> None:
    root, _ = sample
    for delivery, entity, path in entity_files(root):
        header = set(read_file(path)[0])
        assert set(PRIMARY_KEY[entity]) | set(REQUIRED[entity]) <= header, (delivery, path.name)
        assert header - CONTRACT_COLUMNS[entity] <= {"deal_name"}, path.name


def test_values_are_valid_per_the_contract(sample: tuple[Path, SampleSummary]) -> None:
    root, _ = sample
    for _, entity, path in entity_files(root):
        for line, row in enumerate(read_file(path)[1], start=2):
            where = f"{path.parent.name}/{path.name}:{line}"
            for column in REQUIRED[entity]:
                assert row.get(column, "") != "", (where, column)
            for column, value in row.items():
                if value == "":
                    continue
                if column in TIMESTAMP_COLUMNS:
                    assert ISO.match(value), (where, column, value)
                    instant(value)
                if (entity, column) in ENUMS:
                    assert value in ENUMS[(entity, column)], (where, column, value)
                if column in ("is_deleted", "is_active"):
                    assert value.lower() in BOOLEANS, (where, column, value)
                if column in ("amount", "duration_seconds", "employee_count"):
                    assert Decimal(value) >= 0, (where, column, value)
            if entity == "deals" and row["stage"] in ("closed_won", "closed_lost"):
                assert row["closed_at"], where
            if entity == "quotes" and row["status"] != "draft":
                assert row["sent_at"], where
            if entity == "fx_rates":
                assert re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", row["month"]), where
                assert Decimal(row["rate_to_eur"]) > 0, where


def test_deltas_carry_new_records_updates_and_deletes(sample: tuple[Path, SampleSummary]) -> None:
    root, _ = sample
    seen: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    per_delivery: dict[str, Counter[str]] = defaultdict(Counter)
    for delivery, entity, path in entity_files(root):
        for row in read_file(path)[1]:
            key = tuple(row[k] for k in PRIMARY_KEY[entity])
            tally = per_delivery[delivery]
            tally[f"{entity}:{'update' if key in seen[entity] else 'new'}"] += 1
            if is_true(row.get("is_deleted", "")):
                tally[f"{entity}:delete"] += 1
            seen[entity].add(key)
    for delta in DELIVERIES[1:]:
        tally = per_delivery[delta]
        for entity in ("contacts", "activities", "deals"):
            assert tally[f"{entity}:update"] > 0, (delta, entity)
            assert tally[f"{entity}:delete"] > 0, (delta, entity)
        assert tally["activities:new"] > 0 and tally["contacts:new"] > 0, delta
        assert tally["marketing_events:delete"] > 0, delta
    # An entity without changes is simply absent from a delta.
    assert not (root / DELIVERIES[2] / "users.csv").exists()


def test_a_delta_moves_a_deal_on_and_closes_it(sample: tuple[Path, SampleSummary]) -> None:
    root, _ = sample
    full = {r["deal_id"]: r for r in read_file(next((root / DELIVERIES[0]).glob("deals.*")))[1]}
    closing = []
    for delta in DELIVERIES[1:]:
        for row in read_file(next((root / delta).glob("deals.*")))[1]:
            before = full.get(row["deal_id"])
            if before and row["stage"] in ("closed_won", "closed_lost") and not before["closed_at"]:
                assert instant(row["updated_at"]) > instant(before["updated_at"])
                closing.append(row["deal_id"])
    assert closing


def test_every_landing_format_and_variant_is_used(sample: tuple[Path, SampleSummary]) -> None:
    root, _ = sample
    names = [p.name for p in root.rglob("*") if p.is_file()]
    assert {n.split(".", 1)[1] for n in names} == {"csv", "csv.gz", "parquet", "jsonl", "xlsx"}
    assert (root / DELIVERIES[0] / "activities.csv.gz").exists()
    deltas = [p for d in DELIVERIES[1:] for p in (root / d).iterdir()]
    assert {p.name.split(".", 1)[1] for p in deltas} >= {"parquet", "jsonl", "xlsx", "csv"}
    bom_semicolon = [
        p
        for p in deltas
        if p.name.endswith(".csv")
        and p.read_bytes().startswith(b"\xef\xbb\xbf")
        and b";" in p.read_bytes().split(b"\n", 1)[0]
    ]
    assert bom_semicolon
    assert any(p.read_bytes()[3:].split(b"\n", 1)[0].isupper() for p in bom_semicolon), (
        "one file uses upper-case header names"
    )


def test_text_timestamps_mix_utc_offsets_naive_local_and_bare_dates(
    sample: tuple[Path, SampleSummary],
) -> None:
    root, _ = sample
    styles: Counter[str] = Counter()
    spellings: set[str] = set()
    for _, _, path in entity_files(root):
        if path.suffix == ".parquet":
            continue
        for row in read_file(path)[1]:
            for column, value in row.items():
                if column in TIMESTAMP_COLUMNS and value:
                    if value.endswith("Z"):
                        styles["utc"] += 1
                    elif re.search(r"[+-]\d\d:\d\d$", value):
                        styles["offset"] += 1
                    elif "T" in value:
                        styles["naive"] += 1
                    else:
                        styles["date"] += 1
                if column in ("is_deleted", "is_active") and value:
                    spellings.add(value)
    assert all(styles[s] > 0 for s in ("utc", "offset", "naive", "date")), styles
    assert styles["utc"] + styles["offset"] > styles["naive"] + styles["date"]
    assert {"true", "false", "1", "0", "yes", "no"} <= {s.lower() for s in spellings}


def test_history_covers_at_least_18_months_up_to_end(data: dict) -> None:
    occurred = [instant(r["occurred_at"]) for r in data["activities"].values()]
    first, last = min(occurred), max(occurred)
    assert (last - first).days >= 18 * 30
    assert last.astimezone(AMSTERDAM).date() >= END - dt.timedelta(days=2)
    assert last <= dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.UTC)


def test_sales_organisation_has_teams_roles_inactive_users_and_empty_teams(data: dict) -> None:
    users = list(data["users"].values())
    roles = Counter(u["role"] for u in users)
    assert roles["sdr"] >= 4 and roles["ae"] >= 4 and roles["manager"] >= 2
    assert roles["marketing"] >= 2 and roles["other"] >= 1
    teams = {u["team"] for u in users if u["role"] in ("sdr", "ae")}
    assert len(teams - {""}) >= 2
    assert any(u["team"] == "" for u in users)
    assert any(not is_true(u["is_active"], default=True) for u in users)


def test_every_event_and_activity_kind_occurs(data: dict) -> None:
    events = Counter(r["event_type"] for r in data["marketing_events"].values())
    assert set(events) == ENUMS[("marketing_events", "event_type")]
    intent = sum(events[t] for t in INTENT)
    assert events["newsletter_signup"] + events["linkedin_follow"] > intent
    activities = list(data["activities"].values())
    assert {a["activity_type"] for a in activities} == ENUMS[("activities", "activity_type")]
    assert {a["outcome"] for a in activities} - {""} == ENUMS[("activities", "outcome")]
    durations = [
        int(a["duration_seconds"])
        for a in activities
        if a["outcome"] == "connected" and a["duration_seconds"]
    ]
    assert min(durations) < 300 <= max(durations)
    assert any(a["outcome"] == "connected" and not a["duration_seconds"] for a in activities)
    assert any(a["deal_id"] for a in activities)


def test_deal_stage_history_matches_each_deals_stage(data: dict) -> None:
    changes: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in data["deal_stage_changes"].values():
        changes[row["deal_id"]].append(row)
    types = Counter()
    for deal in data["deals"].values():
        types[deal["deal_type"]] += 1
        history = sorted(changes[deal["deal_id"]], key=lambda r: instant(r["changed_at"]))
        assert history[0]["stage"] == "qualification"
        assert instant(history[0]["changed_at"]) == instant(deal["created_at"])
        assert history[-1]["stage"] == deal["stage"]
        if deal["stage"] in ("closed_won", "closed_lost"):
            assert instant(history[-1]["changed_at"]) == instant(deal["closed_at"])
        else:
            assert deal["closed_at"] == ""
    assert types["new_business"] > types["upsell"] > 0 and types["renewal"] > 0
    currencies = {d["currency"] or "EUR" for d in data["deals"].values()}
    assert {"EUR", "GBP", "USD", "CHF"} <= currencies


def test_no_quote_is_sent_before_its_deal_was_created(data: dict) -> None:
    deals = {k[0]: v for k, v in data["deals"].items()}
    statuses = Counter()
    for quote in data["quotes"].values():
        statuses[quote["status"]] += 1
        if quote["sent_at"]:
            created = instant(deals[quote["deal_id"]]["created_at"])
            assert instant(quote["sent_at"]) >= created
    assert set(statuses) == ENUMS[("quotes", "status")]


def test_fx_rates_have_gap_months_for_the_latest_earlier_rule(data: dict) -> None:
    months: dict[str, list[str]] = defaultdict(list)
    for currency, month in data["fx_rates"]:
        months[currency].append(month)
    for currency in ("GBP", "USD", "CHF"):
        assert len(months[currency]) >= 20

    def index(m: str) -> int:
        return int(m[:4]) * 12 + int(m[5:]) - 1

    gaps = 0
    for currency in ("USD", "CHF"):
        have = sorted(index(m) for m in months[currency])
        gaps += (have[-1] - have[0] + 1) - len(have)
    assert gaps >= 2


def test_two_reps_habitually_label_newsletter_and_linkedin_contacts_as_mql(data: dict) -> None:
    soft_only: set[str] = set()
    with_intent: set[str] = set()
    for event in data["marketing_events"].values():
        if event["event_type"] in INTENT:
            with_intent.add(event["contact_id"])
        elif event["event_type"] in ("newsletter_signup", "linkedin_follow"):
            soft_only.add(event["contact_id"])
    soft_only -= with_intent
    mislabels = Counter()
    labels = Counter()
    for label in data["lifecycle_changes"].values():
        labels[label["changed_by_user_id"]] += 1
        if label["lifecycle_stage"] == "marketing_qualified_lead" and label["contact_id"] in (
            soft_only
        ):
            mislabels[label["changed_by_user_id"]] += 1
    habitual = [u for u, n in mislabels.items() if u and n >= 0.3 * labels[u] and n >= 10]
    assert len(habitual) == 2, mislabels.most_common(5)
    roles = {u: r["role"] for (u,), r in data["users"].items()}
    assert all(roles[u] in ("sdr", "ae", "manager") for u in habitual)
    others = [n for u, n in mislabels.items() if u not in habitual]
    assert sum(others) < sum(mislabels[u] for u in habitual) / 3


def test_fit_contacts_with_intent_become_deals_and_some_become_customers(data: dict) -> None:
    contacts = {k[0]: v for k, v in data["contacts"].items()}
    intent_at: dict[str, dt.datetime] = {}
    for e in data["marketing_events"].values():
        if e["event_type"] in INTENT:
            t = instant(e["occurred_at"])
            intent_at[e["contact_id"]] = min(t, intent_at.get(e["contact_id"], t))
    nb = [d for d in data["deals"].values() if d["deal_type"] == "new_business"]
    marketing_sourced = sales_sourced = 0
    for deal in nb:
        c = contacts.get(deal["contact_id"])
        fit = bool(c and c["email"] and c["email"].rsplit("@", 1)[1] not in FREE_MAIL)
        t = intent_at.get(deal["contact_id"])
        if fit and t is not None and t <= instant(deal["created_at"]):
            marketing_sourced += 1
        else:
            sales_sourced += 1
    assert marketing_sourced > 0 and sales_sourced > 0
    won = [d for d in nb if d["stage"] == "closed_won"]
    assert 0.1 < len(won) / len(nb) < 0.6
    amounts = sorted(float(d["amount"]) for d in won if d["amount"])
    assert 1_000 <= amounts[len(amounts) // 2] <= 50_000


def test_rows_grow_roughly_in_proportion_to_scale(tmp_path: Path) -> None:
    small = generate_sample(tmp_path / "s", scale=0.1, seed=5, end=END)
    large = generate_sample(tmp_path / "l", scale=0.2, seed=5, end=END)
    for entity in ("contacts", "companies", "activities", "marketing_events", "lifecycle_changes"):
        ratio = large.rows[entity] / small.rows[entity]
        assert 1.6 < ratio < 2.4, (entity, ratio)


def test_staff_scale_sizes_the_sales_organisation_and_scale_the_contacts(tmp_path: Path) -> None:
    """A large org with few contacts per rep (issue 14's extract: 1,410 reps, 178k contacts):
    three teams per unit of staff scale, the contacts as many as the scale gives."""
    plain = generate_sample(tmp_path / "p", scale=0.2, seed=5, end=END)
    large_org = generate_sample(tmp_path / "o", scale=0.2, seed=5, end=END, staff_scale=2.0)

    def teams(folder: Path) -> int:
        _, users = read_file(folder / DELIVERIES[0] / "users.csv")
        return len({u["team"] for u in users if u["role"] in ("sdr", "ae")})

    assert (teams(tmp_path / "p"), teams(tmp_path / "o")) == (2, 6)
    assert large_org.rows["users"] > 2 * plain.rows["users"]
    assert 0.8 < large_org.rows["contacts"] / plain.rows["contacts"] < 1.25


def test_every_user_has_a_name_of_their_own_in_a_large_organisation(tmp_path: Path) -> None:
    """The first delta's hire too (it once took a name already given, at staff scale 66)."""
    generate_sample(tmp_path, scale=0.01, seed=42, end=END, staff_scale=66)
    names: dict[str, str] = {}
    for delivery in DELIVERIES:
        for path in (tmp_path / delivery).glob("users.*"):
            for user in read_file(path)[1]:
                names[user["user_id"]] = user["full_name"]
    assert len(names) > 1_300
    assert len(set(names.values())) == len(names)


def test_a_staff_scale_beyond_the_names_there_are_is_refused_naming_the_largest(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="at most 212"):
        generate_sample(tmp_path, scale=0.01, seed=1, end=END, staff_scale=213)


def test_tiny_scale_still_has_two_teams_and_rows_for_every_entity(tmp_path: Path) -> None:
    summary = generate_sample(tmp_path, scale=0.01, seed=2, end=END)
    assert all(n >= 3 for n in summary.rows.values()), summary.rows
    _, users = read_file(tmp_path / DELIVERIES[0] / "users.csv")
    assert len({u["team"] for u in users if u["role"] in ("sdr", "ae")}) >= 2


def test_summary_counts_the_files_and_rows_written(sample: tuple[Path, SampleSummary]) -> None:
    root, summary = sample
    paths = [p for p in root.rglob("*") if p.is_file()]
    assert summary.files == len(paths)
    written = Counter()
    for _, entity, path in entity_files(root):
        written[entity] += len(read_file(path)[1])
    assert dict(written) == summary.rows
    assert summary.out_dir == root and summary.seconds >= 0


def test_progress_is_reported_for_long_runs(tmp_path: Path) -> None:
    messages: list[str] = []
    generate_sample(tmp_path, scale=0.05, progress=messages.append)
    assert any("activities" in m for m in messages)
    assert sum(m.startswith("wrote ") for m in messages) == len(list(tmp_path.rglob("*.*")))


def test_scale_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_sample(tmp_path, scale=0)
