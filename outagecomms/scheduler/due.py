"""What is due, and when to wake up next. The store is the source of truth: every decision
here is derived from it, so the daemon, ``tick`` and ``--follow`` agree and a restart loses
nothing.

For an open incident with promise P (``next_update_due``):
  * at ``P - remind_before`` the commander is reminded (once per promise);
  * at ``P - margin`` a holding round starts if the commander has posted nothing, so the
    whole fan-out completes before P. The margin covers the audience's fan-out time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from outagecomms.app import App
from outagecomms.errors import OutageCommsError
from outagecomms.incidents.lifecycle import create_follow_up_round, create_holding_round
from outagecomms.incidents.promises import holding_start, reminder_at
from outagecomms.models import Incident
from outagecomms.outbox.redelivery import report_dead
from outagecomms.scheduler.commander import notify_commander
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db

log = logging.getLogger("outagecomms.scheduler")


@dataclass
class DueResult:
    holding: list[str] = field(default_factory=list)  # "INC-3 round 4"
    reminders: list[str] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)
    dead_reported: list[str] = field(default_factory=list)  # incidents whose commander was told
    errors: list[str] = field(default_factory=list)


def run_due(app: App, now: datetime | None = None) -> DueResult:
    """Create every holding round and reminder that is due. Safe to run concurrently."""
    now = now or app.clock()
    out = DueResult()
    with app.store.read() as conn:
        open_incidents = incidents_db.list_incidents(conn)
    for inc in open_incidents:
        remind = reminder_at(inc, app.config)
        start = holding_start(inc, app.config)
        reminder_due = remind is not None and remind <= now and (start is None or now < start)
        if reminder_due and _remind(app, inc, now):
            out.reminders.append(inc.ref)
        if start is not None and start <= now:
            assert inc.next_update_due is not None
            try:
                created = create_holding_round(app, inc.id, inc.next_update_due)
            except OutageCommsError as exc:
                _failed(
                    app,
                    inc,
                    now,
                    out,
                    f"holding update for {inc.next_update_due:%H:%M:%S} UTC not sent: {exc}",
                )
                continue
            if created is not None:
                out.holding.append(f"{inc.ref} round {created.round.seq}")
                notify_commander(
                    app, inc, f"[{inc.ref}] holding update sent to {created.queued} recipients",
                    f"No update was posted before the promise of {inc.next_update_due:%H:%M:%S} UTC, "
                    f"so customers got a holding update (round {created.round.seq}). Post the real one "
                    f"with `outagecomms update {inc.ref} MESSAGE`.",
                )  # fmt: skip
                log.info(
                    "%s: holding update (round %d) queued for %d",
                    inc.ref,
                    created.round.seq,
                    created.queued,
                )
    with app.store.read() as conn:
        follow_ups = incidents_db.follow_ups_pending(conn)
    for inc in follow_ups:
        if inc.follow_up_due is None or inc.follow_up_due > now:
            continue
        try:
            created = create_follow_up_round(app, inc.id, inc.follow_up_due)
        except OutageCommsError as exc:
            _failed(app, inc, now, out, f"follow-up not sent: {exc}")
            continue
        if created is not None:
            out.follow_ups.append(f"{inc.ref} round {created.round.seq}")
    out.dead_reported = report_dead(app, now)
    return out


def _failed(app: App, inc: Incident, now: datetime, out: DueResult, what: str) -> None:
    """A promise the scheduler could not keep is never silent: log, event (``show``), result."""
    msg = f"{inc.ref}: {what}"
    log.error(msg)
    out.errors.append(msg)
    with app.store.write() as conn:
        incidents_db.add_event(conn, inc.id, now, "error", msg)


def _remind(app: App, inc: Incident, now: datetime) -> bool:
    with app.store.write() as conn:
        row = incidents_db.get_incident(conn, inc.id)
        if (
            row.incident.next_update_due != inc.next_update_due
            or row.incident.reminded_for == inc.next_update_due
        ):
            return False
        if not incidents_db.update_incident(
            conn, inc.id, row.version, reminded_for=inc.next_update_due
        ):
            return False
        due = inc.next_update_due
        assert due is not None
        left = max(0, int((due - now).total_seconds()))
        text = (
            f"{inc.ref} ({inc.title}): the next update is promised by {due:%H:%M:%S} UTC "
            f"({left}s from now). Post one with `outagecomms update {inc.ref} MESSAGE`, "
            "or a holding update goes out."
        )
        incidents_db.add_event(conn, inc.id, now, "reminder", text)
    log.warning("reminder: %s", text)
    notify_commander(app, inc, f"[{inc.ref}] next customer update due by {due:%H:%M} UTC", text)
    return True


def next_wakeup(
    app: App, now: datetime | None = None, *, include_pending: bool = True
) -> datetime | None:
    """The earliest moment something becomes due (holding round, reminder, follow-up, and
    with ``include_pending`` a pending send or retry)."""
    now = now or app.clock()
    times: list[datetime] = []
    with app.store.read() as conn:
        for inc in incidents_db.list_incidents(conn):
            for t in (holding_start(inc, app.config), reminder_at(inc, app.config)):
                if t is not None:
                    times.append(t)
        for inc in incidents_db.follow_ups_pending(conn):
            if inc.follow_up_due is not None:
                times.append(inc.follow_up_due)
        pend = outbox_db.next_pending_at(conn) if include_pending else None
    if pend is not None:
        times.append(pend)
    return min(times) if times else None


def next_send_at(app: App) -> datetime | None:
    """When the outbox next owes a send (a queued delivery: now; a retry: its time)."""
    with app.store.read() as conn:
        return outbox_db.next_pending_at(conn)
