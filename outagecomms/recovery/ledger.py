"""The credit ledger: propose credits at resolution, approve (freeze), report, export.

Credits are computed per affected customer by ``recovery.credits`` from the store's facts:
the incident's downtime (``started_at`` → ``resolved_at``), when the customer's acknowledgement
was delivered, the customer's other incidents (for monthly uptime and repeats) and what earlier
incidents this month already credited (for the cap). Proposed credits are recomputed whenever
the incident is resolved again or edited; ``approve`` freezes them.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from outagecomms.app import App
from outagecomms.errors import InputError, NotFound, StateError
from outagecomms.files import EXPORT_MODE, open_private
from outagecomms.models import Customer, Incident, IncidentStatus, Round, RoundKind
from outagecomms.recovery.credits import (
    Credit,
    CreditForReview,
    Span,
    auto_approves,
    compute_credit_or_review,
    credit_reason,
    format_money,
    parse_credit_policy,
)
from outagecomms.recovery.goodwill import choose_offer
from outagecomms.store import credits as credits_db
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.store.credits import APPROVED, EXPORTED, PROPOSED, REVIEW
from outagecomms.values import iso

log = logging.getLogger(__name__)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _month_start(dt: datetime) -> datetime:
    return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _credited_earlier(
    conn: Connection, customer_ids: list[str], inc: Incident
) -> dict[str, Decimal]:
    """Rounded credits of each customer's incidents that started earlier in the same month."""
    month = _month_start(inc.started_at)
    out: dict[str, Decimal] = {}
    this = (inc.started_at, inc.id)
    for c in credits_db.credits_since(conn, customer_ids, month, other_than=inc.id):
        if _month_start(c.started_at) == month and (c.started_at, c.incident_id) < this:
            out[c.customer_id] = out.get(c.customer_id, Decimal(0)) + c.amount
    return out


@dataclass(frozen=True)
class CreditChange:
    """What a recompute would change in a credit a person approved or a customer was told
    (``told``: a queued notice stated its amount or offer)."""

    customer_id: str
    currency: str
    status: str
    told: bool
    amount_before: Decimal
    amount_after: Decimal
    goodwill_before: str
    goodwill_after: str
    announced_amount: Decimal | None = None  # the amount the customer was told, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "customer": self.customer_id,
            "currency": self.currency,
            "status": self.status,
            "told": self.told,
            "amount_before": str(self.amount_before),
            "amount_after": str(self.amount_after),
            "goodwill_before": self.goodwill_before or None,
            "goodwill_after": self.goodwill_after or None,
            "announced_amount": None
            if self.announced_amount is None
            else str(self.announced_amount),
        }

    def describe(self) -> str:
        """``b2 (told): 40.00 → 120.00 USD; offer 'a free month' → none``."""
        parts = []
        if self.amount_before != self.amount_after:
            parts.append(f"{self.amount_before} → {self.amount_after} {self.currency}")
        if self.goodwill_before != self.goodwill_after:
            parts.append(
                f"offer {self.goodwill_before or 'none'!r} → {self.goodwill_after or 'none'!r}"
            )
        if self.announced_amount is not None:
            who = f"told {self.announced_amount} {self.currency}"
        else:
            who = "told the offer" if self.told else self.status
        return f"{self.customer_id} ({who}): " + "; ".join(parts)


class CreditChangesNeedConfirmation(StateError):
    """A recompute would change credits that were approved or announced: nothing was written.
    ``changes`` lists them (before/after per customer)."""

    def __init__(self, incident_ref: str, changes: Sequence[CreditChange]):
        self.changes = tuple(changes)
        told = sum(1 for c in changes if c.told)
        super().__init__(
            f"this would change {len(changes)} approved or announced credits of {incident_ref}"
            f" ({told} already told to the customer): "
            + "; ".join(c.describe() for c in changes[:5])
            + ("; ..." if len(changes) > 5 else "")
            + "; pass {field:yes} to change them (and {field:send_corrections} to tell the"
            " customers whose amount changed); nothing was changed"
        )


