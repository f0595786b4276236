"""Target overrides: the file a sales manager edits, validated and loaded each run.

One line per override: `kpi_id,scope,scope_id,period_start,target`. An override replaces the
derived target of that period; later periods ladder from it (see the README). Every problem
is reported with its line, and a file with any problem fails the run before dbt starts.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipelines.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "dbt_project" / "seeds" / "definitions"
REGISTRY_SEED = SEEDS / "kpi_definitions.csv"
SCOPES_SEED = SEEDS / "kpi_scopes.csv"
SALES_ROLES_SEED = SEEDS / "sales_roles.csv"
COLUMNS = ("kpi_id", "scope", "scope_id", "period_start", "target")

OVERRIDES_DDL = """
create table if not exists raw.target_overrides (
    kpi_id varchar not null,
    scope varchar not null,
    scope_id varchar not null,
    period_start date not null,
    target double not null,
    source_file varchar not null,
    source_line bigint not null
)
"""


class TargetOverrideError(ValueError):
    """The overrides file has problems; the message lists each with its line."""


@dataclass(frozen=True)
class KpiSpec:
    kpi_id: str
    kind: str
    grain: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Override:
    kpi_id: str
    scope: str
    scope_id: str
    period_start: date
    target: float
    line: int


def _seed_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_registry(
    path: Path = REGISTRY_SEED, scopes_path: Path = SCOPES_SEED
) -> dict[str, KpiSpec]:
    """The KPI registry (seeds kpi_definitions and kpi_scopes), read before dbt runs so a bad
    overrides file fails the run before anything is built."""
    scopes: dict[str, list[str]] = {}
    for row in _seed_rows(scopes_path):
        scopes.setdefault(row["kpi_id"], []).append(row["scope"])
    return {
        row["kpi_id"]: KpiSpec(
            row["kpi_id"], row["kpi_kind"], row["grain"], tuple(scopes.get(row["kpi_id"], ()))
        )
        for row in _seed_rows(path)
    }


def sales_roles(path: Path = SALES_ROLES_SEED) -> set[str]:
    """The roles that make a user a sales rep (seed sales_roles)."""
    return {row["role"] for row in _seed_rows(path) if row["is_sales_rep"].lower() == "true"}


def parse_overrides(
    path: Path,
    registry: dict[str, KpiSpec],
    reps: set[str] | None = None,
    teams: set[str] | None = None,
) -> list[Override]:
    """Validate every line; raise TargetOverrideError listing all problems."""
    if not path.exists():
        return []
    problems: list[str] = []
    overrides: list[Override] = []
    seen: dict[tuple[str, str, str, date], int] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise TargetOverrideError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
        for line, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            if not any(row.values()):
                continue
            problem = _check(row, registry, reps, teams)
            if problem:
                problems.append(f"{path.name} line {line}: {problem}")
                continue
            override = Override(
                row["kpi_id"], row["scope"], row["scope_id"],
                date.fromisoformat(row["period_start"]), float(row["target"]), line,
            )
            key = (override.kpi_id, override.scope, override.scope_id, override.period_start)
            if key in seen:
                problems.append(
                    f"{path.name} line {line}: same KPI, scope and period as line {seen[key]}"
                )
            seen[key] = line
            overrides.append(override)
    if problems:
        raise TargetOverrideError("target overrides: " + "; ".join(problems))
    return overrides


def _check(
    row: dict[str, str],
    registry: dict[str, KpiSpec],
    reps: set[str] | None,
    teams: set[str] | None,
) -> str | None:
    kpi = registry.get(row["kpi_id"])
    if kpi is None:
        return f"unknown KPI {row['kpi_id']!r}"
    if kpi.kind == "insight":
        return f"{kpi.kpi_id} is an insight KPI: insight KPIs get no targets"
    if row["scope"] not in kpi.scopes:
        return f"unknown scope {row['scope']!r} for {kpi.kpi_id} (one of: {', '.join(kpi.scopes)})"
    if row["scope"] == "company" and row["scope_id"] != "all":
        return "the company scope's scope_id is 'all'"
    if row["scope"] == "rep" and reps is not None and row["scope_id"] not in reps:
        return f"unknown rep {row['scope_id']!r} (not a sales rep's user_id)"
    if row["scope"] == "team" and teams is not None and row["scope_id"] not in teams:
        return f"unknown team {row['scope_id']!r}"
    try:
        start = date.fromisoformat(row["period_start"])
    except ValueError:
        return f"period_start {row['period_start']!r} is not a date (YYYY-MM-DD)"
    if kpi.grain == "week" and start.isoweekday() != 1:
        return f"period_start {start} is not a Monday (the start of a week, {kpi.kpi_id}'s grain)"
    if kpi.grain == "month" and start.day != 1:
        return f"period_start {start} is not the first day of a month ({kpi.kpi_id}'s grain)"
    try:
        target = float(row["target"])
    except ValueError:
        return f"target {row['target']!r} is not a number"
    if not (math.isfinite(target) and target >= 0):  # float() reads inf, 1e400 and nan too
        return f"target {row['target']!r} must be a finite number ≥ 0"
    return None


def current_reps_and_teams(con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
    """Sales reps (current role) and teams, from the latest version of each raw user."""
    rows = con.execute(
        """
        select user_id, role, coalesce(team, 'Unassigned') from raw.users
        qualify row_number() over (
            partition by user_id order by updated_at desc, _delivery desc, _load_id desc,
            _line desc
        ) = 1
        """
    ).fetchall()
    roles = sales_roles()
    reps = {user for user, role, _ in rows if role in roles}
    teams = {team for _, role, team in rows if role in roles}
    return reps, teams


def load_overrides(con: duckdb.DuckDBPyConnection, path: Path) -> list[Override]:
    """Validate the file against the registry and the current reps; replace the raw table."""
    con.execute(OVERRIDES_DDL)
    reps, teams = current_reps_and_teams(con)
    overrides = parse_overrides(path, read_registry(), reps, teams)
    con.execute("begin transaction")
    con.execute("delete from raw.target_overrides")
    if overrides:
        con.executemany(
            "insert into raw.target_overrides values (?, ?, ?, ?, ?, ?, ?)",
            [
                (o.kpi_id, o.scope, o.scope_id, o.period_start, o.target, path.name, o.line)
                for o in overrides
            ],
        )
    con.execute("commit")
    return overrides
