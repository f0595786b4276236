"""`generate_sample`: a deterministic CRM extract of a Dutch B2B sales team in the canonical
format (contract v1): one full delivery and two deltas, in a deliberate mix of file formats,
timestamp styles and boolean spellings so that every reader path is exercised.

Same (scale, staff scale, seed, end) → byte-identical files: nothing reads the wall clock or
the machine's time zone, and every random draw comes from a seeded stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipelines.sample.frames import ENTITIES
from pipelines.sample.world import build_world
from pipelines.sample.writers import FileSpec, write_file

DEFAULT_END = date(2026, 11, 26)
EXTENSIONS = ("csv", "csv.gz", "parquet", "jsonl", "xlsx")

# Per delivery: how each entity is written. Full delivery: plain `,` CSV (activities gzipped);
# deltas: Parquet, JSON lines, a `;` CSV with BOM and upper-case headers, a small xlsx.
FULL: tuple[FileSpec, ...] = (
    FileSpec("users", "csv", ts="offset"),
    FileSpec("companies", "csv", ts_columns=(("created_at", "date"),), bools=("", "true")),
    FileSpec("contacts", "csv"),
    FileSpec("lifecycle_changes", "csv", ts="naive", bools=("0", "1")),
    FileSpec("marketing_events", "csv", ts="offset", bools=("no", "yes")),
    FileSpec("activities", "csv.gz", bools=("0", "1")),
    FileSpec("deals", "csv", extras=True),
    FileSpec("deal_stage_changes", "csv", ts="naive"),
    FileSpec("quotes", "csv", ts="offset", eur_blank=True),
    FileSpec("fx_rates", "csv"),
)
DELTA_1: tuple[FileSpec, ...] = (
    FileSpec("users", "xlsx", bools=None),
    FileSpec("companies", "csv", ts_columns=(("created_at", "date"),)),
    FileSpec(
        "contacts",
        "parquet",
        bools=None,
        order=("updated_at", "contact_id", "email", "owner_user_id", "is_deleted"),
    ),
    FileSpec("lifecycle_changes", "csv", bools=("n", "y")),
    FileSpec("marketing_events", "csv", ts="naive", bools=("N", "Y")),
    FileSpec("activities", "jsonl", ts="ms", ts_columns=(("occurred_at", "offset"),), bools=None),
    FileSpec(
        "deals",
        "csv",
        ts="offset",
        bools=("no", "yes"),
        delimiter=";",
        bom=True,
        crlf=True,
        upper_header=True,
        order=("deal_id", "stage", "amount", "currency", "closed_at", "updated_at"),
    ),
    FileSpec("deal_stage_changes", "csv"),
    FileSpec("quotes", "jsonl", bools=None),
    FileSpec("fx_rates", "csv"),
)
DELTA_2: tuple[FileSpec, ...] = (
    FileSpec("users", "csv"),
    FileSpec(
        "companies", "csv", ts="offset", ts_columns=(("created_at", "date"),), drop=("is_deleted",)
    ),
    FileSpec("contacts", "jsonl", ts="offset", bools=None),
    FileSpec("lifecycle_changes", "csv", ts="naive", delimiter=";", bools=("0", "1")),
    FileSpec("marketing_events", "jsonl", bools=None),
    FileSpec("activities", "parquet", bools=None, naive_parquet=True),
    FileSpec("deals", "parquet", bools=None),
    FileSpec("deal_stage_changes", "csv", ts="offset"),
    FileSpec("quotes", "csv", ts="naive", bools=("False", "True")),
    FileSpec("fx_rates", "jsonl", bools=None),
)
PLAN = (FULL, DELTA_1, DELTA_2)


@dataclass(frozen=True)
class SampleSummary:
    """What `generate_sample` wrote."""

    out_dir: Path
    deliveries: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    seconds: float = 0.0


def generate_sample(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 42,
    end: date = DEFAULT_END,
    progress: Callable[[str], None] | None = None,
    staff_scale: float | None = None,
) -> SampleSummary:
    """Write a landing folder with deliveries `<end-2>T0200` (full), `<end-1>T0200` and
    `<end>T0200` (deltas) under `out_dir`. Scale 1 ≈ 10k contacts and 100k activities; the
    history covers the 24 months before `end`'s month up to `end`. `staff_scale` sizes the
    sales organisation apart from the contacts (default: `scale`; 1 ≈ 20 users in 3 teams):
    a large org with few contacts per rep, e.g. scale 18 with staff scale 66 ≈ 1,400 users
    over 180k contacts."""
    for name, value in (("scale", scale), ("staff scale", staff_scale)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    started = time.perf_counter()
    world = build_world(scale, seed, end, progress, staff_scale=staff_scale)
    out_dir = Path(out_dir)
    rows = dict.fromkeys(ENTITIES, 0)
    files = 0
    bounds = (None, world.clock.t[0], world.clock.t[1])
    for name, specs, lo, hi in zip(world.clock.names, PLAN, bounds, world.clock.t, strict=True):
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        _remove_entity_files(folder)
        for spec in specs:
            versions = world.entities[spec.entity]
            positions = versions.delivery(lo, hi)
            if lo is not None and len(positions) == 0:
                continue  # an entity absent from a delta means "no changes"
            n = write_file(folder / spec.filename, spec, versions, positions, world.id_width)
            rows[spec.entity] += n
            files += 1
            if progress is not None:
                progress(f"wrote {name}/{spec.filename} ({n:,} rows)")
    return SampleSummary(
        out_dir=out_dir,
        deliveries=list(world.clock.names),
        rows=rows,
        files=files,
        seconds=round(time.perf_counter() - started, 3),
    )


def _remove_entity_files(folder: Path) -> None:
    """Clear entity files a previous run left (another scale may have written other formats)."""
    for entity in ENTITIES:
        for ext in EXTENSIONS:
            (folder / f"{entity}.{ext}").unlink(missing_ok=True)
