"""Local wall time in the business timezone, and the time-zone rules every part reads.

The rules are the IANA time-zone database. DuckDB carries its own copy (ICU, inside the duckdb
package); Python's `zoneinfo` would take the operating system's copy first, which can be
years older — Debian 12's was 2025b while DuckDB 2.0.1 has British Columbia on permanent UTC−7
from November 2026 — so the same instant would fall in another week in a Python display, or a
naive `as_of` would name another instant than the same text in an extract. `use_pinned_rules`
makes `zoneinfo` read the `tzdata` package pinned in constraints.txt, the version DuckDB's
carries (tests/test_settings.py compares them zone by zone).

A naive local time becomes an instant by one rule, DuckDB's `timezone(zone, timestamp)`: a
time in a spring-forward gap moves forward by the gap, one that occurs twice (the autumn
overlap) takes the later, standard-time instant (CONTRACT.md's parsing rules). The loader uses
it in its SQL (`local_instant_sql`); a naive `as_of` goes through the same SQL
(`local_instant`). A Spark build checks that Spark's rules (the JVM's own copy, often older)
put the business timezone's instants where DuckDB's do, before it builds anything
(`write_time_zone_probes`, the dbt hook `time_zone_rules_from_var`).
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from pathlib import Path

from pipelines.sql_text import sql_literal


def use_pinned_rules() -> None:
    """`zoneinfo` reads the pinned `tzdata` package only, never the operating system's copy
    (called once, when the package is imported)."""
    import tzdata  # noqa: F401 — without it every zone would be "unknown": say what is missing

    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()


def local_instant_sql(timezone: str, timestamp: str) -> str:
    """SQL for the instant of the TIMESTAMP expression `timestamp` read as local wall time in
    `timezone` (a TIMESTAMPTZ)."""
    return f"timezone({sql_literal(timezone)}, {timestamp})"


def local_instant(wall: datetime, timezone: str) -> datetime:
    """The instant of the naive `wall` time in `timezone`, by the loader's own SQL: the same
    text means the same instant wherever the project reads it."""
    import duckdb  # only when a naive instant is given: the CLI starts without it

    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        row = con.execute(
            f"select {local_instant_sql(timezone, 'cast(? as timestamp)')}", [wall]
        ).fetchone()
    instant = row[0] if row else None
    if not isinstance(instant, datetime):  # DuckDB gives text for an instant it cannot hold
        raise ValueError(f"{wall} in {timezone} is outside the instants a run can take")
    return instant.astimezone(UTC)


# Since when another engine's rules must agree with DuckDB's (`write_time_zone_probes`) at the
# latest — from the data's earliest instant where it is older (pipelines/spark_build.py: a
# record of 1966 is counted in its month too), but not before PROBES_EARLIEST: an hour a
# probe, each century costs about a second to write.
PROBES_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
PROBES_EARLIEST = datetime(1800, 1, 1, tzinfo=UTC)


def write_time_zone_probes(
    timezone: str, until: datetime, path: Path, since: datetime = PROBES_SINCE
) -> None:
    """Write to the Parquet file `path` the instants another engine's time-zone rules must
    put where DuckDB's do, for `timezone` from `since` to `until`: the hour before and
    the hour of every change of its UTC offset, and noon UTC on the 1st and the 15th of every
    month (where the other engine changes offset and DuckDB does not). Columns `instant`
    (seconds since 1970, UTC) and `local_time` (`YYYY-MM-DD HH:MM:SS` wall time). The dbt
    project's `time_zone_rules_from_var` hook compares them."""
    import duckdb  # the Spark build's preparation only

    instant = "cast(? as timestamptz)"
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(
            f"""
            copy (
                with hours as (
                    select unnest(generate_series({instant}, {instant}, interval 1 hour))
                        as instant
                ),
                walls as (
                    select instant, {local_instant_sql(timezone, "instant")} as wall
                    from hours
                ),
                offsets as (
                    select instant, wall, wall - cast(instant as timestamp) as utc_offset
                    from walls
                ),
                changes as (
                    select
                        *,
                        utc_offset != lag(utc_offset) over (order by instant) as changed,
                        utc_offset != lead(utc_offset) over (order by instant) as changes_next
                    from offsets
                )
                select
                    cast(epoch(instant) as bigint) as instant,
                    strftime(wall, '%Y-%m-%d %H:%M:%S') as local_time
                from changes
                where changed or changes_next
                   or (day(instant) in (1, 15) and hour(instant) = 12)
                order by instant
            ) to {sql_literal(str(path))} (format parquet)
            """,
            [since, until],
        )
