"""The newest inbound messages of some incidents, newest first: what ``watch`` shows every
second, so it reads a bounded number of rows however many replies an incident has had."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from outagecomms.store import tables as t
from outagecomms.values import as_utc

#: what the dashboard needs of a message (never its raw form)
_COLUMNS = (
    "id", "incident_id", "customer_id", "channel", "kind", "received_at", "text", "label",
    "sentiment", "needs_person", "escalated_at", "responded_at",
)  # fmt: skip


def newest(conn: Connection, incident_ids: Sequence[int], limit: int = 8) -> list[dict[str, Any]]:
    """The ``limit`` newest processed messages attributed to a customer in these incidents."""
    if not incident_ids:
        return []
    i = t.inbound
    q = (
        select(*[i.c[c] for c in _COLUMNS])
        .where(
            i.c.status == "processed",
            i.c.incident_id.in_(list(incident_ids)),
            i.c.customer_id.is_not(None),
        )
        .order_by(i.c.id.desc())
        .limit(limit)
    )
    out = []
    for r in conn.execute(q):
        row = dict(r._mapping)
        for k in ("received_at", "escalated_at", "responded_at"):
            row[k] = as_utc(row[k])
        row["needs_person"] = bool(row["needs_person"])
        out.append(row)
    return out
