"""Build the post-incident report from the ledger (incidents, audience, rounds, deliveries,
events, credits, feedback): ``build_report`` reads it in one transaction through
``store.reporting`` and derives every figure into a ``model.Report``.

Definitions:

- *Time to first notice* of a customer: the earliest ``sent_at`` of their acknowledgement
  deliveries minus the incident's ``started_at``. A customer owed an acknowledgement (any
  delivery of the acknowledgement round) is *within* when it arrived by ``ack_due``
  (``started_at + ack_within``), *late* when after, *never* when none was sent. Median (the
  mean of the two middle values for an even count), p95 by nearest rank, max.
- *Promises kept*: deliveries sent by the round's ``due_by`` (the promise the previous round
  made; for the acknowledgement ``ack_due``) over deliveries owed (every delivery but the
  superseded ones). Rounds that keep no promise (``due_by`` empty: the follow-up) are listed but
  not counted.
- *Credits*: ``total`` sums the issued (rounded) amounts per currency; ``by_rule`` sums the rule
  lines per currency (lines are exact and before the cap and the minimum, so ``by_rule`` can
  exceed ``total``), rounded half-up once to the currency's minor unit; ``by_tier`` sums the
  issued amounts per customer tier and currency. Money is ``Decimal`` throughout.
- *NPS*: %promoters (9-10) - %detractors (0-6), rounded half-up to one decimal.
- *What customers told us*: see ``told`` (sentiment per round, escalations, suggestions,
  bounced contacts).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision

from outagecomms.app import App
from outagecomms.incidents.views import PromisesKept
from outagecomms.models import DeliveryStatus, Incident, RoundKind, RoundStats
from outagecomms.recovery.credits import parse_credit_policy
from outagecomms.recovery.feedback import nps_from_scores
from outagecomms.recovery.report.maintenance import read_maintenance
from outagecomms.recovery.report.model import (
    Audience,
    Chart,
    ChartRow,
    Comment,
    CreditedCustomer,
    Credits,
    DeliverySummary,
    ErrorCount,
    FirstNotice,
    KbArticle,
    Nps,
    PromiseRound,
    Promises,
    PromiseTotal,
    Report,
    Timeline,
    TimelineEvent,
    TimelineRound,
    duration,
)
from outagecomms.recovery.report.told import read_customers_told
from outagecomms.recovery.report.units import human, pct
from outagecomms.store import outbox as outbox_db
from outagecomms.store import reporting
from outagecomms.store.reporting import CreditRow, FeedbackRow
from outagecomms.values import iso

__all__ = ["NOT_IN_DIRECTORY", "PREVENTION_PLACEHOLDER", "TOP_ERRORS", "build_report"]

TOP_ERRORS = 5
NOT_IN_DIRECTORY = "(not in directory)"
PREVENTION_PLACEHOLDER = (
    "TO DO (commander): what we will change so that this does not happen again, "
    "with an owner and a date for each action."
)


def build_report(app: App, incident_id: int) -> Report:
    """Everything the post-incident report shows, read from the ledger."""
    with app.store.read() as conn:
        row, stats, events = outbox_db.incident_history(conn, incident_id)
        tiers = reporting.audience_tiers(conn, incident_id)
        locales = reporting.audience_locales(conn, incident_id)
        recipients = reporting.audience_recipients(conn, incident_id)
        ack = reporting.ack_firsts(conn, incident_id)
        delivery_counts = reporting.delivery_counts(conn, incident_id)
        errors = reporting.top_errors(conn, incident_id, TOP_ERRORS)
        retried = reporting.retried_count(conn, incident_id)
        credit_rows = reporting.credit_rows(conn, incident_id)
        feedback_rows = reporting.feedback_rows(conn, incident_id)
        told = read_customers_told(conn, incident_id, stats)
        policy = app.config.credits or parse_credit_policy(None, source="<defaults>")
        link = read_maintenance(
            conn, row.incident, policy.exclude_announced_maintenance, app.clock()
        )
        missing = {r.customer_id for r in credit_rows} - set(tiers)
        tiers.update(reporting.customer_tiers(conn, missing))

    inc = row.incident
    rounds = tuple(TimelineRound(stats=s) for s in stats)
    audience = _audience(recipients, tiers, row.skipped, _languages(app, locales))
    first_notice = _first_notice(ack, inc.started_at, inc.ack_due)
    promises = _promises(stats)
    deliveries = _deliveries(delivery_counts, errors, retried)
    credits = _credits(credit_rows, tiers)
    nps = _nps(feedback_rows)
    return Report(
        generated_at=app.clock(),
        incident=inc,
        timeline=Timeline(
            rounds=rounds,
            events=tuple(
                TimelineEvent(at=e["at"], kind=e["kind"], detail=e["detail"]) for e in events
            ),
        ),
        audience=audience,
        first_notice=first_notice,
        promises=promises,
        deliveries=deliveries,
        credits=credits,
        nps=nps,
        kb_article=_kb_article(
            inc, audience, first_notice, promises, deliveries, credits, nps, stats
        ),
        chart=_chart(inc, rounds),
        customers_told=told,
        maintenance=link,
    )


def _minor(currency: str) -> int:
    try:
        return int(get_currency_precision(currency))
    except Exception:  # an unknown code: keep two places, like most currencies
        return 2


def _money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up, once, to the currency's minor unit (JPY: none)."""
    return amount.quantize(Decimal(1).scaleb(-_minor(currency)), rounding=ROUND_HALF_UP)


