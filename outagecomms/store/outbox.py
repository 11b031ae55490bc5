"""The outbox: one delivery row per (round, customer, channel), written with its round in one
statement, then claimed with a lease, sent, and recorded.

Claims take ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several senders share the outbox
without waiting on each other; on SQLite every write transaction holds the database's write
lock from ``BEGIN IMMEDIATE``, which serialises claims the same way."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from outagecomms.incidents.messages import translations_of
from outagecomms.models import DeliveryStatus, IncidentStatus, Round, RoundKind, RoundStats
from outagecomms.store import reporting
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks
from outagecomms.store.incidents import (
    IncidentRow,
    get_incident,
    get_round,
    list_events,
    list_rounds,
    only_customers,
)
from outagecomms.values import as_utc

#: what ``deliveries retry`` may put back in the outbox
RETRYABLE = (DeliveryStatus.FAILED.value, DeliveryStatus.DEAD.value)

# --- a round's deliveries -------------------------------------------------------------------


def insert_round_with_deliveries(
    conn: Connection,
    *,
    incident_id: int,
    kind: RoundKind,
    message: str,
    status: IncidentStatus,
    created_at: datetime,
    due_by: datetime | None,
    promised_next_by: datetime | None,
    queue: bool = True,
    customers: Sequence[str] | None = None,
) -> Round:
    """Write a round and one pending delivery per audience (customer, channel): one statement.
    ``queue=False`` records the round only (nothing is sent). ``customers``: only these
    audience customers (a credit notice), never a once-per-round channel.

    Pending deliveries of earlier update/holding rounds are superseded: a customer must not get
    a stale "next update by 14:30" after a newer message.
    """
    seq = conn.execute(
        select(func.coalesce(func.max(t.rounds.c.seq), 0) + 1).where(
            t.rounds.c.incident_id == incident_id
        )
    ).scalar_one()
    round_id = conn.execute(
        insert(t.rounds)
        .values(
            incident_id=incident_id,
            seq=seq,
            kind=kind.value,
            message=message,
            translations=dict(translations_of(message)) or None,
            status=status.value,
            created_at=created_at,
            due_by=due_by,
            promised_next_by=promised_next_by,
        )
        .returning(t.rounds.c.id)
    ).scalar_one()
    if not queue:
        return get_round(conn, round_id)
    if kind not in (RoundKind.ACKNOWLEDGEMENT, RoundKind.CREDIT):
        # an acknowledgement still waiting (its provider was down) would now arrive after
        # newer news with a stale "next update by": the new round reaches the customer instead
        stale = select(t.rounds.c.id).where(
            t.rounds.c.incident_id == incident_id,
            t.rounds.c.kind.in_(
                [RoundKind.ACKNOWLEDGEMENT.value, RoundKind.UPDATE.value, RoundKind.HOLDING.value]
            ),
            t.rounds.c.id != round_id,
        )
        conn.execute(
            update(t.deliveries)
            .where(
                t.deliveries.c.incident_id == incident_id,
                t.deliveries.c.status == DeliveryStatus.PENDING.value,
                t.deliveries.c.round_id.in_(stale),
            )
            .values(status=DeliveryStatus.SUPERSEDED.value, last_error=f"superseded by round {seq}")
        )
    src = select(
        t.audience.c.incident_id,
        literal(round_id, t.BigId),
        t.audience.c.customer_id,
        t.audience.c.channel,
        literal(DeliveryStatus.PENDING.value),
        literal(0),
        literal(created_at, t.TS),
    ).where(t.audience.c.incident_id == incident_id)
    if kind in (RoundKind.FOLLOW_UP, RoundKind.CREDIT):
        src = src.where(only_customers(t.audience))
    f = t.contact_flags
    src = src.where(
        ~exists().where(
            f.c.customer_id == t.audience.c.customer_id, f.c.channel == t.audience.c.channel
        )
    )
    columns = [
        "incident_id",
        "round_id",
        "customer_id",
        "channel",
        "status",
        "attempts",
        "next_attempt_at",
    ]
    if customers is None:
        conn.execute(insert(t.deliveries).from_select(columns, src))
    else:
        for chunk in chunks(list(customers)):
            part = src.where(t.audience.c.customer_id.in_(list(chunk)))
            conn.execute(insert(t.deliveries).from_select(columns, part))
    return get_round(conn, round_id)


def count_round_deliveries(conn: Connection, incident_id: int, round_id: int) -> int:
    d = t.deliveries
    q = select(func.count()).where(d.c.incident_id == incident_id, d.c.round_id == round_id)
    return int(conn.execute(q).scalar_one())


def incident_history(
    conn: Connection, incident_id: int
) -> tuple[IncidentRow, list[RoundStats], list[dict[str, Any]]]:
    """The incident, its rounds with their delivery counts, and its events: what ``show`` and
    the report both start from."""
    return (
        get_incident(conn, incident_id),
        round_stats(conn, incident_id),
        list_events(conn, incident_id),
    )


def round_stats(conn: Connection, incident_id: int) -> list[RoundStats]:
    d, r = t.deliveries, t.rounds
    on_time = func.sum(
        case(
            (and_(d.c.sent_at.is_not(None), r.c.due_by.is_not(None), d.c.sent_at <= r.c.due_by), 1),
            else_=0,
        )
    )
    q = (
        select(
            d.c.round_id,
            d.c.status,
            func.count(),
            on_time,
            func.min(d.c.sent_at),
            func.max(d.c.sent_at),
            func.sum(case((d.c.attempts > 0, 1), else_=0)),
        )
        .join(r, r.c.id == d.c.round_id)
        .where(d.c.incident_id == incident_id)
        .group_by(d.c.round_id, d.c.status)
    )
    acc: dict[int, dict[str, Any]] = {}
    empty = {"by_status": {}, "on_time": 0, "first": None, "last": None, "retrying": 0}
    for round_id, status, count, ontime, first, last, tried in conn.execute(q):
        a = acc.setdefault(round_id, {**empty, "by_status": {}})
        a["by_status"][status] = int(count)
        a["on_time"] += int(ontime or 0)
        if status == DeliveryStatus.PENDING.value:
            a["retrying"] = int(tried or 0)  # tried, failed for now, a retry is scheduled
        first, last = as_utc(first), as_utc(last)
        if first and (a["first"] is None or first < a["first"]):
            a["first"] = first
        if last and (a["last"] is None or last > a["last"]):
            a["last"] = last
    out = []
    for rnd in list_rounds(conn, incident_id):
        a = acc.get(rnd.id, {**empty, "by_status": {}})
        bs: dict[str, int] = a["by_status"]
        out.append(
            RoundStats(
                round=rnd,
                owed=sum(v for k, v in bs.items() if k != DeliveryStatus.SUPERSEDED.value),
                sent=bs.get("sent", 0),
                failed=bs.get("failed", 0) + bs.get("dead", 0),
                pending=bs.get("pending", 0) + bs.get("sending", 0),
                retrying=a["retrying"],
                on_time=a["on_time"],
                first_sent_at=a["first"],
                last_sent_at=a["last"],
                by_status=bs,
            )
        )
    return out


# --- claiming, sending, recording -----------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    incident_id: int
    round_id: int
    customer_id: str
    channel: str
    attempts: int


def claim_deliveries(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    incident_id: int | None = None,
    channels: Sequence[str] | None = None,
    not_owner_prefix: str | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries (pending, or 'sending' whose lease ran out).

    ``not_owner_prefix``: never take back what this very sender still has in flight."""
    d = t.deliveries
    expired = and_(d.c.status == DeliveryStatus.SENDING.value, d.c.lease_until < now)
    if not_owner_prefix is not None:
        expired = and_(expired, d.c.lease_owner.not_like(not_owner_prefix + "%"))
    due = or_(
        and_(d.c.status == DeliveryStatus.PENDING.value, d.c.next_attempt_at <= now),
        expired,
    )
    sub = select(d.c.id).where(due)
    if incident_id is not None:
        sub = sub.where(d.c.incident_id == incident_id)
    if channels is not None:
        sub = sub.where(d.c.channel.in_(list(channels)))
    sub = sub.order_by(d.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        sub = sub.with_for_update(skip_locked=True)
    ids = [r[0] for r in conn.execute(sub)]
    if not ids:
        return []
    conn.execute(
        update(d)
        .where(d.c.id.in_(ids))
        .values(
            status=DeliveryStatus.SENDING.value,
            lease_owner=owner,
            lease_until=now + lease,
            attempts=d.c.attempts + 1,
        )
    )
    q = select(
        d.c.id, d.c.incident_id, d.c.round_id, d.c.customer_id, d.c.channel, d.c.attempts
    ).where(d.c.id.in_(ids))
    return [Claimed(*r) for r in conn.execute(q.order_by(d.c.id))]


# Built once: the dispatcher writes each result promptly, so this runs once per few sends.
_RECORD_RESULT = (
    update(t.deliveries)
    .where(
        t.deliveries.c.id == bindparam("b_id"),
        t.deliveries.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        status=bindparam("b_status"),
        sent_at=bindparam("b_sent_at"),
        provider_id=bindparam("b_provider_id"),
        last_error=bindparam("b_last_error"),
        next_attempt_at=bindparam("b_next"),
        content=bindparam("b_content"),
        lease_owner=None,
        lease_until=None,
    )
)


def record_results(conn: Connection, owner: str, results: Sequence[dict[str, Any]]) -> int:
    """Write send outcomes for deliveries this owner still holds. Returns rows written.

    Each result dict: id, status, sent_at, provider_id, last_error, next_attempt_at, content.
    """
    if not results:
        return 0
    params = [
        {
            "b_id": r["id"],
            "b_owner": owner,
            "b_status": r["status"],
            "b_sent_at": r.get("sent_at"),
            "b_provider_id": r.get("provider_id"),
            "b_last_error": r.get("last_error"),
            "b_next": r.get("next_attempt_at"),
            "b_content": r.get("content"),
        }
        for r in results
    ]
    res = conn.execute(_RECORD_RESULT, params)
    return int(res.rowcount or 0)


def renew_lease(conn: Connection, owner: str, until: datetime) -> int:
    """Extend the lease on what this claim still holds (a long batch keeps its deliveries)."""
    d = t.deliveries
    res = conn.execute(
        update(d)
        .where(d.c.lease_owner == owner, d.c.status == DeliveryStatus.SENDING.value)
        .values(lease_until=until)
    )
    return int(res.rowcount or 0)


def release_leases(conn: Connection, owner_prefix: str) -> int:
    """Give back deliveries claimed by this process (graceful shutdown)."""
    d = t.deliveries
    res = conn.execute(
        update(d)
        .where(d.c.status == DeliveryStatus.SENDING.value, d.c.lease_owner.like(owner_prefix + "%"))
        .values(status=DeliveryStatus.PENDING.value, lease_owner=None, lease_until=None)
    )
    return int(res.rowcount or 0)


def encode_content(content: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(content, ensure_ascii=False).encode(), 1)


def decode_content(blob: bytes | None) -> dict[str, Any] | None:
    if not blob:
        return None
    return json.loads(zlib.decompress(blob))  # type: ignore[no-any-return]


# --- reading the outbox ---------------------------------------------------------------------


def next_pending_at(conn: Connection) -> datetime | None:
    """When the earliest pending delivery becomes due (None when there is none)."""
    d = t.deliveries
    v = conn.execute(
        select(func.min(d.c.next_attempt_at)).where(d.c.status == DeliveryStatus.PENDING.value)
    ).scalar_one()
    return as_utc(cast("datetime | None", v))


def count_deliveries(conn: Connection, incident_id: int | None = None) -> dict[str, int]:
    d = t.deliveries
    q = select(d.c.status, func.count()).group_by(d.c.status)
    if incident_id is not None:
        q = q.where(d.c.incident_id == incident_id)
    return {r[0]: int(r[1]) for r in conn.execute(q)}


def count_status(conn: Connection, incident_id: int, status: DeliveryStatus) -> int:
    d = t.deliveries
    q = select(func.count()).where(d.c.incident_id == incident_id, d.c.status == status.value)
    return int(conn.execute(q).scalar_one())


def customer_deliveries(
    conn: Connection, incident_id: int, customer_id: str
) -> list[dict[str, Any]]:
    d, r = t.deliveries, t.rounds
    q = (
        select(d, r.c.seq, r.c.kind, r.c.due_by)
        .join(r, r.c.id == d.c.round_id)
        .where(d.c.incident_id == incident_id, d.c.customer_id == customer_id)
        .order_by(r.c.seq, d.c.channel)
    )
    out = []
    for row in conn.execute(q):
        m = dict(row._mapping)
        m["content"] = decode_content(m["content"])
        for k in ("sent_at", "due_by", "lease_until", "next_attempt_at"):
            m[k] = as_utc(m[k])
        out.append(m)
    return out


class DeliveryLine(NamedTuple):
    """One delivery as ``deliveries INC-n`` lists it."""

    id: int
    round: int  # the round's seq
    customer_id: str
    channel: str
    status: str
    attempts: int
    sent_at: datetime | None
    last_error: str | None
    provider_id: str | None


def list_deliveries(
    conn: Connection, incident_id: int, *, status: str | None = None
) -> list[DeliveryLine]:
    d, r = t.deliveries, t.rounds
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
        .where(d.c.incident_id == incident_id)
        .order_by(d.c.id)
    )
    if status:
        q = q.where(d.c.status == status)
    return [
        DeliveryLine(row[0], row[1], row[2], row[3], row[4], row[5], as_utc(row[6]), *row[7:])
        for row in conn.execute(q)
    ]


