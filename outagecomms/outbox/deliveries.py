"""The outbox as read by people: an incident's deliveries, optionally by status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from outagecomms.app import App
from outagecomms.errors import InputError
from outagecomms.incidents.views import iso
from outagecomms.models import DeliveryStatus, incident_id_from_ref
from outagecomms.store import repository as repo
from outagecomms.store import tables as t
from outagecomms.values import as_utc


def list_deliveries(app: App, ref: str, *, status: str | None = None) -> list[dict[str, Any]]:
    iid = incident_id_from_ref(ref)
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
            {
                "id": row.id,
                "round": row.seq,
                "customer": row.customer_id,
                "channel": row.channel,
                "status": row.status,
                "attempts": row.attempts,
                "sent_at": iso(as_utc(row.sent_at)),
                "last_error": row.last_error,
                "provider_id": row.provider_id,
            }
            for row in conn.execute(q)
        ]