@dataclass(frozen=True)
class Proposal:
    """What ``propose`` did: the credits it computed, the changes to approved or announced
    credits it found (kept, or applied), and the credit corrections it queued."""

    credits: tuple[Credit, ...]
    changes: tuple[CreditChange, ...]
    correction_round: Round | None = None
    corrections_queued: int = 0


#: what a recompute does to a credit that was approved or announced, when it would change:
#: keep it (and record an event saying so), raise ``CreditChangesNeedConfirmation``, or apply it
KEEP, CONFIRM, APPLY = "keep", "confirm", "apply"


def _guarded(row: dict[str, Any]) -> bool:
    """A credit no recompute changes silently: approved (or exported) by a person or the
    policy, or stated to the customer (amount or offer)."""
    return (
        row["status"] in (APPROVED, EXPORTED)
        or row.get("announced_amount") is not None
        or row.get("announced_goodwill") is not None
    )


def _told(row: dict[str, Any]) -> bool:
    return row.get("announced_amount") is not None or row.get("announced_goodwill") is not None


def _amount_guarded(row: dict[str, Any]) -> bool:
    return row["status"] in (APPROVED, EXPORTED) or row.get("announced_amount") is not None


def _goodwill_guarded(row: dict[str, Any]) -> bool:
    return row["status"] in (APPROVED, EXPORTED) or row.get("announced_goodwill") is not None


def _change(old: dict[str, Any], new: dict[str, Any]) -> CreditChange | None:
    amount_moves = _amount_guarded(old)
    goodwill_moves = _goodwill_guarded(old)
    before, after = Decimal(old["amount"]), Decimal(new["amount"])
    gw_before, gw_after = old["goodwill"] or "", new["goodwill"] or ""
    if (amount_moves and before != after) or (goodwill_moves and gw_before != gw_after):
        return CreditChange(
            old["customer_id"], old["currency"], old["status"], _told(old),
            before, after, gw_before, gw_after,
            None if old.get("announced_amount") is None else Decimal(old["announced_amount"]),
        )  # fmt: skip
    return None


