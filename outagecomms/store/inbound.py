"""What customers sent back (``inbound``) and what we sent because of it (``inbound_sends``):
rows in, rows out. The decisions are in ``outagecomms.inbound``."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from outagecomms.store import tables as t
from outagecomms.store.engine import chunks, conflict_insert
from outagecomms.values import as_utc

#: the columns a reply is shown with (``replies --json``), beyond its id
REPLY_COLUMNS = (
    "id",
    "incident_id",
    "round_id",
    "customer_id",
    "channel",
    "source",
    "kind",
    "reason",
    "received_at",
    "sender",
    "subject",
    "text",
    "language",
    "sentiment",
    "label",
    "needs_person",
    "escalated_at",
    "escalation",
    "acknowledged_at",
    "responded_at",
    "bounce",
    "matched_by",
    "unmatched_reason",
    "parse_note",
    "message_id",
    "delivery_id",
    "status",
)
_TIMES = ("received_at", "escalated_at", "acknowledged_at", "responded_at", "processed_at")


def _row(r: Any) -> dict[str, Any]:
    row = dict(r._mapping)
    for k in _TIMES:
        if k in row:
            row[k] = as_utc(row[k])
    if "needs_person" in row:
        row["needs_person"] = bool(row["needs_person"])
    return row


# --- storing --------------------------------------------------------------------------------


def _message_values(row: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(row)
    values["raw"] = zlib.compress(values["raw"], 1)
    values.setdefault("status", "received")
    for key in ("message_id", "sender", "subject", "reason", "parse_note", "matched_by"):
        values.setdefault(key, "")
    values.setdefault("unmatched_reason", "")
    values.setdefault("text", "")
    values.setdefault("needs_person", 0)
    values.setdefault("recipients", [])
    return values


def insert_messages(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, bool]]:
    """``insert_message`` for many (a group commit): the digests already stored read in one
    query, the new messages inserted in one statement; a message twice in ``rows`` is stored
    once. Should another process store one of them meanwhile (PostgreSQL), each is inserted
    on its own as ``insert_message`` does."""
    i = t.inbound
    digests = [r["digest"] for r in rows]
    known: dict[str, int] = {}
    for part in chunks(sorted(set(digests)), 500):
        q = select(i.c.digest, i.c.id).where(i.c.digest.in_(part))
        known.update({str(d): int(n) for d, n in conn.execute(q)})
    fresh: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["digest"] not in known and r["digest"] not in fresh:
            fresh[r["digest"]] = _message_values(r)
    if fresh:
        stmt = insert(i).returning(i.c.id, i.c.digest, sort_by_parameter_order=True)
        try:
            with conn.begin_nested():
                for new_id, dig in conn.execute(stmt, list(fresh.values())):
                    known[str(dig)] = int(new_id)
        except IntegrityError:  # a race with another process: one at a time
            return [insert_message(conn, r) for r in rows]
    out: list[tuple[int, bool]] = []
    first: set[str] = set()
    for r in rows:
        dig = r["digest"]
        new = dig in fresh and dig not in first
        first.add(dig)
        out.append((known[dig], not new))
    return out


def insert_message(conn: Connection, row: Mapping[str, Any]) -> tuple[int, bool]:
    """Store one message as received; (its id, False), or (the id of the same message stored
    before, True) when its digest is already there. Runs in a savepoint so a duplicate leaves
    the caller's transaction usable."""
    values = _message_values(row)
    try:
        with conn.begin_nested():
            pk = conn.execute(insert(t.inbound), values).inserted_primary_key
            assert pk is not None
            new_id = pk[0]
        return int(new_id), False
    except IntegrityError:
        existing = conn.execute(
            select(t.inbound.c.id).where(t.inbound.c.digest == values["digest"])
        ).scalar_one_or_none()
        if existing is None:
            raise
        return int(existing), True


def get_message(conn: Connection, inbound_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(t.inbound).where(t.inbound.c.id == inbound_id)).first()
    if row is None:
        return None
    out = _row(row)
    out["raw"] = zlib.decompress(out["raw"])
    return out


