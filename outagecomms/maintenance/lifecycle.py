"""A maintenance window's life: schedule (the announcement), update, reschedule, cancel, start,
complete. Each step checks everything first and writes the window's change, its notice and the
notice's deliveries in one transaction, so a refused command leaves nothing behind and a crash
leaves either all of it or none.

The audience is chosen once, when the window is scheduled, with ``declare``'s selection (the
default policy's channels per tier); the account managers' copies and once-per-round channels
(a status page) are not told of maintenance."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from outagecomms.app import App
from outagecomms.directory import audience as aud
from outagecomms.errors import InputError, StateError
from outagecomms.incidents.lifecycle import (
    check_commander,
    check_message,
    check_title,
    select_customers,
)
from outagecomms.maintenance import render
from outagecomms.models import (
    COPY_SUFFIX,
    ROUND_WIDE,
    Customer,
    MaintenanceNotice,
    MaintenanceStatus,
    MaintenanceWindow,
    NoticeKind,
    Selector,
)
from outagecomms.rendering.templates import Rendered
from outagecomms.store import customers as customers_db
from outagecomms.store import maintenance as mdb

#: a start given as "now" or a moment ago is taken (the command ran a little later than typed)
START_SLACK = timedelta(seconds=5)
#: the longest window one command schedules
MAX_LENGTH = timedelta(days=14)


@dataclass(frozen=True)
class SchedulePlan:
    window: MaintenanceWindow  # id 0: not written yet
    audience: aud.Audience
    pairs: list[tuple[str, str]]
    sample_customer: Customer | None
    sample_channel: str | None
    sample: Rendered | None
    #: what is odd but not wrong: overlapping work on the same components
    warnings: tuple[str, ...] = ()
    #: customer -> their reminder offsets (their tier's, ``[policy.default]
    #: maintenance_remind``); None: the window's for everyone
    reminders: dict[str, tuple[timedelta, ...]] | None = None

    def channel_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, ch in self.pairs:
            out[ch] = out.get(ch, 0) + 1
        return out


@dataclass(frozen=True)
class NoticeCreated:
    window: MaintenanceWindow
    notice: MaintenanceNotice
    queued: int


def check_times(
    app: App, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    now = app.clock()
    if start is None:
        raise InputError("a maintenance window needs a start (ISO 8601 or +2h)", field="start")
    if end is None:
        raise InputError("a maintenance window needs an end (ISO 8601 or +4h)", field="end")
    if start < now - START_SLACK:
        raise InputError(
            f"is in the past (now is {now:%Y-%m-%d %H:%M} UTC); customers must be told before",
            field="start",
            value=start.isoformat(),
        )
    if end <= start:
        raise InputError(
            f"must be after the start ({start:%Y-%m-%d %H:%M} UTC)",
            field="end",
            value=end.isoformat(),
        )
    if end - start > MAX_LENGTH:
        raise InputError("a window may last at most 14 days", field="end", value=end.isoformat())
    return max(start, now), end


def _pairs(audience: aud.Audience) -> list[tuple[str, str]]:
    """The customers' own channels: no status page, no account manager's copy."""
    return [(c, ch) for c, ch in audience.pairs if c != ROUND_WIDE and not ch.endswith(COPY_SUFFIX)]


def plan_schedule(
    app: App,
    *,
    title: str,
    selector: Selector,
    start: datetime | None,
    end: datetime | None,
    message: str = "",
    remind: tuple[timedelta, ...] | None = None,
    commander: str = "",
) -> SchedulePlan:
    """Everything ``schedule`` would do, checked and one announcement rendered; writes nothing."""
    title = check_title(title)
    message = check_message(message, required=False)
    commander = check_commander(commander)
    starts_at, ends_at = check_times(app, start, end)
    chosen = select_customers(app, selector)
    audience = aud.plan(chosen, app.config, app.config.policy("default"))
    pairs = _pairs(audience)
    if not pairs:
        raise InputError(
            "none of the selected customers can be reached on a configured channel: "
            + ", ".join(f"{k} ({v})" for k, v in audience.skipped.items()),
            field="selector",
        )
    now = app.clock()
    reminders = None
    by_tier = app.config.policy("default").maintenance_remind
    if remind is None and by_tier:
        fallback = by_tier.get("default", app.config.maintenance.remind)
        told = {c for c, _ in pairs}
        reminders = {c.id: by_tier.get(c.tier, fallback) for c in chosen if c.id in told}
        remind = tuple(sorted({r for rs in reminders.values() for r in rs}, reverse=True))
    window = MaintenanceWindow(
        id=0, title=title, message=message, components=selector.components,
        regions=selector.regions, selector=selector, starts_at=starts_at, ends_at=ends_at,
        status=MaintenanceStatus.SCHEDULED, sequence=0,
        remind=remind if remind is not None else app.config.maintenance.remind,
        audience_size=len({c for c, _ in pairs}), commander=commander, created_at=now,
        told_at=now,
    )  # fmt: skip
    by_id = {c.id: c for c in chosen}
    sample_c, sample_ch, sample = None, None, None
    for channel in sorted({ch for _, ch in pairs}):  # every channel's templates render
        cid = next(c for c, ch in pairs if ch == channel)
        rendered = preview(app, window, _provisional(window, NoticeKind.ANNOUNCEMENT, message, now),
                           by_id[cid], channel)  # fmt: skip
        if sample is None:
            sample_c, sample_ch, sample = by_id[cid], channel, rendered
    from outagecomms.maintenance.conflicts import overlap_warning, overlapping

    clash = overlapping(app, window.components, window.regions, starts_at, ends_at)
    warnings = tuple(overlap_warning(w) for w in clash)
    return SchedulePlan(
        window, audience, pairs, sample_c, sample_ch, sample, warnings, reminders=reminders
    )


def _provisional(
    window: MaintenanceWindow,
    kind: NoticeKind,
    message: str,
    now: datetime,
    previous: tuple[datetime, datetime] | None = None,
) -> MaintenanceNotice:
    return MaintenanceNotice(
        id=0, maintenance_id=window.id, seq=0, key="", kind=kind, status="queued",
        message=message, detail="", created_at=now, due_at=None, starts_at=window.starts_at,
        ends_at=window.ends_at, previous_starts_at=previous[0] if previous else None,
        previous_ends_at=previous[1] if previous else None, sequence=window.sequence,
    )  # fmt: skip


def preview(
    app: App, window: MaintenanceWindow, notice: MaintenanceNotice, customer: Customer, channel: str
) -> Rendered:
    """One notice for one customer on one configured channel (a template error raises)."""
    from outagecomms.channels import registry

    kind = app.config.channels[channel].kind
    tset = registry.get(kind).template_channel
    return render.render(app.renderer, tset, render.context(app.renderer, window, notice, customer))


def schedule(app: App, plan: SchedulePlan) -> NoticeCreated:
    """Write the window, its audience and the announcement with its deliveries at once."""
    w = plan.window
    now = app.clock()
    with app.store.write() as conn:
        mid = mdb.insert_window(
            conn, title=w.title, message=w.message, selector=w.selector, starts_at=w.starts_at,
            ends_at=w.ends_at, remind=w.remind, commander=w.commander, now=now,
            pairs=plan.pairs, audience_size=w.audience_size, reminders=plan.reminders,
        )  # fmt: skip
        window = mdb.get_window(conn, mid)
        notice, queued = mdb.insert_notice(
            conn, window, key="announcement", kind=NoticeKind.ANNOUNCEMENT, now=now,
            message=w.message,
        )  # fmt: skip
    return NoticeCreated(window, notice, queued)


def open_window(app: App, maintenance_id: int, *allowed: MaintenanceStatus) -> MaintenanceWindow:
    with app.store.read() as conn:
        w = mdb.get_window(conn, maintenance_id)
    if w.status not in allowed:
        raise StateError(f"{w.ref} is {w.status.value.replace('_', ' ')}; {_why(w)}")
    return w


def _why(w: MaintenanceWindow) -> str:
    return {
        MaintenanceStatus.SCHEDULED: "it has not started",
        MaintenanceStatus.IN_PROGRESS: "it has started already",
        MaintenanceStatus.COMPLETED: "it is over",
        MaintenanceStatus.CANCELLED: "it was called off",
    }[w.status]


def _commit(
    app: App,
    w: MaintenanceWindow,
    *,
    key: str,
    kind: NoticeKind,
    message: str,
    changes: dict[str, object],
    previous: tuple[datetime, datetime] | None = None,
) -> NoticeCreated:
    now = app.clock()
    with app.store.write() as conn:
        if not mdb.update_window(conn, w.id, w.version, **changes):
            raise StateError(f"{w.ref} was changed by someone else meanwhile; look again and retry")
        window = mdb.get_window(conn, w.id)
        notice, queued = mdb.insert_notice(
            conn, window, key=key, kind=kind, now=now, message=message, previous=previous
        )
    return NoticeCreated(window, notice, queued)


def _check_renders(app: App, window: MaintenanceWindow, notice: MaintenanceNotice) -> None:
    """Every channel of the audience renders this notice (for its first customer), before
    anything is written."""
    with app.store.read() as conn:
        firsts = mdb.audience_samples(conn, window.id)
        customers = customers_db.get_customers(conn, set(firsts.values()))
    for ch, cid in firsts.items():
        c = customers.get(cid)
        if c is not None and ch in app.config.channels:
            preview(app, window, notice, c, ch)


def update(
    app: App, maintenance_id: int, message: str, *, title: str | None = None
) -> NoticeCreated:
    """New words for the audience (and a new title): the invitation again, same SEQUENCE."""
    w = open_window(app, maintenance_id, MaintenanceStatus.SCHEDULED, MaintenanceStatus.IN_PROGRESS)
    message = check_message(message)
    changes: dict[str, object] = {"message": message}
    if title is not None:
        changes["title"] = check_title(title)
    now = app.clock()
    changed = replace(w, message=message, title=str(changes.get("title", w.title)))
    _check_renders(app, changed, _provisional(changed, NoticeKind.UPDATE, message, now))
    with app.store.read() as conn:
        seq = len(mdb.list_notices(conn, w.id)) + 1
    return _commit(app, w, key=f"update:{seq}", kind=NoticeKind.UPDATE, message=message,
                   changes=changes)  # fmt: skip


def reschedule(
    app: App,
    maintenance_id: int,
    *,
    start: datetime | None,
    end: datetime | None,
    message: str = "",
) -> NoticeCreated:
    """New times: SEQUENCE +1 and the invitation again, so calendars move the entry; the
    reminders count back from the new start."""
    w = open_window(app, maintenance_id, MaintenanceStatus.SCHEDULED)
    starts_at, ends_at = check_times(app, start or w.starts_at, end or w.ends_at)
    if (starts_at, ends_at) == (w.starts_at, w.ends_at):
        raise InputError("is the window's time already; nothing to move", field="start")
    message = check_message(message, required=False)
    now = app.clock()
    moved = replace(w, starts_at=starts_at, ends_at=ends_at, sequence=w.sequence + 1)
    previous = (w.starts_at, w.ends_at)
    _check_renders(app, moved, _provisional(moved, NoticeKind.UPDATE, message, now, previous))
    return _commit(
        app, w, key=f"reschedule:{w.sequence + 1}", kind=NoticeKind.UPDATE, message=message,
        changes={"starts_at": starts_at, "ends_at": ends_at, "sequence": w.sequence + 1,
                 "told_at": now},
        previous=previous,
    )  # fmt: skip


def cancel(app: App, maintenance_id: int, message: str = "") -> NoticeCreated:
    """Called off: METHOD:CANCEL (SEQUENCE +1), so calendars remove the entry."""
    w = open_window(app, maintenance_id, MaintenanceStatus.SCHEDULED)
    message = check_message(message, required=False)
    now = app.clock()
    off = replace(w, status=MaintenanceStatus.CANCELLED, sequence=w.sequence + 1)
    _check_renders(app, off, _provisional(off, NoticeKind.CANCELLED, message, now))
    return _commit(
        app, w, key="cancelled", kind=NoticeKind.CANCELLED, message=message,
        changes={"status": MaintenanceStatus.CANCELLED.value, "sequence": w.sequence + 1,
                 "cancelled_at": now},
    )  # fmt: skip


def start(
    app: App, maintenance_id: int, message: str = "", *, expect: MaintenanceWindow | None = None
) -> NoticeCreated | None:
    """The work begins (by hand, or at ``start`` by the scheduler: ``expect`` is the window as
    the scheduler read it; None when somebody else started it first)."""
    if expect is not None:
        w = expect
    else:
        w = open_window(app, maintenance_id, MaintenanceStatus.SCHEDULED)
    message = check_message(message, required=False)
    now = app.clock()
    begun = replace(w, status=MaintenanceStatus.IN_PROGRESS)
    if expect is None:
        _check_renders(app, begun, _provisional(begun, NoticeKind.STARTED, message, now))
    try:
        return _commit(
            app, w, key="started", kind=NoticeKind.STARTED, message=message,
            changes={"status": MaintenanceStatus.IN_PROGRESS.value, "started_at": now},
        )  # fmt: skip
    except StateError:
        if expect is not None:
            return None  # another scheduler started it, or the commander did
        raise


def complete(app: App, maintenance_id: int, message: str = "") -> NoticeCreated:
    """The work is done: the completion notice (a window not yet started is started and done)."""
    w = open_window(app, maintenance_id, MaintenanceStatus.SCHEDULED, MaintenanceStatus.IN_PROGRESS)
    message = check_message(message, required=False)
    now = app.clock()
    done = replace(w, status=MaintenanceStatus.COMPLETED)
    _check_renders(app, done, _provisional(done, NoticeKind.COMPLETED, message, now))
    return _commit(
        app, w, key="completed", kind=NoticeKind.COMPLETED, message=message,
        changes={"status": MaintenanceStatus.COMPLETED.value, "completed_at": now,
                 "started_at": w.started_at or now},
    )  # fmt: skip


def show(
    app: App, maintenance_id: int
) -> tuple[MaintenanceWindow, list[MaintenanceNotice], dict[int, dict[str, int]]]:
    with app.store.read() as conn:
        w = mdb.get_window(conn, maintenance_id)
        return w, mdb.list_notices(conn, w.id), mdb.delivery_counts(conn, w.id)


def windows(app: App, *, include_closed: bool = False) -> list[MaintenanceWindow]:
    with app.store.read() as conn:
        return mdb.list_windows(conn, include_closed=include_closed)
