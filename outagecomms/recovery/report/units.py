"""How the report's figures read: durations, ratios, money, offsets from the start; and text
made inert in HTML."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from outagecomms.values import format_duration

DASH = "\u2013"  # an empty cell or fact


def human(seconds: float | None) -> str:
    """A duration for people: 4m12s, 1h5m, 0s; negative values get a minus sign."""
    if seconds is None:
        return "n/a"
    sign = "-" if seconds < 0 else ""
    return sign + format_duration(timedelta(seconds=round(abs(seconds))))


def ratio(num: int, den: int) -> float | None:
    return (num / den) if den else None


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def money_map(values: Mapping[str, Decimal]) -> str:
    """``12.50 EUR, 1235 JPY`` (amounts as they are: already rounded where they should be)."""
    return ", ".join(f"{v} {cur}" for cur, v in values.items()) or DASH


def offset(start: datetime, at: datetime | None) -> str:
    """A time as an offset from the start of the incident: +4m12s."""
    if at is None:
        return DASH
    secs = (at - start).total_seconds()
    return ("+" if secs >= 0 else "") + human(secs)


def escape_html(value: object) -> str:
    """Any value as HTML text or attribute value (None: empty)."""
    return html.escape("" if value is None else str(value), quote=True)
