"""Whose message is this: the delivery of ours it answers, so its incident, round, customer
and channel.

Email, strongest first: the Reply-To token in a recipient address (``replies+<token>@``, signed:
a changed or unknown token is never attributed, whatever else the message says); else our
Message-ID in ``In-Reply-To``/``References`` (or, for a bounce, in the bounced message), but
only when the sender (for a bounce: the failed recipient) is that customer's own address, since
anyone can copy a Message-ID. SMS: the sender's number, to that customer's open incident.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from outagecomms.inbound.tokens import read_token, token_of
from outagecomms.models import IncidentStatus
from outagecomms.store import tables as t
from outagecomms.store.engine import chunks

#: ``<oc.{delivery}.{inc-n}.r{seq}@domain>`` (outbox.dispatch.message_id)
_OUR_ID = re.compile(r"<oc\.(\d{1,18})\.inc-(\d{1,18})\.r\d{1,9}@[^>\s]+>", re.IGNORECASE)
#: an SMS answers the customer's newest incident if none is open but one ended this recently
RECENT = timedelta(days=7)


@dataclass(frozen=True)
class Match:
    incident_id: int | None = None
    round_id: int | None = None
    customer_id: str | None = None
    channel: str = ""  # the configured channel of the delivery answered
    delivery_id: int | None = None
    by: str = ""  # token | thread | bounce | phone
    why_not: str = ""  # unmatched: why

    @property
    def matched(self) -> bool:
        return self.customer_id is not None


#: deliveries read ahead for a batch (``prefetch``): id -> the match and the address, or None
_ahead: ContextVar[dict[int, tuple[Match, str] | None] | None] = ContextVar(
    "outagecomms_inbound_deliveries", default=None
)
_DELIVERY_REF = re.compile(rb"oc\.(\d{1,18})\.inc-\d{1,18}\.r\d", re.IGNORECASE)
_TOKEN_REF = re.compile(rb"\+([0-9a-z]{1,13})-[a-z2-7]{10}@", re.IGNORECASE)


def delivery_refs(raw: bytes, recipients: Iterable[str] = ()) -> set[int]:
    """Every delivery id a message might name (our Message-IDs, reply tokens), unverified:
    what a batch reads ahead in one query."""
    ids = {int(m[1]) for m in _DELIVERY_REF.finditer(raw)}
    for m in _TOKEN_REF.finditer(raw + b" " + " ".join(recipients).encode("utf-8", "replace")):
        ids.add(int(m[1].decode("ascii").lower(), 36))
    return {i for i in ids if i < 2**62}


def prefetch(conn: Connection, ids: Iterable[int]) -> dict[int, tuple[Match, str] | None]:
    """The deliveries ``ids`` with their customers' addresses, in one query per 500."""
    d, c = t.deliveries, t.customers
    found: dict[int, tuple[Match, str] | None] = dict.fromkeys(ids)
    for part in chunks(sorted(found), 500):
        q = (
            select(d.c.id, d.c.incident_id, d.c.round_id, d.c.customer_id, d.c.channel, c.c.email)
            .select_from(d.outerjoin(c, c.c.id == d.c.customer_id))
            .where(d.c.id.in_(part))
        )
        for row in conn.execute(q):
            found[int(row[0])] = (
                Match(
                    incident_id=int(row[1]),
                    round_id=int(row[2]),
                    customer_id=str(row[3]),
                    channel=str(row[4]),
                    delivery_id=int(row[0]),
                ),
                str(row[5] or "").lower(),
            )
    return found


@contextmanager
def read_ahead(found: dict[int, tuple[Match, str] | None]) -> Iterator[None]:
    token = _ahead.set(found)
    try:
        yield
    finally:
        _ahead.reset(token)


def _delivery(conn: Connection, delivery_id: int) -> tuple[Match, str] | None:
    """The delivery as a match, and its customer's email address (lower case)."""
    ahead = _ahead.get()
    if ahead is not None and delivery_id in ahead:
        return ahead[delivery_id]
    d, c = t.deliveries, t.customers
    row = conn.execute(
        select(d.c.incident_id, d.c.round_id, d.c.customer_id, d.c.channel, c.c.email)
        .select_from(d.outerjoin(c, c.c.id == d.c.customer_id))
        .where(d.c.id == delivery_id)
    ).first()
    if row is None:
        return None
    found = Match(
        incident_id=int(row[0]),
        round_id=int(row[1]),
        customer_id=str(row[2]),
        channel=str(row[3]),
        delivery_id=delivery_id,
    )
    return found, str(row[4] or "").lower()


