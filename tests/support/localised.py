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
