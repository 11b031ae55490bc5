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
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from outagecomms.app import App
from outagecomms.errors import InputError, StateError
from outagecomms.files import EXPORT_MODE, open_private
from outagecomms.models import Customer, Incident, IncidentStatus
from outagecomms.recovery.credits import (
    Credit,
    CreditForReview,
    Span,
    compute_credit_or_review,
    credit_reason,
    format_money,
    parse_credit_policy,
)
from outagecomms.recovery.goodwill import choose_offer
from outagecomms.store import credits as credits_db
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store.credits import APPROVED, EXPORTED, PROPOSED, REVIEW

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


def propose(
    app: App,
    incident_id: int,
    *,
    resolved_at: datetime | None = None,
    within: Connection | None = None,
) -> list[Credit]:
    """Compute and store every affected customer's credit (approved ones stay frozen).
    ``within``: inside that write transaction (the resolution's) instead of its own."""
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
        acks = credits_db.ack_delivered(conn, incident_id)
        earlier = _credited_earlier(conn, ids, inc)
        frozen = credits_db.frozen_customers(conn, incident_id)
    this = Span(incident_id, inc.started_at, end, inc.severity, gaps.get(incident_id, ()))
    ack_within = inc.ack_due - inc.started_at
    rows: list[dict[str, Any]] = []
    out: list[Credit] = []
    review: list[CreditForReview] = []
    for cid in ids:
        cust = customers.get(cid)
        if cust is None or cid in frozen:
            continue
        history = [s for s in spans.get(cid, []) if s.incident_id != incident_id] + [this]
        credit = compute_credit_or_review(
            policy, customer=cust, incident=this, ack_delivered_at=acks.get(cid), ack_within=ack_within,
            history=history, credited_this_month=earlier.get(cid, Decimal(0)),
        )  # fmt: skip
        offer = _offer(app, cust, inc, this, history)
        if isinstance(credit, CreditForReview):
            review.append(credit)
            rows.append(_review_row(incident_id, credit, offer, now))
            continue
        out.append(credit)
        rows.append(
            {
                "incident_id": incident_id,
                "customer_id": cid,
                "amount": str(credit.amount),
                "currency": credit.currency,
                "lines": [
                    {
                        "rule": ln.rule,
                        "amount": str(ln.amount),
                        "detail": ln.detail,
                        "reason": ln.reason,
                    }
                    for ln in credit.lines
                ],
                "goodwill": offer,
                "status": PROPOSED,
                "computed_at": now,
                "approved_at": None,
            }
        )
    with app.store.write() if within is None else nullcontext(within) as conn:
        credits_db.replace_proposed(conn, incident_id, rows)
        for r in review:
            incidents_db.add_event(
                conn, incident_id, now, "credit_review", f"{r.customer_id}: {r.reason}"
            )
    for r in review:
        log.warning(
            "INC-%s: the credit of %s needs review: %s", incident_id, r.customer_id, r.reason
        )
    return out


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


def approve(app: App, incident_id: int) -> int:
    """Freeze the proposed credits: later edits no longer change them."""
    with app.store.write() as conn:
        inc = incidents_db.get_incident(conn, incident_id).incident
        if inc.is_open:
            raise StateError(f"{inc.ref} is not resolved yet; credits are proposed at resolution")
        return credits_db.set_status(
            conn, incident_id, expect=PROPOSED, to=APPROVED, approved_at=app.clock()
        )


def notice_context(
    row: dict[str, Any] | None, locale: str
) -> tuple[dict[str, str] | None, str | None]:
    """What the resolution notice says: ``credit`` ({amount, reason}) and the goodwill offer."""
    if row is None:
        return None, None
    amount = Decimal(row["amount"])
    credit = None
    if amount > 0:
        c = Credit(
            customer_id=row["customer_id"], currency=row["currency"], amount=amount,
            lines=tuple(_line(x) for x in row["lines"]), capped=False, below_minimum=False,
        )  # fmt: skip
        credit = {
            "amount": format_money(amount, row["currency"], locale),
            "reason": credit_reason(c),
        }
    return credit, (row["goodwill"] or None)


def _line(x: dict[str, Any]) -> Any:
    from outagecomms.recovery.credits import CreditLine

    return CreditLine(x["rule"], Decimal(x["amount"]), x["detail"], x.get("reason", ""))


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
        out.append(
            {
                "customer": r["customer_id"],
                "amount": r["amount"],
                "currency": r["currency"],
                "status": r["status"],
                "goodwill": r["goodwill"] or None,
                "lines": [
                    {"rule": x["rule"], "amount": x["amount"], "detail": x["detail"]}
                    for x in r["lines"]
                ],
            }
        )
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
