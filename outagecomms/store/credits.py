"""The credit ledger's rows, and the facts a credit is computed from (downtime spans, when the
acknowledgement was delivered, what earlier incidents this month credited)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select, update

from outagecomms.models import DeliveryStatus, IncidentStatus, RoundKind
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks
from outagecomms.values import as_utc

#: a credit's life: recomputed while proposed, frozen once approved, exported for billing
PROPOSED, APPROVED, EXPORTED = "proposed", "approved", "exported"
#: a credit the engine could not compute for that customer: a person decides it; recomputed
#: like a proposed one, never approved by ``credits --approve``
REVIEW = "review"
_RECOMPUTED = (PROPOSED, REVIEW)


# --- the facts ------------------------------------------------------------------------------


class Downtime(NamedTuple):
    """A resolved incident: from when customers were hurt until it was resolved."""

    incident_id: int
    started_at: datetime
    resolved_at: datetime
    severity: str


def resolved_incidents(conn: Connection, customer_ids: Sequence[str]) -> dict[str, list[Downtime]]:
    """Every resolved incident each customer was in the audience of (not a voided one: a
    false alarm or a duplicate counts for no uptime or repeat rule)."""
    i, a = t.incidents, t.audience
    out: dict[str, list[Downtime]] = {c: [] for c in customer_ids}
    for ids in chunks(customer_ids):
        q = (
            select(a.c.customer_id, i.c.id, i.c.started_at, i.c.resolved_at, i.c.severity)
            .join(i, i.c.id == a.c.incident_id)
            .where(
                a.c.customer_id.in_(ids),
                i.c.resolved_at.is_not(None),
                i.c.status != IncidentStatus.VOIDED.value,
            )
            .distinct()
        )
        for cid, iid, started, resolved, sev in conn.execute(q):
            out[cid].append(Downtime(iid, as_utc(started), as_utc(resolved), sev))
    return out


def ack_delivered(conn: Connection, incident_id: int) -> dict[str, datetime]:
    """customer -> when their acknowledgement was first delivered."""
    d, r = t.deliveries, t.rounds
    q = (
        select(d.c.customer_id, func.min(d.c.sent_at))
        .join(r, r.c.id == d.c.round_id)
        .where(
            d.c.incident_id == incident_id,
            r.c.kind == RoundKind.ACKNOWLEDGEMENT.value,
            d.c.status == DeliveryStatus.SENT.value,
        )
        .group_by(d.c.customer_id)
    )
    return {cid: as_utc(at) for cid, at in conn.execute(q)}


class OtherCredit(NamedTuple):
    customer_id: str
    amount: Decimal
    started_at: datetime  # of its incident
    incident_id: int


def credits_since(
    conn: Connection, customer_ids: Sequence[str], since: datetime, *, other_than: int
) -> list[OtherCredit]:
    """These customers' credits for incidents (but ``other_than``) started at ``since`` or later."""
    c, i = t.credits, t.incidents
    out: list[OtherCredit] = []
    for ids in chunks(customer_ids):
        q = (
            select(c.c.customer_id, c.c.amount, i.c.started_at, i.c.id)
            .join(i, i.c.id == c.c.incident_id)
            .where(c.c.customer_id.in_(ids), c.c.incident_id != other_than, i.c.started_at >= since)
        )
        for cid, amount, started, iid in conn.execute(q):
            out.append(OtherCredit(cid, Decimal(amount), as_utc(started), iid))
    return out


# --- the ledger -----------------------------------------------------------------------------


def frozen_customers(conn: Connection, incident_id: int) -> set[str]:
    """Customers whose credit for this incident is no longer only proposed."""
    c = t.credits
    q = select(c.c.customer_id).where(
        c.c.incident_id == incident_id, c.c.status.not_in(_RECOMPUTED)
    )
    return {r[0] for r in conn.execute(q)}


def replace_proposed(conn: Connection, incident_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """The incident's proposed credits become ``rows`` (approved ones stay as they are)."""
    c = t.credits
    conn.execute(c.delete().where(c.c.incident_id == incident_id, c.c.status.in_(_RECOMPUTED)))
    for chunk in chunks(rows):
        conn.execute(c.insert(), list(chunk))


def replace_rows(conn: Connection, incident_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (whole credit rows) in place of those customers' rows for the incident;
    the other customers' rows stay as they are."""
    c = t.credits
    ids = [r["customer_id"] for r in rows]
    for chunk in chunks(ids):
        conn.execute(
            c.delete().where(c.c.incident_id == incident_id, c.c.customer_id.in_(list(chunk)))
        )
    names = [col.name for col in c.columns]
    whole = [{n: r.get(n) for n in names} for r in rows]  # one shape: one executemany
    for part in chunks(whole):
        conn.execute(c.insert(), list(part))


def _one(incident_id: int, customer_id: str) -> Any:
    c = t.credits
    return update(c).where(c.c.incident_id == incident_id, c.c.customer_id == customer_id)


def approve_customer(
    conn: Connection, incident_id: int, customer_id: str, *, at: datetime, by: str
) -> int:
    """Approve one customer's proposed credit; 0 when it is no longer proposed."""
    res = conn.execute(
        _one(incident_id, customer_id)
        .where(t.credits.c.status == PROPOSED)
        .values(status=APPROVED, approved_at=at, approved_by=by[:200])
    )
    return int(res.rowcount or 0)


def mark_announced(
    conn: Connection,
    incident_id: int,
    customer_id: str,
    *,
    at: datetime,
    amount: str,
    goodwill: str | None,
    corrects: str | None,
) -> None:
    """A notice stating ``amount`` (and ``goodwill``) is queued for this customer."""
    conn.execute(
        _one(incident_id, customer_id).values(
            announced_at=at, announced_amount=amount, announced_goodwill=goodwill, corrects=corrects
        )
    )


def set_adjusted(
    conn: Connection,
    incident_id: int,
    customer_id: str,
    *,
    amount: str,
    by: str,
    at: datetime,
    reason: str,
    computed: str,
) -> None:
    """A person's decision: the amount, who, when, why; proposed again (to be approved)."""
    conn.execute(
        _one(incident_id, customer_id).values(
            amount=amount,
            status=PROPOSED,
            approved_at=None,
            approved_by=None,
            adjusted_by=by[:200],
            adjusted_at=at,
            adjust_reason=reason,
            computed_amount=computed,
        )
    )


def set_status(conn: Connection, incident_id: int, *, expect: str, to: str, **values: Any) -> int:
    """Move the incident's credits in status ``expect`` to ``to``; returns how many moved."""
    c = t.credits
    res = conn.execute(
        update(c)
        .where(c.c.incident_id == incident_id, c.c.status == expect)
        .values(status=to, **values)
    )
    return int(res.rowcount or 0)


def customer_credit(conn: Connection, incident_id: int, customer_id: str) -> dict[str, Any] | None:
    c = t.credits
    q = select(c).where(c.c.incident_id == incident_id, c.c.customer_id == customer_id)
    row = conn.execute(q).first()
    return dict(row._mapping) if row else None


def incident_credits(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    """The incident's credit rows, by customer id."""
    c = t.credits
    q = select(c).where(c.c.incident_id == incident_id).order_by(c.c.customer_id)
    return [dict(r._mapping) for r in conn.execute(q)]
