"""The one pipeline every message that comes back goes through, whichever way it came (SMTP or
LMTP listener, IMAP mailbox, ``inbound ingest`` pipe, Twilio webhook):

1. ``store_message``: the bytes as received, committed before anything else (the listener
   answers 250 only after it returns; a store that cannot take it raises ``StoreUnavailable``,
   451 / exit 75). The same message twice (same Message-ID and body) is stored once.
2. ``process``: parse, classify (reply / auto_reply / bounce), match to the delivery it answers,
   clean and score a person's words, then in one transaction: record it, and queue what follows
   (an escalation to the account manager and the commander, a short acknowledgement to the
   person, a bounced message's resend on the customer's next channel, a contact flag).
   Idempotent: a crash between 1 and 2 is finished by ``process_pending`` at the daemon's start.
3. The inbound sender (``inbound.sender``) sends what was queued; the outbox sends a resend.

Nothing of a message's text goes to a log: it is personal data, kept ``[inbound] keep`` long.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zlib
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from email.utils import parseaddr
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.errors import InputError, OutageCommsError, StoreUnavailable
from outagecomms.inbound import escalation as rules
from outagecomms.inbound.matching import Match, match_email, match_phone
from outagecomms.models import Customer, DeliveryStatus, Incident
from outagecomms.store import customers as customers_db
from outagecomms.store import inbound as inbound_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import tables as t

log = logging.getLogger("outagecomms.inbound")

SOURCES = ("smtp", "lmtp", "imap", "pipe", "twilio")
#: the kinds of channel a bounced email falls back to, in order (``[policy.*] fallback`` unset)
FALLBACK_KINDS = ("sms", "slack", "teams", "webhook")
#: the text a customer's message is kept with (the raw message keeps the rest)
MAX_TEXT = 20_000
OPT_OUT = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
OPT_IN = {"start", "yes", "unstop"}
OPT_OUT_REASON = "opted out by texting STOP"

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]{1,900}>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Stored:
    id: int
    duplicate: bool


@dataclass(frozen=True)
class Processed:
    id: int
    duplicate: bool
    kind: str | None
    customer_id: str | None
    incident_ref: str | None
    label: str | None
    escalated: bool
    sends: int  # escalations and acknowledgements queued
    resent_on: str = ""  # a bounce: the channel the message goes out on now

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "duplicate": self.duplicate,
            "kind": self.kind,
            "customer_id": self.customer_id,
            "incident": self.incident_ref,
            "label": self.label,
            "escalated": self.escalated,
            "queued": self.sends,
            "resent_on": self.resent_on or None,
        }


# --- 1. store ---------------------------------------------------------------------------------


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Header block and body, whichever line ending the message uses."""
    crlf, lf = raw.find(b"\r\n\r\n"), raw.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf + 1):
        return raw[:crlf], raw[crlf + 4 :]
    if lf >= 0:
        return raw[:lf], raw[lf + 2 :]
    return raw, b""


def digest(raw: bytes) -> tuple[str, str]:
    """(digest, Message-ID): with a Message-ID, of it and the body, so the same message
    delivered again (other trace headers, another envelope) is the same; else of the bytes."""
    head, body = split_head(raw)
    m = _MESSAGE_ID.search(head)
    if m is None:
        return hashlib.sha256(b"raw\0" + raw).hexdigest(), ""
    mid = m[1]
    key = b"mid\0" + mid + b"\0" + hashlib.sha256(body.replace(b"\r\n", b"\n")).digest()
    return hashlib.sha256(key).hexdigest(), mid.decode("ascii", "replace")