def propose(
    app: App,
    incident_id: int,
    *,
    resolved_at: datetime | None = None,
    within: Connection | None = None,
    auto_approve: bool = False,
    announce: bool = False,
    on_change: str = KEEP,
    actor: str = "",
    send_corrections: bool = False,
) -> Proposal:
    """Compute and store every affected customer's credit. ``within``: inside that write
    transaction (the resolution's) instead of its own.

    A credit still only proposed is recomputed. One approved or announced (``_guarded``) never
    changes silently: ``on_change`` KEEP leaves it and records a ``credit_kept`` event naming
    the figure a recompute gives, CONFIRM raises ``CreditChangesNeedConfirmation`` (nothing is
    written), APPLY writes the new figure (``actor`` recorded in a ``credit_changed`` event) and,
    with ``send_corrections``, queues a correction (a credit notice) to each customer whose
    announced amount changed. Exported credits (billing has them) and a person's adjustment
    (``credits --adjust``) are never recomputed.

    At resolution, ``auto_approve`` approves the credits at or under ``auto_approve_up_to``,
    and ``announce`` (the notice is queued) records what it states: approved amounts, offers.
    """
    now = app.clock()
    policy = app.config.credits or parse_credit_policy(None, source="<defaults>")
    with app.store.read() if within is None else nullcontext(within) as conn:
        inc = incidents_db.get_incident(conn, incident_id).incident
        if inc.status == IncidentStatus.VOIDED:
            raise StateError(f"{inc.ref} is voided: a false alarm or a duplicate earns no credit")
        end = resolved_at or inc.resolved_at
        if end is None:
            raise StateError(f"{inc.ref} is not resolved yet: credits follow the downtime's end")
        ids = incidents_db.audience_customer_ids(conn, incident_id)
        customers = customers_db.customers_for_incidents(conn, [incident_id], ids)
        resolved = credits_db.resolved_incidents(conn, ids)
        gaps = incidents_db.incident_gaps(
            conn, {d.incident_id for ds in resolved.values() for d in ds} | {incident_id}
        )  # a reopened incident is down over its spans, not in its gaps
        spans = {
            cid: [Span(*d, gaps=gaps.get(d.incident_id, ())) for d in downtimes]
            for cid, downtimes in resolved.items()
        }
        planned = {}  # customer -> announced maintenance: not downtime under their SLA
        if policy.exclude_announced_maintenance is not None:
            from outagecomms.store import maintenance as maintenance_db

            planned = maintenance_db.announced_windows(
                conn, ids, policy.exclude_announced_maintenance
            )
            spans = {
                cid: [replace(s, gaps=s.gaps + tuple(planned.get(cid, ()))) for s in ss]
                for cid, ss in spans.items()
            }
        acks = credits_db.ack_delivered(conn, incident_id)
        earlier = _credited_earlier(conn, ids, inc)
        existing = {r["customer_id"]: r for r in credits_db.incident_credits(conn, incident_id)}
    this = Span(incident_id, inc.started_at, end, inc.severity, gaps.get(incident_id, ()))
    ack_within = inc.ack_due - inc.started_at
    rows: list[dict[str, Any]] = []
    out: list[Credit] = []
    review: list[CreditForReview] = []
    changes: list[CreditChange] = []
    for cid in ids:
        cust = customers.get(cid)
        old = existing.get(cid)
        if cust is None or (
            old is not None and (old["status"] == EXPORTED or old.get("adjusted_by"))
        ):
            continue
        mine = (
            replace(this, gaps=this.gaps + tuple(planned.get(cid, ()))) if cid in planned else this
        )
        history = [s for s in spans.get(cid, []) if s.incident_id != incident_id] + [mine]
        credit = compute_credit_or_review(
            policy, customer=cust, incident=mine, ack_delivered_at=acks.get(cid), ack_within=ack_within,
            history=history, credited_this_month=earlier.get(cid, Decimal(0)),
        )  # fmt: skip
        offer = _offer(app, cust, inc, mine, history)
        if isinstance(credit, CreditForReview):
            row = _review_row(incident_id, credit, offer, now)
        else:
            row = _credit_row(incident_id, credit, offer, now)
            if auto_approve and auto_approves(
                policy, credit.amount, credit.currency, cust.monthly_fee
            ):
                row.update(status=APPROVED, approved_at=now, approved_by="auto")
        if old is not None and _guarded(old):
            change = _change(old, row)
            if change is not None:
                changes.append(change)
            take_all = change is not None and on_change == APPLY
            # what no person decided and no customer read still follows the facts
            merged = dict(old)
            if take_all or not _amount_guarded(old):
                merged.update(amount=row["amount"], lines=row["lines"], computed_at=now)
                if old["status"] in (PROPOSED, REVIEW):
                    merged.update(status=row["status"], approved_at=row["approved_at"],
                                  approved_by=row.get("approved_by"))  # fmt: skip
            if take_all or not _goodwill_guarded(old):
                merged["goodwill"] = row["goodwill"]
            row = merged
        if isinstance(credit, CreditForReview):
            review.append(credit)
        else:
            out.append(credit)
        if announce:
            _mark_announced(row, now)
        rows.append(row)
    if changes and on_change == CONFIRM:
        raise CreditChangesNeedConfirmation(inc.ref, changes)
    corrections = [
        r for r in rows
        # only an approved amount is ever told (an adjusted one waits for --approve)
        if send_corrections and r["status"] in (APPROVED, EXPORTED)
        and r.get("announced_amount") is not None
        and Decimal(r["announced_amount"]) != Decimal(r["amount"])
    ]  # fmt: skip
    with app.store.write() if within is None else nullcontext(within) as conn:
        credits_db.replace_rows(conn, incident_id, rows)
        for r in review:
            incidents_db.add_event(
                conn, incident_id, now, "credit_review", f"{r.customer_id}: {r.reason}"
            )
        who = actor or inc.commander or "unknown"
        for ch in changes:
            if on_change == APPLY:
                incidents_db.add_event(
                    conn, incident_id, now, "credit_changed", f"{ch.describe()}, by {who}"
                )
            else:
                incidents_db.add_event(
                    conn, incident_id, now, "credit_kept",
                    f"{ch.describe()} on recompute; kept: approved or announced credits change only when confirmed",
                )  # fmt: skip
        rnd, queued = None, 0
        if corrections:
            rnd, queued = _queue_credit_notices(app, conn, inc, corrections, now, correction=True)
    for r in review:
        log.warning(
            "INC-%s: the credit of %s needs review: %s", incident_id, r.customer_id, r.reason
        )
    return Proposal(tuple(out), tuple(changes), rnd, queued)


