"""What is due, and when to wake up next. The store is the source of truth: every decision
here is derived from it, so the daemon, ``tick`` and ``--follow`` agree and a restart loses
nothing.

For an open incident with promise P (``next_update_due``):
  * at ``P - remind_before`` the commander is reminded (once per promise);
  * at ``P - margin`` a holding round starts if the commander has posted nothing, so the
    whole fan-out completes before P. The margin covers the audience's fan-out time.

What fails (a template broken by a reload, a store error) is logged, written to the
incident's events and retried, but not in a loop: this process waits ``RETRY_FIRST`` before
the first retry, doubling up to ``RETRY_MAX`` (``App.retries``; ``next_wakeup`` honours it), so
one bad template cannot flood the log and the store while it is being fixed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from outagecomms.app import App
from outagecomms.errors import OutageCommsError
from outagecomms.incidents.lifecycle import create_follow_up_round, create_holding_round
from outagecomms.incidents.promises import holding_start, reminder_at
from outagecomms.models import Incident
from outagecomms.outbox.redelivery import report_dead
from outagecomms.scheduler.commander import notify_commander
from outagecomms.store import incidents as incidents_db
from outagecomms.store import maintenance as maintenance_db
from outagecomms.store import outbox as outbox_db

log = logging.getLogger("outagecomms.scheduler")

RETRY_FIRST = timedelta(seconds=5)
RETRY_MAX = timedelta(minutes=5)


def _held(app: App, key: tuple[int, str, datetime], now: datetime) -> bool:
    """This work failed lately in this process and its retry is not due yet."""
    held = app.retries.get(key)
    return held is not None and now < held[0]


def _hold(app: App, key: tuple[int, str, datetime], now: datetime) -> timedelta:
    """Back off after a failure: the next try after twice the last delay (5 s ... 5 min)."""
    last = app.retries.get(key)
    delay = RETRY_FIRST if last is None else min(timedelta(seconds=last[1] * 2), RETRY_MAX)
    app.retries[key] = (now + delay, delay.total_seconds())
    return delay


def _retry_at(app: App, key: tuple[int, str, datetime], when: datetime) -> datetime:
    held = app.retries.get(key)
    return when if held is None else max(when, held[0])


@dataclass
class DueResult:
    holding: list[str] = field(default_factory=list)  # "INC-3 round 4"
    reminders: list[str] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)
    dead_reported: list[str] = field(default_factory=list)  # incidents whose commander was told
    errors: list[str] = field(default_factory=list)
    #: scheduled maintenance: reminders queued ("MNT-3 24h"), recorded as skipped, started
    maintenance_reminders: list[str] = field(default_factory=list)
    maintenance_skipped: list[str] = field(default_factory=list)
    maintenance_started: list[str] = field(default_factory=list)
    maintenance_overran: list[str] = field(default_factory=list)  # commanders reminded
    maintenance_incidents: list[str] = field(default_factory=list)  # "MNT-3 INC-9"


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
            key = (inc.id, "holding", inc.next_update_due)
            if _held(app, key, now):
                continue
            try:
                created = create_holding_round(app, inc.id, inc.next_update_due)
            except OutageCommsError as exc:
                delay = _hold(app, key, now)
                _failed(
                    app,
                    inc,
                    now,
                    out,
                    f"holding update for {inc.next_update_due:%H:%M:%S} UTC not sent: {exc}"
                    f" (next try in {delay.total_seconds():.0f}s)",
                )
                continue
            app.retries.pop(key, None)
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
        key = (inc.id, "follow_up", inc.follow_up_due)
        if _held(app, key, now):
            continue
        try:
            created = create_follow_up_round(app, inc.id, inc.follow_up_due)
        except OutageCommsError as exc:
            delay = _hold(app, key, now)
            _failed(
                app, inc, now, out,
                f"follow-up not sent: {exc} (next try in {delay.total_seconds():.0f}s)",
            )  # fmt: skip
            continue
        app.retries.pop(key, None)
        if created is not None:
            out.follow_ups.append(f"{inc.ref} round {created.round.seq}")
    out.dead_reported = report_dead(app, now)
    _maintenance(app, now, out)
    return out


def _maintenance(app: App, now: datetime, out: DueResult) -> None:
    """Scheduled maintenance's promises: reminders and the start (``maintenance.due``)."""
    from outagecomms.maintenance.due import run_due as maintenance_due

    m = maintenance_due(app, now)
    out.maintenance_reminders += m.reminders
    out.maintenance_skipped += m.skipped
    out.maintenance_started += m.started
    out.maintenance_overran += m.overran
    out.maintenance_incidents += m.incidents
    out.errors += m.errors


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
            start = holding_start(inc, app.config)
            if start is not None and inc.next_update_due is not None:
                times.append(_retry_at(app, (inc.id, "holding", inc.next_update_due), start))
            remind = reminder_at(inc, app.config)
            if remind is not None and (start is None or now < start):  # else it is moot
                times.append(remind)
        for inc in incidents_db.follow_ups_pending(conn):
            if inc.follow_up_due is not None:
                key = (inc.id, "follow_up", inc.follow_up_due)
                times.append(_retry_at(app, key, inc.follow_up_due))
        pend = outbox_db.next_pending_at(conn) if include_pending else None
        mpend = maintenance_db.next_pending_at(conn) if include_pending else None
    times += [t for t in (pend, mpend) if t is not None]
    from outagecomms.maintenance.due import next_due_at

    planned = next_due_at(app)
    if planned is not None:
        times.append(planned)
    return min(times) if times else None


def next_send_at(app: App) -> datetime | None:
    """When the outbox next owes a send (a queued delivery: now; a retry: its time)."""
    with app.store.read() as conn:
        times = [outbox_db.next_pending_at(conn), maintenance_db.next_pending_at(conn)]
    known = [t for t in times if t is not None]
    return min(known) if known else None
