"""Lifecycle labels as people (and automations) set them in the CRM.

Most labels agree with what the definitions compute at the label's moment: automation marks
new contacts `subscriber`/`lead`, an intent event of a fit contact makes a
`marketing_qualified_lead`, opening a deal a `sales_qualified_lead`/`opportunity`, a win a
`customer`. Two reps, though, habitually label newsletter sign-ups and LinkedIn followers as
`marketing_qualified_lead` — the disagreement the label-consistency check must surface.
"""

from __future__ import annotations

import numpy as np

from pipelines.sample.common import Clock, at_local, stream
from pipelines.sample.contacts import Facts
from pipelines.sample.frames import NULL_ID, Versions, code
from pipelines.sample.marketing import EV, INTENT, Marketing, Prospecting
from pipelines.sample.people import NEVER, ROLE_AE, ROLE_MANAGER, ROLE_SDR, People, Staff
from pipelines.sample.timeutil import DAY, HOUR, MINUTE, unambiguous

SUBSCRIBER, LEAD, MQL, SQL, OPPORTUNITY, CUSTOMER, OTHER = (
    code("lifecycle_stage", s)
    for s in (
        "subscriber",
        "lead",
        "marketing_qualified_lead",
        "sales_qualified_lead",
        "opportunity",
        "customer",
        "other",
    )
)
AUTOMATION = NULL_ID


