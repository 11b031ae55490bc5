"""Queries for the post-incident report and the ``/metrics`` scrape.

Each function takes an open ``Connection`` (the caller owns the transaction, so a report reads
one consistent snapshot) and returns plain typed values; nothing here formats or derives
figures beyond what SQL counts and sums. The one write is ``round_tallies``: the scrape's
figures of a settled round, counted once (``store_tallies``) and dropped when ``deliveries
retry`` changes that round (``forget_tallies``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, func, literal, select, type_coerce

from outagecomms.models import CLOSED_STATUSES, DeliveryStatus, RoundKind
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks
from outagecomms.values import as_utc

__all__ = [
    "CreditLine",
    "CreditRow",
    "FeedbackRow",
    "MarginHistogram",
    "RoundTally",
    "Scrape",
    "ack_firsts",
    "audience_recipients",
    "audience_tiers",
    "cached_tallies",
    "credit_rows",
    "customer_tiers",
    "delivery_counts",
    "feedback_rows",
    "forget_tallies",
    "open_incident_count",
    "retried_count",
    "rounds_by_kind",
    "rounds_to_tally",
    "scrape",
    "store_tallies",
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
    approved_by: str | None = None
    adjusted_by: str | None = None
    adjust_reason: str | None = None
    computed_amount: str | None = None  # the engine's figure, when a person set the amount
    announced_amount: str | None = None  # what a notice told the customer


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


def audience_locales(conn: Connection, incident_id: int) -> dict[str, str]:
    """customer id → locale for the incident's audience (customers since removed are absent)."""
    a, c = t.audience, t.customers
    q = (
        select(a.c.customer_id, c.c.locale)
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
            approved_by=r.approved_by,
            adjusted_by=r.adjusted_by,
            adjust_reason=r.adjust_reason,
            computed_amount=r.computed_amount,
            announced_amount=r.announced_amount,
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
    q = select(func.count()).select_from(i).where(i.c.status.not_in(CLOSED_STATUSES))
    return int(conn.execute(q).scalar_one())


def rounds_by_kind(conn: Connection) -> list[tuple[str, int]]:
    r = t.rounds
    q = select(r.c.kind, func.count()).group_by(r.c.kind).order_by(r.c.kind)
    return [(row[0], int(row[1])) for row in conn.execute(q)]


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


@dataclass(frozen=True, kw_only=True)
class RoundTally:
    """One round's share of the scrape: deliveries by (channel, status), and for a round that
    kept a promise its sent deliveries' margins, counted between the histogram bounds
    (``ranges[0]``: margin <= bounds[0], ..., ``ranges[-1]``: above the last bound)."""

    outcomes: tuple[tuple[str, str, int], ...]
    ranges: tuple[int, ...] | None  # None: the round kept no promise
    extra: int  # sent exactly on the promise (with a 0 bound), else after it
    margin_sum: float


@dataclass(frozen=True, kw_only=True)
class Scrape:
    """What ``/metrics`` shows of the deliveries."""

    by_outcome: list[tuple[str, str, int]]  # (channel, status, deliveries), sorted
    margins: MarginHistogram


def _bounds_key(bounds: Sequence[float]) -> str:
    return ",".join(f"{b:g}" for b in sorted(bounds))


def _margin_ranges(
    conn: Connection, bounds: Sequence[float], round_ids: Sequence[int]
) -> dict[int, tuple[tuple[int, ...], int, float]]:
    """Per round that kept a promise: its margin counts between the bounds, the "extra" count
    and the margin sum.

    Computed without reading a row per delivery into Python, and without evaluating an
    expression per delivery for the counts: ``margin <= b`` is ``sent_at >= due_by - b``, so
    for each round the deliveries between two consecutive bounds are one range of the index
    ``ix_deliveries_round_sent (round_id, sent_at)``, counted by the database. Only the sum
    needs the margin itself, one subtraction per delivery in SQL.
    """
    d, r = t.deliveries, t.rounds
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
    extra = count(d.c.sent_at == zero) if 0 in edges else count(d.c.sent_at > zero)
    margin_sum = (
        select(func.sum(_margin_seconds(conn, r.c.due_by, d.c.sent_at)))
        .select_from(d)
        .where(d.c.round_id == r.c.id, d.c.sent_at.is_not(None))
        .scalar_subquery()
    )
    out: dict[int, tuple[tuple[int, ...], int, float]] = {}
    for ids in chunks(round_ids):
        q = select(r.c.id, extra, margin_sum, *ranges).where(
            r.c.id.in_(ids), r.c.due_by.is_not(None)
        )
        for row in conn.execute(q):
            out[int(row[0])] = (tuple(int(n) for n in row[3:]), int(row[1]), float(row[2] or 0))
    return out


def _round_outcomes(
    conn: Connection, round_ids: Sequence[int]
) -> dict[int, list[tuple[str, str, int]]]:
    d = t.deliveries
    out: dict[int, list[tuple[str, str, int]]] = {}
    for ids in chunks(round_ids):
        q = (
            select(d.c.round_id, d.c.channel, d.c.status, func.count())
            .where(d.c.round_id.in_(ids))
            .group_by(d.c.round_id, d.c.channel, d.c.status)
        )
        for rid, channel, status, n in conn.execute(q):
            out.setdefault(int(rid), []).append((channel, status, int(n)))
    return out


def _tallies(
    conn: Connection, bounds: Sequence[float], round_ids: Sequence[int]
) -> dict[int, RoundTally]:
    """The rounds' tallies counted from their deliveries."""
    margins = _margin_ranges(conn, bounds, round_ids)
    outcomes = _round_outcomes(conn, round_ids)
    out = {}
    for rid in round_ids:
        ranges, extra, msum = margins.get(rid, (None, 0, 0.0))
        out[rid] = RoundTally(
            outcomes=tuple(outcomes.get(rid, ())), ranges=ranges, extra=extra, margin_sum=msum
        )
    return out


_OWED = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value)


