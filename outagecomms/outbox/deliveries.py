"""The outbox as read by people: an incident's deliveries, optionally by status."""

from __future__ import annotations

from typing import Any

from outagecomms.app import App
from outagecomms.errors import InputError
from outagecomms.incidents.views import iso
from outagecomms.models import DeliveryStatus, incident_id_from_ref
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db


def list_deliveries(app: App, ref: str, *, status: str | None = None) -> list[dict[str, Any]]:
    iid = incident_id_from_ref(ref)
    if status is not None and status not in {s.value for s in DeliveryStatus}:
        raise InputError(
            "unknown status; use one of " + ", ".join(s.value for s in DeliveryStatus),
            field="--status",
            value=status,
        )
    with app.store.read() as conn:
        incidents_db.get_incident(conn, iid)
        lines = outbox_db.list_deliveries(conn, iid, status=status)
    return [
        {
            "id": line.id,
            "round": line.round,
            "customer": line.customer_id,
            "channel": line.channel,
            "status": line.status,
            "attempts": line.attempts,
            "sent_at": iso(line.sent_at),
            "last_error": line.last_error,
            "provider_id": line.provider_id,
        }
        for line in lines
    ]
