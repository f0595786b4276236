"""Users (the sales organisation), companies and contacts.

Users are few and built row by row; companies and contacts scale with `scale` and are built
as arrays. Contacts get their owners later (`contacts.py`), once it is known who prospects them
and who opens their deals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sample import vocab
from pipelines.sample.common import Clock, pick, sample_days, stream, waking_seconds
from pipelines.sample.frames import NULL_ID, NULL_INT, Versions, code
from pipelines.sample.timeutil import DAY, HOUR, at_local, local_day

NEVER = np.iinfo(np.int64).max
ROLE_SDR, ROLE_AE, ROLE_MANAGER, ROLE_MARKETING, ROLE_OTHER = (
    code("role", r) for r in ("sdr", "ae", "manager", "marketing", "other")
)

# Email kinds of contacts.
EMAIL_NONE, EMAIL_BUSINESS, EMAIL_FREEMAIL, EMAIL_LOOSE = 0, 1, 2, 3


@dataclass
class Staff:
    """The CRM users and the facts the rest of the world needs about them."""

    versions: Versions
    role: np.ndarray
    team: np.ndarray  # team index, -1 = empty team
    team_names: list[str]
    sdr: np.ndarray  # (teams, 2) user indexes
    ae: np.ndarray  # (teams, 3)
    manager: np.ndarray  # (teams,)
    marketers: np.ndarray
    director: int
    others: np.ndarray
    leave: np.ndarray  # instant a user left (NEVER if active)
    fallback: np.ndarray  # who takes over a leaver's work
    mislabellers: np.ndarray

    @property
    def n(self) -> int:
        return len(self.role)

    @property
    def n_teams(self) -> int:
        return len(self.team_names)

    def active(self, owner: np.ndarray, until: np.ndarray) -> np.ndarray:
        """`owner`, or their successor where the owner left before `until`."""
        owner = np.asarray(owner, dtype=np.int64).copy()
        for _ in range(3):
            gone = (owner >= 0) & (self.leave[np.clip(owner, 0, None)] < until)
            owner[gone] = self.fallback[owner[gone]]
        return owner


def _team_names(n: int) -> list[str]:
    """'Team Noord', 'Team Zuid', ... and numbered repeats beyond the list."""
    regions = vocab.TEAM_REGIONS
    return [
        f"Team {regions[i % len(regions)]}"
        + (f" {i // len(regions) + 1}" if i >= len(regions) else "")
        for i in range(n)
    ]


AES_PER_TEAM = 3
SDRS_PER_TEAM = 2


def _staff_sizes(scale: float) -> tuple[int, int, int]:
    """How many teams, marketers and CRM admins the sales organisation has at `scale`."""
    return max(2, round(3 * scale)), max(2, round(3 * scale)), max(1, round(scale**0.5))


def _users(scale: float) -> int:
    """How many users `build_staff` makes at `scale`: the director, each team's manager, AEs
    and SDRs, the marketers, the admins, and the first delta's hire (_user_changes)."""
    n_teams, n_marketing, n_other = _staff_sizes(scale)
    return 1 + n_teams * (1 + AES_PER_TEAM + SDRS_PER_TEAM) + n_marketing + n_other + 1


