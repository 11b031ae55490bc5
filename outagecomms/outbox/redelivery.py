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

from sqlalchemy import Connection

from outagecomms.app import App
from outagecomms.errors import NotFound
from outagecomms.models import DeliveryStatus, Incident, incident_id_from_ref
from outagecomms.scheduler.commander import notify_commander
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.store import reporting as reporting_db


@dataclass(frozen=True)
class RetryResult:
    incident: Incident
    requeued: int
    superseded: int


def retry_deliveries(app: App, ref: str, *, customer: str | None = None) -> RetryResult:
    """Requeue the incident's failed/dead deliveries (of one customer if given) now."""
    iid = incident_id_from_ref(ref)
    now = app.clock()
    with app.store.write() as conn:
        inc = incidents_db.get_incident(conn, iid).incident
        if customer is not None and not outbox_db.has_customer_deliveries(conn, iid, customer):
            raise NotFound(f"customer {customer!r} has no deliveries in {inc.ref}")
        candidates = outbox_db.retry_candidates(conn, iid, customer_id=customer)
        latest = outbox_db.latest_round_seqs(conn, iid)
        fresh = [c.id for c in candidates if latest.get((c.customer_id, c.channel)) == c.seq]
        stale = [c for c in candidates if latest.get((c.customer_id, c.channel)) != c.seq]
        # every round this retry changes, locked (and its /metrics tally dropped) once, in id
        # order, before any of them: two retries of one incident cannot wait on each other
        reporting_db.forget_tallies(conn, [c.id for c in candidates])
        outbox_db.requeue(conn, fresh, now)
        outbox_db.supersede(
            conn,
            {
                c.id: f"not resent: round {latest[(c.customer_id, c.channel)]} is newer"
                for c in stale
            },
        )
        if fresh:  # they may die again: that is news for the commander again
            dead_left = outbox_db.count_status(conn, iid, DeliveryStatus.DEAD)
            incidents_db.add_event(
                conn, iid, now, "dead_reported", f"{dead_left} dead deliveries after a retry"
            )
        who = f" for customer {customer}" if customer else ""
        incidents_db.add_event(
            conn, iid, now, "retry",
            f"{len(fresh)} deliveries requeued{who}; {len(stale)} superseded by newer rounds",
        )  # fmt: skip
    return RetryResult(inc, len(fresh), len(stale))


def report_dead(app: App, now: datetime | None = None) -> list[str]:
    """Tell the commander of dead deliveries not reported yet; returns the incident refs told.

    The count reported last is kept as an event (kind ``dead_reported``), so every daemon,
    ``tick`` and restart agrees on what the commander already knows."""
    now = now or app.clock()
    told: list[str] = []
    with app.store.read() as conn:
        counts = outbox_db.dead_by_incident(conn)
        reported = _reported_counts(conn)
    for iid, dead in counts.items():
        if dead <= reported.get(iid, 0):
            continue
        with app.store.write() as conn:
            if _reported_counts(conn).get(iid, 0) >= dead:
                continue  # another scheduler told them in the meantime
            inc = incidents_db.get_incident(conn, iid).incident
            reasons = Counter(
                f"{channel}: {(error or 'error').split(':')[0][:60]}"
                for channel, error in outbox_db.dead_errors(conn, iid)
            )
            detail = f"{dead} dead deliveries: " + "; ".join(
                f"{k} ({v})" for k, v in reasons.most_common(5)
            )
            incidents_db.add_event(conn, iid, now, "dead_reported", detail)
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
    out: dict[int, int] = {}
    for iid, detail in incidents_db.latest_event_details(conn, "dead_reported").items():
        head = detail.split(" ", 1)[0]
        out[iid] = int(head) if head.isdigit() else 0  # the latest report counts
    return out