def _languages(app: App, locales: Mapping[str, str]) -> dict[str, str]:
    """customer id → the language they read (``de``; ``en`` for English or the default)."""
    resolve = app.renderer.catalogs.resolve
    return {cid: resolve(loc) for cid, loc in locales.items()}


def _audience(
    recipients: Iterable[tuple[str, str]],
    tiers: Mapping[str, str],
    skipped: Mapping[str, int],
    languages: Mapping[str, str],
) -> Audience:
    customers: set[str] = set()
    by_channel: Counter[str] = Counter()
    tier_channel: dict[str, Counter[str]] = defaultdict(Counter)
    for customer_id, channel in recipients:
        customers.add(customer_id)
        by_channel[channel] += 1
        tier_channel[tiers.get(customer_id, NOT_IN_DIRECTORY)][channel] += 1
    by_tier = Counter(tiers.get(c, NOT_IN_DIRECTORY) for c in customers)
    by_language = Counter(languages.get(c, NOT_IN_DIRECTORY) for c in customers)
    return Audience(
        customers=len(customers),
        by_tier=dict(sorted(by_tier.items())),
        by_channel=dict(sorted(by_channel.items())),
        by_tier_and_channel={k: dict(sorted(v.items())) for k, v in sorted(tier_channel.items())},
        skipped=dict(sorted(skipped.items())),
        by_language=dict(sorted(by_language.items())),
    )


def _first_notice(
    firsts: Mapping[str, datetime | None], started_at: datetime, ack_due: datetime
) -> FirstNotice:
    waits: list[float] = []
    late_customers: list[str] = []
    never_customers: list[str] = []
    within = 0
    for customer_id in sorted(firsts):
        sent = firsts[customer_id]
        if sent is None:
            never_customers.append(customer_id)
            continue
        waits.append((sent - started_at).total_seconds())
        if sent <= ack_due:
            within += 1
        else:
            late_customers.append(customer_id)
    return FirstNotice(
        ack_within=ack_due - started_at,
        ack_due=ack_due,
        owed=len(firsts),
        waits=tuple(sorted(waits)),
        within=within,
        late=len(late_customers),
        never=len(never_customers),
        late_customers=tuple(late_customers),
        never_customers=tuple(never_customers),
    )


def _promises(stats: Sequence[RoundStats]) -> Promises:
    overall = PromisesKept.of(list(stats))
    return Promises(
        per_round=tuple(
            PromiseRound(
                seq=s.round.seq,
                kind=s.round.kind,
                due_by=s.round.due_by,
                owed=s.owed,
                on_time=s.on_time,
            )
            for s in stats
        ),
        overall=PromiseTotal(on_time=overall.on_time, owed=overall.owed),
    )


def _deliveries(
    counts: Iterable[tuple[str, str, int]], errors: Iterable[tuple[str, int]], retried: int
) -> DeliverySummary:
    by_channel: dict[str, dict[str, int]] = defaultdict(dict)
    by_status: Counter[str] = Counter()
    for channel, status, n in counts:
        by_channel[channel][status] = n
        by_status[status] += n
    return DeliverySummary(
        total=sum(by_status.values()),
        by_status=dict(sorted(by_status.items())),
        by_channel={k: dict(sorted(v.items())) for k, v in sorted(by_channel.items())},
        sent=by_status.get(DeliveryStatus.SENT.value, 0),
        failed=by_status.get(DeliveryStatus.FAILED.value, 0),
        dead=by_status.get(DeliveryStatus.DEAD.value, 0),
        pending=by_status.get(DeliveryStatus.PENDING.value, 0)
        + by_status.get(DeliveryStatus.SENDING.value, 0),
        retried=retried,
        top_errors=tuple(ErrorCount(error=e, count=n) for e, n in errors),
    )