def _credit_row(incident_id: int, credit: Credit, offer: str, now: datetime) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "customer_id": credit.customer_id,
        "amount": str(credit.amount),
        "currency": credit.currency,
        "lines": [
            {"rule": ln.rule, "amount": str(ln.amount), "detail": ln.detail, "reason": ln.reason}
            for ln in credit.lines
        ],
        "goodwill": offer,
        "status": PROPOSED,
        "computed_at": now,
        "approved_at": None,
    }


def _mark_announced(row: dict[str, Any], now: datetime) -> None:
    """A notice stating ``row`` is queued: what it states (an approved amount, the offer)."""
    if row["status"] in (APPROVED, EXPORTED) and Decimal(row["amount"]) > 0:
        row["announced_amount"] = row["amount"]
        row["announced_at"] = now
    if row["goodwill"]:
        row["announced_goodwill"] = row["goodwill"]
        row["announced_at"] = now


def _review_row(
    incident_id: int, credit: CreditForReview, offer: str, now: datetime
) -> dict[str, Any]:
    """A credit a person must decide: nothing is promised in the notice (amount 0), the reason
    is its one line, and ``approve`` leaves it alone."""
    reason = f"needs review: {credit.reason}"
    return {
        "incident_id": incident_id, "customer_id": credit.customer_id, "amount": "0",
        "currency": credit.currency,
        "lines": [{"rule": "review", "amount": "0", "detail": reason, "reason": reason}],
        "goodwill": offer, "status": REVIEW, "computed_at": now, "approved_at": None,
    }  # fmt: skip


def _offer(app: App, cust: Customer, inc: Incident, this: Span, history: list[Span]) -> str:
    def count_in_window(window: Any) -> int:
        return sum(
            1 for s in history if this.started_at - window <= s.started_at <= this.started_at
        )

    return choose_offer(
        app.config.goodwill, tier=cust.tier, severity=inc.severity, downtime=this.downtime,
        count_in_window=count_in_window,
    )  # fmt: skip


@dataclass(frozen=True)
class Approval:
    """What ``approve`` did: how many credits it approved, and the credit notices it queued
    (``round`` None when none was: no approved credit above 0, or recorded only)."""

    incident: Incident
    approved: int
    round: Round | None
    queued: int
    customers: tuple[str, ...]


