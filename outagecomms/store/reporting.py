"""Read-only queries for the post-incident report and the ``/metrics`` scrape.

Each function takes an open ``Connection`` (the caller owns the transaction, so a report reads
one consistent snapshot) and returns plain typed values; nothing here formats or derives
figures beyond what SQL counts and sums.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, func, literal, select, type_coerce

from outagecomms.models import DeliveryStatus, IncidentStatus, RoundKind
from outagecomms.store import tables as t
from outagecomms.values import as_utc

__all__ = [
    "CreditLine",
    "CreditRow",
    "FeedbackRow",
    "MarginHistogram",
    "ack_firsts",
    "audience_recipients",
    "audience_tiers",
    "credit_rows",
    "customer_tiers",
    "deliveries_by_outcome",
    "delivery_counts",
    "feedback_rows",
    "open_incident_count",
    "promise_margins",
    "retried_count",
    "rounds_by_kind",
    "top_errors",
]


# --- the post-incident report ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CreditLine:
    rule: str
    amount: Decimal  # exact, before the cap and the minimum


@dataclass(frozen=True, kw_only=True)
class CreditRow:
    customer_id: str
    amount: Decimal  # as issued (rounded once)
    currency: str
    status: str
    goodwill: str
    lines: tuple[CreditLine, ...]


@dataclass(frozen=True, kw_only=True)
class FeedbackRow:
    customer_id: str
    score: int
    comment: str
    received_at: datetime


def audience_tiers(conn: Connection, incident_id: int) -> dict[str, str]:
    """customer id → tier for the incident's audience (customers since removed are absent)."""
    a, c = t.audience, t.customers
    q = (
        select(a.c.customer_id, c.c.tier)
        .join(c, c.c.id == a.c.customer_id)
        .where(a.c.incident_id == incident_id)
        .distinct()
    )
    return {r[0]: r[1] for r in conn.execute(q)}


