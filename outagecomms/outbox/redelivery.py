"""Deliveries that did not make it: sending them again on request, and telling the commander.

``retry_deliveries`` puts an incident's failed and dead deliveries back in the outbox (all of
them, or one customer's). A delivery whose customer has since been sent a newer round on the
same channel is not resent: the newer message already carries the news, and an old "next update
by 14:30" must not arrive after it. Those are marked ``superseded`` instead.

``report_dead`` runs with the scheduler: when an incident has more dead deliveries than when the
commander was last told, the commander gets one message with the count by channel and error
and the command to retry. A promise may be missed for some customers, but never silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, func, select, update

from outagecomms.app import App
from outagecomms.errors import NotFound
from outagecomms.models import DeliveryStatus, Incident, incident_id_from_ref
from outagecomms.scheduler.commander import notify_commander
from outagecomms.store import repository as repo
from outagecomms.store import tables as t

RETRYABLE = (DeliveryStatus.FAILED.value, DeliveryStatus.DEAD.value)


@dataclass(frozen=True)
class RetryResult:
    incident: Incident
    requeued: int
    superseded: int


def retry_deliveries(app: App, ref: str, *, customer: str | None = None) -> RetryResult:
    """Requeue the incident's failed/dead deliveries (of one customer if given) now."""
    iid = incident_id_from_ref(ref)
    d, r = t.deliveries, t.rounds
    now = app.clock()
    with app.store.write() as conn:
        inc = repo.get_incident(conn, iid).incident
        where = [d.c.incident_id == iid, d.c.status.in_(RETRYABLE)]
        if customer is not None:
            known = conn.execute(
                select(func.count()).where(d.c.incident_id == iid, d.c.customer_id == customer)
            ).scalar_one()
            if not known:
                raise NotFound(f"customer {customer!r} has no deliveries in {inc.ref}")
            where.append(d.c.customer_id == customer)
        candidates = conn.execute(
            select(d.c.id, d.c.customer_id, d.c.channel, r.c.seq)
            .join(r, r.c.id == d.c.round_id)
            .where(*where)
        ).all()
        latest = _latest_rounds(conn, iid)
        fresh = [c.id for c in candidates if latest.get((c.customer_id, c.channel)) == c.seq]
        stale = [c for c in candidates if latest.get((c.customer_id, c.channel)) != c.seq]
        for chunk in repo.chunks(fresh):
            conn.execute(
                update(d)
                .where(d.c.id.in_(chunk), d.c.status.in_(RETRYABLE))
                .values(
                    status=DeliveryStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_until=None,
                )
            )
        for c in stale:
            conn.execute(
                update(d)
                .where(d.c.id == c.id, d.c.status.in_(RETRYABLE))
                .values(
                    status=DeliveryStatus.SUPERSEDED.value,
                    last_error=f"not resent: round {latest[(c.customer_id, c.channel)]} is newer",
                )
            )
        if fresh:  # they may die again: that is news for the commander again
            dead_left = conn.execute(
                select(func.count()).where(
                    d.c.incident_id == iid, d.c.status == DeliveryStatus.DEAD.value
                )
            ).scalar_one()
            repo.add_event(
                conn, iid, now, "dead_reported", f"{dead_left} dead deliveries after a retry"
            )
        who = f" for customer {customer}" if customer else ""
        repo.add_event(
            conn, iid, now, "retry",
            f"{len(fresh)} deliveries requeued{who}; {len(stale)} superseded by newer rounds",
        )  # fmt: skip
    return RetryResult(inc, len(fresh), len(stale))


def _latest_rounds(conn: Connection, incident_id: int) -> dict[tuple[str, str], int]:
    """(customer, channel) -> the newest round seq that has a delivery for it."""
    d, r = t.deliveries, t.rounds
    q = (
        select(d.c.customer_id, d.c.channel, func.max(r.c.seq))
        .join(r, r.c.id == d.c.round_id)
        .where(d.c.incident_id == incident_id, d.c.status != DeliveryStatus.SUPERSEDED.value)
        .group_by(d.c.customer_id, d.c.channel)
    )
    return {(row[0], row[1]): int(row[2]) for row in conn.execute(q)}


def report_dead(app: App, now: datetime | None = None) -> list[str]:
    """Tell the commander of dead deliveries not reported yet; returns the incident refs told.

    The count reported last is kept as an event (kind ``dead_reported``), so every daemon,
    ``tick`` and restart agrees on what the commander already knows."""
    now = now or app.clock()
    d = t.deliveries
    told: list[str] = []
    with app.store.read() as conn:
        counts: dict[int, int] = dict(
            conn.execute(
                select(d.c.incident_id, func.count())
                .where(d.c.status == DeliveryStatus.DEAD.value)
                .group_by(d.c.incident_id)
            ).all()
        )
        reported = _reported_counts(conn)
    for iid, dead in counts.items():
        if dead <= reported.get(iid, 0):
            continue
        with app.store.write() as conn:
            if _reported_counts(conn).get(iid, 0) >= dead:
                continue  # another scheduler told them in the meantime
            inc = repo.get_incident(conn, iid).incident
            reasons = Counter(
                f"{row.channel}: {(row.last_error or 'error').split(':')[0][:60]}"
                for row in conn.execute(
                    select(d.c.channel, d.c.last_error).where(
                        and_(d.c.incident_id == iid, d.c.status == DeliveryStatus.DEAD.value)
                    )
                )
            )
            detail = f"{dead} dead deliveries: " + "; ".join(
                f"{k} ({v})" for k, v in reasons.most_common(5)
            )
            repo.add_event(conn, iid, now, "dead_reported", detail)
        text = (
            f"{inc.ref} ({inc.title}): {dead} deliveries could not be sent after every retry "
            f"and will not be tried again on their own. By channel and error: "
            + "; ".join(f"{k}: {v}" for k, v in reasons.most_common(10))
            + f".\nSee them with `outagecomms deliveries {inc.ref} --status dead`; fix the cause "
            f"and send them again with `outagecomms deliveries retry {inc.ref}`."
        )
        notify_commander(app, inc, f"[{inc.ref}] {dead} customer notices undeliverable", text)
        told.append(inc.ref)
    return told


def _reported_counts(conn: Connection) -> dict[int, int]:
    e = t.events
    out: dict[int, int] = {}
    for iid, detail in conn.execute(
        select(e.c.incident_id, e.c.detail).where(e.c.kind == "dead_reported").order_by(e.c.id)
    ):
        head = str(detail).split(" ", 1)[0]
        out[iid] = int(head) if head.isdigit() else 0  # the latest report counts
    return out
