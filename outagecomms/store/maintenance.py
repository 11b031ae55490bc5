"""Scheduled maintenance in the store: windows, their audience, notices and deliveries.

A notice and its deliveries are written in one transaction; the notice's ``key`` is unique per
window, so two schedulers (a daemon and a ``tick``, or two daemons across a failover) can both
decide a reminder is due and only one notice exists. Deliveries are claimed with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and a result is written only under the lease it was
claimed with, as in the outbox."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, exists, func, insert, literal, select, update

from outagecomms.errors import NotFound
from outagecomms.models import (
    MaintenanceNotice,
    MaintenanceStatus,
    MaintenanceWindow,
    NoticeKind,
    Selector,
)
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks
from outagecomms.values import as_utc

OPEN = (MaintenanceStatus.SCHEDULED.value, MaintenanceStatus.IN_PROGRESS.value)

#: what a new notice replaces when its older deliveries are still waiting (a provider was
#: down): an update carries the current times and the invitation, so older announcements,
#: updates and reminders would only say stale things; a start, completion or cancellation
#: replaces everything still waiting
SUPERSEDES: dict[str, tuple[str, ...]] = {
    NoticeKind.ANNOUNCEMENT.value: (),
    NoticeKind.REMINDER.value: (NoticeKind.REMINDER.value,),
    NoticeKind.UPDATE.value: (
        NoticeKind.ANNOUNCEMENT.value,
        NoticeKind.UPDATE.value,
        NoticeKind.REMINDER.value,
    ),
    NoticeKind.STARTED.value: tuple(k.value for k in NoticeKind),
    NoticeKind.COMPLETED.value: tuple(k.value for k in NoticeKind),
    NoticeKind.CANCELLED.value: tuple(k.value for k in NoticeKind),
}


def _window(row: Any) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=row.id,
        title=row.title,
        message=row.message,
        components=tuple(row.components),
        regions=tuple(row.regions),
        selector=Selector.from_json(row.selector),
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        status=MaintenanceStatus(row.status),
        sequence=row.sequence,
        remind=tuple(timedelta(seconds=s) for s in row.remind_s),
        audience_size=row.audience_size,
        commander=row.commander,
        created_at=as_utc(row.created_at),
        told_at=as_utc(row.told_at),
        started_at=as_utc(row.started_at),
        completed_at=as_utc(row.completed_at),
        cancelled_at=as_utc(row.cancelled_at),
        overrun_reminded_at=as_utc(row.overrun_reminded_at),
        incident_id=row.incident_id,
        version=row.version,
    )


def _notice(row: Any) -> MaintenanceNotice:
    return MaintenanceNotice(
        id=row.id,
        maintenance_id=row.maintenance_id,
        seq=row.seq,
        key=row.key,
        kind=NoticeKind(row.kind),
        status=row.status,
        message=row.message,
        detail=row.detail,
        created_at=as_utc(row.created_at),
        due_at=as_utc(row.due_at),
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        previous_starts_at=as_utc(row.previous_starts_at),
        previous_ends_at=as_utc(row.previous_ends_at),
        sequence=row.sequence,
    )


def insert_window(
    conn: Connection,
    *,
    title: str,
    message: str,
    selector: Selector,
    starts_at: datetime,
    ends_at: datetime,
    remind: Sequence[timedelta],
    commander: str,
    now: datetime,
    pairs: Sequence[tuple[str, str]],
    audience_size: int,
    reminders: dict[str, tuple[timedelta, ...]] | None = None,
) -> int:
    """The window and its audience (customer, channel) pairs; ``reminders``: customer -> their
    own offsets (their tier's), else the window's."""
    mid = conn.execute(
        insert(t.maintenance)
        .values(
            title=title,
            message=message,
            components=list(selector.components),
            regions=list(selector.regions),
            selector=selector.to_json(),
            starts_at=starts_at,
            ends_at=ends_at,
            status=MaintenanceStatus.SCHEDULED.value,
            sequence=0,
            remind_s=[int(r.total_seconds()) for r in remind],
            audience_size=audience_size,
            commander=commander,
            created_at=now,
            told_at=now,
            version=1,
        )
        .returning(t.maintenance.c.id)
    ).scalar_one()
    if pairs:
        conn.execute(
            insert(t.maintenance_audience),
            [
                {
                    "maintenance_id": mid,
                    "customer_id": c,
                    "channel": ch,
                    "remind_s": None
                    if reminders is None or c not in reminders
                    else [int(r.total_seconds()) for r in reminders[c]],
                }
                for c, ch in pairs
            ],
        )
    return int(mid)


def get_window(conn: Connection, maintenance_id: int) -> MaintenanceWindow:
    row = conn.execute(select(t.maintenance).where(t.maintenance.c.id == maintenance_id)).first()
    if row is None:
        raise NotFound(f"no maintenance MNT-{maintenance_id}; see `outagecomms maintenance list`")
    return _window(row)


def list_windows(conn: Connection, *, include_closed: bool = False) -> list[MaintenanceWindow]:
    q = select(t.maintenance).order_by(t.maintenance.c.starts_at, t.maintenance.c.id)
    if not include_closed:
        q = q.where(t.maintenance.c.status.in_(OPEN))
    return [_window(r) for r in conn.execute(q)]


def window_for_incident(conn: Connection, incident_id: int) -> MaintenanceWindow | None:
    """The window an incident is linked to (it overran from it), or None."""
    q = (
        select(t.maintenance)
        .where(t.maintenance.c.incident_id == incident_id)
        .order_by(t.maintenance.c.id)
    )
    row = conn.execute(q).first()
    return None if row is None else _window(row)


def window_delivery_counts(
    conn: Connection, maintenance_ids: Iterable[int]
) -> dict[int, dict[str, int]]:
    """Window id -> delivery status -> count, over all its notices (``watch``)."""
    d = t.maintenance_deliveries
    ids = list(maintenance_ids)
    out: dict[int, dict[str, int]] = {}
    for chunk in chunks(ids):
        q = (
            select(d.c.maintenance_id, d.c.status, func.count())
            .where(d.c.maintenance_id.in_(list(chunk)))
            .group_by(d.c.maintenance_id, d.c.status)
        )
        for mid, status, count in conn.execute(q):
            out.setdefault(int(mid), {})[status] = int(count)
    return out


def update_window(conn: Connection, maintenance_id: int, version: int, **values: Any) -> bool:
    """Change a window if nobody else changed it since ``version`` was read."""
    res = conn.execute(
        update(t.maintenance)
        .where(t.maintenance.c.id == maintenance_id, t.maintenance.c.version == version)
        .values(version=version + 1, **values)
    )
    return bool(res.rowcount)


def notice_keys(conn: Connection, maintenance_ids: Iterable[int]) -> set[tuple[int, str]]:
    n = t.maintenance_notices
    ids = list(maintenance_ids)
    if not ids:
        return set()
    q = select(n.c.maintenance_id, n.c.key).where(n.c.maintenance_id.in_(ids))
    return {(r[0], r[1]) for r in conn.execute(q)}


def insert_notice(
    conn: Connection,
    window: MaintenanceWindow,
    *,
    key: str,
    kind: NoticeKind,
    now: datetime,
    message: str = "",
    detail: str = "",
    queue: bool = True,
    due_at: datetime | None = None,
    previous: tuple[datetime, datetime] | None = None,
    offset: timedelta | None = None,
) -> tuple[MaintenanceNotice, int]:
    """A notice of the window as it now is, and (``queue``) one pending delivery per audience
    pair whose contact is not flagged; older deliveries it replaces (``SUPERSEDES``) that are
    still waiting are superseded. Returns the notice and how many deliveries were queued. A
    second notice with the same key raises ``IntegrityError`` (somebody else wrote it)."""
    n = t.maintenance_notices
    seq = conn.execute(
        select(func.coalesce(func.max(n.c.seq), 0) + 1).where(n.c.maintenance_id == window.id)
    ).scalar_one()
    notice_id = conn.execute(
        insert(n)
        .values(
            maintenance_id=window.id,
            seq=seq,
            key=key,
            kind=kind.value,
            status="queued" if queue else "skipped",
            message=message,
            detail=detail,
            created_at=now,
            due_at=due_at,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            previous_starts_at=previous[0] if previous else None,
            previous_ends_at=previous[1] if previous else None,
            sequence=window.sequence,
        )
        .returning(n.c.id)
    ).scalar_one()
    notice = get_notice(conn, int(notice_id))
    if not queue:
        return notice, 0
    d, a, f = t.maintenance_deliveries, t.maintenance_audience, t.contact_flags
    stale = SUPERSEDES[kind.value]
    if stale:
        older = select(n.c.id).where(
            n.c.maintenance_id == window.id, n.c.kind.in_(stale), n.c.id != notice.id
        )
        conn.execute(
            update(d)
            .where(d.c.status == "pending", d.c.notice_id.in_(older))
            .values(status="superseded", last_error=f"superseded by notice {seq} ({kind.value})")
        )
    src = select(
        a.c.maintenance_id,
        literal(notice.id, t.BigId),
        a.c.customer_id,
        a.c.channel,
        literal("pending"),
        literal(0),
        literal(now, t.TS),
    ).where(
        a.c.maintenance_id == window.id,
        ~exists().where(f.c.customer_id == a.c.customer_id, f.c.channel == a.c.channel),
    )
    cols = [
        "maintenance_id",
        "notice_id",
        "customer_id",
        "channel",
        "status",
        "attempts",
        "next_attempt_at",
    ]
    if offset is None:
        conn.execute(insert(d).from_select(cols, src))
    else:  # a reminder: only the customers whose offsets include it
        secs = int(offset.total_seconds())
        rows: list[dict[str, Any]] = []
        for r in conn.execute(src.add_columns(a.c.remind_s)):
            *values, own = r
            if own is None or secs in own:
                rows.append(dict(zip(cols, values, strict=True)))
        if rows:
            conn.execute(insert(d), rows)
    queued = conn.execute(select(func.count()).where(d.c.notice_id == notice.id)).scalar_one()
    return notice, int(queued)


def get_notice(conn: Connection, notice_id: int) -> MaintenanceNotice:
    row = conn.execute(
        select(t.maintenance_notices).where(t.maintenance_notices.c.id == notice_id)
    ).one()
    return _notice(row)


def list_notices(conn: Connection, maintenance_id: int) -> list[MaintenanceNotice]:
    n = t.maintenance_notices
    q = select(n).where(n.c.maintenance_id == maintenance_id).order_by(n.c.seq)
    return [_notice(r) for r in conn.execute(q)]


def delivery_counts(conn: Connection, maintenance_id: int) -> dict[int, dict[str, int]]:
    """Notice id -> delivery status -> count."""
    d = t.maintenance_deliveries
    q = (
        select(d.c.notice_id, d.c.status, func.count())
        .where(d.c.maintenance_id == maintenance_id)
        .group_by(d.c.notice_id, d.c.status)
    )
    out: dict[int, dict[str, int]] = {}
    for nid, status, count in conn.execute(q):
        out.setdefault(nid, {})[status] = int(count)
    return out


def audience_channels(conn: Connection, maintenance_id: int) -> dict[str, int]:
    a = t.maintenance_audience
    q = (
        select(a.c.channel, func.count())
        .where(a.c.maintenance_id == maintenance_id)
        .group_by(a.c.channel)
    )
    return {ch: int(n) for ch, n in conn.execute(q)}


def figures(conn: Connection) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
    """For ``/metrics``: windows by status, and deliveries by (channel, status)."""
    m, d = t.maintenance, t.maintenance_deliveries
    windows = {
        s: int(n) for s, n in conn.execute(select(m.c.status, func.count()).group_by(m.c.status))
    }
    q = select(d.c.channel, d.c.status, func.count()).group_by(d.c.channel, d.c.status)
    return windows, [
        (ch, st, int(n)) for ch, st, n in conn.execute(q.order_by(d.c.channel, d.c.status))
    ]


def audience_samples(conn: Connection, maintenance_id: int) -> dict[str, str]:
    """Channel -> one customer told on it (whose notice a preflight renders)."""
    a = t.maintenance_audience
    q = (
        select(a.c.channel, func.min(a.c.customer_id))
        .where(a.c.maintenance_id == maintenance_id)
        .group_by(a.c.channel)
    )
    return {ch: cid for ch, cid in conn.execute(q)}


def announced_windows(
    conn: Connection, customer_ids: Iterable[str], notice: timedelta
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Customer -> the maintenance windows (start, announced end) they were told of at least
    ``notice`` before the start (at the announcement, or the reschedule that set the time);
    cancelled windows are none."""
    m, a = t.maintenance, t.maintenance_audience
    ids = list(dict.fromkeys(customer_ids))
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for chunk in chunks(ids):
        q = (
            select(a.c.customer_id, m.c.starts_at, m.c.ends_at, m.c.told_at)
            .join(m, m.c.id == a.c.maintenance_id)
            .where(
                a.c.customer_id.in_(list(chunk)),
                m.c.status != MaintenanceStatus.CANCELLED.value,
            )
            .distinct()
        )
        for cid, start, end, told in conn.execute(q):
            start, end, told = as_utc(start), as_utc(end), as_utc(told)
            if told <= start - notice:
                out.setdefault(cid, []).append((start, end))
    return out


# --- claiming, sending, recording ----------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    maintenance_id: int
    notice_id: int
    customer_id: str
    channel: str
    attempts: int
    lease_until: datetime


def claim_deliveries(
    conn: Connection, *, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries (pending and due, or sending with a lapsed lease:
    its sender died)."""
    d = t.maintenance_deliveries
    due = ((d.c.status == "pending") & (d.c.next_attempt_at <= now)) | (
        (d.c.status == "sending") & (d.c.lease_until < now)
    )
    sub = select(d.c.id).where(due).order_by(d.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        sub = sub.with_for_update(skip_locked=True)
    ids = [r[0] for r in conn.execute(sub)]
    if not ids:
        return []
    until = now + lease
    conn.execute(
        update(d)
        .where(d.c.id.in_(ids))
        .values(status="sending", lease_until=until, attempts=d.c.attempts + 1)
    )
    q = select(
        d.c.id, d.c.maintenance_id, d.c.notice_id, d.c.customer_id, d.c.channel, d.c.attempts
    ).where(d.c.id.in_(ids))
    return [Claimed(*r, lease_until=until) for r in conn.execute(q.order_by(d.c.id))]


def record_result(conn: Connection, claim: Claimed, **values: Any) -> bool:
    """Write one outcome, only while the claim's lease is still the delivery's."""
    d = t.maintenance_deliveries
    res = conn.execute(
        update(d)
        .where(d.c.id == claim.id, d.c.status == "sending", d.c.lease_until == claim.lease_until)
        .values(lease_until=None, **values)
    )
    return bool(res.rowcount)


def next_pending_at(conn: Connection) -> datetime | None:
    """When a maintenance delivery is next owed a send (a lapsed lease counts as now-ish)."""
    d = t.maintenance_deliveries
    pend = conn.execute(
        select(func.min(d.c.next_attempt_at)).where(d.c.status == "pending")
    ).scalar_one()
    lease = conn.execute(
        select(func.min(d.c.lease_until)).where(d.c.status == "sending")
    ).scalar_one()
    times = [as_utc(x) for x in (pend, lease) if x is not None]
    return min(times) if times else None