def _unsettled(conn: Connection) -> set[int]:
    """Rounds with a delivery still owed (pending, or being sent): their figures move."""
    d = t.deliveries
    q = select(d.c.round_id).distinct().where(d.c.status.in_(_OWED))
    return {int(rid) for (rid,) in conn.execute(q)}


def cached_tallies(conn: Connection, bounds: Sequence[float]) -> dict[int, RoundTally]:
    """The stored tallies of settled rounds (counted for these bounds)."""
    rt = t.round_tallies
    q = select(rt.c.round_id, rt.c.outcomes, rt.c.ranges, rt.c.extra, rt.c.margin_sum).where(
        rt.c.bounds == _bounds_key(bounds)
    )
    return {
        int(rid): RoundTally(
            outcomes=tuple((c, st, int(n)) for c, st, n in json.loads(outcomes)),
            ranges=None if ranges is None else tuple(json.loads(ranges)),
            extra=int(extra),
            margin_sum=float(msum),
        )
        for rid, outcomes, ranges, extra, msum in conn.execute(q)
    }


def rounds_to_tally(conn: Connection, bounds: Sequence[float]) -> list[int]:
    """Settled rounds without a stored tally: what :func:`store_tallies` would count."""
    rt = t.round_tallies
    stored = select(rt.c.round_id).where(rt.c.bounds == _bounds_key(bounds))
    known = {int(rid) for (rid,) in conn.execute(stored)} | _unsettled(conn)
    return [int(rid) for (rid,) in conn.execute(select(t.rounds.c.id)) if rid not in known]