def approve(
    app: App,
    incident_id: int,
    *,
    customers: Sequence[str] = (),
    actor: str = "",
    send: bool = True,
    verify_secrets: bool = True,
) -> Approval:
    """Approve the proposed credits (``customers``: only theirs) and queue each newly approved
    customer with a credit above 0 a credit notice (round kind ``credit``): the amount, the
    reason lines, any offer. One transaction; the credit templates are pre-flighted first,
    so a broken template approves nothing. ``send=False`` approves without telling anyone."""
    from outagecomms.incidents.preflight import check_secrets, preflight

    now = app.clock()
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, incident_id).incident
        rows = {r["customer_id"]: r for r in credits_db.incident_credits(conn, incident_id)}
        reps = customers_db.locale_representatives(conn, incident_id)
        channels = sorted(incidents_db.audience_channels(conn, incident_id, customers_only=True))
    if inc.is_open:
        raise StateError(f"{inc.ref} is not resolved yet; credits are proposed at resolution")
    who = actor.strip() or inc.commander or "unknown"
    for cid in customers:
        row = rows.get(cid)
        if row is None:
            raise NotFound(f"{inc.ref} has no credit for customer {cid!r}")
        if row["status"] == REVIEW:
            raise StateError(
                f"the credit of {cid} needs review ({row['lines'][0]['detail']}); decide it "
                "with {command:credits --adjust} first"
            )
    wanted = set(customers) or set(rows)
    chosen = [r for cid, r in rows.items() if cid in wanted and r["status"] == PROPOSED]
    # a customer already told this very amount is not told again
    notices = [
        r for r in chosen
        if Decimal(r["amount"]) > 0 and r.get("announced_amount") != r["amount"]
    ]  # fmt: skip
    if send and notices:
        provisional = _credit_round(inc, now)
        preflight(app, inc, provisional, reps, channels)
        if verify_secrets:
            check_secrets(app, channels)
    with app.store.write() as conn:
        moved = 0
        for r in chosen:
            moved += credits_db.approve_customer(
                conn, incident_id, r["customer_id"], at=now, by=who
            )
        if moved != len(chosen):
            raise StateError(f"the credits of {inc.ref} changed while this command ran; try again")
        incidents_db.add_event(
            conn, incident_id, now, "credits_approved", f"{moved} credits, by {who}"
        )
        rnd, queued = None, 0
        if send and notices:
            for r in notices:
                r["status"] = APPROVED
            rnd, queued = _queue_credit_notices(app, conn, inc, notices, now)
        final = incidents_db.get_incident(conn, incident_id).incident
    return Approval(final, moved, rnd, queued, tuple(r["customer_id"] for r in notices))


def _credit_round(inc: Incident, now: datetime) -> Round:
    return Round(
        id=0, incident_id=inc.id, seq=0, kind=RoundKind.CREDIT, message="",
        status=IncidentStatus.RESOLVED, created_at=now, due_by=None, promised_next_by=None,
    )  # fmt: skip


def _queue_credit_notices(
    app: App,
    conn: Connection,
    inc: Incident,
    rows: Sequence[dict[str, Any]],
    now: datetime,
    *,
    correction: bool = False,
) -> tuple[Round, int]:
    """A credit round for the customers of ``rows`` (their deliveries only), and each row
    marked as announced: the amount it states, and (a correction) the amount it replaces."""
    for r in rows:
        previous = r.get("announced_amount")
        corrects = previous if previous is not None and previous != r["amount"] else None
        credits_db.mark_announced(
            conn, inc.id, r["customer_id"], at=now, amount=r["amount"],
            goodwill=r["goodwill"] or None, corrects=corrects,
        )  # fmt: skip
    rnd = outbox_db.insert_round_with_deliveries(
        conn, incident_id=inc.id, kind=RoundKind.CREDIT, message="",
        status=IncidentStatus.RESOLVED, created_at=now, due_by=None, promised_next_by=None,
        customers=[r["customer_id"] for r in rows],
    )  # fmt: skip
    what = "credit correction" if correction else "credit notice"
    incidents_db.add_event(
        conn, inc.id, now, "credit", f"round {rnd.seq}: {what} to {len(rows)} customers"
    )
    return rnd, outbox_db.count_round_deliveries(conn, inc.id, rnd.id)


