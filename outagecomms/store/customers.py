"""The customer directory, and the contacts a provider refused for good (contact flags)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from outagecomms.models import CLOSED_STATUSES, ROUND_WIDE, Customer
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks, object_row, row_mapper, upsert
from outagecomms.store.incidents import KEPT_CUSTOMER
from outagecomms.values import as_utc

_LISTS = ("components", "regions", "tags", "channels")  # tuples here, JSON lists there

row_to_customer = row_mapper(
    Customer, tuples=_LISTS, derived={"monthly_fee": lambda r: Decimal(r.monthly_fee)}
)


def customer_to_row(c: Customer, now: datetime) -> dict[str, Any]:
    # monthly_fee: the exact Decimal, as text
    return object_row(c, lists=_LISTS) | {"monthly_fee": str(c.monthly_fee), "updated_at": now}


def upsert_customers(
    conn: Connection, customers: Sequence[Customer], now: datetime, *, replace: bool = False
) -> tuple[int, int, int]:
    """Insert or update customers by id. Returns (created, updated, removed)."""
    existing = {r[0] for r in conn.execute(select(t.customers.c.id))}
    rows = [customer_to_row(c, now) for c in customers]
    for chunk in chunks(rows):
        upsert(conn, t.customers, chunk, key=["id"])
    new_ids = {c.id for c in customers}
    created = len(new_ids - existing)
    updated = len(new_ids & existing)
    clear_changed_flags(conn, customers)
    removed = 0
    if replace:
        gone = sorted(existing - new_ids)
        for ids in chunks(gone):
            removed += conn.execute(t.customers.delete().where(t.customers.c.id.in_(ids))).rowcount
    return created, updated, removed


def open_audiences_leaving(conn: Connection, keep: Iterable[str]) -> dict[int, list[str]]:
    """Open incidents whose audience has customers not in ``keep``: incident id -> those ids."""
    i, a = t.incidents, t.audience
    kept = set(keep)
    q = (
        select(a.c.incident_id, a.c.customer_id)
        .join(i, i.c.id == a.c.incident_id)
        .where(i.c.status.not_in(CLOSED_STATUSES), a.c.customer_id != ROUND_WIDE)
        .distinct()
        .order_by(a.c.incident_id, a.c.customer_id)
    )
    out: dict[int, list[str]] = {}
    for iid, cid in conn.execute(q):
        if cid not in kept:
            out.setdefault(iid, []).append(cid)
    return out


def keep_departing(conn: Connection, leaving: Mapping[int, Sequence[str]], now: datetime) -> int:
    """Before customers leave the directory, keep each one's row with every open incident they
    are in the audience of (an event of that incident), so its later rounds still reach them.
    Returns how many customers were kept."""
    found = get_customers(conn, {cid for ids in leaving.values() for cid in ids})
    kept: set[str] = set()
    for iid, ids in leaving.items():
        for cid in ids:
            c = found.get(cid)
            if c is None:
                continue
            row = object_row(c, lists=_LISTS) | {"monthly_fee": str(c.monthly_fee)}
            conn.execute(
                insert(t.events).values(
                    incident_id=iid, at=now, kind=KEPT_CUSTOMER, detail=json.dumps(row)
                )
            )
            kept.add(cid)
        n = sum(1 for cid in ids if cid in found)
        conn.execute(
            insert(t.events).values(
                incident_id=iid, at=now, kind="customers_left_directory",
                detail=f"{n} customers left the directory (customers import --replace); this "
                "incident keeps their details for its remaining rounds",
            )
        )  # fmt: skip
    return len(kept)


def departed_customers(
    conn: Connection, incident_ids: Iterable[str | int], customer_ids: Iterable[str]
) -> dict[str, Customer]:
    """The kept rows of these customers that left the directory during these incidents."""
    wanted = set(customer_ids)
    if not wanted:
        return {}
    e = t.events
    q = (
        select(e.c.detail)
        .where(
            e.c.kind == KEPT_CUSTOMER, e.c.incident_id.in_(sorted({int(i) for i in incident_ids}))
        )
        .order_by(e.c.id)
    )
    out: dict[str, Customer] = {}
    for (detail,) in conn.execute(q):
        row = json.loads(detail)
        if row.get("id") in wanted:
            out[row["id"]] = row_to_customer(SimpleNamespace(**row))
    return out


def customers_for_incidents(
    conn: Connection, incident_ids: Iterable[int], customer_ids: Iterable[str]
) -> dict[str, Customer]:
    """The directory's customers, and for those it no longer has, the rows kept for these
    incidents when they left (``keep_departing``)."""
    ids = set(customer_ids)
    found = get_customers(conn, ids)
    missing = ids - set(found)
    if missing:
        found |= departed_customers(conn, incident_ids, missing)
    return found


def all_customers(conn: Connection) -> list[Customer]:
    return [
        row_to_customer(r) for r in conn.execute(select(t.customers).order_by(t.customers.c.id))
    ]


def get_customers(conn: Connection, ids: Iterable[str]) -> dict[str, Customer]:
    out: dict[str, Customer] = {}
    for chunk in chunks(sorted(set(ids))):
        for r in conn.execute(select(t.customers).where(t.customers.c.id.in_(chunk))):
            out[r.id] = row_to_customer(r)
    return out


def locale_representatives(conn: Connection, incident_id: int) -> list[Customer]:
    """One audience customer per locale: enough to pre-flight every template."""
    c, a = t.customers, t.audience
    q = (
        select(func.min(c.c.id))
        .join(a, a.c.customer_id == c.c.id)
        .where(a.c.incident_id == incident_id)
        .group_by(c.c.locale)
    )
    ids = [r[0] for r in conn.execute(q)]
    return list(get_customers(conn, ids).values())


# --- contact flags -----------------------------------------------------------------------------


def flag_contacts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Record contacts a provider refused for good (customer_id, channel, contact, reason,
    incident_id, flagged_at); a newer flag for the same pair replaces the older."""
    f = t.contact_flags
    for r in rows:
        conn.execute(
            delete(f).where(f.c.customer_id == r["customer_id"], f.c.channel == r["channel"])
        )
        conn.execute(insert(f).values(**r))