# --- failed and dead deliveries: retries on request, and telling the commander --------------


class RetryCandidate(NamedTuple):
    id: int
    customer_id: str
    channel: str
    seq: int  # of its round


def has_customer_deliveries(conn: Connection, incident_id: int, customer_id: str) -> bool:
    d = t.deliveries
    q = select(func.count()).where(d.c.incident_id == incident_id, d.c.customer_id == customer_id)
    return bool(conn.execute(q).scalar_one())


def retry_candidates(
    conn: Connection, incident_id: int, *, customer_id: str | None = None
) -> list[RetryCandidate]:
    """The incident's failed and dead deliveries (of one customer, if given)."""
    d, r = t.deliveries, t.rounds
    where = [d.c.incident_id == incident_id, d.c.status.in_(RETRYABLE)]
    if customer_id is not None:
        where.append(d.c.customer_id == customer_id)
    q = (
        select(d.c.id, d.c.customer_id, d.c.channel, r.c.seq)
        .join(r, r.c.id == d.c.round_id)
        .where(*where)
    )
    return [RetryCandidate(*row) for row in conn.execute(q)]


def latest_round_seqs(conn: Connection, incident_id: int) -> dict[tuple[str, str], int]:
    """(customer, channel) -> the newest round seq that has a delivery for it."""
    d, r = t.deliveries, t.rounds
    q = (
        select(d.c.customer_id, d.c.channel, func.max(r.c.seq))
        .join(r, r.c.id == d.c.round_id)
        .where(d.c.incident_id == incident_id, d.c.status != DeliveryStatus.SUPERSEDED.value)
        .group_by(d.c.customer_id, d.c.channel)
    )
    return {(row[0], row[1]): int(row[2]) for row in conn.execute(q)}


