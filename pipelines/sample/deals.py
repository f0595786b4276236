"""Deals with their full stage history, quotes (offertes) and monthly exchange rates.

New business comes from intent (marketing-sourced) and from cold outreach (sales-sourced); a
lost deal is sometimes retried; won new business brings upsells and yearly renewals. Stage
instants are simulated untruncated and then cut at the last delivery, so open deals are simply
deals whose later stages have not happened yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sample import vocab
from pipelines.sample.common import Clock, day_of, gamma_days, office_instant, pick, stream
from pipelines.sample.frames import NULL_ID, NULL_INT, Versions, code
from pipelines.sample.marketing import Marketing, Prospecting
from pipelines.sample.people import EMAIL_BUSINESS, NEVER, People, Staff
from pipelines.sample.timeutil import DAY, HOUR, NULL_TS, at_local, local_instant, month_index

NB, UPSELL, RENEWAL = (code("deal_type", t) for t in ("new_business", "upsell", "renewal"))
WON, LOST = code("stage", "closed_won"), code("stage", "closed_lost")
DRAFT, SENT, ACCEPTED, REJECTED, EXPIRED = (
    code("status", s) for s in ("draft", "sent", "accepted", "rejected", "expired")
)
CURRENCIES = ("EUR", "GBP", "USD", "CHF")
APPROX_RATE = np.array([1.0, 1.17, 0.92, 1.05])
DEAL_LABEL = ("Nieuwe klant", "Uitbreiding", "Verlenging")


@dataclass
class Deals:
    """Deals in id order (= creation order); stage_time columns: qualification, discovery,
    proposal, negotiation, close (NULL_TS where not reached by the last delivery)."""

    contact: np.ndarray
    company: np.ndarray
    owner: np.ndarray
    deal_type: np.ndarray
    created: np.ndarray
    stage_time: np.ndarray
    won: np.ndarray
    duplicate: np.ndarray
    versions: Versions
    stage_changes: Versions
    quotes: Versions

    @property
    def n(self) -> int:
        return len(self.created)

    @property
    def close(self) -> np.ndarray:
        return self.stage_time[:, 4]


def _simulate(
    g: np.random.Generator, created: np.ndarray, p_won: float, renewal: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Untruncated stage instants (n, 5) and the won flag. Lost deals stop after a random
    open stage; some deals skip discovery (renewals always do)."""
    n = len(created)
    won = g.random(n) < p_won
    last_open = np.where(won, 3, pick(g, [0.35, 0.30, 0.20, 0.15], n))
    present = np.arange(4)[None, :] <= last_open[:, None]
    skip = ((g.random(n) < 0.15) | renewal) & (last_open >= 2)
    present[:, 1] &= ~skip
    means = (0.0, 10.0, 15.0, 12.0, 16.0)
    speed = 0.5 if renewal else 1.0
    times = np.full((n, 5), NULL_TS, dtype=np.int64)
    times[:, 0] = created
    prev = created.copy()
    for k in range(1, 5):
        has = present[:, k] if k < 4 else np.ones(n, dtype=bool)
        step = np.maximum(1, np.rint(gamma_days(g, means[k], n) * speed)).astype(np.int64)
        t = office_instant(g, day_of(prev) + step)
        t = np.maximum(t, prev + HOUR)
        times[:, k] = np.where(has, t, NULL_TS)
        prev = np.where(has, t, prev)
    return times, won