def adjust(
    app: App, incident_id: int, customer_id: str, amount: str, *, reason: str, actor: str = ""
) -> dict[str, Any]:
    """A person's decision on one customer's credit: ``amount`` (in the credit's currency,
    at most its minor unit) replaces the engine's figure, recorded with who and why. The
    credit is proposed again (``approve`` sends its notice, a correction if another amount was
    announced) and no recompute changes it. An exported credit (billing has it) cannot be."""
    from outagecomms.incidents.lifecycle import check_commander, check_message

    why = check_message(reason, "reason")
    if "\n" in why:
        raise InputError("must be one line", field="reason")
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, incident_id).incident
        row = credits_db.customer_credit(conn, incident_id, customer_id)
    if row is None:
        raise NotFound(f"{inc.ref} has no credit for customer {customer_id!r}")
    if row["status"] == EXPORTED:
        raise StateError(
            f"the credit of {customer_id} was exported for billing; change it in billing"
        )
    value = _amount(amount, row["currency"])
    who = check_commander(actor.strip()) or inc.commander or "unknown"
    now = app.clock()
    with app.store.write() as conn:
        credits_db.set_adjusted(
            conn, incident_id, customer_id, amount=str(value), by=who, at=now, reason=why,
            computed=row.get("computed_amount") or row["amount"],
        )  # fmt: skip
        incidents_db.add_event(
            conn, incident_id, now, "credit_adjusted",
            f"{customer_id}: {row['amount']} → {value} {row['currency']} by {who}: {why}",
        )  # fmt: skip
        fresh = credits_db.customer_credit(conn, incident_id, customer_id)
    assert fresh is not None
    return _report_row(fresh)


def _amount(text: str, currency: str) -> Decimal:
    from decimal import InvalidOperation

    from babel.numbers import get_currency_precision

    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InputError("must be an amount such as 120.50", field="adjust", value=text) from None
    if not value.is_finite() or value < 0:
        raise InputError("must be an amount of 0 or more", field="adjust", value=text)
    places = get_currency_precision(currency)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places:
        raise InputError(
            f"{currency} has {places} decimal places; give the amount to at most that",
            field="adjust", value=text,
        )  # fmt: skip
    if value.adjusted() >= 13:
        raise InputError("is too large for a credit", field="adjust", value=text)
    return value.quantize(Decimal(1).scaleb(-places))


def notice_context(
    row: dict[str, Any] | None, locale: str
) -> tuple[dict[str, str] | None, str | None]:
    """What the resolution notice says: ``credit`` ({amount, reason}) when it was approved,
    and the goodwill offer. A credit still to be approved is not stated (see ``held``)."""
    if row is None:
        return None, None
    amount = Decimal(row["amount"])
    credit = None
    if amount > 0 and row["status"] in (APPROVED, EXPORTED):
        credit = {"amount": format_money(amount, row["currency"], locale), "reason": _reason(row)}
    return credit, (row["goodwill"] or None)


def approval_within(app: App) -> timedelta:
    """``[credits] approval_within``: when a held credit's customer hears its amount."""
    policy = app.config.credits or parse_credit_policy(None, source="<defaults>")
    return policy.approval_within


def held(row: dict[str, Any] | None) -> bool:
    """Whether the resolution notice says a credit is being applied (an amount above 0 not yet
    approved) instead of stating it."""
    return row is not None and row["status"] == PROPOSED and Decimal(row["amount"]) > 0


def credit_notice_context(row: dict[str, Any], locale: str) -> dict[str, Any]:
    """What a credit notice says: the amount, the reason (and its lines), whether it corrects
    an amount announced before (``previous``)."""
    amount = Decimal(row["amount"])
    corrects = row.get("corrects")
    reasons = (
        [_ADJUSTED_REASON]
        if row.get("adjusted_by")
        else [x.get("reason") or x["detail"] for x in row["lines"]]
    )
    return {
        "amount": format_money(amount, row["currency"], locale),
        "reason": _reason(row),
        "reasons": reasons,
        "correction": corrects is not None,
        "previous": None
        if corrects is None
        else format_money(Decimal(corrects), row["currency"], locale),
    }


