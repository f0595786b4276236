"""Shared pieces of the world model: the delivery clock, random streams and time sampling."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from pipelines.sample.timeutil import (
    HOUR,
    at_local,
    civil_from_days,
    day_number,
    local_day,
    local_instant,
    next_weekday,
    weekday,
)

HISTORY_MONTHS = 24


@dataclass(frozen=True)
class Clock:
    """Every instant the sample is anchored on, all derived from `end` (never the wall clock).

    Three deliveries at 02:00 local on end-2, end-1 and end: `t[0]` is the full one, `t[1]` and
    `t[2]` the deltas. History starts on the first day of the month 24 months before `end`.
    """

    end: date
    start_day: int
    end_day: int
    start: int
    t: tuple[int, int, int]
    names: tuple[str, str, str]

    @property
    def last(self) -> int:
        """The final delivery instant: nothing in the sample happens after it."""
        return self.t[2]


def make_clock(end: date) -> Clock:
    """The clock of a sample ending on `end`."""
    days = [end - timedelta(days=2), end - timedelta(days=1), end]
    t = (local_instant(days[0], 2), local_instant(days[1], 2), local_instant(days[2], 2))
    names = (
        f"{days[0].isoformat()}T0200",
        f"{days[1].isoformat()}T0200",
        f"{days[2].isoformat()}T0200",
    )
    month = end.year * 12 + end.month - 1 - HISTORY_MONTHS
    start = date(month // 12, month % 12 + 1, 1)
    return Clock(
        end=end,
        start_day=day_number(start),
        end_day=day_number(end),
        start=local_instant(start),
        t=t,
        names=names,
    )


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per purpose, so changing one part leaves others intact."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


_HOUR_WEIGHTS = np.array([0.07, 0.13, 0.13, 0.12, 0.07, 0.11, 0.13, 0.11, 0.08, 0.05])


def office_seconds(g: np.random.Generator, n: int) -> np.ndarray:
    """Seconds of day in office hours (08:00-18:00, busiest mornings and early afternoons)."""
    hour = 8 + g.choice(len(_HOUR_WEIGHTS), size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    return hour * HOUR + g.integers(0, HOUR, size=n)


def waking_seconds(g: np.random.Generator, n: int) -> np.ndarray:
    """Seconds of day from 07:00 to 23:00 (people sign up for newsletters in the evening)."""
    office = office_seconds(g, n)
    evening = g.integers(7 * HOUR, 23 * HOUR, size=n)
    return np.where(g.random(n) < 0.7, office, evening)


def office_instant(g: np.random.Generator, day: np.ndarray) -> np.ndarray:
    """An office-hours instant on `day`, moved to Monday when it falls in a weekend."""
    day = np.asarray(day, dtype=np.int64)
    return at_local(next_weekday(day), office_seconds(g, len(day)))


_MONTH_FACTOR = np.array([1.1, 1.05, 1.05, 1.0, 1.0, 0.95, 0.75, 0.7, 1.1, 1.1, 1.05, 0.8])


def sample_days(
    g: np.random.Generator, n: int, lo: int, hi: int, growth: float = 0.35, weekend: float = 0.2
) -> np.ndarray:
    """`n` days in [lo, hi] with a growth trend, a summer and Christmas dip and quiet weekends."""
    days = np.arange(lo, hi + 1, dtype=np.int64)
    _, month, _ = civil_from_days(days)
    w = (1 + growth * (days - lo) / max(hi - lo, 1)) * _MONTH_FACTOR[month - 1]
    w = w * np.where(weekday(days) >= 5, weekend, 1.0)
    return g.choice(days, size=n, p=w / w.sum())


def gamma_days(g: np.random.Generator, mean: float, n: int, shape: float = 2.0) -> np.ndarray:
    """Whole days (≥ 1) with a right-skewed spread around `mean`."""
    return np.maximum(1, np.rint(g.gamma(shape, mean / shape, size=n))).astype(np.int64)


def pick(g: np.random.Generator, p: dict[int, float] | list[float], n: int) -> np.ndarray:
    """Codes drawn with the given probabilities (a list: codes 0..k-1)."""
    if isinstance(p, dict):
        keys = np.array(list(p), dtype=np.int64)
        probs = np.array(list(p.values()), dtype=float)
        return keys[g.choice(len(keys), size=n, p=probs / probs.sum())]
    probs = np.asarray(p, dtype=float)
    return g.choice(len(probs), size=n, p=probs / probs.sum()).astype(np.int64)


def minutes(g: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """Uniform whole seconds between `lo` and `hi` minutes."""
    return g.integers(int(lo * 60), int(hi * 60) + 1, size=n).astype(np.int64)


def day_of(utc: np.ndarray) -> np.ndarray:
    """Local day number of instants."""
    return local_day(utc)


def running_sum(step: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Running sum of `step` restarted for every consecutive group of `count` elements."""
    cum = np.cumsum(step)
    group_start = (np.cumsum(count) - count).astype(np.int64)
    base = np.r_[0, cum][group_start]
    return cum - np.repeat(base, count)