def build_deals(
    seed: int, clock: Clock, people: People, staff: Staff, mk: Marketing, pr: Prospecting
) -> Deals:
    """All deals, their stage changes and quotes."""
    g = stream(seed, "deals")
    n_c = people.n
    last = clock.last

    # 1. First new business: after an intent event, or after a cold cadence.
    fi = mk.first_intent
    p_int = np.where(people.fit, 0.45, np.where(people.company >= 0, 0.15, 0.08))
    from_intent = (fi < NEVER) & (g.random(n_c) < p_int)
    ci = np.flatnonzero(from_intent)
    created_i = office_instant(g, day_of(fi[ci]) + gamma_days(g, 9.0, len(ci)))
    p_sales = np.where(people.email_kind == EMAIL_BUSINESS, 0.07, 0.025)
    from_sales = (
        pr.prospected
        & ~from_intent
        & (people.company >= 0)
        & (pr.wave1_end >= 0)
        & (g.random(n_c) < p_sales)
    )
    cs = np.flatnonzero(from_sales)
    created_s = office_instant(g, pr.wave1_end[cs] + g.integers(1, 15, len(cs)))
    parts: list[dict[str, np.ndarray]] = []

    def add_group(
        contact: np.ndarray, created: np.ndarray, dtype: int, p_won: float, origin: np.ndarray
    ) -> None:
        ok = created <= last - HOUR
        times, won = _simulate(g, created[ok], p_won, dtype == RENEWAL)
        parts.append(
            {
                "contact": contact[ok],
                "created": created[ok],
                "times": times,
                "won": won,
                "deal_type": np.full(int(ok.sum()), dtype, np.int8),
                "origin": origin[ok],
            }
        )

    add_group(ci, created_i, NB, 0.33, np.full(len(ci), NULL_ID))
    add_group(cs, created_s, NB, 0.24, np.full(len(cs), NULL_ID))
    # 2. A retry months after a lost first deal.
    first = _cat(parts)
    lost = ~first["won"] & (first["times"][:, 4] <= last)
    retry = np.flatnonzero(lost & (g.random(len(lost)) < 0.08))
    add_group(
        first["contact"][retry],
        office_instant(g, day_of(first["times"][retry, 4]) + g.integers(60, 201, len(retry))),
        NB,
        0.35,
        np.full(len(retry), NULL_ID),
    )
    nb = _cat(parts)  # origin indexes of follow-up deals point into these first rows
    won_nb = np.flatnonzero(nb["won"] & (nb["times"][:, 4] <= last))
    close_day = day_of(nb["times"][won_nb, 4])
    # 3. Renewals a year after a win; upsells within the year.
    ren = won_nb[(close_day + 320 <= clock.end_day - 1) & (g.random(len(won_nb)) < 0.75)]
    add_group(
        nb["contact"][ren],
        office_instant(g, day_of(nb["times"][ren, 4]) + g.integers(320, 351, len(ren))),
        RENEWAL,
        0.85,
        ren,
    )
    up = won_nb[g.random(len(won_nb)) < 0.35]
    add_group(
        nb["contact"][up],
        office_instant(g, day_of(nb["times"][up, 4]) + g.integers(45, 301, len(up))),
        UPSELL,
        0.5,
        up,
    )
    d = _cat(parts)
    n = len(d["created"])
    contact0, dtype, origin, times = d["contact"], d["deal_type"], d["origin"], d["times"]
    follow = dtype != NB

    # Upsells and renewals: sometimes a colleague is the primary contact, sometimes nobody.
    company = people.company[contact0]
    u = g.random(n)
    contact = np.where(follow & (u < 0.15), _colleague(g, people, contact0), contact0)
    contact = np.where(follow & (u >= 0.15) & (u < 0.25), NULL_ID, contact)

    forced = _force_progress(g, clock, d["created"], times, dtype)
    times = np.where(times > last, NULL_TS, times)
    won = d["won"] & (times[:, 4] != NULL_TS)

    # Owners: a rep of the contact's team who stays for the whole deal; follow-up deals stay
    # with the account's owner.
    team = people.team[contact0]
    r = g.random(n)
    owner = np.select(
        [r < 0.7, r < 0.9],
        [staff.ae[team, g.integers(0, 3, n)], staff.sdr[team, g.integers(0, 2, n)]],
        staff.manager[team],
    )
    owner = np.where(g.random(n) < 0.01, staff.director, owner)
    keep_owner = follow & (g.random(n) < 0.8)
    owner[keep_owner] = owner[origin[keep_owner]]
    owner = staff.active(owner, np.where(times[:, 4] != NULL_TS, times[:, 4], last))

    # Amounts in EUR terms, in the deal's currency (follow-ups keep the account's currency).
    emp = people.co_employees[np.clip(company, 0, None)]
    size = np.where(company >= 0, (emp / 50.0) ** 0.15, 1.0)
    median = np.where(dtype == NB, 9000.0, 3500.0)
    eur = np.clip(np.exp(g.normal(np.log(median), 0.65, n)) * size, 1200, 120_000)
    currency = pick(g, [0.9, 0.04, 0.04, 0.02], n)
    currency[follow] = currency[origin[follow]]
    amount = (np.rint(eur / APPROX_RATE[currency] / 50) * 5000).astype(np.int64)
    amount[(dtype == NB) & (g.random(n) < 0.02)] = NULL_INT
    ren_rows = np.flatnonzero(dtype == RENEWAL)
    base_amount = amount[origin[ren_rows]]
    amount[ren_rows] = np.where(
        base_amount < 0, NULL_INT, np.rint(base_amount * g.uniform(1.0, 1.06, len(ren_rows)))
    )

    # 4. Duplicates entered by mistake and deleted (before the full delivery or in a delta).
    src = np.flatnonzero((dtype == NB) & (d["created"] < clock.t[0] - DAY) & ~forced)
    src = g.choice(src, size=min(len(src), max(3, round(0.012 * n))), replace=False)
    dup_times = np.full((len(src), 5), NULL_TS, dtype=np.int64)
    dup_times[:, 0] = d["created"][src] + g.integers(60, 1800, len(src))

    def dup(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, a[src]])

    created = np.concatenate([d["created"], dup_times[:, 0]])
    times = np.concatenate([times, dup_times])
    won = np.concatenate([won, np.zeros(len(src), bool)])
    duplicate = np.r_[np.zeros(n, bool), np.ones(len(src), bool)]
    contact, company, owner, dtype = dup(contact), dup(company), dup(owner), dup(dtype)
    amount, currency = dup(amount), dup(currency)

    order = np.argsort(created, kind="stable")
    contact, company, owner, dtype = contact[order], company[order], owner[order], dtype[order]
    created, times, won, duplicate = created[order], times[order], won[order], duplicate[order]
    amount, currency = amount[order], currency[order]

    first_version = {
        "deal_id": np.arange(len(created), dtype=np.int64),
        "contact_id": contact,
        "company_id": company,
        "owner_user_id": owner,
        "deal_type": dtype.astype(np.int8),
        "stage": np.zeros(len(created), dtype=np.int8),
        "amount": amount,
        "currency": pa.array(list(CURRENCIES)).take(pa.array(currency.astype(np.int64))),
        "created_at": created,
        "closed_at": np.full(len(created), NULL_TS, dtype=np.int64),
        "lost_reason": pa.nulls(len(created), pa.string()),
        "updated_at": created.copy(),
        "is_deleted": np.zeros(len(created), dtype=bool),
        "deal_name": _deal_names(people, company, dtype),
    }
    versions = _deal_versions(g, clock, first_version, times, won, duplicate)
    stage_changes = _stage_changes(g, staff, owner, times, won)
    quotes = _quotes(g, clock, created, times, won, amount, currency, duplicate)
    return Deals(
        contact=contact,
        company=company,
        owner=owner,
        deal_type=dtype,
        created=created,
        stage_time=times,
        won=won,
        duplicate=duplicate,
        versions=versions,
        stage_changes=stage_changes,
        quotes=quotes,
    )


