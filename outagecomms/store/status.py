"""What the public status page reads: incidents of the history window, their public rounds,
the directory's components. Never a customer's row: the page shows no customer data."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, or_, select

from outagecomms.models import Incident, IncidentStatus, Round, RoundKind
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks
from outagecomms.store.incidents import row_to_incident, row_to_round

#: the rounds whose words are the commander's, the same for everyone: the page shows them.
#: Holding rounds restate; credit, follow-up and void notices are per customer.
PUBLIC_ROUNDS = (
    RoundKind.ACKNOWLEDGEMENT.value,
    RoundKind.UPDATE.value,
    RoundKind.REOPENED.value,
    RoundKind.RESOLUTION.value,
)


def incidents_since(conn: Connection, since: datetime) -> list[Incident]:
    """Incidents not voided that were open at some time from ``since`` on: still open, or
    resolved at or after it. Oldest first."""
    i = t.incidents
    q = (
        select(i)
        .where(
            i.c.status != IncidentStatus.VOIDED.value,
            or_(i.c.resolved_at.is_(None), i.c.resolved_at >= since),
        )
        .order_by(i.c.started_at, i.c.id)
    )
    return [row_to_incident(r) for r in conn.execute(q)]


def public_rounds(conn: Connection, incident_ids: Iterable[int]) -> dict[int, list[Round]]:
    """incident id -> its public rounds (``PUBLIC_ROUNDS``), in order."""
    r = t.rounds
    out: dict[int, list[Round]] = {}
    for ids in chunks(sorted(set(incident_ids))):
        q = (
            select(r)
            .where(r.c.incident_id.in_(ids), r.c.kind.in_(PUBLIC_ROUNDS))
            .order_by(r.c.incident_id, r.c.seq)
        )
        for row in conn.execute(q):
            out.setdefault(row.incident_id, []).append(row_to_round(row))
    return out


def directory_components(conn: Connection) -> list[str]:
    """Every component key some customer of the directory uses, sorted."""
    seen: set[str] = set()
    for (components,) in conn.execute(select(t.customers.c.components)):
        seen.update(str(c) for c in components or ())
    return sorted(seen)
