"""The promise arithmetic, pure: when the next update is promised, how long before it the
holding round starts (the fan-out margin), and when the commander is reminded."""

from __future__ import annotations

from datetime import datetime, timedelta

from outagecomms.config.model import Config
from outagecomms.models import (
    Incident,
)


def promise_after(start: datetime, cadence: timedelta) -> datetime:
    """The next promise: ``start + cadence``, floored to the whole minute when the cadence is
    long enough, so the time customers read ("by 14:30") is exactly the deadline we keep."""
    at = start + cadence
    if cadence >= timedelta(minutes=2):
        at = at.replace(second=0, microsecond=0)
    return at


#: conservative fan-out rate used to size the holding margin (messages per second)
ASSUMED_RATE = 200.0


def fanout_estimate(messages: int) -> timedelta:
    """How long a fan-out of ``messages`` is expected to take: 2 s of start-up, then
    :data:`ASSUMED_RATE`."""
    return timedelta(seconds=2 + messages / ASSUMED_RATE)


def fanout_margin(incident: Incident, config: Config) -> timedelta:
    """How long before a promise the holding round starts."""
    every = incident.update_every
    estimate = fanout_estimate(incident.audience_size)
    margin = max(config.daemon.min_margin, estimate)
    return min(margin, every / 2)


def holding_start(incident: Incident, config: Config) -> datetime | None:
    if not incident.is_open or incident.next_update_due is None:
        return None
    return incident.next_update_due - fanout_margin(incident, config)


def reminder_at(incident: Incident, config: Config) -> datetime | None:
    if not incident.is_open or incident.next_update_due is None:
        return None
    if incident.reminded_for == incident.next_update_due:
        return None
    before = config.policy(incident.severity).remind_before
    margin = fanout_margin(incident, config)
    if before <= margin or before >= incident.update_every:
        return None  # no useful window between the reminder and the holding round
    return incident.next_update_due - before