def _flags(conn: Connection, q: Any) -> list[dict[str, Any]]:
    out = []
    for r in conn.execute(q):
        row = dict(r._mapping)
        row["flagged_at"] = as_utc(row["flagged_at"])
        out.append(row)
    return out


def contact_flags(conn: Connection, customer_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The flags on these customers' contacts."""
    f = t.contact_flags
    out: list[dict[str, Any]] = []
    for chunk in chunks(sorted(set(customer_ids))):
        out += _flags(conn, select(f).where(f.c.customer_id.in_(chunk)))
    return out


def incident_contact_flags(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    """The flags on contacts in an incident's audience (customer and channel), in order."""
    f, a = t.contact_flags, t.audience
    q = (
        select(f)
        .join(a, (a.c.customer_id == f.c.customer_id) & (a.c.channel == f.c.channel))
        .where(a.c.incident_id == incident_id)
        .order_by(f.c.customer_id, f.c.channel)
    )
    return _flags(conn, q)


def clear_changed_flags(conn: Connection, customers: Sequence[Customer]) -> int:
    """Drop the flags of contacts that a re-import changed: a new number deserves a try."""
    by_id = {c.id: c for c in customers}
    stale = []
    for flag in contact_flags(conn, by_id):
        c = by_id[flag["customer_id"]]
        current = {c.email, c.phone, c.slack_webhook, c.teams_webhook, c.webhook_url}
        if flag["contact"] not in current:
            stale.append((flag["customer_id"], flag["channel"]))
    f = t.contact_flags
    for cid, ch in stale:
        conn.execute(delete(f).where(f.c.customer_id == cid, f.c.channel == ch))
    return len(stale)
