"""Store access for drafts: incidents proposed by monitoring alerts.

Portable SQL (SQLite and PostgreSQL). Deduplication rests on two things: every write for one
alert key runs in a transaction that holds that key's lock (SQLite: the database write lock
every write transaction takes at BEGIN; PostgreSQL: a transaction-level advisory lock on the
key), and the partial unique index ``uq_drafts_open_key`` allows one *open* draft per key,
which the insert meets with ``ON CONFLICT DO UPDATE`` should anything slip past the lock.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text, update

from outagecomms.errors import NotFound
from outagecomms.models import AlertState, Draft, DraftStatus
from outagecomms.store import tables as t
from outagecomms.store.engine import conflict_insert, row_mapper
from outagecomms.values import MAX_ID

d = t.drafts

#: Columns an alert refreshes on an open draft (the newest notification describes it best).
FACTS = (
    "title",
    "severity",
    "components",
    "regions",
    "labels",
    "annotations",
    "url",
    "alert_state",
    "resolved_at",
    "update_every_s",
    "commander",
    "alerts",
)


def dedup_key(source: str, group_key: str, rule: str) -> str:
    """The fixed-width key one alert (group) maps to under one rule."""
    return hashlib.sha256(f"{source}\0{group_key}\0{rule}".encode()).hexdigest()


def lock_key(conn: Connection, key: str) -> None:
    """Serialise writers of one alert key until the transaction ends (PostgreSQL; on SQLite
    the write transaction already holds the database's write lock)."""
    if conn.dialect.name == "postgresql":
        # The two-integer lock space does not overlap the one-bigint space leadership uses;
        # class 0x6472 ("dr") names ours in it.
        n = int(key[:15], 16)
        conn.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:cls AS integer), CAST(:k AS integer))"),
            {"cls": 0x6472, "k": n % (2**31 - 1)},
        )


_row_to_draft = row_mapper(
    Draft,
    utc=("started_at", "first_seen", "last_seen", "resolved_at"),
    tuples=("components", "regions"),
    dicts=("labels", "annotations"),
    derived={
        "status": lambda r: DraftStatus(r.status),
        "alert_state": lambda r: AlertState(r.alert_state),
        "update_every": lambda r: timedelta(seconds=r.update_every_s) if r.update_every_s else None,
    },
)


def get_draft(conn: Connection, draft_id: int) -> Draft:
    if not 0 < draft_id <= MAX_ID:  # no row has it (and the driver cannot bind it)
        raise NotFound(f"draft {draft_id} does not exist; {{command:drafts list --all}} shows them")
    r = conn.execute(select(d).where(d.c.id == draft_id)).first()
    if r is None:
        raise NotFound(f"draft {draft_id} does not exist; {{command:drafts list --all}} shows them")
    return _row_to_draft(r)


def latest_by_key(conn: Connection, key: str) -> Draft | None:
    """The newest draft for an alert key, whatever its status."""
    r = conn.execute(select(d).where(d.c.dedup_key == key).order_by(d.c.id.desc()).limit(1)).first()
    return _row_to_draft(r) if r is not None else None


def list_drafts(conn: Connection, *, include_closed: bool = False) -> list[Draft]:
    """Open drafts, oldest first (with ``include_closed``: declared and dismissed ones too)."""
    q = select(d).order_by(d.c.id)
    if not include_closed:
        q = q.where(d.c.status == DraftStatus.OPEN.value)
    return [_row_to_draft(r) for r in conn.execute(q)]


def insert_or_refresh_open(conn: Connection, values: dict[str, Any]) -> tuple[int, bool]:
    """Insert an open draft, or, when an open draft with this ``dedup_key`` exists, refresh it
    (facts, ``last_seen``, ``times_seen + 1``). Returns (id, created)."""
    stmt = conflict_insert(conn, d)
    if stmt is None:
        raise NotImplementedError(f"drafts need SQLite or PostgreSQL, not {conn.dialect.name}")
    stmt = stmt.values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[d.c.dedup_key],
        index_where=d.c.status == DraftStatus.OPEN.value,
        set_={
            **{c: stmt.excluded[c] for c in FACTS},
            "last_seen": stmt.excluded.last_seen,
            "times_seen": d.c.times_seen + 1,
        },
    )
    row = conn.execute(stmt.returning(d.c.id, d.c.times_seen)).one()
    return int(row[0]), int(row[1]) == 1


def refresh(
    conn: Connection, draft_id: int, now: datetime, *, facts: dict[str, Any] | None = None
) -> None:
    """Count one more sighting of the draft's alert; ``facts`` updates what it says."""
    conn.execute(
        update(d)
        .where(d.c.id == draft_id)
        .values(last_seen=now, times_seen=d.c.times_seen + 1, **(facts or {}))
    )


def change_status(
    conn: Connection,
    draft_id: int,
    *,
    expect: DraftStatus,
    to: DraftStatus,
    incident_id: int | None = None,
    note: str | None = None,
) -> bool:
    """Compare-and-set the draft's status; False when it is no longer ``expect``."""
    values: dict[str, Any] = {"status": to.value}
    if incident_id is not None:
        values["incident_id"] = incident_id
    if note is not None:
        values["note"] = note
    res = conn.execute(
        update(d).where(d.c.id == draft_id, d.c.status == expect.value).values(**values)
    )
    return res.rowcount == 1


def set_note(conn: Connection, draft_id: int, note: str) -> None:
    conn.execute(update(d).where(d.c.id == draft_id).values(note=note))
