"""``[maintenance]``: scheduled maintenance's table (``docs/config.md``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from outagecomms.config.model import SEVERITIES, MaintenanceConfig
from outagecomms.errors import InputError
from outagecomms.values import FieldReader, parse_duration

KEYS = {"remind", "grace", "overrun_after", "overrun_severity"}
#: at most this many reminders per window (each is a message to every customer told)
MAX_REMINDERS = 10


def reminder_offsets(values: list[str] | tuple[str, ...], *, field: str) -> tuple[timedelta, ...]:
    """``["72h", "24h", "1h"]`` -> the offsets, longest first, repeats once; each above zero.
    Raises ``InputError`` naming ``field``."""
    out: set[timedelta] = set()
    for v in values:
        d = parse_duration(str(v).strip(), field=field)
        if d <= timedelta(0):
            raise InputError("a reminder must come before the start (above 0s)", field=field)
        out.add(d)
    if len(out) > MAX_REMINDERS:
        raise InputError(f"at most {MAX_REMINDERS} reminders per window", field=field)
    return tuple(sorted(out, reverse=True))


def parse_maintenance(ctx: FieldReader, raw: Any) -> MaintenanceConfig:
    data = ctx.table(raw, "maintenance")
    ctx.known(data, "maintenance", KEYS)
    remind = MaintenanceConfig().remind
    if "remind" in data:
        value = data["remind"]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ctx.err(
                "maintenance.remind",
                f'must be a list of durations such as ["24h", "1h"], got {value!r}',
            )
        try:
            remind = reminder_offsets(value, field="maintenance.remind")
        except InputError as exc:
            raise ctx.err("maintenance.remind", exc.text) from None
    defaults = MaintenanceConfig()
    grace = ctx.duration(data, "maintenance", "grace", defaults.grace, allow_zero=True)
    overrun_after = None
    if "overrun_after" in data:
        overrun_after = ctx.duration(data, "maintenance", "overrun_after", timedelta(hours=1))
        if overrun_after < grace:
            raise ctx.err(
                "maintenance.overrun_after",
                "must not be shorter than maintenance.grace (the commander is reminded first)",
            )
    severity = data.get("overrun_severity", defaults.overrun_severity)
    if severity not in SEVERITIES:
        raise ctx.err(
            "maintenance.overrun_severity",
            f"must be one of {', '.join(SEVERITIES)}, got {severity!r}",
        )
    return MaintenanceConfig(
        remind=remind, grace=grace, overrun_after=overrun_after, overrun_severity=severity
    )