def _cat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate groups of equally-keyed arrays."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _colleague(g: np.random.Generator, people: People, contact: np.ndarray) -> np.ndarray:
    """Another contact at the same company (the contact itself when it has no colleague)."""
    company = people.company
    order = np.argsort(company, kind="stable")
    sorted_co = company[order]
    co = company[contact]
    lo = np.searchsorted(sorted_co, co, side="left")
    hi = np.searchsorted(sorted_co, co, side="right")
    pos = lo + (g.random(len(contact)) * (hi - lo)).astype(np.int64)
    other = order[np.clip(pos, 0, len(order) - 1)]
    return np.where((co >= 0) & (hi > lo), other, contact)


def _force_progress(
    g: np.random.Generator,
    clock: Clock,
    created: np.ndarray,
    times: np.ndarray,
    dtype: np.ndarray,
) -> np.ndarray:
    """Move the remaining stages of a few open deals into the delta windows, so every delta
    has deals that move on and close, whatever the scale."""
    t1 = clock.t[0]
    cand = np.flatnonzero((created < t1 - 3 * DAY) & (times.max(axis=1) > t1) & (dtype == NB))
    k = min(len(cand), max(4, round(0.02 * len(created))))
    chosen = np.sort(g.choice(cand, size=k, replace=False))
    forced = np.zeros(len(created), dtype=bool)
    forced[chosen] = True
    sub = times[chosen]
    later = sub > t1
    # Office instants on the two delta days, sorted, one per remaining stage.
    slots = at_local(
        np.where(g.random(sub.shape) < 0.5, clock.end_day - 2, clock.end_day - 1),
        8 * HOUR + g.integers(0, 10 * HOUR, sub.shape),
    )
    slots = np.sort(slots, axis=1)
    rank = np.cumsum(later, axis=1) - 1
    moved = np.take_along_axis(slots, np.clip(rank, 0, 4), axis=1) + np.arange(5) * 60
    times[chosen] = np.where(later, moved, sub)
    return forced