def build_staff(scale: float, seed: int, clock: Clock) -> Staff:
    """Teams of SDRs, AEs and a manager, marketers, a sales director and CRM admins."""
    g = stream(seed, "users")
    n_teams, n_marketing, n_other = _staff_sizes(scale)
    # every user has a name of their own: a larger organisation would draw names for ever
    names_there_are = len(vocab.FIRST_NAMES) * len(vocab.LAST_NAMES)
    if _users(scale) > names_there_are:
        largest = next(s for s in range(int(scale), 0, -1) if _users(s) <= names_there_are)
        raise ValueError(
            f"a sales organisation at staff scale {scale:g} has {_users(scale):,} users, more "
            f"than the {names_there_are:,} different names the generator has: take a staff "
            f"scale of at most {largest} (--staff-scale, or --scale when it is not given)"
        )
    team_names = _team_names(n_teams)

    used: set[str] = set()
    names: list[str] = []
    emails: list[str] = []

    def person() -> None:
        while True:
            first = vocab.FIRST_NAMES[int(g.integers(len(vocab.FIRST_NAMES)))]
            last = vocab.LAST_NAMES[int(g.integers(len(vocab.LAST_NAMES)))]
            full = f"{first} {last}"
            if full not in used:
                used.add(full)
                names.append(full)
                emails.append(f"{vocab.slug(first)}.{vocab.slug(last)}@{vocab.SELLER_DOMAIN}")
                return

    role: list[int] = []
    team: list[int] = []
    leave: list[int] = []

    def add(r: int, t: int, left: int = NEVER) -> int:
        person()
        role.append(r)
        team.append(t)
        leave.append(left)
        return len(role) - 1

    end_day = clock.end_day
    director = add(ROLE_MANAGER, -1)
    sdr = np.zeros((n_teams, SDRS_PER_TEAM), dtype=np.int64)
    ae = np.zeros((n_teams, AES_PER_TEAM), dtype=np.int64)
    manager = np.zeros(n_teams, dtype=np.int64)
    for t in range(n_teams):
        manager[t] = add(ROLE_MANAGER, t)
        for k in range(AES_PER_TEAM):
            left = NEVER
            if k == 2 and t % 3 == 2:
                left = _leave_instant(end_day - 200 - (23 * t) % 100)
            ae[t, k] = add(ROLE_AE, t, left)
        for k in range(SDRS_PER_TEAM):
            left = NEVER
            if k == 1 and t % 2 == 1:
                left = _leave_instant(end_day - 100 - (37 * t) % 120)
            sdr[t, k] = add(ROLE_SDR, t, left)
    marketers = np.array(
        [
            add(ROLE_MARKETING, -2, _leave_instant(end_day - 150) if k == 2 else NEVER)
            for k in range(n_marketing)
        ]
    )
    others = np.array([add(ROLE_OTHER, -1) for _ in range(n_other)])

    n = len(role)
    role_a = np.array(role, dtype=np.int8)
    team_a = np.array(team, dtype=np.int64)
    leave_a = np.array(leave, dtype=np.int64)
    fallback = np.full(n, director, dtype=np.int64)
    for t in range(n_teams):
        fallback[team_a == t] = manager[t]
    fallback[marketers] = marketers[0]
    mislabellers = np.array([sdr[0, 0], sdr[1, 0]])

    team_text = [team_names[t] if t >= 0 else ("Marketing" if t == -2 else "") for t in team]
    updated = np.array(
        [
            (lv + HOUR)
            if lv != NEVER
            else clock.start - int(g.integers(20, 400)) * DAY + int(g.integers(8, 18)) * HOUR
            for lv in leave
        ],
        dtype=np.int64,
    )
    cols = {
        "user_id": np.arange(n, dtype=np.int64),
        "full_name": pa.array(names, pa.string()),
        "email": pa.array(emails, pa.string()),
        "role": role_a,
        "team": pa.array(team_text, pa.string()),
        "is_active": leave_a == NEVER,
        "updated_at": updated,
    }
    versions = Versions("users", cols, updated.copy())
    staff = Staff(
        versions=versions,
        role=role_a,
        team=np.where(team_a >= 0, team_a, -1),
        team_names=team_names,
        sdr=sdr,
        ae=ae,
        manager=manager,
        marketers=marketers,
        director=director,
        others=others,
        leave=leave_a,
        fallback=fallback,
        mislabellers=mislabellers,
    )
    _user_changes(staff, clock, g)
    return staff


def _leave_instant(day: int) -> int:
    return int(at_local(np.array([day]), np.array([17 * HOUR]))[0])


