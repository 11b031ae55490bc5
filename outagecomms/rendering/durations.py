"""Durations and times as customers read them: "1 hour, 10 minutes" in their locale (CLDR's
units and unit lists, through Babel), to the nearest minute, with seconds only when the
incident's cadence is under a minute."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from babel import Locale
from babel.lists import format_list
from babel.units import format_unit

MINUTE = timedelta(minutes=1)


def shows_seconds(cadence: timedelta) -> bool:
    """Whether customers read seconds: only when updates come more than once a minute."""
    return cadence < MINUTE


def to_minute(dt: datetime, *, up: bool) -> datetime:
    """``dt`` on a whole minute: rounded up (a promise: never shown earlier than the time
    kept) or down (something that happened: what a clock showed then)."""
    floor = dt.replace(second=0, microsecond=0)
    if up and floor != dt:
        return floor + MINUTE
    return floor


def _parse(locale: str) -> Locale:
    try:
        return Locale.parse(locale)
    except Exception:
        return Locale.parse("en_US")


@lru_cache(maxsize=8192)
def human_duration(delta: timedelta, locale: str, cadence: timedelta = MINUTE) -> str:
    """``1 hour, 10 minutes`` (``1 Stunde, 10 Minuten``): days, hours and minutes, rounded to
    the nearest minute (10 min 41 s reads "11 minutes"), never less than a minute; seconds
    only under a cadence of less than a minute."""
    loc = _parse(locale)
    total = max(0, round(delta.total_seconds()))
    if shows_seconds(cadence) and total < 60:
        return str(format_unit(total, "duration-second", length="long", locale=loc))
    minutes = max(1, (total + 30) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [
        str(format_unit(value, unit, length="long", locale=loc))
        for value, unit in (
            (days, "duration-day"),
            (hours, "duration-hour"),
            (mins, "duration-minute"),
        )
        if value
    ]
    return join_units(parts, loc)


def join_units(parts: list[str], loc: Locale) -> str:
    """The parts joined as the locale lists units ("1 hour, 10 minutes"); where Babel's data
    lacks a pattern (de's unit list has no "start" for three parts), as it lists words."""
    for style in ("unit", "standard"):
        try:
            return str(format_list(parts, style=style, locale=loc))
        except (KeyError, ValueError):
            continue
    return ", ".join(parts)
