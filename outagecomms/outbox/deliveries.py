"""The outbox as read by people: an incident's deliveries, optionally by status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from outagecomms.app import App
from outagecomms.errors import InputError
from outagecomms.models import DeliveryStatus, IncidentRef, RefLike
from outagecomms.store import repository as repo
from outagecomms.store import tables as t
from outagecomms.values import as_utc, iso


@dataclass(frozen=True, kw_only=True)
class DeliveryRow:
    """One row of the outbox: a (round, customer, channel) message and its state."""

    id: int
    round: int  # the round's number within its incident
    customer: str
    channel: str
    status: DeliveryStatus
    attempts: int
    sent_at: datetime | None
    last_error: str | None
    provider_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "round": self.round,
            "customer": self.customer,
            "channel": self.channel,
            "status": self.status.value,
            "attempts": self.attempts,
            "sent_at": iso(self.sent_at),
            "last_error": self.last_error,
            "provider_id": self.provider_id,
        }


def list_deliveries(app: App, ref: RefLike, *, status: str | None = None) -> list[DeliveryRow]:
    iid = IncidentRef.parse(ref).id
    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise InputError(
            "unknown status; use one of " + ", ".join(s.value for s in DeliveryStatus),
            field="status",
            value=status,
        )
    d, r = t.deliveries, t.rounds
    with app.store.read() as conn:
        repo.get_incident(conn, iid)
        q = (
            select(
                d.c.id,
                r.c.seq,
                d.c.customer_id,
                d.c.channel,
                d.c.status,
                d.c.attempts,
                d.c.sent_at,
                d.c.last_error,
                d.c.provider_id,
            )
            .join(r, r.c.id == d.c.round_id)
            .where(d.c.incident_id == iid)
            .order_by(d.c.id)
        )
        if status:
            q = q.where(d.c.status == status)
        return [
            DeliveryRow(
                id=row.id,
                round=row.seq,
                customer=row.customer_id,
                channel=row.channel,
                status=DeliveryStatus(row.status),
                attempts=row.attempts,
                sent_at=as_utc(row.sent_at),
                last_error=row.last_error,
                provider_id=row.provider_id,
            )
            for row in conn.execute(q)
        ]