def requeue(conn: Connection, delivery_ids: Sequence[int], now: datetime) -> None:
    """Put failed/dead deliveries back in the outbox, due now, with a fresh retry budget."""
    d = t.deliveries
    reporting.forget_tallies(conn, delivery_ids)
    for ids in chunks(delivery_ids):
        conn.execute(
            update(d)
            .where(d.c.id.in_(ids), d.c.status.in_(RETRYABLE))
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                lease_owner=None,
                lease_until=None,
            )
        )


def supersede(conn: Connection, reasons: Mapping[int, str]) -> None:
    """Mark failed/dead deliveries as replaced by newer news (they are not resent): delivery
    id -> why."""
    d = t.deliveries
    reporting.forget_tallies(conn, list(reasons))
    for delivery_id, why in reasons.items():
        conn.execute(
            update(d)
            .where(d.c.id == delivery_id, d.c.status.in_(RETRYABLE))
            .values(status=DeliveryStatus.SUPERSEDED.value, last_error=why)
        )


def dead_by_incident(conn: Connection) -> dict[int, int]:
    d = t.deliveries
    q = (
        select(d.c.incident_id, func.count())
        .where(d.c.status == DeliveryStatus.DEAD.value)
        .group_by(d.c.incident_id)
    )
    return {int(iid): int(n) for iid, n in conn.execute(q)}


