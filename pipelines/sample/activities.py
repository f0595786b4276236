"""Sales activities: the bulk of the sample (~10 per contact), built group by group as arrays.

Groups: cold cadences (to not-yet-leads, and to colleagues at customer companies, which the
definitions must not count as cold), intent follow-ups, work on deals, account management of
customers, marketers' own touches, and tasks/notes logged around them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.sample.common import (
    Clock,
    day_of,
    office_instant,
    pick,
    running_sum,
    stream,
)
from pipelines.sample.contacts import Facts
from pipelines.sample.deals import Deals
from pipelines.sample.frames import ENUMS, NULL_ID, NULL_INT, Versions, code
from pipelines.sample.marketing import INTENT, Marketing, Prospecting
from pipelines.sample.people import EMAIL_NONE, NEVER, People, Staff
from pipelines.sample.timeutil import DAY, HOUR, MINUTE, NULL_TS, civil_from_days

EMAIL, CALL, MEETING, LINKEDIN, TASK, NOTE = (
    code("activity_type", t)
    for t in ("email", "call", "meeting", "linkedin_message", "task", "note")
)
OUT, IN = code("direction", "outbound"), code("direction", "inbound")
OUTCOME = {name: code("outcome", name) for name in ENUMS["outcome"]}


@dataclass
class _Part:
    """One group of activities before outcomes are drawn."""

    kind: np.ndarray
    direction: np.ndarray
    owner: np.ndarray
    contact: np.ndarray
    deal: np.ndarray
    occurred: np.ndarray
    context: int  # 0 cold, 1 deal/customer work, 2 marketing, 3 task/note


def _part(
    kind: np.ndarray,
    direction: np.ndarray | int,
    owner: np.ndarray,
    contact: np.ndarray,
    deal: np.ndarray | int,
    occurred: np.ndarray,
    context: int,
) -> _Part:
    n = len(kind)

    def arr(x: np.ndarray | int, dtype: type) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()

    return _Part(
        arr(kind, np.int8),
        arr(direction, np.int8),
        arr(owner, np.int64),
        arr(contact, np.int64),
        arr(deal, np.int64),
        arr(occurred, np.int64),
        context,
    )


def _holiday_thinning(g: np.random.Generator, day: np.ndarray) -> np.ndarray:
    """Keep-mask: fewer cold touches in the summer holidays and around Christmas."""
    _, month, dom = civil_from_days(day)
    drop = np.where(np.isin(month, [7, 8]), 0.3, 0.0)
    drop = np.where(((month == 12) & (dom >= 20)) | ((month == 1) & (dom <= 2)), 0.6, drop)
    return g.random(len(day)) >= drop


def build_activities(
    seed: int,
    clock: Clock,
    people: People,
    staff: Staff,
    mk: Marketing,
    pr: Prospecting,
    deals: Deals,
    facts: Facts,
) -> Versions:
    """All activities, ordered by occurrence (ids follow that order), with later versions."""
    g = stream(seed, "activities")
    parts: list[_Part] = []
    has_email = people.email_kind != EMAIL_NONE

    # 1. Cold cadences (first and second waves).
    c = pr.touch_contact
    keep = _holiday_thinning(g, pr.touch_day)
    c, day = c[keep], pr.touch_day[keep]
    kind = np.where(
        has_email[c],
        pick(g, {EMAIL: 0.5, CALL: 0.35, LINKEDIN: 0.15}, len(c)),
        pick(g, {CALL: 0.75, LINKEDIN: 0.25}, len(c)),
    )
    t = office_instant(g, day)
    parts.append(_part(kind, OUT, staff.active(pr.prospector[c], t), c, NULL_ID, t, 0))

    # 2. Cadences to colleagues at customer companies (not cold by the definitions).
    co = people.company
    colleague = (co >= 0) & (facts.customer_time == NEVER) & ~people.spam
    colleague &= facts.company_win[np.clip(co, 0, None)] < NEVER
    colleague &= g.random(people.n) < 0.5
    cc = np.flatnonzero(colleague)
    first_day = day_of(facts.company_win[co[cc]]) + g.integers(10, 120, len(cc))
    count = 2 + g.poisson(2.0, len(cc))
    gaps = g.integers(2, 7, int(count.sum()))
    starts = np.cumsum(count) - count
    gaps[starts[count > 0]] = 0
    day = np.repeat(first_day, count) + running_sum(gaps, count)
    c = np.repeat(cc, count)
    t = office_instant(g, day)
    kind = np.where(has_email[c], pick(g, {EMAIL: 0.6, CALL: 0.4}, len(c)), CALL)
    owner = staff.active(facts.company_owner[co[c]], t)
    parts.append(_part(kind, OUT, owner, c, NULL_ID, t, 0))

    # 3. Intent follow-up: a call within days, sometimes the prospect mails first.
    intent = np.flatnonzero(np.isin(mk.event_type, INTENT) & ~people.spam[mk.contact])
    ic = mk.contact[intent]
    owner = np.where(
        np.isin(staff.role[np.clip(facts.owner0[ic], 0, None)], [0, 1, 2])
        & (facts.owner0[ic] >= 0),
        facts.owner0[ic],
        staff.sdr[people.team[ic], g.integers(0, 2, len(ic))],
    )
    call = g.random(len(ic)) < 0.65
    t = office_instant(g, day_of(mk.occurred[intent]) + g.integers(0, 3, len(ic)))
    t = np.maximum(t, mk.occurred[intent] + 10 * MINUTE)
    parts.append(
        _part(
            np.full(int(call.sum()), CALL),
            OUT,
            staff.active(owner[call], t[call]),
            ic[call],
            NULL_ID,
            t[call],
            1,
        )
    )
    mail = g.random(len(ic)) < 0.3
    t = mk.occurred[intent][mail] + g.integers(10 * MINUTE, 6 * HOUR, int(mail.sum()))
    parts.append(
        _part(
            np.full(int(mail.sum()), EMAIL),
            IN,
            staff.active(owner[mail], t),
            ic[mail],
            NULL_ID,
            t,
            1,
        )
    )

    # 4. Work on deals between creation and close.
    live = np.flatnonzero(~deals.duplicate)
    end = np.where(deals.close[live] != NULL_TS, deals.close[live], clock.last)
    span = np.maximum(end - deals.created[live], HOUR)
    count = 2 + g.poisson(np.minimum(span / DAY / 3.5, 25))
    d = np.repeat(live, count)
    frac = g.random(len(d))
    t = deals.created[d] + (frac * np.repeat(span, count)).astype(np.int64)
    t = office_instant(g, day_of(t))
    lo, hi = deals.created[d], np.repeat(end, count)
    t = np.clip(t, lo + 5 * MINUTE, np.maximum(hi - MINUTE, lo + 5 * MINUTE))
    kind = pick(g, {MEETING: 0.3, CALL: 0.3, EMAIL: 0.33, LINKEDIN: 0.02, NOTE: 0.05}, len(d))
    direction = np.where((kind == EMAIL) & (g.random(len(d)) < 0.3), IN, OUT)
    direction = np.where(kind == NOTE, -1, direction)
    direction = np.where((kind == MEETING) & (g.random(len(d)) < 0.4), -1, direction)
    owner = deals.owner[d]
    helper = staff.sdr[
        np.clip(staff.team[np.clip(owner, 0, None)], 0, None), g.integers(0, 2, len(d))
    ]
    owner = np.where(
        (g.random(len(d)) < 0.12) & (staff.team[np.clip(owner, 0, None)] >= 0), helper, owner
    )
    deal_ref = np.where(g.random(len(d)) < 0.8, d, NULL_ID)
    parts.append(_part(kind, direction, staff.active(owner, t), deals.contact[d], deal_ref, t, 1))

    # 5. Account management of customers.
    cust = np.flatnonzero(facts.customer_time < NEVER)
    months = (clock.last - facts.customer_time[cust]) / (30 * DAY)
    count = g.poisson(np.clip(months, 0, None) * 1.2)
    c = np.repeat(cust, count)
    frac = g.random(len(c))
    t0 = facts.customer_time[c]
    t = office_instant(g, day_of(t0 + (frac * (clock.last - t0)).astype(np.int64)))
    t = np.maximum(t, t0 + HOUR)
    kind = pick(g, {CALL: 0.35, MEETING: 0.25, EMAIL: 0.35, NOTE: 0.05}, len(c))
    direction = np.where(np.isin(kind, [CALL, EMAIL]) & (g.random(len(c)) < 0.4), IN, OUT)
    direction = np.where(kind == NOTE, -1, direction)
    parts.append(_part(kind, direction, staff.active(facts.customer_owner[c], t), c, NULL_ID, t, 1))

    # 6. Marketers' own touches on marketing contacts.
    ev = np.flatnonzero((g.random(len(mk.contact)) < 0.05) & ~people.spam[mk.contact])
    t = mk.occurred[ev] + g.integers(HOUR, 3 * DAY, len(ev))
    kind = pick(g, {EMAIL: 0.6, LINKEDIN: 0.25, TASK: 0.15}, len(ev))
    owner = staff.marketers[g.integers(0, len(staff.marketers), len(ev))]
    parts.append(
        _part(
            kind,
            np.where(kind == TASK, -1, OUT),
            staff.active(owner, t),
            mk.contact[ev],
            NULL_ID,
            t,
            2,
        )
    )

    kind, direction, owner, contact, deal, occurred = (
        np.concatenate([getattr(p, f) for p in parts])
        for f in ("kind", "direction", "owner", "contact", "deal", "occurred")
    )
    context = np.concatenate([np.full(len(p.kind), p.context, np.int8) for p in parts])

    # 7. Tasks and notes logged around the work (a few by the CRM admin).
    src = np.flatnonzero(g.random(len(kind)) < 0.11)
    t = occurred[src] + g.integers(MINUTE, 2 * HOUR, len(src))
    tn_kind = np.where(g.random(len(src)) < 0.6, TASK, NOTE).astype(np.int8)
    tn_owner = owner[src].copy()
    admin = g.random(len(src)) < 0.003
    tn_owner[admin] = staff.others[0]
    tn_contact = np.where(g.random(len(src)) < 0.05, NULL_ID, contact[src])
    kind = np.concatenate([kind, tn_kind])
    direction = np.concatenate([direction, np.full(len(src), -1, np.int8)])
    owner = np.concatenate([owner, staff.active(tn_owner, t)])
    contact = np.concatenate([contact, tn_contact])
    deal = np.concatenate([deal, deal[src]])
    occurred = np.concatenate([occurred, t])
    context = np.concatenate([context, np.full(len(src), 3, np.int8)])

    outcome, duration = _outcomes(g, kind, direction, context)
    lag = np.where(kind == CALL, np.where(duration > 0, duration, 60), 0)
    lag = lag + g.integers(MINUTE, 30 * MINUTE, len(kind))
    late = g.random(len(kind)) < 0.06
    lag = np.where(late, lag + g.integers(HOUR, 2 * DAY, len(kind)), lag)
    updated = occurred + lag
    keep = (occurred >= clock.start) & (updated <= clock.last) & (owner >= 0)
    # A handful point at contacts merged away long ago (dangling references).
    dangling = np.flatnonzero(keep & (contact >= 0) & (g.random(len(kind)) < 0.0004))
    contact[dangling] = people.n + (dangling % 97)

    order = np.flatnonzero(keep)
    order = order[np.argsort(occurred[order], kind="stable")]
    n = len(order)
    cols = {
        "activity_id": np.arange(n, dtype=np.int64),
        "activity_type": kind[order].astype(np.int8),
        "direction": direction[order].astype(np.int8),
        "owner_user_id": owner[order],
        "contact_id": contact[order],
        "deal_id": deal[order],
        "occurred_at": occurred[order],
        "duration_seconds": duration[order],
        "outcome": outcome[order],
        "updated_at": updated[order],
        "is_deleted": np.zeros(n, dtype=bool),
    }
    v = Versions("activities", cols, updated[order].copy())
    _changes(g, clock, v)
    return v


def _outcomes(
    g: np.random.Generator, kind: np.ndarray, direction: np.ndarray, context: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Outcome and duration by activity type, direction and context."""
    n = len(kind)
    outcome = np.full(n, -1, dtype=np.int8)
    duration = np.full(n, NULL_INT, dtype=np.int64)
    cold = context == 0
    out = direction == OUT

    m = (kind == EMAIL) & out
    outcome[m] = np.where(
        cold[m],
        pick(
            g,
            {OUTCOME["sent"]: 0.84, OUTCOME["bounced"]: 0.06, OUTCOME["replied"]: 0.10},
            int(m.sum()),
        ),
        pick(
            g,
            {OUTCOME["sent"]: 0.8, OUTCOME["bounced"]: 0.02, OUTCOME["replied"]: 0.18},
            int(m.sum()),
        ),
    )
    m = (kind == EMAIL) & ~out
    outcome[m] = np.where(g.random(int(m.sum())) < 0.5, OUTCOME["replied"], -1)

    m = (kind == CALL) & out
    outcome[m] = np.where(
        cold[m],
        pick(
            g,
            {
                OUTCOME["no_answer"]: 0.38,
                OUTCOME["voicemail"]: 0.2,
                OUTCOME["connected"]: 0.3,
                OUTCOME["busy"]: 0.07,
                OUTCOME["wrong_number"]: 0.05,
            },
            int(m.sum()),
        ),
        pick(
            g,
            {
                OUTCOME["no_answer"]: 0.22,
                OUTCOME["voicemail"]: 0.12,
                OUTCOME["connected"]: 0.62,
                OUTCOME["busy"]: 0.04,
            },
            int(m.sum()),
        ),
    )
    m = (kind == CALL) & ~out
    outcome[m] = np.where(g.random(int(m.sum())) < 0.9, OUTCOME["connected"], OUTCOME["voicemail"])
    call = kind == CALL
    connected = call & (outcome == OUTCOME["connected"])
    median = np.where(cold, 240.0, np.where(out, 420.0, 480.0))
    talk = np.clip(np.rint(np.exp(g.normal(np.log(median), 0.8, n))), 20, 5400).astype(np.int64)
    duration = np.where(connected & (g.random(n) >= 0.15), talk, duration)
    vm = call & (outcome == OUTCOME["voicemail"]) & (g.random(n) < 0.4)
    duration = np.where(vm, g.integers(15, 61, n), duration)
    zero = (
        call
        & np.isin(outcome, [OUTCOME["no_answer"], OUTCOME["busy"], OUTCOME["wrong_number"]])
        & (g.random(n) < 0.3)
    )
    duration = np.where(zero, 0, duration)

    m = kind == MEETING
    outcome[m] = pick(
        g,
        {OUTCOME["held"]: 0.75, OUTCOME["no_show"]: 0.08, OUTCOME["cancelled"]: 0.17},
        int(m.sum()),
    )
    held = m & (outcome == OUTCOME["held"]) & (g.random(n) >= 0.1)
    length = np.array([1800, 2700, 3600, 5400])[pick(g, [0.35, 0.25, 0.3, 0.1], n)]
    duration = np.where(held, length, duration)

    m = kind == LINKEDIN
    outcome[m] = pick(g, {OUTCOME["sent"]: 0.6, OUTCOME["replied"]: 0.1, -1: 0.3}, int(m.sum()))
    return outcome, duration