#: what a notice says of an amount a person set (their --reason is recorded, not sent)
_ADJUSTED_REASON = "the amount our team set after reviewing your account"


def _reason(row: dict[str, Any]) -> str:
    if row.get("adjusted_by"):
        return _ADJUSTED_REASON
    c = Credit(
        customer_id=row["customer_id"], currency=row["currency"], amount=Decimal(row["amount"]),
        lines=tuple(_line(x) for x in row["lines"]), capped=False, below_minimum=False,
    )  # fmt: skip
    return credit_reason(c)


def _line(x: dict[str, Any]) -> Any:
    from outagecomms.recovery.credits import CreditLine

    return CreditLine(x["rule"], Decimal(x["amount"]), x["detail"], x.get("reason", ""))


def _report_row(r: dict[str, Any]) -> dict[str, Any]:
    adjusted = None
    if r.get("adjusted_by"):
        adjusted = {
            "by": r["adjusted_by"],
            "at": iso(r.get("adjusted_at")),
            "reason": r.get("adjust_reason") or "",
            "computed_amount": r.get("computed_amount"),
        }
    return {
        "customer": r["customer_id"],
        "amount": r["amount"],
        "currency": r["currency"],
        "status": r["status"],
        "goodwill": r["goodwill"] or None,
        "lines": [
            {"rule": x["rule"], "amount": x["amount"], "detail": x["detail"]} for x in r["lines"]
        ],
        "held": held(r),
        "approved_by": r.get("approved_by"),
        "adjusted": adjusted,
        "announced_amount": r.get("announced_amount"),
        "announced_at": iso(r.get("announced_at")),
    }


def credits_report(app: App, incident_id: int) -> dict[str, Any]:
    """The ``credits --json`` document: per customer, and totals per currency."""
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, incident_id).incident
        rows = credits_db.incident_credits(conn, incident_id)
    totals: dict[str, Decimal] = {}
    out = []
    for r in rows:
        amount = Decimal(r["amount"])
        totals[r["currency"]] = totals.get(r["currency"], Decimal(0)) + amount
        out.append(_report_row(r))
    return {
        "incident": inc.ref,
        "status": inc.status.value,
        "credits": out,
        "total": {cur: str(v) for cur, v in sorted(totals.items())},
        "customers_credited": sum(1 for r in rows if Decimal(r["amount"]) > 0),
    }


def _cell(value: Any) -> str:
    """Neutralise spreadsheet formulas: a cell starting with = + - @ tab or CR gets a quote."""
    s = str(value)
    return "'" + s if s.startswith(_FORMULA_START) else s


def export_csv(app: App, incident_id: int, path: Path) -> int:
    """Write the credits for billing (spreadsheet-safe). Approved credits become ``exported``."""
    report = credits_report(app, incident_id)
    with app.store.read() as conn:
        names = {
            c.id: c.name
            for c in customers_db.get_customers(
                conn, [c["customer"] for c in report["credits"]]
            ).values()
        }
    try:
        with open_private(path, EXPORT_MODE, newline="") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "incident",
                    "customer",
                    "name",
                    "amount",
                    "currency",
                    "status",
                    "rules",
                    "goodwill",
                ]
            )
            for c in report["credits"]:
                rules = "; ".join(f"{x['rule']} {x['amount']}" for x in c["lines"])
                w.writerow(
                    [_cell(v) for v in (report["incident"], c["customer"], names.get(c["customer"], ""),
                                        c["amount"], c["currency"], c["status"], rules, c["goodwill"] or "")]
                )  # fmt: skip
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", file=path) from None
    with app.store.write() as conn:
        credits_db.set_status(conn, incident_id, expect=APPROVED, to=EXPORTED)
    return len(report["credits"])
