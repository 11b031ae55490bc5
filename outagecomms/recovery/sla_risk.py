"""Before ``declare`` sends: is the response SLA already lost? When ``started_at + ack_within``
has passed, or will pass before the fan-out can end, every selected customer earns the
``response_sla`` credit; the commander should hear that (and its price) before confirming."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from outagecomms.config.model import Config
from outagecomms.incidents.promises import fanout_estimate
from outagecomms.models import Customer, Incident
from outagecomms.recovery.credits import (
    Credit,
    ResponseSlaRule,
    Span,
    compute_credit_or_review,
    format_money,
)
from outagecomms.values import format_duration

_LATE = timedelta(seconds=1)

#: the commander's money format (the amounts are summed per currency, each in its own)
COMMANDER_LOCALE = "en_US"


def fanout_end(now: datetime, deliveries: int) -> datetime:
    """When a fan-out of ``deliveries`` started now can be expected to end (the estimate the
    holding margin is sized with)."""
    return now + fanout_estimate(deliveries)


def format_total(amounts: dict[str, Decimal]) -> str:
    """Amounts per currency, each as Babel writes it: "$1,234.50" or "$12.00 + €30.00"."""
    return " + ".join(format_money(v, cur, COMMANDER_LOCALE) for cur, v in sorted(amounts.items()))


def response_sla_warning(
    config: Config,
    incident: Incident,
    customers: Sequence[Customer],
    deliveries: int,
    now: datetime,
) -> str | None:
    """The warning for a declaration whose acknowledgement cannot be on time (None: it can,
    or no ``response_sla`` rule credits anyone). ``incident``: the planned one (its
    ``started_at`` and ``ack_due``); ``deliveries``: how many the fan-out sends."""
    policy = config.credits
    rules = tuple(r for r in getattr(policy, "rules", ()) if isinstance(r, ResponseSlaRule))
    if policy is None or not rules:
        return None
    due = incident.ack_due
    end = fanout_end(now, deliveries)
    if due > end:
        return None
    sla_only = replace(policy, rules=rules)
    span = Span(0, incident.started_at, max(end, incident.started_at), incident.severity)
    totals: dict[str, Decimal] = {}
    earning = 0
    for c in customers:
        credit = compute_credit_or_review(
            sla_only, customer=c, incident=span, ack_delivered_at=max(end, due) + _LATE,
            ack_within=due - incident.started_at, history=[span],
        )  # fmt: skip
        if isinstance(credit, Credit) and credit.amount > 0:
            earning += 1
            totals[credit.currency] = totals.get(credit.currency, Decimal(0)) + credit.amount
    if not earning:
        return None
    within = format_duration(due - incident.started_at)
    when = "has passed" if due <= now else "falls before the fan-out can end"
    return (
        f"the acknowledgement is due by {due:%H:%M:%S} UTC (started_at + ack_within {within}), "
        f"which {when}: every selected customer will earn the response-SLA credit "
        f"({earning} customers, about {format_total(totals)} in total)"
    )
