"""Marketing events (what the definitions call intent and non-intent) and cold prospecting
cadences: the two ways a contact enters the funnel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sample import vocab
from pipelines.sample.common import (
    Clock,
    day_of,
    office_seconds,
    pick,
    running_sum,
    sample_days,
    stream,
    waking_seconds,
)
from pipelines.sample.frames import ENUMS, NULL_ID, Versions, code
from pipelines.sample.people import (
    EMAIL_BUSINESS,
    EMAIL_FREEMAIL,
    EMAIL_LOOSE,
    NEVER,
    People,
    Staff,
)
from pipelines.sample.timeutil import DAY, HOUR, at_local, format_month, month_index

EV = {name: code("event_type", name) for name in vocab.CAMPAIGN_BY_EVENT}
INTENT = np.array(
    [EV["contact_form"], EV["demo_request"], EV["pricing_request"], EV["trial_signup"]]
)


@dataclass
class Marketing:
    """Marketing events in time order, and per-contact facts derived from them."""

    contact: np.ndarray
    event_type: np.ndarray
    occurred: np.ndarray
    first_intent: np.ndarray  # per contact, NEVER if none
    spam_removed: np.ndarray  # per contact: when marketing removed a spam contact (or NEVER)
    versions: Versions


@dataclass
class Prospecting:
    """Cold outreach cadences: one row per planned touch (the activity module renders them)."""

    prospected: np.ndarray  # per contact
    prospector: np.ndarray  # per contact (user index)
    touch_contact: np.ndarray
    touch_day: np.ndarray
    touch_wave: np.ndarray
    wave1_end: np.ndarray  # per contact: day of the last first-wave touch (or -1)


def _instants_after(g: np.random.Generator, day: np.ndarray, waking: bool = True) -> np.ndarray:
    """Instants on local days `day`, in waking or office hours."""
    secs = waking_seconds(g, len(day)) if waking else office_seconds(g, len(day))
    return at_local(day, secs)


def build_marketing(seed: int, clock: Clock, people: People) -> Marketing:
    """Events per contact: a first touch (the one that created most contacts), some further
    non-intent interactions, and for a minority an intent event (demo, form, pricing, trial)."""
    g = stream(seed, "marketing")
    n = people.n
    kind = people.email_kind
    p_mk = np.select(
        [kind == EMAIL_BUSINESS, kind == EMAIL_FREEMAIL, kind == EMAIL_LOOSE],
        [0.5, 0.78, 0.55],
        0.08,
    )
    mk = (g.random(n) < p_mk) & ~people.spam
    legacy = people.created < clock.start
    later = _instants_after(g, sample_days(g, n, clock.start_day, clock.end_day - 2))
    e0 = np.where(legacy, later, people.created)

    first_types = {
        EV["newsletter_signup"]: 0.30,
        EV["linkedin_follow"]: 0.21,
        EV["content_download"]: 0.22,
        EV["webinar_registration"]: 0.10,
        EV["event_visit"]: 0.07,
        EV["chat_conversation"]: 0.05,
        EV["demo_request"]: 0.03,
        EV["contact_form"]: 0.02,
    }
    mk_idx = np.flatnonzero(mk)
    parts_c = [mk_idx]
    parts_t = [pick(g, first_types, len(mk_idx))]
    parts_o = [e0[mk_idx]]

    # Further non-intent interactions over the following months.
    k = g.poisson(1.4, size=len(mk_idx))
    rep_c = np.repeat(mk_idx, k)
    step = np.rint(g.exponential(45.0, size=len(rep_c))).astype(np.int64) + 1
    offset = running_sum(step, k)
    more_types = {
        EV["newsletter_signup"]: 0.08,
        EV["linkedin_follow"]: 0.16,
        EV["content_download"]: 0.34,
        EV["webinar_registration"]: 0.2,
        EV["event_visit"]: 0.1,
        EV["chat_conversation"]: 0.12,
    }
    parts_c.append(rep_c)
    parts_t.append(pick(g, more_types, len(rep_c)))
    parts_o.append(_instants_after(g, day_of(e0[rep_c]) + offset))

    # Intent: fit-looking contacts ask for a demo, pricing, a trial or fill in the contact form.
    business = (kind[mk_idx] == EMAIL_BUSINESS) & (people.company[mk_idx] >= 0)
    intent_first = np.isin(parts_t[0], INTENT)
    wants = intent_first | (g.random(len(mk_idx)) < np.where(business, 0.24, 0.12))
    wi = mk_idx[wants]
    delay = np.rint(g.gamma(1.2, 45.0, size=len(wi))).astype(np.int64) + 1
    t_int = np.where(intent_first[wants], e0[wi], _instants_after(g, day_of(e0[wi]) + delay))
    wi, t_int = wi[~intent_first[wants]], t_int[~intent_first[wants]]
    intent_types = {
        EV["demo_request"]: 0.4,
        EV["contact_form"]: 0.3,
        EV["pricing_request"]: 0.18,
        EV["trial_signup"]: 0.12,
    }
    parts_c.append(wi)
    parts_t.append(pick(g, intent_types, len(wi)))
    parts_o.append(t_int)
    again = g.random(len(wi)) < 0.1
    parts_c.append(wi[again])
    parts_t.append(pick(g, intent_types, int(again.sum())))
    parts_o.append(_instants_after(g, day_of(t_int[again]) + g.integers(1, 31, int(again.sum()))))

    # Spam: a bot fills in the contact form (removed by marketing later).
    spam_idx = np.flatnonzero(people.spam)
    parts_c.append(spam_idx)
    parts_t.append(np.full(len(spam_idx), EV["contact_form"]))
    parts_o.append(people.created[spam_idx])

    contact = np.concatenate(parts_c)
    etype = np.concatenate(parts_t).astype(np.int8)
    occurred = np.concatenate(parts_o)
    # Webinar attendance follows some registrations.
    reg = np.flatnonzero(etype == EV["webinar_registration"])
    att = reg[g.random(len(reg)) < 0.45]
    att_time = at_local(
        day_of(occurred[att]) + g.integers(2, 15, len(att)),
        10 * HOUR + g.integers(0, 6 * HOUR, len(att)),
    )
    contact = np.concatenate([contact, contact[att]])
    etype = np.concatenate([etype, np.full(len(att), EV["webinar_attended"], np.int8)])
    occurred = np.concatenate([occurred, att_time])

    keep = (occurred <= clock.last) & (occurred >= people.created[contact])
    contact, etype, occurred = contact[keep], etype[keep], occurred[keep]
    order = np.lexsort((contact, occurred))
    contact, etype, occurred = contact[order], etype[order], occurred[order]

    is_intent = np.isin(etype, INTENT) & ~people.spam[contact]
    first_intent = np.full(n, NEVER, dtype=np.int64)
    np.minimum.at(first_intent, contact[is_intent], occurred[is_intent])
    spam_removed = _spam_removal(g, clock, people)
    versions = _event_versions(g, people, contact, etype, occurred, spam_removed)
    return Marketing(contact, etype, occurred, first_intent, spam_removed, versions)


def _spam_removal(g: np.random.Generator, clock: Clock, people: People) -> np.ndarray:
    """When marketing removes each spam contact: old spam before the full delivery, recent spam
    in one of the two deltas (so the deltas carry deletes)."""
    removed = np.full(people.n, NEVER, dtype=np.int64)
    spam = np.flatnonzero(people.spam)
    created = people.created[spam]
    recent = created > clock.t[0] - 20 * DAY
    in_delta = np.where(np.arange(len(spam)) % 2 == 0, clock.t[0], clock.t[1])
    in_delta = in_delta + 6 * HOUR + g.integers(0, 10 * HOUR, len(spam))
    early = np.minimum(created + g.integers(HOUR, 10 * DAY, len(spam)), clock.t[0] - HOUR)
    removed[spam] = np.where(recent, in_delta, np.maximum(early, created + 60))
    return removed


def _event_versions(
    g: np.random.Generator,
    people: People,
    contact: np.ndarray,
    etype: np.ndarray,
    occurred: np.ndarray,
    spam_removed: np.ndarray,
) -> Versions:
    """Event records with campaign and channel, and the removal of spam form fills."""
    n = len(contact)
    base = pa.array([vocab.CAMPAIGN_BY_EVENT[x] for x in ENUMS["event_type"]])
    campaign_base = base.take(pa.array(etype.astype(np.int64)))
    dated = np.isin(
        etype,
        [
            EV["webinar_registration"],
            EV["webinar_attended"],
            EV["event_visit"],
            EV["content_download"],
        ],
    )
    month = format_month(month_index(occurred))
    campaign = pc.if_else(
        pa.array(dated), pc.binary_join_element_wise(campaign_base, month, " "), campaign_base
    )
    campaign = pc.if_else(pa.array(g.random(n) < 0.08), pa.nulls(n, pa.string()), campaign)
    channel_by_type = np.array(
        [1, 2, 0, 1, 1, 4, 0, 0, 0, 0, 0], dtype=np.int64
    )  # newsletter→email, linkedin, content→website, webinar→email, event, chat/forms→website
    channel_idx = channel_by_type[etype]
    ads = np.isin(etype, [EV["content_download"], EV["demo_request"], EV["trial_signup"]]) & (
        g.random(n) < 0.3
    )
    channel_idx = np.where(ads, 3, channel_idx)
    channel_idx = np.where(g.random(n) < 0.1, np.where(g.random(n) < 0.5, 5, 6), channel_idx)
    channel_idx = np.where(g.random(n) < 0.06, -1, channel_idx)
    channel = pa.array(list(vocab.CHANNELS)).take(pa.array(channel_idx, mask=channel_idx < 0))
    cols = {
        "event_id": np.arange(n, dtype=np.int64),
        "contact_id": contact,
        "event_type": etype,
        "occurred_at": occurred,
        "campaign": campaign,
        "channel": channel,
        "is_deleted": np.zeros(n, dtype=bool),
    }
    v = Versions("marketing_events", cols, occurred.copy())
    # Spam form fills are removed by marketing (the delete row re-delivers the event with
    # is_deleted = true, in the delivery after the removal).
    spam = np.flatnonzero(people.spam[contact])
    v.add(spam, spam_removed[contact[spam]], is_deleted=True)
    return v


def build_prospecting(seed: int, clock: Clock, people: People, staff: Staff) -> Prospecting:
    """Cold cadences: a first wave of about 12 touches a few days apart, and for half of the
    prospects a second wave months later."""
    g = stream(seed, "prospecting")
    n = people.n
    kind = people.email_kind
    with_co = people.company >= 0
    p = np.select(
        [with_co & (kind == EMAIL_BUSINESS), with_co & (kind == EMAIL_FREEMAIL), with_co],
        [0.7, 0.3, 0.35],
        0.08,
    )
    prospected = (g.random(n) < p) & ~people.spam
    idx = np.flatnonzero(prospected)
    created_day = day_of(people.created[idx])
    start_day = np.where(
        people.created[idx] >= clock.start,
        created_day + g.integers(0, 46, len(idx)),
        sample_days(g, len(idx), clock.start_day, clock.end_day - 3),
    )
    n1 = 4 + g.poisson(8.0, len(idx))
    wave2 = g.random(len(idx)) < 0.55
    n2 = np.where(wave2, 3 + g.poisson(5.0, len(idx)), 0)

    def wave(first_day: np.ndarray, count: np.ndarray) -> np.ndarray:
        gaps = g.integers(1, 7, size=int(count.sum()))
        starts = np.cumsum(count) - count
        gaps[starts[count > 0]] = 0
        return np.repeat(first_day, count) + running_sum(gaps, count)

    d1 = wave(start_day, n1)
    last1 = np.full(n, -1, dtype=np.int64)
    ends = np.cumsum(n1) - 1
    last1[idx] = d1[ends]
    w2_start = last1[idx] + g.integers(90, 271, len(idx))
    d2 = wave(w2_start, n2)
    touch_contact = np.concatenate([np.repeat(idx, n1), np.repeat(idx, n2)])
    touch_day = np.concatenate([d1, d2])
    touch_wave = np.concatenate([np.ones(len(d1), np.int8), np.full(len(d2), 2, np.int8)])
    keep = touch_day <= clock.end_day - 1
    team = people.team
    prospector = np.full(n, NULL_ID, dtype=np.int64)
    role_sdr = g.random(len(idx)) < 0.7
    prospector[idx] = np.where(
        role_sdr,
        staff.sdr[team[idx], g.integers(0, 2, len(idx))],
        staff.ae[team[idx], g.integers(0, 3, len(idx))],
    )
    first_instant = at_local(start_day, np.full(len(idx), 9 * HOUR))
    prospector[idx] = staff.active(prospector[idx], first_instant)
    return Prospecting(
        prospected=prospected,
        prospector=prospector,
        touch_contact=touch_contact[keep],
        touch_day=touch_day[keep],
        touch_wave=touch_wave[keep],
        wave1_end=last1,
    )