def _deal_names(people: People, company: np.ndarray, dtype: np.ndarray) -> pa.Array:
    """An extra CRM column, `deal_name` ("Bakker Bouw B.V. - Verlenging")."""
    co_names = people.companies.cols["name"]
    name = co_names.take(pa.array(company, mask=company < 0))
    name = pc.fill_null(name, "Particulier")
    label = pa.array(list(DEAL_LABEL)).take(pa.array(dtype.astype(np.int64)))
    return pc.binary_join_element_wise(name, label, " - ")


def _deal_versions(
    g: np.random.Generator,
    clock: Clock,
    cols: dict[str, object],
    times: np.ndarray,
    won: np.ndarray,
    duplicate: np.ndarray,
) -> Versions:
    """The deal as first entered (qualification), then one version per stage change, and the
    deletion of duplicates."""
    created = cols["created_at"]
    assert isinstance(created, np.ndarray)
    v = Versions("deals", cols, created.copy())
    reasons = pa.array(list(vocab.LOST_REASONS))
    for k in range(1, 5):
        rows = np.flatnonzero(times[:, k] != NULL_TS)
        t = times[rows, k]
        if k < 4:
            v.add(rows, t, stage=np.full(len(rows), k, np.int8), updated_at=t)
            continue
        stage = np.where(won[rows], WON, LOST).astype(np.int8)
        reason = np.where(
            won[rows] | (g.random(len(rows)) < 0.12), -1, g.integers(0, len(reasons), len(rows))
        )
        v.add(
            rows,
            t,
            stage=stage,
            updated_at=t,
            closed_at=t,
            lost_reason=reasons.take(pa.array(reason, mask=reason < 0)),
        )
    dups = np.flatnonzero(duplicate)
    slot = np.arange(len(dups)) % 3
    t1, t2 = clock.t[0], clock.t[1]
    when = np.select(
        [slot == 0, slot == 1],
        [
            np.minimum(created[dups] + g.integers(HOUR, 5 * DAY, len(dups)), t1 - HOUR),
            t1 + 6 * HOUR + g.integers(0, 10 * HOUR, len(dups)),
        ],
        t2 + 6 * HOUR + g.integers(0, 10 * HOUR, len(dups)),
    )
    when = np.maximum(when, created[dups] + 60)
    v.add(dups, when, is_deleted=True, updated_at=when)
    return v