def dead_errors(conn: Connection, incident_id: int) -> list[tuple[str, str | None]]:
    """(channel, last error) of each of the incident's dead deliveries."""
    d = t.deliveries
    q = select(d.c.channel, d.c.last_error).where(
        and_(d.c.incident_id == incident_id, d.c.status == DeliveryStatus.DEAD.value)
    )
    return [(row[0], row[1]) for row in conn.execute(q)]


# --- taking an incident back (void) ---------------------------------------------------------

#: a delivery that reached (or may be reaching) its recipient: they were told
_TOLD = (DeliveryStatus.SENT.value, DeliveryStatus.SENDING.value)


def told_channels(conn: Connection, incident_id: int) -> dict[str, int]:
    """channel -> how many (customer, channel) pairs of the incident were told anything."""
    d = t.deliveries
    pairs = (
        select(d.c.customer_id, d.c.channel)
        .where(d.c.incident_id == incident_id, d.c.status.in_(_TOLD))
        .distinct()
        .subquery()
    )
    q = select(pairs.c.channel, func.count()).group_by(pairs.c.channel)
    return {ch: int(n) for ch, n in conn.execute(q)}


def supersede_all_pending(conn: Connection, incident_id: int, reason: str) -> int:
    """Every pending delivery of the incident, whatever its round, is not sent after all."""
    d = t.deliveries
    res = conn.execute(
        update(d)
        .where(d.c.incident_id == incident_id, d.c.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.SUPERSEDED.value, last_error=reason)
    )
    return int(res.rowcount or 0)


def queue_to_told(conn: Connection, rnd: Round) -> int:
    """Queue round ``rnd`` to each (customer, channel) pair of its incident that was told
    something before it (sent, or being sent), except flagged contacts; returns how many."""
    d, f = t.deliveries, t.contact_flags
    told = (
        select(d.c.customer_id, d.c.channel)
        .where(d.c.incident_id == rnd.incident_id, d.c.status.in_(_TOLD), d.c.round_id != rnd.id)
        .distinct()
        .subquery()
    )
    src = select(
        literal(rnd.incident_id, t.BigId),
        literal(rnd.id, t.BigId),
        told.c.customer_id,
        told.c.channel,
        literal(DeliveryStatus.PENDING.value),
        literal(0),
        literal(rnd.created_at, t.TS),
    ).where(~exists().where(f.c.customer_id == told.c.customer_id, f.c.channel == told.c.channel))
    cols = ["incident_id", "round_id", "customer_id", "channel", "status", "attempts",
            "next_attempt_at"]  # fmt: skip
    conn.execute(insert(d).from_select(cols, src))
    return count_round_deliveries(conn, rnd.incident_id, rnd.id)
