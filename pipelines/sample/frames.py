"""The contract's entities as the generator holds them, and record versions over time.

Columns are kept compact and typed (ids as record indexes, instants as int64 seconds,
enumerations as small codes, money as integer cents) and only turned into text when a file
is written. `Versions` holds every version of every record of one entity, so the state at
any delivery time can be cut out with a vectorised search instead of a per-row loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pyarrow as pa

from pipelines.contract import ENTITIES
from pipelines.sample.timeutil import NULL_TS

Kind = Literal["id", "ts", "str", "enum", "int", "money", "bool", "month", "rate"]

# The contract's enumerations (pipelines/contract.py); a value's code is its position.
ENUMS: dict[str, tuple[str, ...]] = {
    name: ENTITIES[entity].column(column).enum
    for name, (entity, column) in {
        "role": ("users", "role"),
        "lifecycle_stage": ("lifecycle_changes", "lifecycle_stage"),
        "event_type": ("marketing_events", "event_type"),
        "activity_type": ("activities", "activity_type"),
        "direction": ("activities", "direction"),
        "outcome": ("activities", "outcome"),
        "deal_type": ("deals", "deal_type"),
        "stage": ("deals", "stage"),
        "status": ("quotes", "status"),
    }.items()
}


def code(enum: str, value: str) -> int:
    """The code of an enumeration value (codes are positions in ENUMS)."""
    return ENUMS[enum].index(value)


@dataclass(frozen=True)
class Col:
    """One column: its kind decides storage and rendering; `ref` names the id's entity or the
    enumeration."""

    name: str
    kind: Kind
    ref: str = ""


def _cols(*spec: tuple[str, ...]) -> tuple[Col, ...]:
    return tuple(Col(s[0], cast(Kind, s[1]), s[2] if len(s) > 2 else "") for s in spec)


SCHEMA: dict[str, tuple[Col, ...]] = {
    "users": _cols(
        ("user_id", "id", "users"),
        ("full_name", "str"),
        ("email", "str"),
        ("role", "enum", "role"),
        ("team", "str"),
        ("is_active", "bool"),
        ("updated_at", "ts"),
    ),
    "companies": _cols(
        ("company_id", "id", "companies"),
        ("name", "str"),
        ("domain", "str"),
        ("industry", "str"),
        ("employee_count", "int"),
        ("country", "str"),
        ("created_at", "ts"),
        ("updated_at", "ts"),
        ("is_deleted", "bool"),
    ),
    "contacts": _cols(
        ("contact_id", "id", "contacts"),
        ("company_id", "id", "companies"),
        ("email", "str"),
        ("first_name", "str"),
        ("last_name", "str"),
        ("job_title", "str"),
        ("owner_user_id", "id", "users"),
        ("created_at", "ts"),
        ("updated_at", "ts"),
        ("is_deleted", "bool"),
    ),
    "lifecycle_changes": _cols(
        ("change_id", "id", "lifecycle_changes"),
        ("contact_id", "id", "contacts"),
        ("lifecycle_stage", "enum", "lifecycle_stage"),
        ("changed_at", "ts"),
        ("changed_by_user_id", "id", "users"),
        ("is_deleted", "bool"),
    ),
    "marketing_events": _cols(
        ("event_id", "id", "marketing_events"),
        ("contact_id", "id", "contacts"),
        ("event_type", "enum", "event_type"),
        ("occurred_at", "ts"),
        ("campaign", "str"),
        ("channel", "str"),
        ("is_deleted", "bool"),
    ),
    "activities": _cols(
        ("activity_id", "id", "activities"),
        ("activity_type", "enum", "activity_type"),
        ("direction", "enum", "direction"),
        ("owner_user_id", "id", "users"),
        ("contact_id", "id", "contacts"),
        ("deal_id", "id", "deals"),
        ("occurred_at", "ts"),
        ("duration_seconds", "int"),
        ("outcome", "enum", "outcome"),
        ("updated_at", "ts"),
        ("is_deleted", "bool"),
    ),
    "deals": _cols(
        ("deal_id", "id", "deals"),
        ("contact_id", "id", "contacts"),
        ("company_id", "id", "companies"),
        ("owner_user_id", "id", "users"),
        ("deal_type", "enum", "deal_type"),
        ("stage", "enum", "stage"),
        ("amount", "money"),
        ("currency", "str"),
        ("created_at", "ts"),
        ("closed_at", "ts"),
        ("lost_reason", "str"),
        ("updated_at", "ts"),
        ("is_deleted", "bool"),
    ),
    "deal_stage_changes": _cols(
        ("deal_id", "id", "deals"),
        ("stage", "enum", "stage"),
        ("changed_at", "ts"),
        ("changed_by_user_id", "id", "users"),
        ("is_deleted", "bool"),
    ),
    "quotes": _cols(
        ("quote_id", "id", "quotes"),
        ("deal_id", "id", "deals"),
        ("status", "enum", "status"),
        ("amount", "money"),
        ("currency", "str"),
        ("created_at", "ts"),
        ("sent_at", "ts"),
        ("updated_at", "ts"),
        ("is_deleted", "bool"),
    ),
    "fx_rates": _cols(("currency", "str"), ("month", "month"), ("rate_to_eur", "rate")),
}
ENTITIES: tuple[str, ...] = tuple(SCHEMA)

# Columns a real CRM export carries beyond the contract (kept in raw, ignored downstream).
EXTRA_COLUMNS: dict[str, tuple[Col, ...]] = {"deals": (Col("deal_name", "str"),)}

# Id prefix and minimum digit count per entity: `CON-0000042`.
ID_FORMAT: dict[str, tuple[str, int]] = {
    "users": ("USR", 4),
    "companies": ("ORG", 6),
    "contacts": ("CON", 7),
    "lifecycle_changes": ("LC", 8),
    "marketing_events": ("EVT", 8),
    "activities": ("ACT", 9),
    "deals": ("DEAL", 6),
    "quotes": ("QUO", 6),
}

NULL_ID = -1
NULL_INT = -1

Column = Any  # np.ndarray or pa.Array


def take(values: Column, idx: np.ndarray) -> Column:
    """Rows `idx` of a numpy or Arrow column."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.take(pa.array(idx, type=pa.int64()))
    return values[idx]