def _stage_changes(
    g: np.random.Generator, staff: Staff, owner: np.ndarray, times: np.ndarray, won: np.ndarray
) -> Versions:
    """One row per stage reached, set by the owner, sometimes the manager or an integration
    (empty user), and a few by a user no longer in the CRM (a dangling reference)."""
    deal, k = np.nonzero(times != NULL_TS)
    changed = times[deal, k]
    n = len(deal)
    stage = np.where(k < 4, k, np.where(won[deal], WON, LOST)).astype(np.int8)
    who = owner[deal].copy()
    u = g.random(n)
    team = staff.team[np.clip(who, 0, None)]
    who = np.where((u < 0.1) & (team >= 0), staff.manager[np.clip(team, 0, None)], who)
    who = np.where(u > 0.95, NULL_ID, who)
    gone = np.flatnonzero(u < 0.0005)
    who[gone] = staff.n + 7
    cols = {
        "deal_id": deal.astype(np.int64),
        "stage": stage,
        "changed_at": changed,
        "changed_by_user_id": who,
        "is_deleted": np.zeros(n, dtype=bool),
    }
    return Versions("deal_stage_changes", cols, changed.copy())


def _quotes(
    g: np.random.Generator,
    clock: Clock,
    created: np.ndarray,
    times: np.ndarray,
    won: np.ndarray,
    amount: np.ndarray,
    currency: np.ndarray,
    duplicate: np.ndarray,
) -> Versions:
    """Quotes: sent when a deal reaches proposal, a revised one for some deals in negotiation,
    drafts that were never sent; accepted when won, rejected or expired otherwise."""
    last = clock.last
    prop, neg, close = times[:, 2], times[:, 3], times[:, 4]
    real = ~duplicate
    has_prop = real & (prop != NULL_TS)
    revised = has_prop & (neg != NULL_TS) & (g.random(len(created)) < 0.3)

    rows: list[dict[str, np.ndarray]] = []

    def outcome(deal: np.ndarray, sent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = close[deal]
        closed = c != NULL_TS
        expire_at = sent + 30 * DAY
        status = np.where(won[deal], ACCEPTED, REJECTED)
        at = c.copy()
        lapse = closed & ~won[deal] & (expire_at < c) & (g.random(len(deal)) < 0.4)
        status = np.where(lapse, EXPIRED, status)
        at = np.where(lapse, expire_at, at)
        open_lapse = ~closed & (expire_at <= last) & (g.random(len(deal)) < 0.5)
        status = np.where(open_lapse, EXPIRED, np.where(closed, status, SENT))
        at = np.where(open_lapse, expire_at, np.where(closed, at, NULL_TS))
        return status, at

    # First quote: sent at proposal; superseded (rejected) at negotiation when revised.
    d1 = np.flatnonzero(has_prop)
    sent1 = prop[d1]
    made1 = np.maximum(created[d1] + 60, sent1 - g.integers(2 * HOUR, 3 * DAY, len(d1)))
    made1 = np.minimum(made1, sent1 - 60)
    status1, at1 = outcome(d1, sent1)
    rev = revised[d1]
    status1 = np.where(rev, REJECTED, status1)
    at1 = np.where(rev, neg[d1], at1)
    factor1 = np.where(rev, g.uniform(1.05, 1.2, len(d1)), 1.0)
    rows.append(
        {"deal": d1, "made": made1, "sent": sent1, "status": status1, "at": at1, "factor": factor1}
    )
    # Revised quote: sent at negotiation.
    d2 = np.flatnonzero(revised)
    sent2 = neg[d2]
    made2 = np.maximum(prop[d2] + 60, sent2 - g.integers(HOUR, 20 * HOUR, len(d2)))
    made2 = np.minimum(made2, sent2 - 30)
    status2, at2 = outcome(d2, sent2)
    rows.append(
        {
            "deal": d2,
            "made": made2,
            "sent": sent2,
            "status": status2,
            "at": at2,
            "factor": np.ones(len(d2)),
        }
    )
    # Drafts never sent, on deals that stopped at discovery.
    disc_only = (
        real & (times[:, 1] != NULL_TS) & (prop == NULL_TS) & (g.random(len(created)) < 0.15)
    )
    d3 = np.flatnonzero(disc_only)
    made3 = times[d3, 1] + g.integers(HOUR, 3 * DAY, len(d3))
    bound = np.where(close[d3] != NULL_TS, close[d3], last)
    ok = made3 < bound
    d3, made3 = d3[ok], made3[ok]
    rows.append(
        {
            "deal": d3,
            "made": made3,
            "sent": np.full(len(d3), NULL_TS),
            "status": np.full(len(d3), DRAFT),
            "at": np.full(len(d3), NULL_TS),
            "factor": np.ones(len(d3)),
        }
    )

    q = _cat(rows)
    order = np.argsort(q["made"], kind="stable")
    q = {k: v[order] for k, v in q.items()}
    n = len(q["deal"])
    deal = q["deal"]
    amt = amount[deal]
    q_amount = np.where(amt < 0, NULL_INT, np.rint(amt * q["factor"] / 5000) * 5000).astype(
        np.int64
    )
    cols = {
        "quote_id": np.arange(n, dtype=np.int64),
        "deal_id": deal.astype(np.int64),
        "status": np.full(n, DRAFT, dtype=np.int8),
        "amount": q_amount,
        "currency": pa.array(list(CURRENCIES)).take(pa.array(currency[deal].astype(np.int64))),
        "created_at": q["made"],
        "sent_at": np.full(n, NULL_TS, dtype=np.int64),
        "updated_at": q["made"].copy(),
        "is_deleted": np.zeros(n, dtype=bool),
    }
    v = Versions("quotes", cols, q["made"].copy())
    sent = np.flatnonzero(q["sent"] != NULL_TS)
    v.add(
        sent,
        q["sent"][sent],
        status=np.full(len(sent), SENT, np.int8),
        sent_at=q["sent"][sent],
        updated_at=q["sent"][sent],
    )
    final = np.flatnonzero((q["at"] != NULL_TS) & (q["at"] <= last))
    v.add(
        final, q["at"][final], status=q["status"][final].astype(np.int8), updated_at=q["at"][final]
    )
    return v


def build_fx(seed: int, clock: Clock) -> Versions:
    """Monthly GBP/USD/CHF rates to EUR from before the first deal to the last month, with
    deliberate gaps (the pipeline then uses the latest earlier month), two EUR rows (ignored),
    the newest USD rate only in the last delta and a corrected CHF rate there."""
    g = stream(seed, "fx")
    first = int(month_index(np.array([clock.start]))[0]) - 3
    last = int(month_index(np.array([clock.last]))[0])
    months = np.arange(first, last + 1)
    cur: list[str] = []
    mon: list[int] = []
    rate: list[float] = []
    start_rate = {"GBP": 1.17, "USD": 0.92, "CHF": 1.05}
    gaps = {"USD": {first + 11}, "CHF": {first + 17, first + 18}}
    for c, r0 in start_rate.items():
        walk = r0 * np.exp(np.cumsum(g.normal(0, 0.012, len(months))))
        for m, r in zip(months, walk, strict=True):
            if int(m) in gaps.get(c, set()):
                continue
            cur.append(c)
            mon.append(int(m))
            rate.append(round(float(r), 4))
    for m in months[:2]:
        cur.append("EUR")
        mon.append(int(m))
        rate.append(1.0)
    m_arr = np.array(mon, dtype=np.int64)
    published = np.array(
        [local_instant(_month_start(int(m))) + 6 * HOUR for m in m_arr], dtype=np.int64
    )
    cur_arr = np.array(cur)
    newest_usd = (cur_arr == "USD") & (m_arr == last)
    published[newest_usd] = clock.t[1] + 7 * HOUR
    published = np.minimum(published, np.where(newest_usd, published, clock.t[0] - HOUR))
    cols = {
        "currency": pa.array(cur, pa.string()),
        "month": m_arr,
        "rate_to_eur": np.array(rate, dtype=np.float64),
    }
    v = Versions("fx_rates", cols, published)
    chf_prev = np.flatnonzero((cur_arr == "CHF") & (m_arr == last - 1))
    v.add(
        chf_prev,
        clock.t[1] + 7 * HOUR + 60,
        rate_to_eur=np.round(v.cols["rate_to_eur"][chf_prev] * 1.002, 4),
    )
    return v


def _month_start(month: int) -> date:
    return date(month // 12, month % 12 + 1, 1)
