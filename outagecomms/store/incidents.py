"""Incidents and what hangs off them: the audience fixed at declare, rounds, and events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func, insert, select, text, update

from outagecomms.errors import NotFound
from outagecomms.incidents.messages import with_translations
from outagecomms.models import (
    CLOSED_STATUSES,
    COPY_SUFFIX,
    ROUND_WIDE,
    Incident,
    IncidentStatus,
    Round,
    RoundKind,
    Selector,
)
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks, object_row, row_mapper
from outagecomms.values import as_utc

# --- incidents ------------------------------------------------------------------------------

row_to_incident = row_mapper(
    Incident,
    utc=(
        "started_at", "declared_at", "resolved_at", "next_update_due", "ack_due",
        "reminded_for", "follow_up_due",
    ),
    tuples=("components", "regions"),
    derived={
        "status": lambda r: IncidentStatus(r.status),
        "selector": lambda r: Selector.from_json(r.selector),
        "update_every": lambda r: timedelta(seconds=r.update_every_s),
    },
)  # fmt: skip


@dataclass(frozen=True)
class IncidentRow:
    """An incident with what only the store keeps: its version (for compare-and-set writes)
    and the audience counts skipped at declare, by reason."""

    incident: Incident
    version: int
    skipped: dict[str, int]


def get_incident(conn: Connection, incident_id: int) -> IncidentRow:
    r = conn.execute(select(t.incidents).where(t.incidents.c.id == incident_id)).first()
    if r is None:
        raise NotFound(
            f"incident INC-{incident_id} does not exist; {{command:list --all}} shows them"
        )
    return IncidentRow(row_to_incident(r), r.version, dict(r.skipped or {}))


def list_incidents(conn: Connection, *, include_resolved: bool = False) -> list[Incident]:
    q = select(t.incidents).order_by(t.incidents.c.id)
    if not include_resolved:
        q = q.where(t.incidents.c.status.not_in(CLOSED_STATUSES))
    return [row_to_incident(r) for r in conn.execute(q)]


def follow_ups_pending(conn: Connection) -> list[Incident]:
    """Resolved incidents whose follow-up has not gone out yet."""
    q = (
        select(t.incidents)
        .where(t.incidents.c.follow_up_due.is_not(None))
        .order_by(t.incidents.c.follow_up_due)
    )
    return [row_to_incident(r) for r in conn.execute(q)]


def insert_incident(conn: Connection, incident: Incident, *, skipped: dict[str, int]) -> int:
    """Write a new incident (its ``id`` is the store's to give); returns the id."""
    values = object_row(
        incident, skip=("id", "selector", "update_every"), lists=("components", "regions")
    ) | {
        "selector": incident.selector.to_json(),
        "update_every_s": incident.update_every.total_seconds(),
        "skipped": skipped,
        "version": 1,
    }
    res = conn.execute(insert(t.incidents).values(**values).returning(t.incidents.c.id))
    return int(res.scalar_one())


def update_incident(conn: Connection, incident_id: int, version: int, **values: Any) -> bool:
    """Compare-and-set: applies only if nobody changed the incident since ``version``."""
    res = conn.execute(
        update(t.incidents)
        .where(t.incidents.c.id == incident_id, t.incidents.c.version == version)
        .values(version=t.incidents.c.version + 1, **values)
    )
    return res.rowcount == 1


def open_overlaps(conn: Connection, customer_ids: Sequence[str]) -> list[tuple[Incident, int]]:
    """Each open incident that has any of these customers in its audience, with how many."""
    i, a = t.incidents, t.audience
    counts: dict[int, int] = {}
    for ids in chunks(customer_ids):
        q = (
            select(a.c.incident_id, func.count(a.c.customer_id.distinct()))
            .join(i, i.c.id == a.c.incident_id)
            .where(i.c.status.not_in(CLOSED_STATUSES), a.c.customer_id.in_(ids))
            .group_by(a.c.incident_id)
        )
        for iid, n in conn.execute(q):
            counts[iid] = counts.get(iid, 0) + int(n)
    if not counts:
        return []
    rows = conn.execute(select(t.incidents).where(i.c.id.in_(sorted(counts))).order_by(i.c.id))
    return [(inc, counts[inc.id]) for inc in map(row_to_incident, rows)]


def lock_declares(conn: Connection) -> None:
    """Serialise declares until the transaction ends, so two commanders declaring the same
    outage at once cannot both pass the duplicate check (PostgreSQL; on SQLite the write
    transaction already holds the database's write lock)."""
    if conn.dialect.name == "postgresql":
        # two-integer lock space, class 0x6463 ("dc"): apart from drafts' and leadership's
        conn.execute(text("SELECT pg_advisory_xact_lock(CAST(25699 AS integer), 1)"))


# --- the audience ---------------------------------------------------------------------------


def insert_audience(conn: Connection, incident_id: int, pairs: Sequence[tuple[str, str]]) -> None:
    rows = [{"incident_id": incident_id, "customer_id": c, "channel": ch} for c, ch in pairs]
    for chunk in chunks(rows, 5000):
        conn.execute(insert(t.audience), list(chunk))


def audience_customer_ids(conn: Connection, incident_id: int) -> list[str]:
    q = (
        select(t.audience.c.customer_id)
        .where(t.audience.c.incident_id == incident_id, t.audience.c.customer_id != ROUND_WIDE)
        .distinct()
        .order_by(t.audience.c.customer_id)
    )
    return [r[0] for r in conn.execute(q)]


def in_audience(conn: Connection, incident_id: int, customer_id: str) -> bool:
    a = t.audience
    q = select(a.c.customer_id).where(
        a.c.incident_id == incident_id, a.c.customer_id == customer_id
    )
    return conn.execute(q.limit(1)).first() is not None


def only_customers(a: Table) -> ColumnElement[bool]:
    """Audience rows for the customers themselves: not the status page, not the account
    managers' copies (the follow-up asks customers only)."""
    return (a.c.customer_id != ROUND_WIDE) & ~a.c.channel.endswith(COPY_SUFFIX)


def audience_channels(
    conn: Connection, incident_id: int, *, customers_only: bool = False
) -> dict[str, int]:
    q = (
        select(t.audience.c.channel, func.count())
        .where(t.audience.c.incident_id == incident_id)
        .group_by(t.audience.c.channel)
    )
    if customers_only:
        q = q.where(only_customers(t.audience))
    return {r[0]: int(r[1]) for r in conn.execute(q)}


# --- rounds ---------------------------------------------------------------------------------

row_to_round = row_mapper(
    Round,
    utc=("created_at", "due_by", "promised_next_by"),
    derived={
        "kind": lambda r: RoundKind(r.kind),
        "status": lambda r: IncidentStatus(r.status),
        # the default-language text, carrying the commander's other languages (messages.py)
        "message": lambda r: with_translations(r.message, getattr(r, "translations", None) or {}),
    },
)


def get_round(conn: Connection, round_id: int) -> Round:
    return row_to_round(conn.execute(select(t.rounds).where(t.rounds.c.id == round_id)).one())


def list_rounds(conn: Connection, incident_id: int) -> list[Round]:
    q = select(t.rounds).where(t.rounds.c.incident_id == incident_id).order_by(t.rounds.c.seq)
    return [row_to_round(r) for r in conn.execute(q)]


def get_rounds(conn: Connection, round_ids: Iterable[int]) -> dict[int, Round]:
    ids = sorted(set(round_ids))
    if not ids:
        return {}
    q = select(t.rounds).where(t.rounds.c.id.in_(ids))
    return {r.id: row_to_round(r) for r in conn.execute(q)}


# --- events ---------------------------------------------------------------------------------


def add_event(
    conn: Connection, incident_id: int | None, at: datetime, kind: str, detail: str = ""
) -> None:
    conn.execute(insert(t.events).values(incident_id=incident_id, at=at, kind=kind, detail=detail))


#: an event that is data, not news: a customer's row kept for an incident after the directory
#: dropped it (``customers.keep_departing``); not listed
KEPT_CUSTOMER = "customer_kept"


#: an event that is data, not news: a reopened incident's gap in its downtime, from when it was
#: resolved to when it came back, as "<ISO 8601>/<ISO 8601>" (written by ``reopen``); not listed
DOWNTIME_GAP = "downtime_gap"
_DATA_EVENTS = (KEPT_CUSTOMER, DOWNTIME_GAP)


def add_gap(
    conn: Connection, incident_id: int, at: datetime, restored: datetime, back: datetime
) -> None:
    add_event(conn, incident_id, at, DOWNTIME_GAP, f"{restored.isoformat()}/{back.isoformat()}")


def incident_gaps(
    conn: Connection, incident_ids: Iterable[int]
) -> dict[int, tuple[tuple[datetime, datetime], ...]]:
    """incident id -> its gaps (restored, back), in order; incidents never reopened have none."""
    e = t.events
    out: dict[int, list[tuple[datetime, datetime]]] = {}
    for ids in chunks(sorted(set(incident_ids))):
        q = select(e.c.incident_id, e.c.detail).where(
            e.c.kind == DOWNTIME_GAP, e.c.incident_id.in_(ids)
        )
        for iid, detail in conn.execute(q.order_by(e.c.id)):
            a, b = str(detail).split("/")
            out.setdefault(iid, []).append(
                (as_utc(datetime.fromisoformat(a)), as_utc(datetime.fromisoformat(b)))
            )
    return {k: tuple(v) for k, v in out.items()}


def downtime_spans(
    inc: Incident, gaps: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime | None]]:
    """The incident's spans of downtime: from ``started_at`` to ``resolved_at`` (None: still
    open) less the gaps a ``reopen`` recorded."""
    out: list[tuple[datetime, datetime | None]] = []
    at = inc.started_at
    for restored, back in gaps:
        out.append((at, restored))
        at = back
    out.append((at, inc.resolved_at))
    return out


