"""Durations (``90s``, ``10m``, ``1h30m``) and times (ISO 8601 or ``-15m`` relative to now)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import overload

from outagecomms.errors import InputError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_duration(text: str, *, field: str = "duration") -> timedelta:
    """Parse ``90s``, ``10m``, ``1h30m``, ``2d``, ``500ms`` into a timedelta (> 0)."""
    s = str(text).strip().lower().replace(" ", "")
    if not s:
        raise InputError("a duration is required, e.g. 30m or 1h30m", field=field, value=text)
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise InputError(
            "not a duration; use a number with a unit: 90s, 10m, 1h30m, 2d",
            field=field,
            value=text,
        )
    if total <= 0:
        raise InputError("a duration must be greater than zero", field=field, value=text)
    return timedelta(seconds=total)


def format_duration(delta: timedelta) -> str:
    secs = delta.total_seconds()
    if secs != int(secs):
        return f"{secs:g}s"
    secs_i = int(secs)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs_i >= size:
            out += f"{secs_i // size}{unit}"
            secs_i %= size
    return out or "0s"


def parse_time(text: str, *, now: datetime, field: str = "time") -> datetime:
    """Parse an ISO 8601 time (naive means UTC) or ``-15m`` (relative to ``now``)."""
    s = str(text).strip()
    if s.startswith(("-", "+")) and s[1:2].isdigit() and not s[1:].replace(":", "").isdigit():
        delta = parse_duration(s[1:], field=field)
        return now - delta if s[0] == "-" else now + delta
    if s.lower() == "now":
        return now
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    except ValueError:
        raise InputError(
            "not a time; use ISO 8601 (2026-11-25T14:00:00Z) or relative (-15m)",
            field=field,
            value=text,
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@overload
def as_utc(dt: datetime) -> datetime: ...
@overload
def as_utc(dt: None) -> None: ...
@overload
def as_utc(dt: datetime | None) -> datetime | None: ...
def as_utc(dt: datetime | None) -> datetime | None:
    """Make a datetime read back from the store UTC-aware (SQLite drops the offset)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    """A UTC time as the ``--json`` documents write it: ISO 8601 with ``Z``."""
    return dt.isoformat().replace("+00:00", "Z") if dt else None
