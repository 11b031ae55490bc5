"""What a customer's incident page reads: their deliveries, replies, credit and score, and
the revocation of their links. One read transaction per page view (``pages.incident``)."""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, delete, func, select

from outagecomms.store import tables as t
from outagecomms.store.engine import upsert
from outagecomms.store.outbox import decode_content
from outagecomms.values import as_utc


def revoked_before(conn: Connection, customer_id: str) -> datetime | None:
    """Links of ``customer_id`` issued before this are refused (None: none revoked)."""
    r = t.page_revocations
    v = conn.execute(
        select(r.c.revoked_before).where(r.c.customer_id == customer_id)
    ).scalar_one_or_none()
    return as_utc(cast("datetime | None", v))


def revoke(conn: Connection, customer_id: str, at: datetime, by: str, reason: str) -> None:
    """Refuse every link of ``customer_id`` issued before ``at`` (later ones still work)."""
    upsert(
        conn,
        t.page_revocations,
        [{"customer_id": customer_id, "revoked_before": at, "revoked_by": by, "reason": reason}],
        key=("customer_id",),
        columns=["revoked_before", "revoked_by", "reason"],
    )


def unrevoke(conn: Connection, customer_id: str) -> int:
    r = t.page_revocations
    return int(conn.execute(delete(r).where(r.c.customer_id == customer_id)).rowcount or 0)


#: what sent deliveries said, decoded (zlib, JSON) once per process: a sent message never
#: changes, and a page after a fan-out is read by many customers in turn
_SENT: OrderedDict[tuple[int, object, int, int], tuple[str, str]] = OrderedDict()
_SENT_MAX = 4096
_SENT_LOCK = threading.Lock()


def _sent_text(delivery_id: int, sent_at: object, blob: bytes | None) -> tuple[str, str]:
    """(subject, text) of what was sent, decoded once per process. Keyed by the stored bytes
    themselves (their length and CRC-32, with the delivery and when it was sent), so two
    stores in one process, or a delivery sent again (``deliveries retry``), never share an
    entry."""
    if blob is None:
        return "", ""
    key = (delivery_id, sent_at, len(blob), zlib.crc32(blob))
    with _SENT_LOCK:
        hit = _SENT.get(key)
        if hit is not None:
            _SENT.move_to_end(key)
            return hit
    content = decode_content(blob) or {}
    value = (str(content.get("subject") or ""), str(content.get("text") or ""))
    with _SENT_LOCK:
        _SENT[key] = value
        while len(_SENT) > _SENT_MAX:
            _SENT.popitem(last=False)
    return value


def timeline(conn: Connection, incident_id: int, customer_id: str) -> list[dict[str, Any]]:
    """Every delivery of the incident to the customer (their account manager's copies left
    out), oldest round first: round seq, kind, status, created_at, channel, delivery status,
    sent_at, and what was sent (subject, text) once it was."""
    d, r = t.deliveries, t.rounds
    q = (
        select(
            d.c.id,
            d.c.channel,
            d.c.status,
            d.c.sent_at,
            d.c.content,
            r.c.seq,
            r.c.kind,
            r.c.status.label("round_status"),
            r.c.created_at,
            r.c.message,
        )
        .join(r, r.c.id == d.c.round_id)
        .where(d.c.incident_id == incident_id, d.c.customer_id == customer_id)
        .order_by(r.c.seq, d.c.channel)
    )
    out = []
    for row in conn.execute(q):
        if row.channel.endswith("+am"):
            continue
        subject, text = _sent_text(int(row.id), row.sent_at, row.content)
        out.append(
            {
                "delivery_id": int(row.id),
                "channel": row.channel,
                "status": row.status,
                "sent_at": as_utc(row.sent_at),
                "seq": int(row.seq),
                "kind": row.kind,
                "round_status": row.round_status,
                "created_at": as_utc(row.created_at),
                "message": row.message,
                "subject": subject,
                "text": text,
            }
        )
    return out


def replies(
    conn: Connection, incident_id: int, customer_id: str, limit: int = 50
) -> list[dict[str, Any]]:
    """What the customer told us about the incident (replies on any channel), oldest first."""
    i = t.inbound
    q = (
        select(i.c.id, i.c.channel, i.c.received_at, i.c.text, i.c.responded_at)
        .where(
            i.c.incident_id == incident_id,
            i.c.customer_id == customer_id,
            i.c.kind == "reply",
        )
        .order_by(i.c.received_at.desc(), i.c.id.desc())
        .limit(limit)
    )
    rows = [
        {
            "id": int(x.id),
            "channel": x.channel,
            "received_at": as_utc(x.received_at),
            "text": x.text,
            "responded_at": as_utc(x.responded_at),
        }
        for x in conn.execute(q)
    ]
    rows.reverse()
    return rows


def score(conn: Connection, incident_id: int, customer_id: str) -> int | None:
    f = t.feedback
    v = conn.execute(
        select(f.c.score).where(f.c.incident_id == incident_id, f.c.customer_id == customer_id)
    ).scalar_one_or_none()
    return None if v is None else int(v)


def fingerprint(conn: Connection, incident_id: int, customer_id: str) -> tuple[Any, ...]:
    """A value that changes whenever anything the customer's page shows changes: the
    incident's version, their deliveries' states, their replies, credit and score."""
    d, i, c, f, inc = t.deliveries, t.inbound, t.credits, t.feedback, t.incidents
    version = conn.execute(select(inc.c.version).where(inc.c.id == incident_id)).scalar()
    dl = conn.execute(
        select(func.count(), func.max(d.c.sent_at), func.max(d.c.id)).where(
            d.c.incident_id == incident_id, d.c.customer_id == customer_id
        )
    ).one()
    sent = conn.execute(
        select(func.count()).where(
            d.c.incident_id == incident_id,
            d.c.customer_id == customer_id,
            d.c.status == "sent",
        )
    ).scalar()
    rp = conn.execute(
        select(func.count(), func.max(i.c.responded_at)).where(
            i.c.incident_id == incident_id, i.c.customer_id == customer_id
        )
    ).one()
    cr = conn.execute(
        select(c.c.status, c.c.amount, c.c.goodwill).where(
            c.c.incident_id == incident_id, c.c.customer_id == customer_id
        )
    ).one_or_none()
    sc = conn.execute(
        select(f.c.score).where(f.c.incident_id == incident_id, f.c.customer_id == customer_id)
    ).scalar()
    return (
        version,
        int(dl[0]),
        str(dl[1]),
        dl[2],
        sent,
        int(rp[0]),
        str(rp[1]),
        None if cr is None else tuple(cr),
        sc,
    )