def get_messages(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Several messages by id (raw bytes decompressed), in one query per 500."""
    out: dict[int, dict[str, Any]] = {}
    for part in chunks(sorted(set(ids)), 500):
        for r in conn.execute(select(t.inbound).where(t.inbound.c.id.in_(part))):
            row = _row(r)
            row["raw"] = zlib.decompress(row["raw"])
            out[int(row["id"])] = row
    return out


def claim_many(conn: Connection, ids: Sequence[int]) -> set[int]:
    """Mark received messages processed in this transaction; the ids this transaction took
    (one another process processed already is left out: the caller skips it)."""
    i = t.inbound
    taken: set[int] = set()
    for part in chunks(sorted(set(ids)), 500):
        res = conn.execute(
            update(i)
            .where(i.c.id.in_(part), i.c.status == "received")
            .values(status="processed")
            .returning(i.c.id)
        )
        taken.update(int(x) for x in res.scalars())
    return taken


def pending_ids(conn: Connection, limit: int = 500) -> list[int]:
    """Messages stored but not yet processed (a crash between the two): oldest first."""
    i = t.inbound
    q = select(i.c.id).where(i.c.status == "received").order_by(i.c.id).limit(limit)
    return [int(x) for x in conn.execute(q).scalars()]


def record_processed_many(conn: Connection, items: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
    """``record_processed`` for many: one executemany per shape of values."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for inbound_id, values in items:
        cols = tuple(sorted(values))
        groups.setdefault(cols, []).append({"b_id": inbound_id, "status": "processed", **values})
    for cols, params in groups.items():
        conn.execute(_processed_stmt(cols), params)


@lru_cache(maxsize=64)
def _processed_stmt(cols: tuple[str, ...]) -> Any:
    """``UPDATE inbound SET status, <cols> WHERE id``, built once per set of columns (a
    statement's ``.values()`` costs more than the write itself)."""
    i = t.inbound
    return (
        update(i)
        .where(i.c.id == bindparam("b_id"))
        .values({c: bindparam(c) for c in ("status", *cols)})
    )


def set_times(conn: Connection, ids: Iterable[int], **values: datetime | None) -> None:
    """``responded_at`` / ``acknowledged_at`` / ``escalated_at`` on these messages."""
    for part in chunks(sorted(set(ids))):
        conn.execute(update(t.inbound).where(t.inbound.c.id.in_(part)).values(**values))


# --- reading --------------------------------------------------------------------------------


def replies(
    conn: Connection,
    incident_id: int | None,
    *,
    label: str | None = None,
    kind: str | None = None,
    customer_id: str | None = None,
    unmatched: bool = False,
    since_id: int = 0,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """An incident's messages (or, ``unmatched``, those attributed to nobody), oldest first.
    ``since_id``: only newer ones (``watch``)."""
    i = t.inbound
    cols = [i.c[c] for c in REPLY_COLUMNS]
    q = select(*cols).where(i.c.status == "processed", i.c.id > since_id).order_by(i.c.id)
    if unmatched:
        q = q.where(i.c.customer_id.is_(None))
    else:
        q = q.where(i.c.incident_id == incident_id, i.c.customer_id.is_not(None))
    if label is not None:
        q = q.where(i.c.label == label)
    if kind is not None:
        q = q.where(i.c.kind == kind)
    if customer_id is not None:
        q = q.where(i.c.customer_id == customer_id)
    if limit is not None:
        q = q.limit(limit)
    return [_row(r) for r in conn.execute(q)]


def counts(conn: Connection, incident_id: int) -> dict[tuple[str, str], int]:
    """(kind, label or "") -> how many, for ``show``."""
    i = t.inbound
    q = (
        select(i.c.kind, i.c.label, func.count())
        .where(i.c.incident_id == incident_id, i.c.customer_id.is_not(None))
        .group_by(i.c.kind, i.c.label)
    )
    return {(k or "", lbl or ""): int(n) for k, lbl, n in conn.execute(q)}


def totals(conn: Connection) -> dict[tuple[str, str], int]:
    """(kind, label or "") -> how many, over the whole store (``/metrics``)."""
    i = t.inbound
    q = select(i.c.kind, i.c.label, func.count()).group_by(i.c.kind, i.c.label)
    return {(k or "unprocessed", lbl or ""): int(n) for k, lbl, n in conn.execute(q)}


def latest_from(conn: Connection, incident_id: int, customer_id: str) -> dict[str, Any] | None:
    """The customer's newest message in the incident from a person (what ``respond`` answers)."""
    i = t.inbound
    row = conn.execute(
        select(*[i.c[c] for c in REPLY_COLUMNS])
        .where(
            i.c.incident_id == incident_id,
            i.c.customer_id == customer_id,
            i.c.kind == "reply",
        )
        .order_by(i.c.id.desc())
        .limit(1)
    ).first()
    return _row(row) if row is not None else None


def customer_incident_count(conn: Connection, customer_id: str, since: datetime) -> int:
    """How many incidents declared since ``since`` had this customer in their audience."""
    a, inc = t.audience, t.incidents
    q = (
        select(func.count(func.distinct(a.c.incident_id)))
        .select_from(a.join(inc, inc.c.id == a.c.incident_id))
        .where(a.c.customer_id == customer_id, inc.c.declared_at >= since)
    )
    return int(conn.execute(q).scalar_one())


# --- what we send because of them -----------------------------------------------------------


def queue_send(conn: Connection, row: Mapping[str, Any]) -> int | None:
    """Queue one message; None when its ``dedup`` key was queued before (at most one
    automatic message per customer per round)."""
    values = {"status": "pending", "attempts": 0, "headers": {}, "created_by": "", **row}
    values.setdefault("next_attempt_at", values["created_at"])
    for key in _SEND_DEFAULTS:
        values.setdefault(key, _SEND_DEFAULTS[key])
    if values.get("dedup") is None:
        pk = conn.execute(insert(t.inbound_sends), values).inserted_primary_key
        assert pk is not None
        return int(pk[0])
    try:
        with conn.begin_nested():  # a duplicate leaves the caller's transaction usable
            pk = conn.execute(insert(t.inbound_sends), values).inserted_primary_key
            assert pk is not None
    except IntegrityError:
        return None
    return int(pk[0])


#: every column queue_send writes, so each insert has the same shape (one compiled statement)
_SEND_DEFAULTS: dict[str, Any] = {
    "inbound_id": None,
    "incident_id": None,
    "customer_id": "",
    "subject": "",
    "text": "",
    "message_id": "",
    "dedup": None,
    "last_error": None,
    "lease_until": None,
    "sent_at": None,
}


def queue_sends(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[bool]:
    """``queue_send`` for many: whether each was queued (False: its ``dedup`` key was queued
    before, or earlier in ``rows``). One executemany for the rows without a key."""
    full = []
    for row in rows:
        values = {"status": "pending", "attempts": 0, "headers": {}, "created_by": "", **row}
        values.setdefault("next_attempt_at", values["created_at"])
        for key, default in _SEND_DEFAULTS.items():
            values.setdefault(key, default)
        full.append(values)
    keys = [v["dedup"] for v in full if v["dedup"] is not None]
    seen: set[str] = set()
    s_ = t.inbound_sends
    for part in chunks(sorted(set(keys)), 500):
        seen.update(conn.execute(select(s_.c.dedup).where(s_.c.dedup.in_(part))).scalars())
    ok: list[bool] = []
    plain: list[dict[str, Any]] = []
    for v in full:
        if v["dedup"] is None:
            plain.append(v)
            ok.append(True)
        elif v["dedup"] in seen:
            ok.append(False)
        else:
            seen.add(v["dedup"])
            ok.append(_insert_once(conn, v))
    if plain:
        conn.execute(insert(s_), plain)
    return ok


def _insert_once(conn: Connection, values: dict[str, Any]) -> bool:
    """Insert a row with a ``dedup`` key unless another process just did (PostgreSQL: ON
    CONFLICT DO NOTHING; SQLite holds the write lock, so the read above was enough)."""
    stmt = conflict_insert(conn, t.inbound_sends)
    if stmt is None:  # pragma: no cover - another dialect
        return queue_send(conn, values) is not None
    res = conn.execute(stmt.on_conflict_do_nothing(index_elements=["dedup"]), values)
    return bool(res.rowcount)


def claim_sends(
    conn: Connection, now: datetime, lease: timedelta, limit: int = 200
) -> list[dict[str, Any]]:
    """Take the sends that are due (or whose sender's lease ran out) for ``lease``."""
    s = t.inbound_sends
    due = or_(
        and_(s.c.status == "pending", s.c.next_attempt_at <= now),
        and_(s.c.status == "sending", s.c.lease_until < now),
    )
    q = select(s).where(due).order_by(s.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = [dict(r._mapping) for r in conn.execute(q)]
    if rows:
        conn.execute(
            update(s)
            .where(s.c.id.in_([r["id"] for r in rows]))
            .values(status="sending", lease_until=now + lease)
        )
    return rows


def finish_send(
    conn: Connection,
    send_id: int,
    *,
    status: str,
    at: datetime,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    s = t.inbound_sends
    values: dict[str, Any] = {
        "status": status,
        "lease_until": None,
        "last_error": error,
        "attempts": s.c.attempts + 1,
    }
    if status == "sent":
        values["sent_at"] = at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    conn.execute(update(s).where(s.c.id == send_id).values(**values))


def next_send_due(conn: Connection) -> datetime | None:
    """When a send is next owed: a pending one's time, or a sender's lease running out."""
    s = t.inbound_sends
    pending = conn.execute(
        select(func.min(s.c.next_attempt_at)).where(s.c.status == "pending")
    ).scalar_one_or_none()
    leased = conn.execute(
        select(func.min(s.c.lease_until)).where(s.c.status == "sending")
    ).scalar_one_or_none()
    times = [as_utc(x) for x in (pending, leased) if x is not None]
    return min(times) if times else None


def sends_for(
    conn: Connection, incident_id: int, customer_id: str | None = None
) -> list[dict[str, Any]]:
    """What we sent (or are sending) because of an incident's replies: ``show --customer``."""
    s = t.inbound_sends
    q = select(s).where(s.c.incident_id == incident_id).order_by(s.c.id)
    if customer_id is not None:
        q = q.where(s.c.customer_id == customer_id)
    out = []
    for r in conn.execute(q):
        row = dict(r._mapping)
        for k in ("created_at", "sent_at", "next_attempt_at", "lease_until"):
            row[k] = as_utc(row[k])
        out.append(row)
    return out


def escalation_latencies(conn: Connection, limit: int = 10_000) -> list[float]:
    """Seconds from a reply reaching us to its first escalation being accepted, newest
    ``limit`` (``/metrics``)."""
    s, i = t.inbound_sends, t.inbound
    q = (
        select(i.c.received_at, func.min(s.c.sent_at))
        .select_from(s.join(i, i.c.id == s.c.inbound_id))
        .where(s.c.kind == "escalation", s.c.sent_at.is_not(None))
        .group_by(i.c.id, i.c.received_at)
        .order_by(i.c.id.desc())
        .limit(limit)
    )
    out = []
    for received, sent in conn.execute(q):
        out.append((as_utc(sent) - as_utc(received)).total_seconds())
    return out


# --- keeping personal data no longer than configured ------------------------------------------


def prune(conn: Connection, before: datetime) -> tuple[int, int]:
    """Delete messages received before ``before`` and what was sent because of them;
    (messages, sends) deleted."""
    i, s = t.inbound, t.inbound_sends
    old = select(i.c.id).where(i.c.received_at < before)
    sends = conn.execute(delete(s).where(s.c.inbound_id.in_(old))).rowcount
    messages = conn.execute(delete(i).where(i.c.received_at < before)).rowcount
    return int(messages or 0), int(sends or 0)
