"""Customers' scores (NPS) and comments: one row per customer per incident."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from outagecomms.store import tables as t
from outagecomms.store.engine import upsert

_KEY = ("incident_id", "customer_id")


def upsert_feedback(conn: Connection, values: dict[str, Any], *, keep_comment: bool) -> None:
    """Insert the customer's feedback, or replace the stored score (and the comment, unless
    ``keep_comment``)."""
    changes = [k for k in values if k not in _KEY and not (keep_comment and k == "comment")]
    upsert(conn, t.feedback, [values], key=_KEY, columns=changes)


class Score(NamedTuple):
    incident_id: int
    customer_id: str
    score: int
    comment: str


def scores(conn: Connection, incident_id: int | None = None) -> list[Score]:
    """Feedback of one incident (or of all), by incident and in the order it came."""
    fb = t.feedback
    q = select(fb.c.incident_id, fb.c.customer_id, fb.c.score, fb.c.comment).order_by(
        fb.c.incident_id, fb.c.received_at, fb.c.customer_id
    )
    if incident_id is not None:
        q = q.where(fb.c.incident_id == incident_id)
    return [Score(*r) for r in conn.execute(q)]
