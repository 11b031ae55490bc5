"""What the scheduler owes scheduled maintenance: reminders at their offsets before the start
and the "started" notice at the start (unless started by hand). Derived from the store each
time, so the daemon, ``tick`` and a restarted process agree; each notice has a unique key, so
two schedulers deciding the same reminder write it once.

A reminder whose moment passed while no scheduler ran is still sent if the window has not
started; one whose window has started by then is recorded as skipped (``show`` says why), as is
one whose moment came before customers heard the times (announced or moved late), or one that a
later reminder, due as well, replaces (a scheduler down for days sends the latest reminder
only, not three at once)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from outagecomms.app import App
from outagecomms.errors import OutageCommsError
from outagecomms.maintenance import lifecycle
from outagecomms.models import MaintenanceStatus, MaintenanceWindow, NoticeKind
from outagecomms.store import maintenance as mdb
from outagecomms.values import format_duration

log = logging.getLogger("outagecomms.maintenance")


@dataclass
class MaintenanceDue:
    reminders: list[str] = field(default_factory=list)  # "MNT-3 24h"
    skipped: list[str] = field(default_factory=list)  # "MNT-3 72h: why"
    started: list[str] = field(default_factory=list)
    overran: list[str] = field(default_factory=list)  # commanders reminded: "MNT-3"
    incidents: list[str] = field(default_factory=list)  # declared for overruns: "MNT-3 INC-9"
    errors: list[str] = field(default_factory=list)


def reminder_key(offset: timedelta, starts_at: datetime) -> str:
    """One reminder per offset per start: a reschedule counts the reminders back afresh."""
    return f"reminder:{int(offset.total_seconds())}:{starts_at:%Y%m%dT%H%M%SZ}"


def run_due(app: App, now: datetime | None = None) -> MaintenanceDue:
    now = now or app.clock()
    out = MaintenanceDue()
    with app.store.read() as conn:
        windows = mdb.list_windows(conn)
        scheduled = [w for w in windows if w.status == MaintenanceStatus.SCHEDULED]
        done = mdb.notice_keys(conn, (w.id for w in scheduled))
    for w in windows:
        if w.status == MaintenanceStatus.IN_PROGRESS:
            _overrun(app, w, now, out)
    for w in scheduled:
        try:
            _reminders(app, w, now, done, out)
            if w.starts_at <= now:
                created = lifecycle.start(app, w.id, expect=w)
                if created is not None:
                    out.started.append(w.ref)
                    log.info("%s started: notice queued for %d", w.ref, created.queued)
        except OutageCommsError as exc:
            msg = f"{w.ref}: {exc}"
            log.error(msg)
            out.errors.append(msg)
    return out


def _overrun(app: App, w: MaintenanceWindow, now: datetime, out: MaintenanceDue) -> None:
    from outagecomms.maintenance import overrun

    cfg = app.config.maintenance
    try:
        if w.overrun_reminded_at is None and now >= w.ends_at + cfg.grace:
            if overrun.remind_commander(app, w, now):
                out.overran.append(w.ref)
            return  # the window's version moved on: the incident, if due, at the next run
        after = cfg.overrun_after
        if after is not None and w.incident_id is None and now >= w.ends_at + after:
            ref = overrun.declare_overrun(app, w, now)
            if ref is not None:
                out.incidents.append(f"{w.ref} {ref}")
                log.warning("%s overran: %s declared", w.ref, ref)
    except OutageCommsError as exc:
        msg = f"{w.ref}: overrun not handled: {exc}"
        log.error(msg)
        out.errors.append(msg)


def _reminders(
    app: App, w: MaintenanceWindow, now: datetime, done: set[tuple[int, str]], out: MaintenanceDue
) -> None:
    due = [r for r in w.remind if w.starts_at - r <= now]  # longest first
    for i, offset in enumerate(due):
        key = reminder_key(offset, w.starts_at)
        if (w.id, key) in done:
            continue
        at = w.starts_at - offset
        label = format_duration(offset)
        why = ""
        if now >= w.starts_at:
            why = f"the window had started when the {label} reminder came due"
        elif at <= w.told_at:
            why = f"customers heard of the window {format_duration(w.starts_at - w.told_at)} before it starts"
        elif i + 1 < len(due):
            why = f"the {format_duration(due[i + 1])} reminder is due as well and goes instead"
        if _write(app, w, key, now, at, skip=why, offset=offset):
            if why:
                out.skipped.append(f"{w.ref} {label}: {why}")
            else:
                out.reminders.append(f"{w.ref} {label}")


def _write(
    app: App,
    w: MaintenanceWindow,
    key: str,
    now: datetime,
    at: datetime,
    skip: str,
    offset: timedelta | None = None,
) -> bool:
    """The reminder (or its record as skipped); False when another scheduler wrote it first or
    the window changed meanwhile (read again at the next run)."""
    try:
        with app.store.write() as conn:
            current = mdb.get_window(conn, w.id)
            if current.version != w.version:
                return False
            mdb.insert_notice(
                conn, current, key=key, kind=NoticeKind.REMINDER, now=now, due_at=at,
                queue=not skip, detail=skip, offset=offset,
            )  # fmt: skip
    except IntegrityError:
        return False
    return True


def next_due_at(app: App) -> datetime | None:
    """The earliest reminder or start of a scheduled window not yet done, or overrun step of a
    running one."""
    times: list[datetime] = []
    cfg = app.config.maintenance
    with app.store.read() as conn:
        windows = mdb.list_windows(conn)
        scheduled = [w for w in windows if w.status == MaintenanceStatus.SCHEDULED]
        done = mdb.notice_keys(conn, (w.id for w in scheduled))
    for w in windows:
        if w.status != MaintenanceStatus.IN_PROGRESS:
            continue
        if w.overrun_reminded_at is None:
            times.append(w.ends_at + cfg.grace)
        elif cfg.overrun_after is not None and w.incident_id is None:
            times.append(w.ends_at + cfg.overrun_after)
    for w in scheduled:
        times.append(w.starts_at)
        times += [
            w.starts_at - r for r in w.remind if (w.id, reminder_key(r, w.starts_at)) not in done
        ]
    return min(times) if times else None