def _user_changes(staff: Staff, clock: Clock, g: np.random.Generator) -> None:
    """What the first delta carries for users: an AE moves team, an admin leaves, and a new SDR
    is hired who has no team yet."""
    v = staff.versions
    moment = clock.t[0] + 8 * HOUR + int(g.integers(0, 3 * HOUR))
    mover = int(staff.ae[1, 0])
    v.add(np.array([mover]), moment, team=pa.array([staff.team_names[0]]), updated_at=moment)
    staff.team[mover] = 0
    admin = int(staff.others[0])
    v.add(np.array([admin]), moment + 600, is_active=False, updated_at=moment + 600)
    staff.leave[admin] = moment + 600
    # A hire only in the delta: appended as a record first visible in the first delta window,
    # named as nobody else is (drawn again while the name is taken: a large sales organisation
    # uses many of the names there are)
    cols = v.cols
    taken = set(cols["full_name"].to_pylist())
    while True:
        first = vocab.FIRST_NAMES[int(g.integers(len(vocab.FIRST_NAMES)))]
        last = vocab.LAST_NAMES[int(g.integers(len(vocab.LAST_NAMES)))]
        if f"{first} {last}" not in taken:
            break
    hire_at = moment + 1200
    v.cols = {
        "user_id": np.append(cols["user_id"], v.n),
        "full_name": pa.concat_arrays([cols["full_name"], pa.array([f"{first} {last}"])]),
        "email": pa.concat_arrays(
            [
                cols["email"],
                pa.array([f"{vocab.slug(first)}.{vocab.slug(last)}@{vocab.SELLER_DOMAIN}"]),
            ]
        ),
        "role": np.append(cols["role"], np.int8(ROLE_SDR)),
        "team": pa.concat_arrays([cols["team"], pa.array([""])]),
        "is_active": np.append(cols["is_active"], True),
        "updated_at": np.append(cols["updated_at"], hire_at),
    }
    v.vis = np.append(v.vis, hire_at)
    staff.role = np.append(staff.role, np.int8(ROLE_SDR))
    staff.team = np.append(staff.team, -1)
    staff.leave = np.append(staff.leave, NEVER)
    staff.fallback = np.append(staff.fallback, staff.director)


@dataclass
class People:
    """Contacts and companies before owners are known."""

    created: np.ndarray
    company: np.ndarray  # company index or -1
    team: np.ndarray  # team index used to route the contact to reps
    email_kind: np.ndarray
    email: pa.Array
    first_name: pa.Array
    last_name: pa.Array
    job_title: pa.Array
    spam: np.ndarray
    fit: np.ndarray  # business e-mail on a live company's domain (final data)
    forced_new: np.ndarray  # contacts created inside the delta windows
    companies: Versions
    co_team: np.ndarray
    co_employees: np.ndarray
    co_created: np.ndarray

    @property
    def n(self) -> int:
        return len(self.created)


