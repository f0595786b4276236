"""What a run did, read back from the load manifest: the CLI's closing summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.contract import ENTITY_NAMES
from pipelines.publish import attach_published, attached_table
from pipelines.safe_text import excerpt, single_line


@dataclass(frozen=True)
class EntitySummary:
    entity: str
    files_loaded: int
    rows_loaded: int
    rows_quarantined: int
    files_rejected: int
    raw_rows_total: int


@dataclass(frozen=True)
class RunLoad:
    """What a run's load did: per entity, and the files it did not load again."""

    entities: list[EntitySummary]
    duplicates: list[str]  # `<delivery>/<file>` of each, in delivery order


def summarise_run(database: Path, run_id: str) -> RunLoad:
    """Per entity: what this run loaded, quarantined and rejected, and raw's total rows; and
    each file it found to hold the same bytes as a file loaded before (status `duplicate`:
    not loaded again). One read of the manifest's database."""
    if not database.exists():
        return RunLoad([], [])
    with duckdb.connect(str(database), read_only=True) as con:
        has_manifest = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw' and table_name = 'load_manifest'"
        ).fetchone()[0]  # type: ignore[index]
        if not has_manifest:
            return RunLoad([], [])
        per_entity = {
            row[0]: row[1:]
            for row in con.execute(
                """
                select entity,
                       count(*) filter (where status = 'loaded'),
                       coalesce(sum(rows_loaded), 0),
                       coalesce(sum(rows_quarantined), 0),
                       count(*) filter (where status = 'rejected')
                from raw.load_manifest where run_id = ? group by entity
                """,
                [run_id],
            ).fetchall()
        }
        summaries = []
        for entity in ENTITY_NAMES:
            total = con.execute(f"select count(*) from raw.{entity}").fetchone()[0]  # type: ignore[index]
            files, rows, quarantined, rejected = per_entity.get(entity, (0, 0, 0, 0))
            summaries.append(
                EntitySummary(entity, files, int(rows), int(quarantined), rejected, int(total))
            )
        duplicates = [
            f"{delivery}/{file_name}"
            for delivery, file_name in con.execute(
                "select delivery, file_name from raw.load_manifest "
                "where run_id = ? and status = 'duplicate' order by delivery, file_name",
                [run_id],
            ).fetchall()
        ]
        return RunLoad(summaries, duplicates)


# How many duplicates the summary names (the manifest has them all)
DUPLICATES_NAMED = 5


def format_duplicates(duplicates: list[str]) -> str | None:
    """One line naming the duplicates (escaped: names are data), or None when there are none."""
    if not duplicates:
        return None
    named = ", ".join(single_line(name) for name in duplicates[:DUPLICATES_NAMED])
    more = len(duplicates) - DUPLICATES_NAMED
    return (
        f"not loaded again: {len(duplicates)} file(s) with the same bytes as a file loaded "
        f"before (duplicate): {named}" + (f" and {more} more" if more > 0 else "")
    )


def format_summary(run: RunLoad) -> str:
    """The table per entity, and under it the line naming the duplicates, if any."""
    header = (
        f"{'entity':<20}{'files':>7}{'loaded':>12}{'quarantined':>13}{'rejected':>10}"
        f"{'raw total':>12}"
    )
    lines = [header, "-" * len(header)]
    for s in run.entities:
        lines.append(
            f"{s.entity:<20}{s.files_loaded:>7}{s.rows_loaded:>12,}{s.rows_quarantined:>13,}"
            f"{s.files_rejected:>10}{s.raw_rows_total:>12,}"
        )
    if (duplicates := format_duplicates(run.duplicates)) is not None:
        lines.append(duplicates)
    return "\n".join(lines)


def flagged_labellers(published: Path) -> list[tuple[str, int, int, float]]:
    """Labellers whose CRM labels disagree with the definitions above the threshold."""
    if not published.exists():
        return []
    with duckdb.connect() as con:
        attach_published(con, published, "published")
        return con.execute(
            f"""
            select labeller, labels_judged, inconsistent, inconsistency_rate
            from {attached_table(con, "published", "label_consistency")}
            where exceeds_threshold order by inconsistency_rate desc, labeller
            """
        ).fetchall()


def format_flagged_labeller(labeller: str, judged: int, inconsistent: int, rate: float) -> str:
    """The summary's line for a labeller above the threshold; the labeller (a user id: data)
    quoted bounded and escaped, as the check lines quote data."""
    return (
        f"labeller {excerpt(labeller)}: {inconsistent} of {judged} CRM labels ({rate:.0%}) "
        "disagree with the agreed definitions (see label_consistency)"
    )
