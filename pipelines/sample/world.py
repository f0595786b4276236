"""Builds the whole CRM history, entity by entity, as record versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pipelines.sample.activities import build_activities
from pipelines.sample.common import Clock, make_clock
from pipelines.sample.contacts import Facts, build_contacts, first_owner, funnel_facts
from pipelines.sample.deals import build_deals, build_fx
from pipelines.sample.frames import ID_FORMAT, Versions
from pipelines.sample.labels import build_labels
from pipelines.sample.marketing import build_marketing, build_prospecting
from pipelines.sample.people import Staff, build_people, build_staff


@dataclass
class World:
    """Everything the writers need: the clock, each entity's versions and the id widths."""

    clock: Clock
    entities: dict[str, Versions]
    id_width: dict[str, int]
    staff: Staff
    facts: Facts


def build_world(
    scale: float, seed: int, end: date, progress: Callable[[str], None] | None = None,
    staff_scale: float | None = None,
) -> World:
    """Every entity's versions for one (scale, seed, end): deterministic, wall-clock free.
    The sales organisation (teams, reps, marketers) follows `staff_scale` when given, the
    contacts and everything they do `scale`."""

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    clock = make_clock(end)
    staff = build_staff(scale if staff_scale is None else staff_scale, seed, clock)
    people = build_people(scale, seed, clock, staff)
    say(f"companies and contacts: {people.companies.n:,} / {people.n:,}")
    mk = build_marketing(seed, clock, people)
    pr = build_prospecting(seed, clock, people, staff)
    say(f"marketing events: {mk.versions.n:,}; planned cold touches: {len(pr.touch_day):,}")
    deals = build_deals(seed, clock, people, staff, mk, pr)
    say(f"deals: {deals.n:,}; quotes: {deals.quotes.n:,}")
    owner0 = first_owner(seed, people, staff, mk, pr)
    facts = funnel_facts(people, staff, mk, deals, owner0)
    contacts = build_contacts(seed, people, staff, mk, facts, clock.t)
    labels = build_labels(seed, clock, people, staff, mk, pr, facts)
    activities = build_activities(seed, clock, people, staff, mk, pr, deals, facts)
    say(f"activities: {activities.n:,}; lifecycle labels: {labels.n:,}")
    entities = {
        "users": staff.versions,
        "companies": people.companies,
        "contacts": contacts,
        "lifecycle_changes": labels,
        "marketing_events": mk.versions,
        "activities": activities,
        "deals": deals.versions,
        "deal_stage_changes": deals.stage_changes,
        "quotes": deals.quotes,
        "fx_rates": build_fx(seed, clock),
    }
    # Id digits: the entity's minimum, or more when a large scale needs them (dangling
    # references point a little past the last record, so leave room for those too).
    width = {
        name: max(minimum, len(str(entities[name].n + 200)))
        for name, (_, minimum) in ID_FORMAT.items()
    }
    return World(clock=clock, entities=entities, id_width=width, staff=staff, facts=facts)