def customer_tiers(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    """customer id → tier for the ids given that are still in the directory."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    q = select(t.customers.c.id, t.customers.c.tier).where(t.customers.c.id.in_(wanted))
    return {r[0]: r[1] for r in conn.execute(q)}


def audience_recipients(conn: Connection, incident_id: int) -> list[tuple[str, str]]:
    """(customer id, channel) for every recipient of the incident's audience."""
    a = t.audience
    q = select(a.c.customer_id, a.c.channel).where(a.c.incident_id == incident_id)
    return [(r[0], r[1]) for r in conn.execute(q)]


def ack_firsts(conn: Connection, incident_id: int) -> dict[str, datetime | None]:
    """Every customer owed an acknowledgement → when the first one was sent (None: never)."""
    d, r = t.deliveries, t.rounds
    q = (
        select(d.c.customer_id, d.c.status, func.min(d.c.sent_at))
        .join(r, r.c.id == d.c.round_id)
        .where(
            d.c.incident_id == incident_id,
            r.c.kind == RoundKind.ACKNOWLEDGEMENT.value,
            d.c.status != DeliveryStatus.SUPERSEDED.value,
        )
        .group_by(d.c.customer_id, d.c.status)
    )
    out: dict[str, datetime | None] = {}
    for customer_id, status, first in conn.execute(q):
        out.setdefault(customer_id, None)
        sent = as_utc(first) if status == DeliveryStatus.SENT.value else None
        if sent is not None:
            prev = out[customer_id]
            out[customer_id] = sent if prev is None or sent < prev else prev
    return out


def delivery_counts(conn: Connection, incident_id: int) -> list[tuple[str, str, int]]:
    """(channel, status, deliveries) for the incident, sorted."""
    d = t.deliveries
    q = (
        select(d.c.channel, d.c.status, func.count())
        .where(d.c.incident_id == incident_id)
        .group_by(d.c.channel, d.c.status)
        .order_by(d.c.channel, d.c.status)
    )
    return [(r[0], r[1], int(r[2])) for r in conn.execute(q)]


def top_errors(conn: Connection, incident_id: int, limit: int) -> list[tuple[str, int]]:
    """The commonest errors of failed and dead deliveries: (error, count), most first."""
    d = t.deliveries
    q = (
        select(d.c.last_error, func.count())
        .where(
            d.c.incident_id == incident_id,
            d.c.status.in_([DeliveryStatus.FAILED.value, DeliveryStatus.DEAD.value]),
        )
        .group_by(d.c.last_error)
    )
    rows = [(r[0] or "(no error recorded)", int(r[1])) for r in conn.execute(q)]
    rows.sort(key=lambda x: (-x[1], x[0]))
    return rows[:limit]


def retried_count(conn: Connection, incident_id: int) -> int:
    """Deliveries of the incident that needed more than one attempt."""
    d = t.deliveries
    q = select(func.count()).select_from(d).where(d.c.incident_id == incident_id, d.c.attempts > 1)
    return int(conn.execute(q).scalar_one())


def credit_rows(conn: Connection, incident_id: int) -> list[CreditRow]:
    """The incident's credits, by customer id."""
    c = t.credits
    q = select(c).where(c.c.incident_id == incident_id).order_by(c.c.customer_id)
    return [
        CreditRow(
            customer_id=r.customer_id,
            amount=Decimal(r.amount),
            currency=r.currency,
            status=r.status,
            goodwill=r.goodwill or "",
            lines=tuple(
                CreditLine(rule=str(line["rule"]), amount=Decimal(str(line["amount"])))
                for line in r.lines or []
            ),
        )
        for r in conn.execute(q)
    ]


def feedback_rows(conn: Connection, incident_id: int) -> list[FeedbackRow]:
    """The incident's feedback in the order it arrived."""
    fb = t.feedback
    q = (
        select(fb.c.customer_id, fb.c.score, fb.c.comment, fb.c.received_at)
        .where(fb.c.incident_id == incident_id)
        .order_by(fb.c.received_at, fb.c.customer_id)
    )
    return [
        FeedbackRow(
            customer_id=r.customer_id,
            score=int(r.score),
            comment=r.comment or "",
            received_at=as_utc(r.received_at),
        )
        for r in conn.execute(q)
    ]


# --- the /metrics scrape -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MarginHistogram:
    """Deliveries sent against a promise, by how many seconds before it they went out
    (``due_by - sent_at``; negative: late). ``buckets[i]`` counts margins ``<= bounds[i]``
    (cumulative, as Prometheus wants them)."""

    bounds: tuple[float, ...]
    buckets: tuple[int, ...]
    count: int
    sum_seconds: float
    late: int  # margin < 0


def open_incident_count(conn: Connection) -> int:
    i = t.incidents
    q = select(func.count()).select_from(i).where(i.c.status != IncidentStatus.RESOLVED.value)
    return int(conn.execute(q).scalar_one())


def rounds_by_kind(conn: Connection) -> list[tuple[str, int]]:
    r = t.rounds
    q = select(r.c.kind, func.count()).group_by(r.c.kind).order_by(r.c.kind)
    return [(row[0], int(row[1])) for row in conn.execute(q)]


def deliveries_by_outcome(conn: Connection) -> list[tuple[str, str, int]]:
    """(channel, status, deliveries) over the whole store (an index-only scan of
    ``ix_deliveries_outcome``)."""
    d = t.deliveries
    q = (
        select(d.c.channel, d.c.status, func.count())
        .group_by(d.c.channel, d.c.status)
        .order_by(d.c.channel, d.c.status)
    )
    return [(row[0], row[1], int(row[2])) for row in conn.execute(q)]


def _shifted(conn: Connection, due_by: ColumnElement[Any], seconds: float) -> ColumnElement[Any]:
    """``due_by + seconds``, comparable with ``sent_at`` in the database's own terms.

    SQLite keeps timestamps as fixed-width text (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), which
    sorts like time: shift the whole seconds with ``strftime`` and keep the microseconds as
    they are, so the bound is exact (SQLite's date functions round to the millisecond, and a
    fraction of .9995 or more would carry into the next second). PostgreSQL adds an interval.
    """
    if conn.dialect.name == "sqlite":
        whole = func.strftime(
            "%Y-%m-%d %H:%M:%S", func.substr(due_by, 1, 19), f"{seconds:+g} seconds"
        )
        return type_coerce(whole.op("||")(func.substr(due_by, 20)), String)
    return due_by + literal(timedelta(seconds=seconds))


def _margin_seconds(
    conn: Connection, due_by: ColumnElement[Any], sent_at: ColumnElement[Any]
) -> ColumnElement[Any]:
    if conn.dialect.name == "sqlite":
        # for the sum only (the buckets compare timestamps exactly): julianday works in
        # milliseconds, far below the six significant digits the sum is printed with
        return (func.julianday(due_by) - func.julianday(sent_at)) * 86400.0
    # date_part gives float8 (extract gives numeric, which sums half as fast): the seconds
    # to the microsecond, as Python's timedelta.total_seconds() has them
    return func.date_part("epoch", due_by - sent_at)


def promise_margins(conn: Connection, bounds: Sequence[float]) -> MarginHistogram:
    """The promise-margin histogram of every sent delivery whose round kept a promise.

    Computed without reading a row per delivery into Python, and without evaluating an
    expression per delivery for the buckets: ``margin <= b`` is ``sent_at >= due_by - b``, so
    for each round the deliveries between two consecutive bounds are one range of the index
    ``ix_deliveries_round_sent (round_id, sent_at)``, counted by the database. Each delivery is
    visited once over all ranges; the buckets are the running totals of the ranges. Only the
    sum needs the margin itself, one subtraction per delivery in SQL.
    """
    d, r = t.deliveries, t.rounds
    if conn.dialect.name == "postgresql":
        # the planner's cost for a few hundred small index scans crosses jit_above_cost, and
        # compiling the query then takes longer than running it (for this transaction only)
        conn.exec_driver_sql("SET LOCAL jit = off")
    edges = sorted(bounds)
    # thresholds[i] = due_by - edges[i], descending in time as the bound grows
    thresholds = [_shifted(conn, r.c.due_by, -b) for b in edges]

    def count(*conds: ColumnElement[bool]) -> Any:
        return (
            select(func.count())
            .select_from(d)
            .where(d.c.round_id == r.c.id, d.c.sent_at.is_not(None), *conds)
            .scalar_subquery()
        )

    ranges = [count(d.c.sent_at >= thresholds[0])]
    ranges += [
        count(d.c.sent_at >= thresholds[i], d.c.sent_at < thresholds[i - 1])
        for i in range(1, len(edges))
    ]
    ranges.append(count(d.c.sent_at < thresholds[-1]))
    # late is margin < 0: the "<= 0" bucket less the deliveries sent on the dot (an equality
    # seek per round), or, with no 0 bound, the range after the promise
    zero = _shifted(conn, r.c.due_by, 0)
    has_zero = 0 in edges
    extra = count(d.c.sent_at == zero) if has_zero else count(d.c.sent_at > zero)
    margin_sum = (
        select(func.sum(_margin_seconds(conn, r.c.due_by, d.c.sent_at)))
        .select_from(d)
        .where(d.c.round_id == r.c.id, d.c.sent_at.is_not(None))
        .scalar_subquery()
    )
    per_round = (
        select(
            *(rng.label(f"r{i}") for i, rng in enumerate(ranges)),
            extra.label("extra"),
            margin_sum.label("msum"),
        )
        .where(r.c.due_by.is_not(None))
        .subquery()
    )
    n_ranges = len(ranges)
    q = select(
        *(func.coalesce(func.sum(per_round.c[f"r{i}"]), 0) for i in range(n_ranges)),
        func.coalesce(func.sum(per_round.c.extra), 0),
        func.sum(per_round.c.msum),
    )
    row = conn.execute(q).one()
    cumulative: list[int] = []
    running = 0
    for n in row[: n_ranges - 1]:
        running += int(n)
        cumulative.append(running)
    count_all = running + int(row[n_ranges - 1])
    extra_n, total = int(row[n_ranges]), row[n_ranges + 1]
    late = cumulative[edges.index(0)] - extra_n if has_zero else extra_n
    return MarginHistogram(
        bounds=tuple(edges),
        buckets=tuple(cumulative),
        count=count_all,
        sum_seconds=float(total or 0),
        late=late,
    )