def list_events(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    q = (
        select(t.events)
        .where(t.events.c.incident_id == incident_id, t.events.c.kind.not_in(_DATA_EVENTS))
        .order_by(t.events.c.at, t.events.c.id)
    )
    return [{"at": as_utc(r.at), "kind": r.kind, "detail": r.detail} for r in conn.execute(q)]


#: events that say whether a resolution proposes credits and goodwill: recorded history does
#: not (``declare``/``resolve --no-send``) unless the commander asked (``--credits``)
CREDITS_WAIVED, CREDITS_WANTED = "credits_waived", "credits_wanted"


def credits_waived(conn: Connection, incident_id: int) -> bool:
    """The incident's newest ``credits_waived``/``credits_wanted`` event is a waiver."""
    return credit_choice(conn, incident_id) == CREDITS_WAIVED


def credit_choice(conn: Connection, incident_id: int) -> str | None:
    """The incident's newest ``credits_waived``/``credits_wanted`` event's kind (None: no
    choice was recorded: a live incident, credited at resolution)."""
    e = t.events
    q = (
        select(e.c.kind)
        .where(e.c.incident_id == incident_id, e.c.kind.in_((CREDITS_WAIVED, CREDITS_WANTED)))
        .order_by(e.c.id.desc())
        .limit(1)
    )
    kind = conn.execute(q).scalar()
    return None if kind is None else str(kind)


def latest_event_details(conn: Connection, kind: str) -> dict[int, str]:
    """incident id -> the detail of its newest event of this kind."""
    e = t.events
    q = select(e.c.incident_id, e.c.detail).where(e.c.kind == kind).order_by(e.c.id)
    return {iid: str(detail) for iid, detail in conn.execute(q)}
