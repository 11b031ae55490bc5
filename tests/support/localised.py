"""What Babel (CLDR) makes of a time or an amount, so a test computes the string it expects
with the same pattern the product uses instead of copying Babel's output (which changes
between CLDR releases: en_IN wrote "7:00 pm" and now writes "7:00 PM")."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency


def plain(s: str) -> str:
    """Babel separates '8:30 AM' with a narrow no-break space; compare with plain spaces."""
    return s.replace("\u202f", " ").replace("\xa0", " ")


def clock_time(at: time | datetime, locale: str, abbrev: str) -> str:
    """A promise as shown: the local time ("short", or "medium" when it has seconds) and the
    zone's abbreviation, e.g. ``14:30 CET``. ``at`` is the local wall-clock time."""
    fmt = "short" if at.second == 0 and at.microsecond == 0 else "medium"
    return f"{format_time(at, fmt, locale=locale)} {abbrev}"


def local_time(at: datetime, tz: str, locale: str) -> str:
    """:func:`clock_time` of the UTC-aware ``at`` in zone ``tz``."""
    local = at.astimezone(ZoneInfo(tz))
    return clock_time(local.replace(tzinfo=None), locale, local.tzname() or tz)


def local_datetime(at: datetime, tz: str, locale: str) -> str:
    """A time shown with its date ("medium"), e.g. when the incident started."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    return f"{format_datetime(local, 'medium', tzinfo=zone, locale=locale)} {local.tzname()}"


def medium_date(day: date, locale: str) -> str:
    return str(format_date(day, "medium", locale=locale))


def money(amount: str | Decimal, currency: str, locale: str) -> str:
    """An amount as a customer reads it in their locale, e.g. ``300,00 €``."""
    return str(format_currency(Decimal(amount), currency, locale=locale))


def minute_datetime(at: datetime, tz: str, locale: str) -> str:
    """A past time with its date, to the minute, as customers read it: the locale's own
    "date, time" pattern with the short time, e.g. ``Jan 15, 2026, 7:48 AM EST``."""
    from babel.dates import get_datetime_format

    zone = ZoneInfo(tz)
    local = at.astimezone(zone).replace(second=0, microsecond=0)
    pattern = str(get_datetime_format("medium", locale=locale)).replace("'", "")
    shown = pattern.replace("{0}", format_time(local, "short", tzinfo=zone, locale=locale))
    shown = shown.replace("{1}", format_date(local, "medium", locale=locale))
    return f"{shown} {local.tzname()}"


def spoken_duration(locale: str, *, days: int = 0, hours: int = 0, minutes: int = 0) -> str:
    """A duration as CLDR says it in words ("1 hour, 10 minutes"): each unit in full, joined
    as the locale lists units."""
    from babel.lists import format_list
    from babel.units import format_unit

    parts = [
        str(format_unit(v, unit, length="long", locale=locale))
        for v, unit in (
            (days, "duration-day"),
            (hours, "duration-hour"),
            (minutes, "duration-minute"),
        )
        if v
    ]
    try:
        return str(format_list(parts, style="unit", locale=locale))
    except KeyError:  # Babel's de has no unit-list "start": the standard list then
        return str(format_list(parts, style="standard", locale=locale))
