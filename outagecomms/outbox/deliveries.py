"""The outbox as read by people: an incident's deliveries, optionally by status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from outagecomms.app import App
from outagecomms.errors import InputError
from outagecomms.models import DeliveryStatus, IncidentRef, RefLike
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.values import JsonModel


@dataclass(frozen=True, kw_only=True)
class DeliveryRow(JsonModel):
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


def list_deliveries(app: App, ref: RefLike, *, status: str | None = None) -> list[DeliveryRow]:
    iid = IncidentRef.parse(ref).id
    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise InputError(
            "unknown status; use one of " + ", ".join(s.value for s in DeliveryStatus),
            field="status",
            value=status,
        )
    with app.store.read() as conn:
        incidents_db.get_incident(conn, iid)
        lines = outbox_db.list_deliveries(conn, iid, status=status)
    return [
        DeliveryRow(
            id=line.id,
            round=line.round,
            customer=line.customer_id,
            channel=line.channel,
            status=DeliveryStatus(line.status),
            attempts=line.attempts,
            sent_at=line.sent_at,
            last_error=line.last_error,
            provider_id=line.provider_id,
        )
        for line in lines
    ]
