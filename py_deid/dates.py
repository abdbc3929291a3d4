"""DICOM DA / DT / TM values: shifting by whole days, dummies, and the written forms scanners print."""

from __future__ import annotations

import datetime as _dt
import re

DUMMY = {"DA": "19000101", "DT": "19000101000000", "TM": "000000"}

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?([+-]\d{4})?$")


class DateValueError(ValueError):
    """A value that is not a valid DICOM date; the message never repeats the value."""


def parse_da(value: str) -> _dt.date:
    m = _DA.match(value.strip())
    if not m:
        raise DateValueError("not a DA value")
    try:
        return _dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise DateValueError("not a calendar date") from None


def _shift_date(d: _dt.date, days: int) -> _dt.date:
    try:
        return d - _dt.timedelta(days=days)
    except OverflowError:
        raise DateValueError("date out of range after shifting") from None


def shift_da(value: str, days: int) -> str:
    """Shift one DA value (or a DA range 'a-b', as in queries) back by `days`."""
    value = value.strip()
    if not value:
        return value
    if "-" in value:
        return "-".join(shift_da(part, days) if part else "" for part in value.split("-"))
    return _shift_date(parse_da(value), days).strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str:
    """Shift a DT value back by whole days; time of day, fraction and UTC offset are kept as written.

    A DT with only a year or year and month is shifted by the same number of days from its first day and
    keeps its precision, so '2011' may become '2008'.
    """
    value = value.strip()
    if not value:
        return value
    m = _DT.match(value)
    if not m:
        raise DateValueError("not a DT value")
    year, month, day, rest, offset = m[1], m[2], m[3], m[4] or "", m[5] or ""
    try:
        d = _dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise DateValueError("not a calendar date") from None
    shifted = _shift_date(d, days)
    if day:
        head = shifted.strftime("%Y%m%d")
    elif month:
        head = shifted.strftime("%Y%m")
    else:
        head = shifted.strftime("%Y")
    return head + rest + offset


def age_between(birth: _dt.date, on: _dt.date) -> str:
    """Patient's Age (AS) on a date, in the unit DICOM practice uses for that age."""
    days = (on - birth).days
    if days < 0:
        raise DateValueError("birth after the study")
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    if years >= 2:
        return f"{min(years, 999):03d}Y"
    months = (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)
    if months >= 2:
        return f"{months:03d}M"
    if days >= 14:
        return f"{days // 7:03d}W"
    return f"{days:03d}D"


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def written_forms(d: _dt.date) -> set[str]:
    """The ways a scanner or a person writes this date: what to look for in text and in pixels."""
    y, m, dd = d.year, d.month, d.day
    yy = f"{y % 100:02d}"
    mon = _MONTHS[m - 1]
    forms = {
        f"{y:04d}{m:02d}{dd:02d}",
        f"{y:04d}-{m:02d}-{dd:02d}", f"{y:04d}/{m:02d}/{dd:02d}", f"{y:04d}.{m:02d}.{dd:02d}",
        f"{m:02d}/{dd:02d}/{y:04d}", f"{m}/{dd}/{y:04d}", f"{m:02d}-{dd:02d}-{y:04d}",
        f"{dd:02d}/{m:02d}/{y:04d}", f"{dd}/{m}/{y:04d}", f"{dd:02d}.{m:02d}.{y:04d}", f"{dd:02d}-{m:02d}-{y:04d}",
        f"{m:02d}/{dd:02d}/{yy}", f"{dd:02d}/{m:02d}/{yy}", f"{dd:02d}.{m:02d}.{yy}",
        f"{dd:02d}-{mon}-{y:04d}", f"{dd:02d}-{mon}-{yy}", f"{dd}-{mon}-{yy}",
        f"{dd:02d} {mon} {y:04d}", f"{dd:02d} {mon} {yy}", f"{dd} {mon} {yy}", f"{dd} {mon} {y:04d}",
        f"{dd:02d}{mon}{y:04d}", f"{dd:02d}{mon}{yy}",
        f"{mon} {dd:02d} {y:04d}", f"{mon} {dd} {y:04d}", f"{mon} {dd}, {y:04d}",
        f"{dd}-{mon}-{y:04d}", f"{m}/{dd}/{yy}", f"{m}/{dd}/{y % 100}",
    }
    return forms