def _credits(rows: Iterable[CreditRow], tiers: Mapping[str, str]) -> Credits:
    total: dict[str, Decimal] = defaultdict(Decimal)
    by_rule: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_tier: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_status: Counter[str] = Counter({"proposed": 0, "approved": 0})
    goodwill: Counter[str] = Counter()
    customers: list[CreditedCustomer] = []
    for r in sorted(rows, key=lambda x: x.customer_id):
        tier = tiers.get(r.customer_id, NOT_IN_DIRECTORY)
        total[r.currency] += r.amount
        by_tier[tier][r.currency] += r.amount
        by_status[r.status] += 1
        if r.goodwill:
            goodwill[r.goodwill] += 1
        for line in r.lines:
            by_rule[line.rule][r.currency] += line.amount
        customers.append(
            CreditedCustomer(
                customer=r.customer_id,
                tier=tier,
                amount=r.amount,
                currency=r.currency,
                status=r.status,
                rules=tuple(line.rule for line in r.lines),
                goodwill=r.goodwill,
                approved_by=r.approved_by,
                adjusted_by=r.adjusted_by,
                adjust_reason=r.adjust_reason,
                computed_amount=r.computed_amount,
                announced_amount=r.announced_amount,
            )
        )
    return Credits(
        count=len(customers),
        customers_credited=sum(1 for c in customers if c.amount > 0),
        by_status=dict(sorted(by_status.items())),
        total=dict(sorted(total.items())),
        by_rule={
            rule: {cur: _money(v, cur) for cur, v in sorted(per.items())}
            for rule, per in sorted(by_rule.items())
        },
        by_tier={tier: dict(sorted(per.items())) for tier, per in sorted(by_tier.items())},
        goodwill_count=sum(goodwill.values()),
        goodwill_offers=dict(sorted(goodwill.items())),
        customers=tuple(customers),
    )


def _nps(rows: Sequence[FeedbackRow]) -> Nps:
    counts = nps_from_scores(r.score for r in rows)
    return Nps(
        responses=counts["responses"],
        promoters=counts["promoters"],
        passives=counts["passives"],
        detractors=counts["detractors"],
        nps=counts["nps"],
        comments=tuple(
            Comment(
                customer=r.customer_id,
                score=r.score,
                comment=r.comment.strip(),
                received_at=r.received_at,
            )
            for r in rows
            if r.comment.strip()
        ),
    )


def _kb_article(
    inc: Incident,
    aud: Audience,
    fn: FirstNotice,
    promises: Promises,
    dl: DeliverySummary,
    credits: Credits,
    nps: Nps,
    stats: Sequence[RoundStats],
) -> KbArticle:
    """The knowledge-base stub: cause and fix from the resolution round, the rest from the
    figures; prevention is left to the commander."""
    resolution = next(
        (s.round for s in reversed(stats) if s.round.kind == RoundKind.RESOLUTION), None
    )
    cause_notes = tuple(
        s.round.message
        for s in stats
        if s.round.kind == RoundKind.UPDATE
        and s.round.status.value == "identified"
        and s.round.message
    )
    span_of = duration(inc)
    duration_text = None if span_of is None else human(span_of.total_seconds())
    where = ", ".join(inc.components) or "our service"
    regions = ", ".join(inc.regions)
    span = f"from {iso(inc.started_at)}"
    span += f" to {iso(inc.resolved_at)} ({duration_text})" if inc.resolved_at else " (ongoing)"
    summary = (
        f"{inc.severity.upper()} incident {inc.ref} \u201c{inc.title}\u201d affected "
        f"{where}" + (f" in {regions}" if regions else "") + f", {span}."
    )
    if inc.commander:
        summary += f" Incident commander: {inc.commander}."
    tiers = ", ".join(f"{n} {tier}" for tier, n in aud.by_tier.items())
    channels = ", ".join(f"{ch} ({n})" for ch, n in aud.by_channel.items())
    impact = f"{aud.customers} customers affected" + (f" ({tiers})" if tiers else "")
    impact += f", reached on {channels}." if channels else "."
    if duration_text:
        impact += f" Customer-facing downtime: {duration_text}."
    if credits.count:
        money = ", ".join(f"{v} {cur}" for cur, v in credits.total.items())
        impact += f" Service credits: {money} for {credits.customers_credited} customers."
    prom = promises.overall
    comms = (
        f"{len(stats)} rounds; {dl.sent} messages delivered, "
        f"{dl.failed + dl.dead} failed; promises kept {prom.on_time}/{prom.owed} "
        f"({pct(prom.ratio)}). First notice: median {human(fn.median)}, p95 {human(fn.p95)}, "
        f"max {human(fn.max)}; {fn.within} of {fn.owed} customers within "
        f"{human(fn.ack_within.total_seconds())}, {fn.late} late, {fn.never} never."
    )
    if nps.responses:
        comms += f" NPS {nps.nps} from {nps.responses} responses."
    return KbArticle(
        title=f"{inc.ref}: {inc.title}",
        summary=summary,
        impact=impact,
        cause_and_fix=resolution.message if resolution else "",
        cause_notes=cause_notes,
        prevention=PREVENTION_PLACEHOLDER,
        customer_communication=comms,
    )


def _chart(inc: Incident, rounds: Sequence[TimelineRound]) -> Chart:
    start = inc.started_at

    def rel(at: datetime | None) -> float | None:
        return None if at is None else (at - start).total_seconds()

    return Chart(
        rows=tuple(
            ChartRow(
                round=r,
                created=(r.stats.round.created_at - start).total_seconds(),
                due=rel(r.stats.round.due_by),
                first=rel(r.stats.first_sent_at),
                last=rel(r.stats.last_sent_at),
            )
            for r in rounds
        ),
        resolved=rel(inc.resolved_at),
    )