def _changes(g: np.random.Generator, clock: Clock, v: Versions) -> None:
    """Later versions: corrected call logs and meeting outcomes in the deltas, and deletes
    (before the full delivery and in each delta)."""
    n = v.n
    kind = v.cols["activity_type"]
    occurred = v.cols["occurred_at"]
    vis = v.vis
    t1 = clock.t[0]
    # Deleted before the full delivery (logged twice, or on the wrong contact).
    cand = np.flatnonzero(vis < t1 - 2 * DAY)
    old = g.choice(cand, size=min(len(cand), max(2, round(0.003 * n))), replace=False)
    when = np.minimum(vis[old] + g.integers(HOUR, 10 * DAY, len(old)), t1 - HOUR)
    ok = when > vis[old]
    old, when = old[ok], when[ok]
    v.add(old, when, is_deleted=True, updated_at=when)
    taken = old
    for lo in (clock.t[0], clock.t[1]):
        recent = np.flatnonzero((vis <= lo) & (occurred > lo - 30 * DAY))
        recent = recent[~np.isin(recent, taken)]
        calls = recent[kind[recent] == CALL]
        meetings = recent[kind[recent] == MEETING]
        k_upd = max(3, round(0.0002 * n))
        fix_calls = g.choice(calls, size=min(len(calls), (k_upd + 1) // 2), replace=False)
        fix_meet = g.choice(meetings, size=min(len(meetings), k_upd // 2 + 1), replace=False)
        at = lo + 6 * HOUR + g.integers(0, 10 * HOUR, len(fix_calls))
        v.add(
            fix_calls,
            at,
            outcome=np.full(len(fix_calls), OUTCOME["connected"], np.int8),
            duration_seconds=g.integers(300, 901, len(fix_calls)),
            updated_at=at,
        )
        at = lo + 6 * HOUR + g.integers(0, 10 * HOUR, len(fix_meet))
        was = v.cols["outcome"][fix_meet]
        v.add(
            fix_meet,
            at,
            outcome=np.where(was == OUTCOME["held"], OUTCOME["no_show"], OUTCOME["held"]).astype(
                np.int8
            ),
            duration_seconds=np.where(was == OUTCOME["held"], NULL_INT, 2700),
            updated_at=at,
        )
        taken = np.concatenate([taken, fix_calls, fix_meet])
        rest = recent[~np.isin(recent, taken)]
        dele = g.choice(rest, size=min(len(rest), max(2, round(0.0001 * n))), replace=False)
        at = lo + 6 * HOUR + g.integers(0, 10 * HOUR, len(dele))
        v.add(dele, at, is_deleted=True, updated_at=at)
        taken = np.concatenate([taken, dele])
