"""How much ``db prune`` would delete: replies are personal data, kept no longer than
``[inbound] keep``. The deleting is ``store.inbound.prune``; this counts the same rows first,
so the person is asked about the figure that will be deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from outagecomms.store import tables as t


def prunable(conn: Connection, before: datetime) -> tuple[int, int]:
    """(messages received before ``before``, what was sent because of them)."""
    i, s = t.inbound, t.inbound_sends
    old = select(i.c.id).where(i.c.received_at < before)
    messages = conn.execute(
        select(func.count()).select_from(i).where(i.c.received_at < before)
    ).scalar_one()
    sends = conn.execute(
        select(func.count()).select_from(s).where(s.c.inbound_id.in_(old))
    ).scalar_one()
    return int(messages), int(sends)