def _strings(values: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    """Strings `values[idx]` (idx < 0 → null)."""
    arr = pa.array(list(values), pa.string())
    return arr.take(pa.array(idx, mask=idx < 0, type=pa.int64()))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def build_people(scale: float, seed: int, clock: Clock, staff: Staff) -> People:
    """Contacts with their creation instants, e-mail, names and companies."""
    g = stream(seed, "people")
    n = max(80, round(10_000 * scale))
    created = _contact_created(g, n, clock)
    forced_new = created > clock.t[0]
    spam = np.zeros(n, dtype=bool)
    eligible_recent = np.flatnonzero(
        (created > clock.t[0] - 20 * DAY) & (created < clock.t[0] - DAY)
    )
    eligible_old = np.flatnonzero((created > clock.start) & (created < clock.t[0] - 20 * DAY))
    n_spam = max(3, round(0.003 * n))
    n_recent = max(2, round(0.3 * n_spam))
    spam[g.choice(eligible_recent, size=min(n_recent, len(eligible_recent)), replace=False)] = True
    spam[g.choice(eligible_old, size=n_spam - n_recent, replace=False)] = True

    # Companies: every company has at least one contact; bigger companies have more.
    has_company = (g.random(n) < 0.88) & ~spam
    linked = np.flatnonzero(has_company)
    n_co = max(20, round(0.22 * n))
    n_forced = int(np.count_nonzero(forced_new & has_company))
    n_regular = min(n_co, len(linked) - n_forced)
    regular = linked[~forced_new[linked]]
    employees = np.clip(np.rint(np.exp(g.normal(3.6, 1.25, size=n_regular + n_forced))), 2, 25_000)
    company = np.full(n, NULL_ID, dtype=np.int64)
    order = g.permutation(regular)
    company[order[:n_regular]] = np.arange(n_regular)
    rest = order[n_regular:]
    w = employees[:n_regular] ** 0.45
    company[rest] = g.choice(n_regular, size=len(rest), p=w / w.sum())
    company[linked[forced_new[linked]]] = n_regular + np.arange(n_forced)
    n_co = n_regular + n_forced

    # A company enters the CRM at local midnight some days before its first contact.
    first_contact = np.full(n_co, NEVER, dtype=np.int64)
    np.minimum.at(first_contact, company[linked], created[linked])
    lead_days = np.where(np.arange(n_co) >= n_regular, 0, g.integers(0, 46, size=n_co))
    co_day = local_day(first_contact) - lead_days
    co_created = at_local(co_day, np.zeros(n_co, dtype=np.int64))
    # Company ids follow creation order.
    rank = np.argsort(co_created, kind="stable")
    remap = np.empty(n_co, dtype=np.int64)
    remap[rank] = np.arange(n_co)
    company[linked] = remap[company[linked]]
    co_created = co_created[rank]
    employees = employees[rank]

    companies, co_team, co_deleted = _companies(g, co_created, employees, clock, staff.n_teams)
    team = np.where(
        company >= 0, co_team[np.clip(company, 0, None)], g.integers(0, staff.n_teams, n)
    )

    first_idx = g.integers(0, len(vocab.FIRST_NAMES), size=n)
    last_idx = g.integers(0, len(vocab.LAST_NAMES), size=n)
    title_idx = np.where(g.random(n) < 0.12, -1, g.integers(0, len(vocab.JOB_TITLES), size=n))

    u = g.random(n)
    email_kind = np.where(
        company >= 0,
        np.where(u < 0.78, EMAIL_BUSINESS, np.where(u < 0.92, EMAIL_FREEMAIL, EMAIL_NONE)),
        np.where(u < 0.6, EMAIL_FREEMAIL, np.where(u < 0.75, EMAIL_LOOSE, EMAIL_NONE)),
    )
    email_kind[spam] = EMAIL_FREEMAIL
    first_name = _strings(vocab.FIRST_NAMES, first_idx)
    last_name = _strings(vocab.LAST_NAMES, last_idx)
    n_bad = int(spam.sum())
    spam_idx = np.flatnonzero(spam)
    first_name = _replace(first_name, spam_idx, ["SEO", "Test", "Crypto", "Marketing"], g)
    last_name = _replace(last_name, spam_idx, ["Services", "Bot", "Offer", "Expert"], g)
    first_slugs = _strings([vocab.slug(x) for x in vocab.FIRST_NAMES], first_idx)
    last_slugs = _strings([vocab.slug(x) for x in vocab.LAST_NAMES], last_idx)
    pattern = pick(g, [0.55, 0.25, 0.1, 0.1], n)
    initial = pc.utf8_slice_codeunits(first_slugs, 0, 1)
    local_part = pc.if_else(
        pa.array(pattern == 0),
        _join(first_slugs, ".", last_slugs),
        pc.if_else(
            pa.array(pattern == 1),
            _join(initial, ".", last_slugs),
            pc.if_else(pa.array(pattern == 2), first_slugs, _join(first_slugs, last_slugs)),
        ),
    )
    digits = g.integers(1, 99, size=n)
    free_local = pc.if_else(
        pa.array(g.random(n) < 0.5),
        _join(first_slugs, ".", last_slugs, pa.array(digits.astype(str))),
        _join(first_slugs, ".", last_slugs),
    )
    spam_local = pa.array([f"seo.services{int(x)}" for x in g.integers(10, 999, size=n_bad)])
    free_local = _put(free_local, spam_idx, spam_local)
    co_domain = companies.cols["domain"]
    domain = pc.if_else(
        pa.array(email_kind == EMAIL_BUSINESS),
        co_domain.take(pa.array(np.clip(company, 0, None))),
        pc.if_else(
            pa.array(email_kind == EMAIL_FREEMAIL),
            _strings(vocab.FREEMAIL_DOMAINS, g.integers(0, len(vocab.FREEMAIL_DOMAINS), size=n)),
            _strings(vocab.LOOSE_DOMAINS, g.integers(0, len(vocab.LOOSE_DOMAINS), size=n)),
        ),
    )
    user = pc.if_else(pa.array(email_kind == EMAIL_FREEMAIL), free_local, local_part)
    email = pc.if_else(
        pa.array(email_kind == EMAIL_NONE), pa.nulls(n, pa.string()), _join(user, "@", domain)
    )
    live_company = (company >= 0) & (co_deleted[np.clip(company, 0, None)] == NEVER)
    fit = (email_kind == EMAIL_BUSINESS) & live_company

    return People(
        created=created,
        company=company,
        team=team,
        email_kind=email_kind,
        email=email,
        first_name=first_name,
        last_name=last_name,
        job_title=_strings(vocab.JOB_TITLES, title_idx),
        spam=spam,
        fit=fit,
        forced_new=forced_new,
        companies=companies,
        co_team=co_team,
        co_employees=employees,
        co_created=co_created,
    )


def _replace(
    arr: pa.Array, idx: np.ndarray, choices: list[str], g: np.random.Generator
) -> pa.Array:
    values = pa.array([choices[int(k)] for k in g.integers(0, len(choices), size=len(idx))])
    return _put(arr, idx, values)


def _put(arr: pa.Array, idx: np.ndarray, values: pa.Array) -> pa.Array:
    """`arr` with positions `idx` replaced by `values`."""
    n = len(arr)
    src = np.arange(n, dtype=np.int64)
    src[idx] = n + np.arange(len(idx))
    return pa.concat_arrays([arr, values.cast(arr.type)]).take(pa.array(src))


def _contact_created(g: np.random.Generator, n: int, clock: Clock) -> np.ndarray:
    """Creation instants, sorted: 15% imported before the history starts, the rest growing over
    the history, and a few inside each delta window so the deltas carry new contacts."""
    n_forced = max(2, round(0.0006 * n))
    n_legacy = round(0.15 * n)
    n_hist = n - n_legacy - 2 * n_forced
    legacy = sample_days(g, n_legacy, clock.start_day - 365, clock.start_day - 1, growth=0.0)
    hist = sample_days(g, n_hist, clock.start_day, clock.end_day - 3)
    days = np.concatenate([legacy, hist])
    created = at_local(days, waking_seconds(g, len(days)))
    forced = [
        at_local(np.full(n_forced, clock.end_day - k), 9 * HOUR + g.integers(0, 8 * HOUR, n_forced))
        for k in (2, 1)
    ]
    return np.sort(np.concatenate([created, *forced]))


def _companies(
    g: np.random.Generator, created: np.ndarray, employees: np.ndarray, clock: Clock, n_teams: int
) -> tuple[Versions, np.ndarray, np.ndarray]:
    """Company records: Dutch/Belgian/German names and domains, industry, size, country."""
    n = len(created)
    country_code = pick(g, [0.82, 0.14, 0.04], n)
    countries = ("NL", "BE", "DE")
    sector = g.integers(0, len(vocab.SECTORS), size=n)
    surname = g.integers(0, len(vocab.COMPANY_SURNAMES), size=n)
    with_place = g.random(n) < 0.4
    place_names: list[str] = []
    place_offsets = {}
    for c in countries:
        place_offsets[c] = len(place_names)
        place_names.extend(vocab.PLACES[c])
    place_local = g.integers(0, 1 << 30, size=n)
    place = np.zeros(n, dtype=np.int64)
    legal_names: list[str] = []
    legal_offsets = {}
    for c in countries:
        legal_offsets[c] = len(legal_names)
        legal_names.extend(vocab.LEGAL_FORMS[c])
    legal = np.zeros(n, dtype=np.int64)
    for i, c in enumerate(countries):
        mask = country_code == i
        place[mask] = place_offsets[c] + place_local[mask] % len(vocab.PLACES[c])
        legal[mask] = legal_offsets[c] + place_local[mask] % len(vocab.LEGAL_FORMS[c])
    place = np.where(with_place, place, -1)

    sector_names = [s for s, _ in vocab.SECTORS]
    name_core = _join(
        _strings(vocab.COMPANY_SURNAMES, surname), " ", _strings(sector_names, sector)
    )
    name_core = pc.if_else(
        pa.array(with_place),
        _join(name_core, " ", _strings(place_names, np.clip(place, 0, None))),
        name_core,
    )
    name = _join(name_core, " ", _strings(legal_names, legal))

    # Domain: slug of the name parts; a repeat of the same slug gets a number.
    base = _join(
        _strings([vocab.slug(s) for s in vocab.COMPANY_SURNAMES], surname),
        _strings([vocab.slug(s) for s in sector_names], sector),
        pc.if_else(
            pa.array(with_place),
            _strings([vocab.slug(p) for p in place_names], np.clip(place, 0, None)),
            pa.array([""] * n),
        ),
    )
    key = (surname * len(sector_names) + sector) * (len(place_names) + 1) + (place + 1)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    dup_rank = np.empty(n, dtype=np.int64)
    dup_rank[order] = np.arange(n) - group_start
    suffix = pc.if_else(
        pa.array(dup_rank > 0), pa.array((dup_rank + 1).astype(str)), pa.array([""] * n)
    )
    tld = _strings(
        [".nl", ".be", ".de", ".com"],
        np.where((country_code == 0) & (g.random(n) < 0.1), 3, country_code),
    )
    domain = _join(base, suffix, tld)
    industry_idx = np.where(g.random(n) < 0.08, -1, sector)
    industry = _strings([i for _, i in vocab.SECTORS], industry_idx)
    employee_count = np.where(g.random(n) < 0.06, NULL_INT, employees.astype(np.int64))

    t_full = clock.t[0]
    edited = (g.random(n) < 0.4) & (created < t_full)
    updated = created + g.integers(60, HOUR, size=n)
    span = np.clip(t_full - updated, 0, None)
    updated = np.where(edited, updated + (g.random(n) * span).astype(np.int64), updated)
    cols = {
        "company_id": np.arange(n, dtype=np.int64),
        "name": name,
        "domain": domain,
        "industry": industry,
        "employee_count": employee_count,
        "country": _strings(countries, country_code),
        "created_at": created,
        "updated_at": updated,
        "is_deleted": np.zeros(n, dtype=bool),
    }
    v = Versions("companies", cols, updated.copy())
    deleted_at = np.full(n, NEVER, dtype=np.int64)
    # A few companies went bankrupt or were merged: deleted before the full delivery.
    old = np.flatnonzero(created < t_full - 120 * DAY)
    gone = g.choice(old, size=max(1, round(0.004 * n)), replace=False)
    when = np.maximum(updated[gone], t_full - g.integers(5, 90, size=len(gone)) * DAY)
    v.add(gone, when, is_deleted=True, updated_at=when)
    deleted_at[gone] = when
    # The last delta: some companies report a new head count.
    live_old = np.setdiff1d(old, gone)
    grown = g.choice(live_old, size=max(2, round(0.003 * n)), replace=False)
    moment = clock.t[1] + 7 * HOUR + g.integers(0, 9 * HOUR, size=len(grown))
    new_count = np.rint(np.clip(employees[grown], 2, None) * g.uniform(1.05, 1.4, len(grown)))
    v.add(grown, moment, employee_count=new_count.astype(np.int64), updated_at=moment)
    team = g.integers(0, n_teams, size=n)
    return v, team, deleted_at
