"""What an adapter run did, per canonical entity: rows read, written, dropped (per reason),
held back as bad (per reason, each listed with file, line, column and value) and values fixed
(per rule). Every counter is keyed by the YAML key that decided it, so a number in the run
summary points at the line of the mapping that explains it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.contract import ENTITY_NAMES

# Stated in the run summary for each entity a source does not provide (DEFINITIONS.md).
CONSEQUENCES: dict[str, str] = {
    "users": "no CRM users: no owner is a sales rep, so rep and team KPIs count nothing",
    "companies": "no companies: no contact belongs to a live company, so none is fit and no "
    "marketing lead can qualify; cold e-mails and calls cannot spot customers' colleagues",
    "contacts": "no contacts: no lead stages and an empty funnel; deals have no primary "
    "contact, so no sales leads or customers",
    "lifecycle_changes": "no lifecycle_changes: there are no CRM labels, so the label check "
    "has nothing to judge",
    "marketing_events": "no marketing_events: no marketing leads; every sales lead counts as "
    "sales-sourced",
    "activities": "no activities: the action KPIs (cold e-mails, cold calls, sales "
    "conversations) are 0",
    "deals": "no deals: no sales leads, quotes, customers or revenue",
    "deal_stage_changes": "no deal_stage_changes: an open deal shows its CRM stage (no stage "
    "history as of an earlier date)",
    "quotes": "no quotes: no quote stage; quote-to-customer conversion stays empty",
    "fx_rates": "no fx_rates: only EUR amounts convert; a won deal in another currency has no "
    "EUR amount (and blocks publishing)",
}
SHOWN_PROBLEMS = 20
KEPT_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    """A value that made its row bad (held back): where it is and which YAML key to fix."""

    entity: str
    file: str  # <delivery>/<file name>
    line: int
    column: str  # the source column, or the YAML key for computed values
    value: str | None
    key: str  # the YAML key that decided
    reason: str
    hint: str | None = None  # the column's `hint`: what to add where

    def describe(self) -> str:
        return (f"{self.file} line {self.line}, column {self.column}: {self.reason} "
                f"{self.value!r} ({self.key})" + (f"; {self.hint}" if self.hint else ""))


@dataclass
class EntityReport:
    entity: str
    rows_read: int = 0
    rows_written: int = 0
    rows_dropped: Counter[str] = field(default_factory=Counter)
    rows_bad: Counter[str] = field(default_factory=Counter)
    values_fixed: Counter[str] = field(default_factory=Counter)
    values_unparsable: Counter[str] = field(default_factory=Counter)
    files_written: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return sum(self.rows_dropped.values())

    @property
    def bad(self) -> int:
        return sum(self.rows_bad.values())

    @property
    def fixed(self) -> int:
        return sum(self.values_fixed.values())


@dataclass
class AdapterReport:
    mapping: str
    source: str
    source_dir: Path
    out_dir: Path
    deliveries: tuple[str, ...] = ()
    entities: dict[str, EntityReport] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # mapping/file errors: nothing to load
    # entity → output column → where its value comes from (the loader quotes it next to the
    # source file and line of a value it quarantines)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """False when a canonical file was rejected (too many bad rows) or a mapping or file
        error stopped the adapter: fail the run."""
        return not self.rejected and not self.errors

    @property
    def not_provided(self) -> dict[str, str]:
        """Entities this source does not map, with what that means for the KPIs."""
        return {e: CONSEQUENCES[e] for e in ENTITY_NAMES if e not in self.entities}

    def add_problem(self, problem: Problem) -> None:
        if len(self.problems) < KEPT_PROBLEMS:
            self.problems.append(problem)

    def format(self) -> str:
        """The run summary's adapter section: plain text, one entity per row."""
        lines = [
            f"source {self.source} ({self.mapping}): {len(self.deliveries)} deliveries from "
            f"{self.source_dir} → {self.out_dir}",
        ]
        header = f"{'entity':<20}{'read':>8}{'written':>9}{'dropped':>9}{'bad':>6}{'fixed':>7}"
        lines += [header, "-" * len(header)]
        for name, e in self.entities.items():
            lines.append(f"{name:<20}{e.rows_read:>8,}{e.rows_written:>9,}{e.dropped:>9,}"
                         f"{e.bad:>6,}{e.fixed:>7,}")
        for title, attribute in (
            ("dropped", "rows_dropped"), ("bad (held back)", "rows_bad"),
            ("fixed", "values_fixed"),
            ("not matching any format (passed on: the loader quarantines them unless ISO 8601)",
             "values_unparsable"),
        ):
            counts = [(name, key, n) for name, e in self.entities.items()
                      for key, n in sorted(getattr(e, attribute).items())]
            if counts:
                lines.append(f"{title}:")
                lines += [f"  {name}: {n:,} × {key}" for name, key, n in counts]
        if self.not_provided:
            lines.append("not in this source (left empty):")
            lines += [f"  {text}" for text in self.not_provided.values()]
        if self.problems:
            lines.append("held back, per value (rows, first row):")
            lines += [f"  {line}" for line in self.held_back_values()[:SHOWN_PROBLEMS]]
            total = sum(e.bad for e in self.entities.values())
            lines.append(f"bad values (first {min(SHOWN_PROBLEMS, len(self.problems))} "
                         f"of {total:,} bad rows):")
            lines += [f"  {p.describe()}" for p in self.problems[:SHOWN_PROBLEMS]]
        lines += [f"rejected: {message}" for message in self.rejected]
        lines += [f"error: {message}" for message in self.errors]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def held_back_values(self) -> list[str]:
        """One line per distinct held-back value (an unknown stage, owner, direction, …) with
        its row count, first row and hint: the list of what to add, not one line per row."""
        groups: dict[tuple[str, str, str, str | None, str | None], list[Problem]] = {}
        for p in self.problems:
            groups.setdefault((p.entity, p.key, p.column, p.value, p.hint), []).append(p)
        return [
            f"{entity}: {len(found):,} × column {column} {value!r} ({key}), first "
            f"{found[0].file} line {found[0].line}" + (f"; {hint}" if hint else "")
            for (entity, key, column, value, hint), found in groups.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (e.g. Dagster metadata, or a file next to the run's logs)."""
        return {
            "mapping": self.mapping,
            "source": self.source,
            "source_dir": str(self.source_dir),
            "out_dir": str(self.out_dir),
            "deliveries": list(self.deliveries),
            "entities": {
                name: {
                    "rows_read": e.rows_read, "rows_written": e.rows_written,
                    "rows_dropped": dict(sorted(e.rows_dropped.items())),
                    "rows_bad": dict(sorted(e.rows_bad.items())),
                    "values_fixed": dict(sorted(e.values_fixed.items())),
                    "values_unparsable": dict(sorted(e.values_unparsable.items())),
                    "files_written": e.files_written,
                }
                for name, e in self.entities.items()
            },
            "not_provided": self.not_provided,
            "problems": [p.__dict__ for p in self.problems],
            "rejected": self.rejected,
            "notes": self.notes,
            "errors": self.errors,
            "columns": self.columns,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
