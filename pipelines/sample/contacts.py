"""Contact records over time: who owns them, and what the deltas change or delete.

Ownership follows the story: a prospector or marketer owns a new contact, the deal owner takes
over when sales opens a new-business deal, and a leaver's contacts pass to their manager.
Per-contact funnel facts (what the definitions would compute) are derived here too, so the
lifecycle labels and activities can agree with them, or deliberately not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.sample import vocab
from pipelines.sample.common import stream
from pipelines.sample.deals import NB, Deals
from pipelines.sample.frames import NULL_ID, Versions
from pipelines.sample.marketing import Marketing, Prospecting
from pipelines.sample.people import EMAIL_BUSINESS, NEVER, People, Staff
from pipelines.sample.timeutil import DAY, HOUR, MINUTE


@dataclass
class Facts:
    """Per-contact funnel instants as the definitions compute them (NEVER when absent)."""

    has_event: np.ndarray
    mql_time: np.ndarray
    sl_time: np.ndarray
    sl_owner: np.ndarray  # owner of the sales-lead deal
    customer_time: np.ndarray
    customer_owner: np.ndarray
    company_win: np.ndarray  # per company: first won deal's close
    company_owner: np.ndarray  # per company: owner of that deal
    owner0: np.ndarray  # owner before any deal


def funnel_facts(
    people: People, staff: Staff, mk: Marketing, deals: Deals, owner0: np.ndarray
) -> Facts:
    """What the definitions will compute per contact, so labels and activities can follow it."""
    n = people.n
    live = ~deals.duplicate & (deals.contact >= 0)
    nb = np.flatnonzero(live & (deals.deal_type == NB))  # id order = creation order
    sl_time = np.full(n, NEVER, dtype=np.int64)
    sl_owner = np.full(n, NULL_ID, dtype=np.int64)
    contacts, first = np.unique(deals.contact[nb], return_index=True)
    sl_time[contacts] = deals.created[nb][first]
    sl_owner[contacts] = deals.owner[nb][first]

    won_nb = nb[deals.won[nb]]
    by_close = won_nb[np.argsort(deals.close[won_nb], kind="stable")]
    customer_time = np.full(n, NEVER, dtype=np.int64)
    customer_owner = np.full(n, NULL_ID, dtype=np.int64)
    contacts, first = np.unique(deals.contact[by_close], return_index=True)
    customer_time[contacts] = deals.close[by_close][first]
    customer_owner[contacts] = deals.owner[by_close][first]

    n_co = people.companies.n
    won_any = np.flatnonzero(~deals.duplicate & deals.won & (deals.company >= 0))
    won_any = won_any[np.argsort(deals.close[won_any], kind="stable")]
    company_win = np.full(n_co, NEVER, dtype=np.int64)
    company_owner = np.full(n_co, NULL_ID, dtype=np.int64)
    cos, first = np.unique(deals.company[won_any], return_index=True)
    company_win[cos] = deals.close[won_any][first]
    company_owner[cos] = deals.owner[won_any][first]

    fi = mk.first_intent
    mql_time = np.where(people.fit & (fi < NEVER) & (fi <= sl_time), fi, NEVER)
    has_event = np.bincount(mk.contact, minlength=n) > 0
    return Facts(
        has_event=has_event,
        mql_time=mql_time,
        sl_time=sl_time,
        sl_owner=sl_owner,
        customer_time=customer_time,
        customer_owner=customer_owner,
        company_win=company_win,
        company_owner=company_owner,
        owner0=owner0,
    )


def first_owner(
    seed: int, people: People, staff: Staff, mk: Marketing, pr: Prospecting
) -> np.ndarray:
    """Owner when the contact is created: its prospector, a marketer or a rep, or nobody."""
    g = stream(seed, "owners")
    n = people.n
    team = people.team
    has_event = np.bincount(mk.contact, minlength=n) > 0
    u = g.random(n)
    marketer = staff.marketers[g.integers(0, len(staff.marketers), n)]
    sdr = staff.sdr[team, g.integers(0, 2, n)]
    rep = np.where(g.random(n) < 0.5, sdr, staff.ae[team, g.integers(0, 3, n)])
    owner = np.where(
        has_event,
        np.select([u < 0.45, u < 0.8], [marketer, sdr], NULL_ID),
        np.where(u < 0.75, rep, NULL_ID),
    )
    owner = np.where(pr.prospected, pr.prospector, owner)
    owner = np.where(people.spam, np.where(u < 0.5, marketer, NULL_ID), owner)
    return staff.active(owner, people.created)


def build_contacts(
    seed: int,
    people: People,
    staff: Staff,
    mk: Marketing,
    facts: Facts,
    clock_t: tuple[int, int, int],
) -> Versions:
    """Contact versions: ownership changes, edits and deletes in the deltas, merged duplicates
    and spam deleted before the full delivery."""
    g = stream(seed, "contacts")
    n = people.n
    t1, t2, last = clock_t
    created = people.created
    owner0 = facts.owner0

    pk: list[np.ndarray] = []
    when: list[np.ndarray] = []
    owner_new: list[np.ndarray] = []

    # A: the first owner left before any deal → their manager takes over.
    leave0 = np.where(owner0 >= 0, staff.leave[np.clip(owner0, 0, None)], NEVER)
    t_a = np.where(leave0 < NEVER, leave0 + g.integers(DAY, 5 * DAY, n), NEVER)
    a = (owner0 >= 0) & (leave0 < last) & (t_a < np.minimum(facts.sl_time, last - HOUR))
    a &= t_a > created
    cur = np.where(a, staff.fallback[np.clip(owner0, 0, None)], owner0)
    # B: the deal owner takes over when sales opens the first new-business deal.
    h = facts.sl_time
    b = (h < NEVER) & (facts.sl_owner != cur)
    t_b = h + g.integers(MINUTE, HOUR, n)
    cur = np.where(b, facts.sl_owner, cur)
    since = np.where(b, t_b, np.where(a, t_a, created))
    # C: the current owner leaves later → their manager takes over.
    leave1 = np.where(cur >= 0, staff.leave[np.clip(cur, 0, None)], NEVER)
    t_c = np.where(leave1 < NEVER, leave1 + g.integers(DAY, 5 * DAY, n), NEVER)
    c = (cur >= 0) & (leave1 > since) & (t_c < last - HOUR)
    for mask, t, who in (
        (a, t_a, staff.fallback[np.clip(owner0, 0, None)]),
        (b, t_b, facts.sl_owner),
        (c, t_c, staff.fallback[np.clip(cur, 0, None)]),
    ):
        idx = np.flatnonzero(mask)
        pk.append(idx)
        when.append(t[idx])
        owner_new.append(who[idx])

    first_change = np.full(n, NEVER, dtype=np.int64)
    for idx, t in zip(pk, when, strict=True):
        np.minimum.at(first_change, idx, t)
    spam_removed = mk.spam_removed
    first_change = np.minimum(first_change, spam_removed)

    # Deletes and edits, chosen among contacts nothing else happens to.
    quiet = (
        (first_change == NEVER) & ~people.spam & (created < t1 - 7 * DAY) & (facts.sl_time == NEVER)
    )
    pool = g.permutation(np.flatnonzero(quiet))
    k_full_del = max(2, round(0.004 * n))
    k_edit = max(3, round(0.002 * n))
    k_del = max(2, round(0.0005 * n))
    take_from = 0

    def take_n(k: int) -> np.ndarray:
        nonlocal take_from
        out = np.sort(pool[take_from : take_from + k])
        take_from += k
        return out

    merged = take_n(k_full_del)
    merged_at = created[merged] + (g.random(len(merged)) * (t1 - HOUR - created[merged])).astype(
        np.int64
    )
    edits: list[tuple[np.ndarray, np.ndarray]] = []
    deletes: list[tuple[np.ndarray, np.ndarray]] = [(merged, merged_at)]
    for t0 in (t1, t2):
        e = take_n(k_edit)
        edits.append((e, t0 + 6 * HOUR + g.integers(0, 10 * HOUR, len(e))))
        d = take_n(k_del)
        deletes.append((d, t0 + 6 * HOUR + g.integers(0, 10 * HOUR, len(d))))
    spam = np.flatnonzero(spam_removed < NEVER)
    deletes.append((spam, spam_removed[spam] - MINUTE))
    for idx, t in [*edits, *deletes]:
        np.minimum.at(first_change, idx, t)

    # First version: created, sometimes edited later (before any other change).
    u0 = created + g.integers(0, 10 * MINUTE, n)
    bound = np.minimum(first_change, t1) - MINUTE
    edited = (g.random(n) < 0.5) & (bound > u0)
    u0 = np.where(edited, u0 + (g.random(n) * (bound - u0)).astype(np.int64), u0)
    u0 = np.minimum(u0, np.where(first_change < NEVER, first_change - 1, u0))
    cols = {
        "contact_id": np.arange(n, dtype=np.int64),
        "company_id": people.company,
        "email": people.email,
        "first_name": people.first_name,
        "last_name": people.last_name,
        "job_title": people.job_title,
        "owner_user_id": owner0,
        "created_at": created,
        "updated_at": u0,
        "is_deleted": np.zeros(n, dtype=bool),
    }
    v = Versions("contacts", cols, u0.copy())
    for idx, t, who in zip(pk, when, owner_new, strict=True):
        order = np.argsort(t, kind="stable")
        v.add(idx[order], t[order], owner_user_id=who[order], updated_at=t[order])
    for idx, t in edits:
        _edit(g, v, people, staff, mk, idx, t)
    for idx, t in deletes:
        v.add(idx, t, is_deleted=True, updated_at=t)
    return v


def _edit(
    g: np.random.Generator,
    v: Versions,
    people: People,
    staff: Staff,
    mk: Marketing,
    idx: np.ndarray,
    t: np.ndarray,
) -> None:
    """A delta edit: a new owner, a corrected e-mail address or a new job title."""
    kind = np.arange(len(idx)) % 3
    has_event = np.isin(idx, mk.contact)
    # Owner: another rep of the team.
    own = idx[(kind == 0) | ((kind == 1) & has_event)]
    t_own = t[(kind == 0) | ((kind == 1) & has_event)]
    team = people.team[own]
    new_owner = staff.ae[team, g.integers(0, 3, len(own))]
    current = v.cols["owner_user_id"][own]
    new_owner = np.where(new_owner == current, staff.manager[team], new_owner)
    new_owner = staff.active(new_owner, t_own + 30 * DAY)
    v.add(own, t_own, owner_user_id=new_owner, updated_at=t_own)
    # E-mail: a private address replaced by the business one (or the other way round) for
    # contacts without marketing events, so no marketing-lead judgement changes.
    mail = idx[(kind == 1) & ~has_event]
    t_mail = t[(kind == 1) & ~has_event]
    first = people.first_name.take(pa.array(mail)).to_pylist()
    last = people.last_name.take(pa.array(mail)).to_pylist()
    domains = people.companies.cols["domain"]
    addresses = []
    for i, c in enumerate(mail):
        local = f"{vocab.slug(first[i] or 'info')}.{vocab.slug(last[i] or 'contact')}"
        company = int(people.company[c])
        if people.email_kind[c] != EMAIL_BUSINESS and company >= 0:
            addresses.append(f"{local}@{domains[company].as_py()}")
        else:
            addresses.append(f"{local}@{vocab.FREEMAIL_DOMAINS[i % len(vocab.FREEMAIL_DOMAINS)]}")
    v.add(mail, t_mail, email=pa.array(addresses, pa.string()), updated_at=t_mail)
    # Job title.
    job = idx[kind == 2]
    t_job = t[kind == 2]
    titles = [vocab.JOB_TITLES[int(k)] for k in g.integers(0, len(vocab.JOB_TITLES), len(job))]
    v.add(job, t_job, job_title=pa.array(titles, pa.string()), updated_at=t_job)
