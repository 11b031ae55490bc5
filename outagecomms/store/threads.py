"""What a later message refers back to: the news a holding round restates, and each
customer's acknowledgement delivery (the root of their email thread)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from outagecomms.models import Round, RoundKind
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks
from outagecomms.store.incidents import row_to_round

#: the rounds that carry news a holding update restates: the commander's words
NEWS_KINDS = (RoundKind.ACKNOWLEDGEMENT, RoundKind.UPDATE, RoundKind.REOPENED)


def latest_news(conn: Connection, incident_id: int, before_seq: int | None = None) -> Round | None:
    """The newest acknowledgement or update (before round ``before_seq``) that customers were
    told (a round recorded with ``--no-send`` promised nothing and told nobody)."""
    r = t.rounds
    q = (
        select(r)
        .where(
            r.c.incident_id == incident_id,
            r.c.kind.in_([k.value for k in NEWS_KINDS]),
            r.c.promised_next_by.is_not(None),
        )
        .order_by(r.c.seq.desc())
        .limit(1)
    )
    if before_seq is not None:
        q = q.where(r.c.seq < before_seq)
    row = conn.execute(q).first()
    return row_to_round(row) if row is not None else None


def acknowledgement(conn: Connection, incident_id: int) -> Round | None:
    """The incident's acknowledgement round (its first)."""
    r = t.rounds
    row = conn.execute(
        select(r)
        .where(r.c.incident_id == incident_id, r.c.kind == RoundKind.ACKNOWLEDGEMENT.value)
        .order_by(r.c.seq)
        .limit(1)
    ).first()
    return row_to_round(row) if row is not None else None


def acknowledgement_deliveries(
    conn: Connection, ack: Round, customer_ids: Iterable[str]
) -> dict[tuple[str, str], int]:
    """(customer, channel) -> the id of their acknowledgement delivery (which names its
    Message-ID), for these customers."""
    d = t.deliveries
    out: dict[tuple[str, str], int] = {}
    for part in chunks(sorted(set(customer_ids)), 500):
        q = select(d.c.customer_id, d.c.channel, d.c.id).where(
            d.c.incident_id == ack.incident_id,
            d.c.round_id == ack.id,
            d.c.customer_id.in_(part),
        )
        for customer_id, channel, delivery_id in conn.execute(q):
            out[(customer_id, channel)] = delivery_id
    return out