def concat(parts: list[Column]) -> Column:
    """Concatenate numpy or Arrow columns (all parts of one kind)."""
    if isinstance(parts[0], pa.Array | pa.ChunkedArray):
        arrays: list[pa.Array] = []
        for p in parts:
            arrays.extend(p.chunks if isinstance(p, pa.ChunkedArray) else [p])
        return pa.concat_arrays(arrays)
    return np.concatenate(parts)


def _broadcast(value: Any, like: Column, n: int) -> Column:
    if isinstance(like, pa.Array | pa.ChunkedArray):
        if isinstance(value, pa.Array | pa.ChunkedArray):
            return value
        if isinstance(value, list | tuple | np.ndarray):
            return pa.array(list(value), type=pa.string())
        return pa.array([value] * n, type=pa.string())
    arr = np.asarray(value, dtype=like.dtype)
    return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr


_KEY_SHIFT = 33  # instants stay below 2**33 seconds (year 2242)


@dataclass
class Versions:
    """Every version of every record of one entity.

    `cols`/`vis` are the first versions (record index = position = primary key); each later
    version is a full row with its record index and the instant it became visible in the CRM
    (its `updated_at`, or the time an entity without `updated_at` was (re)delivered).
    """

    name: str
    cols: dict[str, Column]
    vis: np.ndarray
    _x_pk: list[np.ndarray] = field(default_factory=list)
    _x_vis: list[np.ndarray] = field(default_factory=list)
    _x_cols: list[dict[str, Column]] = field(default_factory=list)
    _xcat: dict[str, Column] | None = None
    _keys: np.ndarray | None = None
    _order: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.vis)

    def add(self, pk: np.ndarray, vis: np.ndarray, **changes: Any) -> None:
        """Add later versions of records `pk`: their state just before `vis`, with `changes`."""
        pk = np.asarray(pk, dtype=np.int64)
        if len(pk) == 0:
            return
        vis = np.broadcast_to(np.asarray(vis, dtype=np.int64), pk.shape).copy()
        if np.any(vis < self.vis[pk]):
            raise ValueError(f"{self.name}: a later version precedes its record")
        src = self._select(pk, vis - 1)
        row = {name: self._take(name, src) for name in self.cols}
        for name, value in changes.items():
            row[name] = _broadcast(value, self.cols[name], len(pk))
        self._x_pk.append(pk)
        self._x_vis.append(vis)
        self._x_cols.append(row)
        self._xcat = None
        self._keys = None

    def _take(self, name: str, src: np.ndarray) -> Column:
        """Values of column `name` at combined positions (base rows first, then versions)."""
        base = self.cols[name]
        is_x = src >= self.n
        if not self._x_cols or not is_x.any():
            return take(base, src)
        if self._xcat is None:
            self._xcat = {}
        if name not in self._xcat:
            self._xcat[name] = concat([x[name] for x in self._x_cols])
        xcat = self._xcat[name]
        if isinstance(base, np.ndarray):
            out = base[np.where(is_x, 0, src)]
            out[is_x] = xcat[src[is_x] - self.n]
            return out
        in_base = np.flatnonzero(~is_x)
        in_x = np.flatnonzero(is_x)
        parts = concat([take(base, src[in_base]), take(xcat, src[in_x] - self.n)])
        inverse = np.argsort(np.concatenate([in_base, in_x]), kind="stable")
        return take(parts, inverse)

    def _index(self) -> tuple[np.ndarray, np.ndarray]:
        if self._keys is None:
            if self._x_pk:
                pk = np.concatenate(self._x_pk)
                vis = np.concatenate(self._x_vis)
            else:
                pk = np.zeros(0, np.int64)
                vis = np.zeros(0, np.int64)
            keys = (pk << _KEY_SHIFT) | vis
            order = np.argsort(keys, kind="stable")
            self._keys, self._order = keys[order], order
        assert self._order is not None
        return self._keys, self._order

    def _select(self, pk: np.ndarray, at: np.ndarray | int) -> np.ndarray:
        """Row positions (in the combined columns) of each record's latest version at `at`."""
        keys, order = self._index()
        if len(keys) == 0:
            return pk.copy()
        query = (pk << _KEY_SHIFT) | np.asarray(at, dtype=np.int64)
        pos = np.searchsorted(keys, query, side="right") - 1
        posc = np.clip(pos, 0, None)
        hit = (pos >= 0) & ((keys[posc] >> _KEY_SHIFT) == pk)
        return np.where(hit, self.n + order[posc], pk)

    def extra_versions(self) -> tuple[np.ndarray, np.ndarray]:
        """Record index and visibility of every later version."""
        if not self._x_pk:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(self._x_pk), np.concatenate(self._x_vis)

    def delivery(self, lo: int | None, hi: int) -> np.ndarray:
        """Rows of a delivery at `hi`: a full one (lo None: every record visible by `hi`) or a
        delta (records created or changed in (lo, hi]), each in its latest version at `hi`,
        ordered by record index."""
        first = self.vis <= hi
        if lo is not None:
            first &= self.vis > lo
        pks = np.flatnonzero(first)
        if lo is not None:
            x_pk, x_vis = self.extra_versions()
            changed = x_pk[(x_vis > lo) & (x_vis <= hi)]
            pks = np.union1d(pks, changed)
        return self._select(pks.astype(np.int64), hi)

    def rows(self, positions: np.ndarray) -> dict[str, Column]:
        """Column values at row positions returned by `delivery`."""
        return {name: self._take(name, positions) for name in self.cols}

    def latest(self) -> dict[str, Column]:
        """The final version of every record (what the CRM holds after the last delivery)."""
        big = np.iinfo(np.int64).max >> (64 - _KEY_SHIFT)
        return self.rows(self._select(np.arange(self.n, dtype=np.int64), big))


def null_ts(n: int) -> np.ndarray:
    """An all-null timestamp column."""
    return np.full(n, NULL_TS, dtype=np.int64)