def store_tallies(conn: Connection, bounds: Sequence[float], round_ids: Sequence[int]) -> int:
    """Count and store the tallies of those rounds that are (still) settled; in a write
    transaction. On PostgreSQL the rounds' rows are locked first, as ``forget_tallies`` locks
    them, so a retry that unsettles a round either commits first (and the round is skipped
    here) or waits and then drops what this stored. Returns how many were stored."""
    rt = t.round_tallies
    _lock_rounds(conn, round_ids)
    owed = _unsettled(conn)
    settled = [rid for rid in round_ids if rid not in owed]
    rows = [
        {
            "round_id": rid,
            "bounds": _bounds_key(bounds),
            "outcomes": json.dumps([list(o) for o in tally.outcomes]),
            "ranges": None if tally.ranges is None else json.dumps(list(tally.ranges)),
            "extra": tally.extra,
            "margin_sum": tally.margin_sum,
        }
        for rid, tally in _tallies(conn, bounds, settled).items()
    ]
    if rows:
        for ids in chunks(settled):  # other bounds' rows
            conn.execute(rt.delete().where(rt.c.round_id.in_(ids)))
        for part in chunks(rows):
            conn.execute(rt.insert(), list(part))
    return len(rows)


def forget_tallies(conn: Connection, delivery_ids: Sequence[int]) -> None:
    """Those deliveries' rounds are changing after they settled (``deliveries retry``): drop
    their stored tallies, under the same row locks as :func:`store_tallies`."""
    d, rt = t.deliveries, t.round_tallies
    round_ids: set[int] = set()
    for ids in chunks(delivery_ids):
        q = select(d.c.round_id).distinct().where(d.c.id.in_(ids))
        round_ids.update(int(rid) for (rid,) in conn.execute(q))
    _lock_rounds(conn, round_ids)
    for ids in chunks(sorted(round_ids)):
        conn.execute(rt.delete().where(rt.c.round_id.in_(ids)))


def _lock_rounds(conn: Connection, round_ids: Iterable[int]) -> None:
    """Lock the rounds' rows (PostgreSQL; SQLite serialises writers anyway) in id order, so
    two transactions that lock overlapping rounds take them in the same order."""
    r = t.rounds
    for ids in chunks(sorted(round_ids)):
        conn.execute(select(r.c.id).where(r.c.id.in_(ids)).with_for_update()).all()


def scrape(conn: Connection, bounds: Sequence[float]) -> Scrape:
    """Deliveries by outcome and the promise-margin histogram over the whole store: the stored
    tallies of settled rounds, and every other round counted now (one snapshot)."""
    if conn.dialect.name == "postgresql":
        # the planner's cost for a few hundred small index scans crosses jit_above_cost, and
        # compiling the query then takes longer than running it (for this transaction only)
        conn.exec_driver_sql("SET LOCAL jit = off")
    tallies = cached_tallies(conn, bounds)
    live = [int(rid) for (rid,) in conn.execute(select(t.rounds.c.id)) if rid not in tallies]
    tallies.update(_tallies(conn, bounds, live))
    edges = sorted(bounds)
    outcomes: dict[tuple[str, str], int] = {}
    ranges = [0] * (len(edges) + 1)
    extra_n, total = 0, 0.0
    for tally in tallies.values():
        for channel, status, n in tally.outcomes:
            outcomes[(channel, status)] = outcomes.get((channel, status), 0) + n
        if tally.ranges is not None:
            ranges = [a + b for a, b in zip(ranges, tally.ranges, strict=True)]
            extra_n += tally.extra
            total += tally.margin_sum
    cumulative: list[int] = []
    running = 0
    for n in ranges[:-1]:
        running += n
        cumulative.append(running)
    late = cumulative[edges.index(0)] - extra_n if 0 in edges else extra_n
    return Scrape(
        by_outcome=sorted((c, st, n) for (c, st), n in outcomes.items()),
        margins=MarginHistogram(
            bounds=tuple(edges),
            buckets=tuple(cumulative),
            count=running + ranges[-1],
            sum_seconds=total,
            late=late,
        ),
    )