def our_message_ids(ids: Iterable[str]) -> list[tuple[int, int]]:
    """(delivery id, incident id) of each of our Message-IDs among ``ids``, newest reference
    first (References lists the thread oldest first)."""
    out = []
    for mid in ids:
        for m in _OUR_ID.finditer(mid or ""):
            out.append((int(m[1]), int(m[2])))
    return out[::-1]


def match_email(
    conn: Connection,
    *,
    reply_to: str,
    secret: bytes | None,
    recipients: Sequence[str],
    thread_ids: Sequence[str],
    sender: str,
    bounce_recipients: Sequence[str] = (),
    by_thread: str = "thread",
) -> Match:
    if reply_to:
        for addr in recipients:
            token = token_of(reply_to, addr)
            if token is None:
                continue
            if secret is None:
                return Match(why_not="a reply token, but the daemon secret is not set to read it")
            delivery_id = read_token(secret, token)
            if delivery_id is None:
                return Match(why_not=f"the reply token in {addr[:80]!r} is not one of ours")
            hit = _delivery(conn, delivery_id)
            if hit is None:
                return Match(why_not=f"the reply token names delivery {delivery_id}, not stored")
            return Match(**{**hit[0].__dict__, "by": "token"})
    allowed = {a.lower() for a in ([sender] if sender else [])} | {
        a.lower() for a in bounce_recipients
    }
    candidates = our_message_ids(thread_ids)
    for delivery_id, incident_id in candidates:
        hit = _delivery(conn, delivery_id)
        if hit is None or hit[0].incident_id != incident_id:
            continue
        found, email = hit
        if email not in allowed:
            return Match(
                why_not="it answers one of our messages, but not from the address it went to"
            )
        return Match(**{**found.__dict__, "by": by_thread})
    if candidates:
        return Match(why_not="it refers to a message of ours that is not stored")
    return Match(why_not="no reply token and no reference to a message of ours")


def match_phone(conn: Connection, number: str, now: datetime) -> tuple[Match, list[str]]:
    """The customer texting from ``number`` and their open incident (else one that ended in the
    last week); also every customer with that number (for STOP/START)."""
    c, a, inc, d = t.customers, t.audience, t.incidents, t.deliveries
    ids = [str(x) for x in conn.execute(select(c.c.id).where(c.c.phone == number)).scalars()]
    if not ids:
        return Match(why_not=f"no customer has the number {number}"), ids
    q = (
        select(a.c.customer_id, inc.c.id, inc.c.status, inc.c.resolved_at)
        .select_from(a.join(inc, inc.c.id == a.c.incident_id))
        .where(a.c.customer_id.in_(ids))
        .order_by(inc.c.id.desc())
    )
    open_hits: dict[str, int] = {}
    recent: list[tuple[str, int]] = []
    closed = (IncidentStatus.RESOLVED.value, IncidentStatus.VOIDED.value)
    for customer_id, incident_id, status, resolved_at in conn.execute(q):
        if status not in closed:
            open_hits.setdefault(str(customer_id), int(incident_id))
        elif resolved_at is not None and resolved_at.replace(tzinfo=now.tzinfo) >= now - RECENT:
            recent.append((str(customer_id), int(incident_id)))
    hits = list(open_hits.items()) or recent[:1]
    if len({cid for cid, _ in hits}) > 1:
        return Match(why_not=f"{len(ids)} customers share the number {number}"), ids
    if not hits:
        return Match(why_not=f"the customer with {number} is in no open incident"), ids
    customer_id, incident_id = hits[0]
    row = conn.execute(
        select(d.c.round_id, d.c.channel, d.c.id)
        .where(d.c.incident_id == incident_id, d.c.customer_id == customer_id)
        .order_by(d.c.id.desc())
        .limit(1)
    ).first()
    round_id = int(row[0]) if row is not None else None
    channel = str(row[1]) if row is not None else ""
    return (
        Match(
            incident_id=incident_id,
            round_id=round_id,
            customer_id=customer_id,
            channel=channel,
            delivery_id=int(row[2]) if row is not None else None,
            by="phone",
        ),
        ids,
    )