def build_labels(
    seed: int,
    clock: Clock,
    people: People,
    staff: Staff,
    mk: Marketing,
    pr: Prospecting,
    facts: Facts,
) -> Versions:
    """Lifecycle label changes in time order (ids follow that order)."""
    g = stream(seed, "labels")
    n = people.n
    created = people.created
    # Stage "none" ends at the first of marketing lead / sales lead.
    none_until = np.minimum(facts.mql_time, facts.sl_time)
    contact: list[np.ndarray] = []
    stage: list[np.ndarray] = []
    at: list[np.ndarray] = []
    by: list[np.ndarray] = []

    def add(
        c: np.ndarray,
        s: np.ndarray | int,
        t: np.ndarray,
        who: np.ndarray | int,
        before: np.ndarray | None = None,
    ) -> None:
        """Labels of contacts `c` at `t` (kept only when earlier than `before`)."""
        # The full delivery writes labels as naive local time: keep them unambiguous.
        t = unambiguous(t)
        keep = t <= clock.last
        if before is not None:
            keep &= t < before
        contact.append(c[keep])
        stage.append(np.broadcast_to(np.asarray(s, np.int8), c.shape)[keep])
        at.append(t[keep])
        by.append(np.broadcast_to(np.asarray(who, np.int64), c.shape)[keep])

    # First event per contact (events are sorted by time).
    uniq, first = np.unique(mk.contact, return_index=True)
    first_type = np.full(n, -1, dtype=np.int64)
    first_at = np.full(n, NEVER, dtype=np.int64)
    first_type[uniq] = mk.event_type[first]
    first_at[uniq] = mk.occurred[first]

    # 1. Automation labels new contacts: subscribers from marketing, leads from imports.
    c = np.flatnonzero(~people.spam & (g.random(n) < 0.8))
    marketing_first = np.isin(
        first_type[c],
        [
            EV["newsletter_signup"],
            EV["linkedin_follow"],
            EV["content_download"],
            EV["webinar_registration"],
        ],
    )
    t = np.where(first_at[c] < NEVER, np.maximum(first_at[c], created[c]), created[c])
    t = t + g.integers(1, 300, len(c))
    s = np.where(marketing_first, SUBSCRIBER, LEAD)
    add(c, s, t, AUTOMATION, none_until[c])

    # 2. A prospector marks some contacts `lead` when the cadence starts (the two habitual
    # mislabellers don't bother: to them everyone is a marketing lead).
    c = np.flatnonzero(
        pr.prospected & (g.random(n) < 0.3) & ~np.isin(pr.prospector, staff.mislabellers)
    )
    start_day = _first_touch_day(pr, n)[c]
    ok = start_day >= 0
    c, start_day = c[ok], start_day[ok]
    t = at_local(start_day, np.full(len(c), 8 * HOUR + 30 * MINUTE)) + g.integers(0, HOUR, len(c))
    add(c, LEAD, t, pr.prospector[c], none_until[c])

    # 3. Marketing leads: automation, the owner or a marketer; a non-fit intent stays `lead`.
    c = np.flatnonzero(facts.mql_time < NEVER)
    t = facts.mql_time[c] + g.integers(5 * MINUTE, DAY, len(c))
    u = g.random(len(c))
    marketer = staff.marketers[g.integers(0, len(staff.marketers), len(c))]
    owner = facts.owner0[c]
    who = np.select([u < 0.5, (u < 0.8) & (owner >= 0)], [AUTOMATION, owner], marketer)
    who = staff.active(who, t)
    add(c, MQL, t, who, facts.sl_time[c])
    c = np.flatnonzero((mk.first_intent < NEVER) & (facts.mql_time == NEVER) & ~people.spam)
    t = mk.first_intent[c] + g.integers(MINUTE, 10 * MINUTE, len(c))
    add(c, LEAD, t, AUTOMATION, facts.sl_time[c])

    # 4. Sales leads: the deal owner when opening the first new-business deal.
    c = np.flatnonzero(facts.sl_time < NEVER)
    t = facts.sl_time[c] + g.integers(0, 6 * HOUR, len(c))
    s = np.where(g.random(len(c)) < 0.55, SQL, OPPORTUNITY)
    add(c, s, t, facts.sl_owner[c], facts.customer_time[c])

    # 5. Customers: the owner or automation after the win.
    c = np.flatnonzero(facts.customer_time < NEVER)
    t = facts.customer_time[c] + g.integers(MINUTE, 2 * DAY, len(c))
    who = np.where(g.random(len(c)) < 0.6, facts.customer_owner[c], AUTOMATION)
    add(c, CUSTOMER, t, who)

    # 6. The habit: two reps call newsletter sign-ups and LinkedIn followers marketing leads.
    soft = np.isin(mk.event_type, [EV["newsletter_signup"], EV["linkedin_follow"]])
    soft &= ~people.spam[mk.contact]
    uniq, first = np.unique(mk.contact[soft], return_index=True)
    soft_at = mk.occurred[soft][first]
    owner = facts.owner0[uniq]
    habit = np.isin(owner, staff.mislabellers) & (g.random(len(uniq)) < 0.9)
    t = soft_at + g.integers(HOUR, 3 * DAY, len(uniq))
    add(uniq[habit], MQL, t[habit], owner[habit], none_until[uniq[habit]])
    # Everyone slips now and then (well under the 5% threshold).
    rep = np.isin(staff.role[np.clip(owner, 0, None)], [ROLE_SDR, ROLE_AE, ROLE_MANAGER])
    slip = (owner >= 0) & rep & ~np.isin(owner, staff.mislabellers) & (g.random(len(uniq)) < 0.004)
    add(uniq[slip], MQL, t[slip], owner[slip], none_until[uniq[slip]])

    contact_a = np.concatenate(contact)
    stage_a = np.concatenate(stage)
    at_a = np.concatenate(at)
    by_a = np.concatenate(by)
    by_a = np.where(by_a >= 0, staff.active(by_a, at_a), by_a)
    order = np.lexsort((contact_a, at_a))
    cols = {
        "change_id": np.arange(len(order), dtype=np.int64),
        "contact_id": contact_a[order],
        "lifecycle_stage": stage_a[order],
        "changed_at": at_a[order],
        "changed_by_user_id": by_a[order],
        "is_deleted": np.zeros(len(order), dtype=bool),
    }
    return Versions("lifecycle_changes", cols, at_a[order].copy())


def _first_touch_day(pr: Prospecting, n: int) -> np.ndarray:
    """Day of each contact's first cold touch (-1 if never prospected)."""
    day = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(day, pr.touch_contact, pr.touch_day)
    return np.where(day == np.iinfo(np.int64).max, -1, day)


__all__ = ["INTENT", "OTHER", "build_labels"]