def _unavailable(exc: BaseException) -> StoreUnavailable:
    orig = getattr(exc, "orig", None)
    why = (str(orig or exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return StoreUnavailable(
        f"the store cannot take the message now ({why}); nothing was stored, try again later"
    )


def store_message(
    app: App,
    raw: bytes,
    *,
    source: str,
    recipients: Sequence[str] = (),
    received_at: datetime | None = None,
) -> Stored:
    """Store one RFC 5322 message as received; durable when this returns. Raises
    ``InputError`` over ``[inbound] max_size``, ``StoreUnavailable`` when the store cannot
    take it now."""
    result = store_many(app, [(raw, recipients)], source=source, received_at=received_at)[0]
    if isinstance(result, OutageCommsError):
        raise result
    return result


def store_many(
    app: App,
    messages: Sequence[tuple[bytes, Sequence[str]]],
    *,
    source: str,
    received_at: datetime | None = None,
) -> list[Stored | OutageCommsError]:
    """``store_message`` for messages that arrived together, in one transaction (a group
    commit: the SMTP listener's sessions waiting at the same moment share one write). Each
    result is its message's ``Stored``, or the error that kept it out (over ``max_size``:
    ``InputError``; the store down: ``StoreUnavailable`` for all); durable when this returns."""
    if source not in SOURCES:
        raise InputError(f"unknown inbound source {source!r}; one of {', '.join(SOURCES)}")
    limit = app.config.inbound.max_size
    now = received_at or app.clock()
    out: list[Stored | OutageCommsError] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    for i, (raw, recipients) in enumerate(messages):
        if len(raw) > limit:
            out.append(
                InputError(
                    f"the message is {len(raw)} bytes, more than [inbound] max_size ({limit}) "
                    "allows"
                )
            )
            continue
        out.append(InputError("not stored"))  # replaced below
        key, mid = digest(raw)
        rows.append(
            (
                i,
                {
                    "received_at": now,
                    "source": source,
                    "channel": "email",
                    "digest": key,
                    "message_id": mid,
                    "raw": raw,
                    "size": len(raw),
                    "recipients": [str(r)[:320] for r in recipients][:100],
                },
            )
        )
    if not rows:
        return out
    try:
        with app.store.write() as conn:
            stored = inbound_db.insert_messages(conn, [r for _, r in rows])
        done = list(zip([i for i, _ in rows], stored, strict=True))
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        err = _unavailable(exc)
        for i, _ in rows:
            out[i] = err
        return out
    for i, (new_id, duplicate) in done:
        out[i] = Stored(new_id, duplicate)
    return out


def _store(app: App, row: dict[str, Any]) -> Stored:
    try:
        with app.store.write() as conn:
            new_id, duplicate = inbound_db.insert_message(conn, row)
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        raise _unavailable(exc) from None
    return Stored(new_id, duplicate)


# --- 2. process -------------------------------------------------------------------------------


@dataclass
class _Batch:
    """What the messages of one ``process_many`` look up, read once for all of them: the
    customers, incidents and incident counts (a batch of replies mostly concerns one incident
    and repeats customers)."""

    customers: dict[str, Customer | None] = field(default_factory=dict)
    incidents: dict[int, Incident] = field(default_factory=dict)
    counts: dict[tuple[str, datetime], int] = field(default_factory=dict)


_batch: ContextVar[_Batch | None] = ContextVar("outagecomms_inbound_batch", default=None)


def _customer(conn: Connection, customer_id: str) -> Customer | None:
    batch = _batch.get()
    if batch is not None and customer_id in batch.customers:
        return batch.customers[customer_id]
    found = customers_db.get_customers(conn, [customer_id]).get(customer_id)
    if batch is not None:
        batch.customers[customer_id] = found
    return found


def _incident(conn: Connection, incident_id: int) -> Incident:
    batch = _batch.get()
    if batch is not None and incident_id in batch.incidents:
        return batch.incidents[incident_id]
    found = incidents_db.get_incident(conn, incident_id).incident
    if batch is not None:
        batch.incidents[incident_id] = found
    return found


def _incidents_since(conn: Connection, customer_id: str, since: datetime) -> int:
    batch = _batch.get()
    key = (customer_id, since.replace(second=0, microsecond=0))
    if batch is not None and key in batch.counts:
        return batch.counts[key]
    n = inbound_db.customer_incident_count(conn, customer_id, key[1])
    if batch is not None:
        batch.counts[key] = n
    return n


_scorers: dict[str, Any] = {}


def scorer_for(spec: str) -> Any:
    """The configured sentiment scorer, built once per process (vader's lexicon takes a while)."""
    s = _scorers.get(spec)
    if s is None:
        from outagecomms.inbound.sentiment import load_scorer

        s = _scorers[spec] = load_scorer(spec)
    return s


def _secret(app: App) -> bytes | None:
    from outagecomms.recovery.feedback import feedback_secret

    try:
        return feedback_secret(app)
    except OutageCommsError:
        return None


def ingest(app: App, raw: bytes, *, source: str, recipients: Sequence[str] = ()) -> Processed:
    """Store, then process, one message (``inbound ingest``)."""
    stored = store_message(app, raw, source=source, recipients=recipients)
    if stored.duplicate:
        return _already(app, stored.id)
    return process(app, stored.id)


def process_pending(app: App) -> int:
    """Process what was stored but not processed (a crash in between); how many."""
    n = 0
    while True:
        with app.store.read() as conn:
            ids = inbound_db.pending_ids(conn, limit=100)
        if not ids:
            return n
        process_many(app, ids)
        n += len(ids)


def _already(app: App, inbound_id: int) -> Processed:
    with app.store.read() as conn:
        row = inbound_db.get_message(conn, inbound_id)
    assert row is not None
    ref = f"INC-{row['incident_id']}" if row["incident_id"] else None
    return Processed(
        id=inbound_id,
        duplicate=True,
        kind=row["kind"],
        customer_id=row["customer_id"],
        incident_ref=ref,
        label=row["label"],
        escalated=row["escalated_at"] is not None,
        sends=0,
    )


@dataclass
class _Plan:
    """What processing decided, written in one transaction."""

    values: dict[str, Any]
    sends: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    unflag: list[tuple[str, str]]
    bounce_of: Match | None = None
    event: tuple[int, str, str] | None = None


def process(app: App, inbound_id: int) -> Processed:
    """Classify, match and act on a stored message (again: nothing happens twice)."""
    done = process_many(app, [inbound_id])
    if not done:
        raise InputError(f"inbound message {inbound_id} does not exist")
    return done[0]


def process_many(app: App, ids: Sequence[int]) -> list[Processed]:
    """``process`` for several messages at once: one read and one write transaction for all
    of them (the daemon drains what its listeners stored this way). Each message is still
    processed once: one another process took first is reported as it stored it."""
    plans: list[tuple[int, _Plan]] = []
    out: dict[int, Processed] = {}
    token = _batch.set(_Batch())
    try:
        with app.store.read() as conn:
            rows = inbound_db.get_messages(conn, ids)
            plans = _plan_all(app, conn, ids, rows, out)
    finally:
        _batch.reset(token)
    taken: list[int] = []
    if plans:
        with app.store.write() as conn:
            now = app.clock()
            claimed = inbound_db.claim_many(conn, [i for i, _ in plans])
            applied = _apply_all(app, conn, [(i, p) for i, p in plans if i in claimed], now)
            for inbound_id, plan in plans:
                if inbound_id not in claimed:
                    taken.append(inbound_id)
                    continue
                resent_on, queued = applied[inbound_id]
                v = plan.values
                out[inbound_id] = Processed(
                    id=inbound_id,
                    duplicate=False,
                    kind=v.get("kind"),
                    customer_id=v.get("customer_id"),
                    incident_ref=f"INC-{v['incident_id']}" if v.get("incident_id") else None,
                    label=v.get("label"),
                    escalated=v.get("escalated_at") is not None,
                    sends=queued,
                    resent_on=resent_on,
                )
    for inbound_id in taken:  # another process took it first: as it recorded it
        out[inbound_id] = _already(app, inbound_id)
    return [out[i] for i in ids if i in out]


def _plan_all(
    app: App,
    conn: Connection,
    ids: Sequence[int],
    rows: dict[int, dict[str, Any]],
    out: dict[int, Processed],
) -> list[tuple[int, _Plan]]:
    """Decide what each message is and what follows (reads only). The deliveries the messages
    may answer, and their customers, are read first, in one query each for the batch."""
    from outagecomms.inbound.matching import delivery_refs, prefetch, read_ahead

    refs: set[int] = set()
    for row in rows.values():
        if row["channel"] == "email" and row["status"] != "processed":
            refs |= delivery_refs(row["raw"][:65536], row["recipients"])
    ahead = prefetch(conn, refs) if refs else {}
    batch = _batch.get()
    if batch is not None and ahead:
        wanted = {hit[0].customer_id for hit in ahead.values() if hit is not None}
        found = customers_db.get_customers(conn, [c for c in wanted if c])
        for cid in wanted:
            if cid:
                batch.customers[cid] = found.get(cid)
    with read_ahead(ahead):
        return _plan_each(app, conn, ids, rows, out)


def _plan_each(
    app: App,
    conn: Connection,
    ids: Sequence[int],
    rows: dict[int, dict[str, Any]],
    out: dict[int, Processed],
) -> list[tuple[int, _Plan]]:
    plans: list[tuple[int, _Plan]] = []
    for inbound_id in ids:
        row = rows.get(inbound_id)
        if row is None:
            continue
        if row["status"] == "processed":
            out[inbound_id] = _already(app, inbound_id)
            continue
        planner = _PLANNERS.get(row["channel"], _plan_email)
        try:
            plan = planner(app, conn, row)
        except SQLAlchemyError:
            raise  # the store: try again later, nothing was decided
        except Exception as exc:  # a template, a scorer, a bug: a person reads it
            log.error("inbound message %d could not be processed: %s", inbound_id, exc)
            plan = _unprocessable(f"could not be processed: {exc}"[:500])
        plans.append((inbound_id, plan))
    return plans


def _apply_all(
    app: App, conn: Connection, plans: Sequence[tuple[int, _Plan]], now: datetime
) -> dict[int, tuple[str, int]]:
    """Write what processing decided for the claimed messages, in the caller's transaction,
    in as few statements as there are kinds of row: (resent on, queued) per message."""
    result: dict[int, tuple[str, int]] = {}
    sends: list[tuple[int, dict[str, Any]]] = []
    for inbound_id, plan in plans:
        plan.values["processed_at"] = now
        for send in plan.sends:
            sends.append((inbound_id, {"inbound_id": inbound_id, "created_at": now, **send}))
    queued = inbound_db.queue_sends(conn, [row for _, row in sends])
    per_message: dict[int, int] = {}
    for (inbound_id, _), ok in zip(sends, queued, strict=True):
        if ok:
            per_message[inbound_id] = per_message.get(inbound_id, 0) + 1
    acked = {
        i
        for (i, row), ok in zip(sends, queued, strict=True)
        if ok and row["kind"] == "acknowledgement"
    }
    flags = [f for _, plan in plans for f in plan.flags]
    if flags:
        customers_db.flag_contacts(conn, flags)
    events: list[dict[str, Any]] = []
    for inbound_id, plan in plans:
        if inbound_id in acked:
            plan.values["acknowledged_at"] = now
        for customer_id, channel in plan.unflag:
            f = t.contact_flags
            conn.execute(
                delete(f).where(
                    f.c.customer_id == customer_id,
                    f.c.channel == channel,
                    f.c.reason == OPT_OUT_REASON,
                )
            )
        resent_on = ""
        if plan.bounce_of is not None:
            resent_on = fall_back(app, conn, plan.bounce_of, now) or ""
            if resent_on:
                bounce = dict(plan.values.get("bounce") or {})
                bounce["resent_on"] = resent_on
                plan.values["bounce"] = bounce
        if plan.event is not None:
            incident_id, kind, detail = plan.event
            events.append({"incident_id": incident_id, "at": now, "kind": kind, "detail": detail})
        result[inbound_id] = (resent_on, per_message.get(inbound_id, 0))
    if events:
        conn.execute(insert(t.events), events)
    inbound_db.record_processed_many(conn, [(i, p.values) for i, p in plans])
    return result


def _unprocessable(note: str) -> _Plan:
    """A message kept as it came, attributed to nobody, for a person to read."""
    return _Plan(
        values={
            "kind": "reply",
            "reason": note[:200],
            "parse_note": note,
            "needs_person": 1,
            "unmatched_reason": note[:200],
        },
        sends=[],
        flags=[],
        unflag=[],
    )


def _match_values(m: Match) -> dict[str, Any]:
    return {
        "incident_id": m.incident_id,
        "round_id": m.round_id,
        "customer_id": m.customer_id,
        "delivery_id": m.delivery_id,
        "matched_by": m.by,
        "unmatched_reason": "" if m.matched else m.why_not,
    }


def _plan_email(app: App, conn: Connection, row: dict[str, Any]) -> _Plan:
    from outagecomms.inbound.classify import Kind, classify
    from outagecomms.inbound.parse import ParseLimits, parse_message

    cfg = app.config.inbound
    limits = ParseLimits(
        max_depth=cfg.max_depth, max_headers=cfg.max_headers, keep_attachments=cfg.keep_attachments
    )
    try:
        parsed = parse_message(row["raw"], limits=limits)
        verdict = classify(parsed)
    except Exception as exc:  # never lose a message to a parser bug: a person reads it raw
        log.error("inbound message %d could not be parsed: %s", row["id"], type(exc).__name__)
        return _unprocessable(f"could not be parsed ({type(exc).__name__}); stored raw")
    notes = list(parsed.notes)
    values: dict[str, Any] = {}
    if parsed.attachments and not cfg.keep_attachments:
        from outagecomms.inbound.attachments import without_attachments

        trimmed = without_attachments(row["raw"], max_depth=cfg.max_depth)
        if trimmed is not None:
            values["raw"] = zlib.compress(trimmed[0], 1)
            values["size"] = len(trimmed[0])
            notes.append(f"{trimmed[1]} attachment(s) not kept ([inbound] keep_attachments)")
    values.update(
        {
            "kind": verdict.kind.value,
            "reason": verdict.reason[:500],
            "parse_note": "; ".join(notes)[:2000],
            "sender": parsed.from_addr[:320],
            "subject": parsed.subject[:998],
        }
    )
    recipients = [*row["recipients"], *parsed.to_addrs]
    thread = [*parsed.in_reply_to, *parsed.references]
    bounce = verdict.bounce
    if bounce is not None:
        thread = [bounce.original_message_id, *thread] if bounce.original_message_id else thread
        values["bounce"] = {
            "permanent": bounce.permanent,
            "status": bounce.status,
            "action": bounce.action,
            "recipients": list(bounce.recipients),
            "diagnostic": bounce.diagnostic,
        }
        values["text"] = bounce.diagnostic
    match = match_email(
        conn,
        reply_to=cfg.reply_to,
        secret=_secret(app) if cfg.reply_to else None,
        recipients=recipients,
        thread_ids=thread,
        sender=parsed.from_addr,
        bounce_recipients=bounce.recipients if bounce is not None else (),
        by_thread="bounce" if bounce is not None else "thread",
    )
    values.update(_match_values(match))
    plan = _Plan(values=values, sends=[], flags=[], unflag=[])
    if not match.matched:
        if verdict.kind != Kind.BOUNCE:  # what a person reads in `replies --unmatched`
            from outagecomms.inbound.textclean import strip_reply

            values["text"] = strip_reply(parsed.text)[:MAX_TEXT]
        return plan
    assert match.customer_id is not None and match.incident_id is not None
    customer = _customer(conn, match.customer_id)
    incident = _incident(conn, match.incident_id)
    if verdict.kind == Kind.BOUNCE:
        assert bounce is not None
        what = "bounced for good" if bounce.permanent else "delayed"
        plan.event = (
            incident.id,
            "bounce",
            f"{match.customer_id} {match.channel}: {what} {bounce.status}".strip(),
        )
        if bounce.permanent and customer is not None:
            contact = customer.email or (bounce.recipients[0] if bounce.recipients else "")
            plan.flags.append(
                {
                    "customer_id": customer.id,
                    "channel": match.channel,
                    "contact": contact,
                    "reason": f"bounced {bounce.status or ''}: {bounce.diagnostic}".replace(
                        " :", ":"
                    )[:500],
                    "incident_id": incident.id,
                    "flagged_at": app.clock(),
                }
            )
            plan.bounce_of = match
        return plan
    if verdict.kind == Kind.AUTO_REPLY:
        values["text"] = parsed.text.strip()[:2000]
        plan.event = (incident.id, "auto_reply", f"{match.customer_id}: {verdict.reason}"[:300])
        return plan
    _plan_reply(app, conn, plan, parsed.text, customer, incident, match, row, parsed)
    return plan


def _plan_reply(
    app: App,
    conn: Connection,
    plan: _Plan,
    body: str,
    customer: Customer | None,
    incident: Incident,
    match: Match,
    row: dict[str, Any],
    parsed: Any = None,
) -> None:
    from outagecomms.inbound.language import detect_language
    from outagecomms.inbound.sentiment import label as label_of

    values = plan.values
    if row["channel"] in ("sms", "web"):
        text = body.strip()
    else:
        from outagecomms.inbound.textclean import strip_reply

        text = strip_reply(body)
    text = text[:MAX_TEXT]
    values["text"] = text
    hint = customer.locale.split("_")[0].lower() if customer else None
    language = detect_language(text, hint)
    values["language"] = language
    score: float | None
    try:
        score = scorer_for(app.config.inbound.scorer).score(text, language)
    except OutageCommsError:
        raise
    except Exception as exc:  # an operator's scorer failing: a person reads the message
        log.warning("the sentiment scorer failed: %s", type(exc).__name__)
        score = None
    if score is not None:
        score = max(-1.0, min(1.0, float(score)))
    values["sentiment"] = score
    values["label"] = label_of(score)
    values["needs_person"] = 1 if score is None else 0
    who = match.customer_id
    plan.event = (incident.id, "reply", f"{who} {values['label'] or 'unscored'}")
    if customer is None:
        return
    facts = _facts(app, conn, text, values["label"], score, customer, incident)
    decision = rules.decide(app.config.inbound.escalation, facts)
    am_told = False
    if decision is not None:
        now = app.clock()
        sends = _escalations(app, conn, decision, facts, incident, row, values)
        if sends:
            values["escalated_at"] = now
            am_told = any(s["notify"] == "account_manager" for s in sends)
        values["escalation"] = {
            "rule": decision.rule,
            "why": decision.why,
            "to": [s["to_shown"] for s in sends],
        }
        for s in sends:
            s.pop("to_shown")
            s.pop("notify")
        plan.sends.extend(sends)
        plan.event = (
            incident.id,
            "reply",
            f"{who} {values['label'] or 'unscored'}, escalated ({decision.rule})",
        )
    if app.config.inbound.acknowledge and row["channel"] != "web":  # the page thanks them
        ack = _acknowledgement(
            app,
            customer,
            incident,
            match,
            row,
            parsed,
            escalated=decision is not None,
            am_told=am_told,
        )
        if ack is not None:
            plan.sends.append(ack)


def _facts(
    app: App,
    conn: Connection,
    text: str,
    label: str | None,
    score: float | None,
    customer: Customer,
    incident: Incident,
) -> rules.Facts:
    from outagecomms.store import credits as credits_db

    now = app.clock()
    configured = app.config.inbound.escalation
    windows = {
        d: _incidents_since(conn, customer.id, now - timedelta(days=d))
        for d in rules.windows(configured)
    }
    credit = None  # read only when a rule asks (else for the escalation's text only)
    if any(r.credit_at_least is not None for r in configured):
        credit_row = credits_db.customer_credit(conn, incident.id, customer.id)
        credit = Decimal(credit_row["amount"]) if credit_row else None
    return rules.Facts(
        text=text,
        label=label,
        score=score,
        customer=customer,
        incidents_in=windows,
        credit=credit,
    )


def _credit_text(
    conn: Connection, incident: Incident, customer: Customer, facts: rules.Facts
) -> str:
    """Their credit for this incident so far, for the escalation ("" when none)."""
    amount = facts.credit
    if amount is None:
        from outagecomms.store import credits as credits_db

        row = credits_db.customer_credit(conn, incident.id, customer.id)
        amount = Decimal(row["amount"]) if row else None
    return f"{amount} {customer.currency}" if amount is not None else ""


def channel_of_kind(app: App, kind: str, preferred: str = "") -> str | None:
    """``preferred`` if it is a configured channel of template set ``kind`` (``email``,
    ``sms``), else the first configured one of that kind; None when there is none."""
    chans = app.config.channels
    if preferred in chans and registry.get(chans[preferred].kind).template_channel == kind:
        return preferred
    for name, cfg in chans.items():
        if registry.get(cfg.kind).template_channel == kind:
            return name
    return None


def _escalations(
    app: App,
    conn: Connection,
    decision: rules.Decision,
    facts: rules.Facts,
    incident: Incident,
    row: dict[str, Any],
    values: dict[str, Any],
) -> list[dict[str, Any]]:
    from outagecomms.scheduler.commander import commander_address

    customer = facts.customer
    policy = app.config.policy(incident.severity)
    now = app.clock()
    quarter = _incidents_since(conn, customer.id, rules.quarter_start(now))
    ctx = {
        "company": app.config.company,
        "incident": incident,
        "customer": customer,
        "text": values.get("text", ""),
        "label": values.get("label"),
        "score": values.get("sentiment"),
        "language": values.get("language"),
        "rule": decision.rule,
        "why": decision.why,
        "channel": row["channel"],
        "received_at": row["received_at"].strftime("%Y-%m-%d %H:%M:%S UTC"),
        "incidents_this_quarter": quarter,
        "credit": _credit_text(conn, incident, customer, facts),
    }
    rendered = app.renderer.render_inbound("escalation", ctx)
    out: list[dict[str, Any]] = []
    base = {
        "incident_id": incident.id,
        "customer_id": customer.id,
        "kind": "escalation",
        "subject": rendered.subject,
        "text": rendered.text,
        "headers": {"X-Outagecomms-Incident": incident.ref, "X-Outagecomms-Customer": customer.id},
    }
    seen: set[tuple[str, str]] = set()
    for target in decision.notify:
        channel: str | None
        if target == "account_manager":
            to = customer.account_manager
            channel = channel_of_kind(app, "email", policy.account_manager_channel)
        elif target == "commander":
            channel = app.config.daemon.commander_channel
            cfg = app.config.channels.get(channel)
            if cfg is None:
                continue
            if registry.get(cfg.kind).template_channel == "email":
                to = commander_address(incident) or ""
            else:
                to = (
                    f"env:{app.config.daemon.commander_webhook_env}"
                    if app.config.daemon.commander_webhook_env
                    else ""
                )
        elif target.startswith(("https://", "http://")):
            to, channel = target, "http"
        else:
            to = target
            channel = channel_of_kind(app, "email", policy.account_manager_channel)
        if not to or channel is None or (channel, to) in seen:
            continue
        seen.add((channel, to))
        shown = (
            "webhook"
            if channel == "http"
            else to
            if not to.startswith("env:")
            else f"the {channel} room"
        )
        out.append({**base, "channel": channel, "to": to, "notify": target, "to_shown": shown})
    return out


def _acknowledgement(
    app: App,
    customer: Customer,
    incident: Incident,
    match: Match,
    row: dict[str, Any],
    parsed: Any,
    *,
    escalated: bool,
    am_told: bool,
) -> dict[str, Any] | None:
    """The short thank-you to a person who wrote: once per round (``dedup``), threaded."""
    am = ""
    if am_told and customer.account_manager:
        name, addr = parseaddr(customer.account_manager)
        am = name or addr.split("@")[0].replace(".", " ").title()
    ctx = {
        "company": app.config.company,
        "incident": incident,
        "customer": customer,
        "escalated": escalated,
        "account_manager": am,
    }
    headers: dict[str, str] = {
        "X-Outagecomms-Incident": incident.ref,
        "X-Outagecomms-Customer": customer.id,
    }
    if row["channel"] == "sms":
        channel = channel_of_kind(app, "sms", match.channel)
        to = customer.phone
        rendered = app.renderer.render_inbound("acknowledgement_sms", ctx)
    else:
        channel = channel_of_kind(app, "email", match.channel)
        to = (
            parsed.from_addr if parsed is not None and match.by == "token" else ""
        ) or customer.email
        subject = parsed.subject if parsed is not None else ""
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}" if subject else f"Re: [{incident.ref}] {incident.title}"
        ctx["subject"] = subject
        rendered = app.renderer.render_inbound("acknowledgement", ctx)
        if parsed is not None and parsed.message_id:
            refs = [*parsed.references, parsed.message_id][-20:]
            headers["In-Reply-To"] = parsed.message_id
            headers["References"] = " ".join(refs)
    if channel is None or not to:
        return None
    return {
        "incident_id": incident.id,
        "customer_id": customer.id,
        "kind": "acknowledgement",
        "channel": channel,
        "to": to,
        "subject": rendered.subject,
        "text": rendered.text,
        "headers": headers,
        "dedup": f"ack:{incident.id}:{match.round_id or 0}:{customer.id}",
    }


# --- SMS -------------------------------------------------------------------------------------


def normalise_number(number: str) -> str:
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number.strip()
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def ingest_sms(
    app: App,
    *,
    sender: str,
    to: str,
    body: str,
    message_sid: str,
    received_at: datetime | None = None,
) -> Processed:
    """An inbound text (Twilio's webhook): stored, matched by the sender's number, then
    handled as a reply; ``STOP``/``UNSUBSCRIBE`` flag the number, ``START`` clears it."""
    payload = json.dumps(
        {"From": sender, "To": to, "Body": body, "MessageSid": message_sid}, ensure_ascii=False
    ).encode()
    key = (
        hashlib.sha256(b"twilio\0" + message_sid.encode()).hexdigest()
        if message_sid
        else hashlib.sha256(b"raw\0" + payload).hexdigest()
    )
    stored = _store(
        app,
        {
            "received_at": received_at or app.clock(),
            "source": "twilio",
            "channel": "sms",
            "digest": key,
            "message_id": message_sid[:200],
            "sender": normalise_number(sender)[:40],
            "raw": payload,
            "size": len(payload),
            "recipients": [to[:40]],
        },
    )
    if stored.duplicate:
        return _already(app, stored.id)
    return process(app, stored.id)


def _plan_sms(app: App, conn: Connection, row: dict[str, Any]) -> _Plan:
    data = json.loads(row["raw"])
    body = str(data.get("Body", ""))
    number = row["sender"]
    match, everyone = match_phone(conn, number, app.clock())
    values: dict[str, Any] = {
        "kind": "reply",
        "text": body.strip()[:MAX_TEXT],
        "reason": "a text message",
    }
    values.update(_match_values(match))
    if match.matched:
        values["round_id"] = match.round_id
    plan = _Plan(values=values, sends=[], flags=[], unflag=[])
    word = body.strip().lower().rstrip(".!")
    sms_channels = [
        n for n, c in app.config.channels.items() if registry.get(c.kind).template_channel == "sms"
    ]
    if word in OPT_OUT or word in OPT_IN:
        values["reason"] = f"{word.upper()}: " + (
            "opted out" if word in OPT_OUT else "opted in again"
        )
        for cid in everyone:
            for ch in sms_channels:
                if word in OPT_OUT:
                    plan.flags.append(
                        {
                            "customer_id": cid,
                            "channel": ch,
                            "contact": number,
                            "reason": OPT_OUT_REASON,
                            "incident_id": match.incident_id,
                            "flagged_at": app.clock(),
                        }
                    )
                else:
                    plan.unflag.append((cid, ch))
        if match.incident_id is not None:
            plan.event = (
                match.incident_id,
                "sms_opt_out" if word in OPT_OUT else "sms_opt_in",
                f"{match.customer_id}",
            )
        return plan
    if not match.matched:
        return plan
    assert match.customer_id is not None and match.incident_id is not None
    customer = _customer(conn, match.customer_id)
    incident = _incident(conn, match.incident_id)
    sms_match = Match(
        **{**match.__dict__, "channel": channel_of_kind(app, "sms", match.channel) or match.channel}
    )
    _plan_reply(app, conn, plan, body, customer, incident, sms_match, row)
    return plan


# --- a bounce: the customer's next channel ----------------------------------------------------


# --- the customer's incident page ---------------------------------------------------------


def ingest_web(
    app: App,
    *,
    incident_id: int,
    customer_id: str,
    text: str,
    form_id: str,
    received_at: datetime | None = None,
) -> Processed:
    """What a customer wrote in their incident page's box (``GET /i/<token>``): stored, then
    handled as a reply on channel ``web`` (scored, escalated, answered like any other). The
    link named the incident and customer, so it is matched by ``page``. ``form_id``: the
    form's own id, so a form sent twice (a double click, a retry) is stored once."""
    payload = json.dumps(
        {"incident_id": incident_id, "customer_id": customer_id, "text": text},
        ensure_ascii=False,
    ).encode()
    key = hashlib.sha256(b"web\0" + f"{incident_id}\0{customer_id}\0{form_id}".encode()).hexdigest()
    stored = _store(
        app,
        {
            "received_at": received_at or app.clock(),
            "source": "web",
            "channel": "web",
            "digest": key,
            "message_id": form_id[:200],
            "sender": customer_id[:200],
            "raw": payload,
            "size": len(payload),
            "recipients": [],
        },
    )
    if stored.duplicate:
        return _already(app, stored.id)
    return process(app, stored.id)


def _plan_web(app: App, conn: Connection, row: dict[str, Any]) -> _Plan:
    from outagecomms.store import incidents as incidents_db

    data = json.loads(row["raw"])
    incident_id, customer_id = int(data["incident_id"]), str(data["customer_id"])
    text = str(data.get("text", ""))
    values: dict[str, Any] = {"kind": "reply", "reason": "written on their incident page"}
    plan = _Plan(values=values, sends=[], flags=[], unflag=[])
    rounds = incidents_db.list_rounds(conn, incident_id)
    match = Match(
        incident_id=incident_id,
        round_id=rounds[-1].id if rounds else None,
        customer_id=customer_id,
        channel="web",
        by="page",
    )
    values.update(_match_values(match))
    customer = _customer(conn, customer_id)
    incident = _incident(conn, incident_id)
    _plan_reply(app, conn, plan, text, customer, incident, match, row)
    return plan


_PLANNERS = {"sms": _plan_sms, "web": _plan_web}


def fallback_channels(app: App, incident: Incident, bounced: str) -> list[str]:
    """Where a message that bounced on ``bounced`` goes next, in order."""
    policy = app.config.policy(incident.severity)
    if policy.fallback:
        return [n for n in policy.fallback if n != bounced]
    chans = app.config.channels
    out = []
    for kind in FALLBACK_KINDS:
        for name, cfg in chans.items():
            if name != bounced and registry.get(cfg.kind).template_channel == kind:
                out.append(name)
    return out


def fall_back(app: App, conn: Connection, bounced: Match, now: datetime) -> str | None:
    """Queue the round's message for the customer on their next channel (the first with a
    contact, not flagged, that has no message of that round yet), and add that channel to the
    incident's audience for the rounds to come; the channel, or None."""
    assert bounced.incident_id is not None and bounced.customer_id is not None
    incident = incidents_db.get_incident(conn, bounced.incident_id).incident
    if not incident.is_open and bounced.round_id is None:
        return None
    customer = customers_db.get_customers(conn, [bounced.customer_id]).get(bounced.customer_id)
    if customer is None:
        return None
    d, a, f = t.deliveries, t.audience, t.contact_flags
    for name in fallback_channels(app, incident, bounced.channel):
        cfg = app.config.channels.get(name)
        if cfg is None:
            continue
        cls = registry.get(cfg.kind)
        if cls.contact_field is None or not customer.contact(cls.contact_field):
            continue
        flagged = conn.execute(
            select(f.c.customer_id).where(f.c.customer_id == customer.id, f.c.channel == name)
        ).first()
        if flagged is not None:
            continue
        has = conn.execute(
            select(d.c.id).where(
                d.c.incident_id == incident.id,
                d.c.round_id == bounced.round_id,
                d.c.customer_id == customer.id,
                d.c.channel == name,
            )
        ).first()
        if has is not None:
            continue
        in_audience = conn.execute(
            select(a.c.channel).where(
                a.c.incident_id == incident.id, a.c.customer_id == customer.id, a.c.channel == name
            )
        ).first()
        if in_audience is None:
            conn.execute(
                insert(a).values(incident_id=incident.id, customer_id=customer.id, channel=name)
            )
        conn.execute(
            insert(d).values(
                incident_id=incident.id,
                round_id=bounced.round_id,
                customer_id=customer.id,
                channel=name,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
            )
        )
        incidents_db.add_event(
            conn,
            incident.id,
            now,
            "fallback",
            f"{customer.id}: {bounced.channel} bounced, resent on {name}",
        )
        return name
    return None
