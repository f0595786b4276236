"""Time arithmetic and fast ISO 8601 text for the sample generator.

All instants are int64 seconds since the Unix epoch (UTC), in numpy arrays, so that millions of
rows are handled without Python loops. Europe/Amsterdam's rule (EU summer time since 1996:
last Sunday of March to last Sunday of October, switching at 01:00 UTC) is computed here
instead of read from a tz database, so the output never depends on the machine.

Formatting writes ASCII digits straight into a byte matrix and hands it to Arrow as a string
array: ~20x faster than `numpy.datetime_as_string` or `pyarrow.compute.strftime`, which
matters at scale 100 (tens of millions of timestamps).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import numpy as np
import pyarrow as pa

NULL_TS = np.iinfo(np.int64).min
DAY = 86_400
HOUR = 3_600
MINUTE = 60
_EPOCH = date(1970, 1, 1)

TsStyle = Literal["Z", "ms", "offset", "naive", "date"]


def _eu_transitions(first_year: int = 1996, last_year: int = 2199) -> np.ndarray:
    """UTC instants of every summer-time start and end, sorted (start, end, start, ...)."""
    out: list[int] = []
    for year in range(first_year, last_year + 1):
        for month in (3, 10):
            last = date(year, month, 31)
            last_sunday = last - timedelta(days=(last.weekday() - 6) % 7)
            out.append((last_sunday - _EPOCH).days * DAY + HOUR)
    return np.array(out, dtype=np.int64)


_TRANSITIONS = _eu_transitions()


def utc_offset(utc: np.ndarray) -> np.ndarray:
    """Europe/Amsterdam's UTC offset in seconds (3600 or 7200) at each instant."""
    idx = np.searchsorted(_TRANSITIONS, utc, side="right")
    return np.where(idx % 2 == 1, 2 * HOUR, HOUR).astype(np.int64)


def unambiguous(utc: np.ndarray) -> np.ndarray:
    """Move instants of the first pass through the repeated autumn hour (02:00-03:00 summer
    time) one hour on, so that written as naive local time they still mean the same instant
    (the contract reads a repeated local time as the later, standard-time one)."""
    utc = np.asarray(utc, dtype=np.int64)
    autumn_end = _TRANSITIONS[1::2]
    idx = np.searchsorted(autumn_end, utc, side="right")
    nxt = autumn_end[np.clip(idx, 0, len(autumn_end) - 1)]
    inside = (idx < len(autumn_end)) & (utc >= nxt - HOUR) & (utc < nxt)
    return np.where(inside, utc + HOUR, utc)


def local_to_utc(local: np.ndarray) -> np.ndarray:
    """Local wall-clock seconds → UTC seconds (an ambiguous autumn hour takes standard time)."""
    local = np.asarray(local, dtype=np.int64)
    return local - utc_offset(local - HOUR)


def local_day(utc: np.ndarray) -> np.ndarray:
    """The local calendar day (days since 1970-01-01) of each instant."""
    utc = np.asarray(utc, dtype=np.int64)
    return (utc + utc_offset(utc)) // DAY


def day_number(d: date) -> int:
    """Days since 1970-01-01 of a date."""
    return (d - _EPOCH).days


def local_instant(d: date, hour: int = 0, minute: int = 0) -> int:
    """UTC seconds of a local wall-clock time on a date."""
    local = np.array([day_number(d) * DAY + hour * HOUR + minute * MINUTE], dtype=np.int64)
    return int(local_to_utc(local)[0])


def weekday(day: np.ndarray) -> np.ndarray:
    """Monday = 0 … Sunday = 6 for day numbers (1970-01-01 was a Thursday)."""
    return (np.asarray(day) + 3) % 7


def next_weekday(day: np.ndarray) -> np.ndarray:
    """Move Saturdays and Sundays to the following Monday (sales work on weekdays)."""
    day = np.asarray(day, dtype=np.int64)
    dow = weekday(day)
    return day + np.where(dow == 5, 2, np.where(dow == 6, 1, 0))


def at_local(day: np.ndarray, seconds_of_day: np.ndarray) -> np.ndarray:
    """UTC instants of local times `seconds_of_day` on local days `day`."""
    local = np.asarray(day, dtype=np.int64) * DAY + np.asarray(seconds_of_day, dtype=np.int64)
    return local_to_utc(local)


def civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day of day numbers (H. Hinnant's algorithm, vectorised)."""
    z = np.asarray(days, dtype=np.int64) + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def month_index(utc: np.ndarray) -> np.ndarray:
    """Local calendar month of each instant as year * 12 + (month - 1)."""
    y, m, _ = civil_from_days(local_day(utc))
    return y * 12 + (m - 1)


def _string_array(chars: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """Arrow string array from a (width, n) matrix of ASCII codes; rows not `valid` are null."""
    width, n = chars.shape
    data = np.ascontiguousarray(chars.T).reshape(-1)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    typ = pa.large_string() if n * width >= 2**31 else pa.string()
    if typ == pa.string():
        offsets = offsets.astype(np.int32)
    bitmap = None
    nulls = 0
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        nulls = int(n - np.count_nonzero(valid))
    arr = pa.Array.from_buffers(
        typ, n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls
    )
    return arr.cast(pa.string()) if typ != pa.string() else arr


def _put_digits(chars: np.ndarray, row: int, value: np.ndarray, ndigits: int) -> None:
    value = value.astype(np.int64, copy=True)
    for k in range(ndigits - 1, -1, -1):
        chars[row + k] = 48 + value % 10
        value //= 10


def _put_text(chars: np.ndarray, row: int, text: str) -> None:
    for i, byte in enumerate(text.encode("ascii")):
        chars[row + i] = byte


def format_ts(utc: np.ndarray, style: TsStyle) -> pa.Array:
    """ISO 8601 text of UTC instants (NULL_TS → null).

    Styles: `Z` 2026-03-04T09:15:00Z, `ms` 2026-03-04T09:15:00.000Z, `offset`
    2026-03-04T10:15:00+01:00, `naive` local wall time 2026-03-04T10:15:00, `date` local date.
    """
    utc = np.asarray(utc, dtype=np.int64)
    valid = utc != NULL_TS
    t = np.where(valid, utc, 0)
    offset = None
    if style in ("offset", "naive", "date"):
        offset = utc_offset(t)
        t = t + offset
    days = t // DAY
    sod = t - days * DAY
    y, m, d = civil_from_days(days)
    width = {"Z": 20, "ms": 24, "offset": 25, "naive": 19, "date": 10}[style]
    chars = np.empty((width, len(t)), dtype=np.uint8)
    _put_digits(chars, 0, y, 4)
    _put_text(chars, 4, "-")
    _put_digits(chars, 5, m, 2)
    _put_text(chars, 7, "-")
    _put_digits(chars, 8, d, 2)
    if style != "date":
        _put_text(chars, 10, "T")
        _put_digits(chars, 11, sod // HOUR, 2)
        _put_text(chars, 13, ":")
        _put_digits(chars, 14, (sod // MINUTE) % 60, 2)
        _put_text(chars, 16, ":")
        _put_digits(chars, 17, sod % 60, 2)
    if style == "Z":
        _put_text(chars, 19, "Z")
    elif style == "ms":
        _put_text(chars, 19, ".000Z")
    elif style == "offset":
        assert offset is not None
        _put_text(chars, 19, "+0")
        chars[21] = 48 + offset // HOUR
        _put_text(chars, 22, ":00")
    return _string_array(chars, valid)


def format_ids(index: np.ndarray, prefix: str, width: int) -> pa.Array:
    """`PREFIX-000123` ids from record indexes (negative → null)."""
    index = np.asarray(index, dtype=np.int64)
    valid = index >= 0
    head = prefix + "-"
    chars = np.empty((len(head) + width, len(index)), dtype=np.uint8)
    _put_text(chars, 0, head)
    _put_digits(chars, len(head), np.where(valid, index, 0), width)
    return _string_array(chars, valid)


def format_month(month: np.ndarray) -> pa.Array:
    """`YYYY-MM` from month indexes (year * 12 + month - 1)."""
    month = np.asarray(month, dtype=np.int64)
    chars = np.empty((7, len(month)), dtype=np.uint8)
    _put_digits(chars, 0, month // 12, 4)
    _put_text(chars, 4, "-")
    _put_digits(chars, 5, month % 12 + 1, 2)
    return _string_array(chars, None)
