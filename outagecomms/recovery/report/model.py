"""The post-incident report as typed, frozen values: what ``build_report`` reads from the
ledger and what the renderers (Markdown, HTML, the SVG chart) show.

Times are UTC-aware ``datetime``s, durations ``timedelta``s or seconds, money ``Decimal``.
``Report.to_json()`` gives the JSON-able dict the report has always had (ISO times ending in
``Z``, money as decimal strings, durations as seconds plus a human form); the chart data is
derived for the HTML page and is not part of it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from outagecomms.incidents.views import RoundSummary, TimelineEvent
from outagecomms.models import Incident, IncidentStatus, RoundKind, RoundStats
from outagecomms.recovery.report.told import CustomersTold
from outagecomms.recovery.report.units import human, ratio
from outagecomms.values import JsonModel, iso, json_key

__all__ = [
    "Audience",
    "Chart",
    "ChartRow",
    "Comment",
    "CreditedCustomer",
    "Credits",
    "DeliverySummary",
    "ErrorCount",
    "FirstNotice",
    "KbArticle",
    "MaintenanceLink",
    "Nps",
    "PromiseRound",
    "PromiseTotal",
    "Promises",
    "Report",
    "Timeline",
    "TimelineEvent",
    "TimelineRound",
    "ack_within",
    "duration",
    "incident_json",
]


def _nearest_rank(sorted_values: tuple[float, ...], pct: int) -> float:
    """The nearest-rank percentile: the value at rank ceil(pct/100 × n) (1-based)."""
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[rank - 1]


def _strs(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def duration(inc: Incident) -> timedelta | None:
    """From the start to the resolution (None while open)."""
    return (inc.resolved_at - inc.started_at) if inc.resolved_at else None


def unresolved(inc: Incident) -> str:
    """The "Resolved" cell of an incident without a resolution."""
    return "never: voided" if inc.status == IncidentStatus.VOIDED else "not yet"


def no_duration(inc: Incident) -> str:
    """The "Duration" cell of an incident without a resolution."""
    return "none: voided" if inc.status == IncidentStatus.VOIDED else "ongoing"


def ack_within(inc: Incident) -> timedelta:
    return inc.ack_due - inc.started_at


def incident_json(inc: Incident) -> dict[str, Any]:
    """The incident's facts as the report's JSON has them (seconds and a human form)."""
    span = duration(inc)
    secs = None if span is None else span.total_seconds()
    return {
        "ref": inc.ref,
        "id": inc.id,
        "title": inc.title,
        "severity": inc.severity,
        "status": inc.status.value,
        "components": list(inc.components),
        "regions": list(inc.regions),
        "commander": inc.commander,
        "started_at": iso(inc.started_at),
        "declared_at": iso(inc.declared_at),
        "resolved_at": iso(inc.resolved_at),
        "duration_seconds": secs,
        "duration": None if secs is None else human(secs),
        "cadence_seconds": inc.update_every.total_seconds(),
        "cadence": human(inc.update_every.total_seconds()),
        "ack_within_seconds": ack_within(inc).total_seconds(),
        "ack_within": human(ack_within(inc).total_seconds()),
        "ack_due": iso(inc.ack_due),
        "next_update_due": iso(inc.next_update_due),
    }


@dataclass(frozen=True, kw_only=True)
class TimelineRound:
    """One round: its counts (``RoundStats``) and whether it kept a promise."""

    stats: RoundStats

    @property
    def seq(self) -> int:
        return self.stats.round.seq

    @property
    def kind(self) -> RoundKind:
        return self.stats.round.kind

    @property
    def kept_promise(self) -> bool:
        """Whether the round had a promise to keep (the follow-up has none)."""
        return self.stats.round.due_by is not None

    @property
    def late(self) -> int | None:
        return (self.stats.sent - self.stats.on_time) if self.kept_promise else None

    @property
    def ratio(self) -> float | None:
        return ratio(self.stats.on_time, self.stats.owed) if self.kept_promise else None

    def to_json(self) -> dict[str, Any]:
        out = RoundSummary.of(self.stats).to_json()
        out["deliveries"] = dict(sorted(self.stats.by_status.items()))
        out["late"] = self.late
        out["ratio"] = self.ratio
        return out


@dataclass(frozen=True, kw_only=True)
class Timeline(JsonModel):
    rounds: tuple[TimelineRound, ...]
    events: tuple[TimelineEvent, ...]


@dataclass(frozen=True, kw_only=True)
class Audience(JsonModel):
    customers: int
    by_tier: Mapping[str, int]
    by_channel: Mapping[str, int]
    by_tier_and_channel: Mapping[str, Mapping[str, int]]
    skipped: Mapping[str, int]  # channel policy → customers reachable on none of its channels
    #: the language customers' messages are written in (their locale's catalog, else the
    #: company default: rendering.i18n) → customers; from the directory as it is now
    by_language: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FirstNotice:
    """Time to first notice of every customer owed an acknowledgement."""

    ack_within: timedelta
    ack_due: datetime
    owed: int
    waits: tuple[float, ...]  # seconds from the start to the first notice, ascending
    within: int
    late: int
    never: int
    late_customers: tuple[str, ...]
    never_customers: tuple[str, ...]

    @property
    def median(self) -> float | None:
        return statistics.median(self.waits) if self.waits else None

    @property
    def p95(self) -> float | None:
        return _nearest_rank(self.waits, 95) if self.waits else None

    @property
    def max(self) -> float | None:
        return self.waits[-1] if self.waits else None

    def to_json(self) -> dict[str, Any]:
        median, p95, worst = self.median, self.p95, self.max
        return {
            "ack_within_seconds": self.ack_within.total_seconds(),
            "ack_due": iso(self.ack_due),
            "owed": self.owed,
            "count": len(self.waits),
            "within": self.within,
            "late": self.late,
            "never": self.never,
            "median_seconds": median,
            "p95_seconds": p95,
            "max_seconds": worst,
            "median": human(median),
            "p95": human(p95),
            "max": human(worst),
            "late_customers": list(self.late_customers),
            "never_customers": list(self.never_customers),
        }


@dataclass(frozen=True, kw_only=True)
class PromiseRound(JsonModel):
    json_extra = ("ratio", "counted")

    seq: int = json_key("round")
    kind: RoundKind
    due_by: datetime | None
    owed: int
    on_time: int

    @property
    def counted(self) -> bool:
        """Rounds that keep no promise (``due_by`` empty) are listed but not counted."""
        return self.due_by is not None

    @property
    def ratio(self) -> float | None:
        return ratio(self.on_time, self.owed) if self.counted else None


@dataclass(frozen=True, kw_only=True)
class PromiseTotal(JsonModel):
    on_time: int
    owed: int
    json_extra = ("ratio",)

    @property
    def ratio(self) -> float | None:
        return ratio(self.on_time, self.owed)


@dataclass(frozen=True, kw_only=True)
class Promises(JsonModel):
    per_round: tuple[PromiseRound, ...]
    overall: PromiseTotal


@dataclass(frozen=True, kw_only=True)
class ErrorCount(JsonModel):
    error: str
    count: int


@dataclass(frozen=True, kw_only=True)
class DeliverySummary(JsonModel):
    total: int
    by_status: Mapping[str, int]
    by_channel: Mapping[str, Mapping[str, int]]
    sent: int
    failed: int
    dead: int
    pending: int  # pending or being sent
    retried: int  # needed more than one attempt
    top_errors: tuple[ErrorCount, ...]


@dataclass(frozen=True, kw_only=True)
class CreditedCustomer(JsonModel):
    customer: str
    tier: str
    amount: Decimal
    currency: str
    status: str
    rules: tuple[str, ...]
    goodwill: str
    approved_by: str | None = None  # "auto" under auto_approve_up_to, else who approved it
    adjusted_by: str | None = None  # a person set the amount (credits --adjust) ...
    adjust_reason: str | None = None  # ... and why
    computed_amount: str | None = None  # the engine's figure before that
    announced_amount: str | None = None  # the amount a notice told the customer


def adjustment_line(c: CreditedCustomer) -> str:
    """``b2: 75.00 USD (computed 60.00) by alice: the account manager agreed``."""
    return (
        f"{c.customer}: {c.amount} {c.currency} (computed {c.computed_amount}) by"
        f" {c.adjusted_by}: {c.adjust_reason or ''}"
    )


@dataclass(frozen=True, kw_only=True)
class Credits:
    """``total``: issued amounts per currency; ``by_rule``: rule lines per currency (exact,
    before the cap and the minimum, rounded once to the minor unit); ``by_tier``: issued
    amounts per tier and currency."""

    count: int
    customers_credited: int
    by_status: Mapping[str, int]
    total: Mapping[str, Decimal]
    by_rule: Mapping[str, Mapping[str, Decimal]]
    by_tier: Mapping[str, Mapping[str, Decimal]]
    goodwill_count: int
    goodwill_offers: Mapping[str, int]
    customers: tuple[CreditedCustomer, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "customers_credited": self.customers_credited,
            "by_status": dict(self.by_status),
            "total": _strs(self.total),
            "by_rule": {k: _strs(v) for k, v in self.by_rule.items()},
            "by_tier": {k: _strs(v) for k, v in self.by_tier.items()},
            "goodwill": {"count": self.goodwill_count, "offers": dict(self.goodwill_offers)},
            "customers": [c.to_json() for c in self.customers],
        }


@dataclass(frozen=True, kw_only=True)
class Comment(JsonModel):
    customer: str
    score: int
    comment: str
    received_at: datetime


@dataclass(frozen=True, kw_only=True)
class Nps(JsonModel):
    """What customers said: %promoters (9-10) - %detractors (0-6), half-up to 0.1."""

    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    comments: tuple[Comment, ...]


@dataclass(frozen=True, kw_only=True)
class KbArticle(JsonModel):
    title: str
    summary: str
    impact: str
    cause_and_fix: str
    cause_notes: tuple[str, ...]
    prevention: str
    customer_communication: str


@dataclass(frozen=True, kw_only=True)
class ChartRow:
    """One round on the chart, in seconds since the incident started."""

    round: TimelineRound
    created: float
    due: float | None
    first: float | None
    last: float | None


@dataclass(frozen=True, kw_only=True)
class Chart:
    """Promised versus actual notice times: one row per round, and where the axis ends."""

    rows: tuple[ChartRow, ...]
    resolved: float | None

    @property
    def latest(self) -> float:
        """The latest time the chart has to show (a minute at least)."""
        values = [
            v
            for row in self.rows
            for v in (row.created, row.due, row.first, row.last)
            if v is not None
        ]
        if self.resolved is not None:
            values.append(self.resolved)
        return max([60.0, *values])


@dataclass(frozen=True, kw_only=True)
class MaintenanceLink:
    """The maintenance window an incident is linked to (it overran from it, or the commander's
    incident was linked at the overrun), and whether its downtime inside the window was left
    out of the credits as announced maintenance (``[credits] exclude_announced_maintenance``)."""

    ref: str  # MNT-<n>
    title: str
    status: str
    starts_at: datetime
    ends_at: datetime  # the announced end
    started_at: datetime | None
    completed_at: datetime | None
    told_at: datetime  # customers last heard the times (announcement or reschedule)
    overran_by: timedelta | None  # from the announced end to completion; None: not complete
    required_notice: timedelta | None  # the SLA's notice period; None: nothing is excluded
    excluded: bool  # the window counted as announced maintenance for the credits
    excluded_customers: int  # of the incident's audience, told in time (the exclusion's)
    excluded_downtime: timedelta  # the incident's downtime inside the window, left out
    why: str  # one line: why it was or was not excluded

    @property
    def notice(self) -> timedelta:
        """How long before the start customers heard the times."""
        return self.starts_at - self.told_at

    def to_json(self) -> dict[str, Any]:
        return {
            "maintenance": self.ref,
            "title": self.title,
            "status": self.status,
            "start": iso(self.starts_at),
            "end": iso(self.ends_at),
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at),
            "told_at": iso(self.told_at),
            "notice_seconds": self.notice.total_seconds(),
            "notice": human(self.notice.total_seconds()),
            "overran_by_seconds": _secs(self.overran_by),
            "overran_by": _human(self.overran_by),
            "credits": {
                "exclude_announced_maintenance": _secs(self.required_notice),
                "excluded": self.excluded,
                "excluded_customers": self.excluded_customers,
                "excluded_downtime_seconds": self.excluded_downtime.total_seconds(),
                "excluded_downtime": human(self.excluded_downtime.total_seconds()),
                "why": self.why,
            },
        }


def _secs(d: timedelta | None) -> float | None:
    return None if d is None else d.total_seconds()


def _human(d: timedelta | None) -> str | None:
    return None if d is None else human(d.total_seconds())


@dataclass(frozen=True, kw_only=True)
class Report:
    generated_at: datetime
    incident: Incident
    timeline: Timeline
    audience: Audience
    first_notice: FirstNotice
    promises: Promises
    deliveries: DeliverySummary
    credits: Credits
    nps: Nps
    kb_article: KbArticle
    chart: Chart
    customers_told: CustomersTold  # what came back: replies, escalations, bounces
    maintenance: MaintenanceLink | None = None  # the window it overran from

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-able data (without the chart, which the HTML page draws)."""
        return {
            "generated_at": iso(self.generated_at),
            "incident": incident_json(self.incident),
            "timeline": self.timeline.to_json(),
            "audience": self.audience.to_json(),
            "first_notice": self.first_notice.to_json(),
            "promises": self.promises.to_json(),
            "deliveries": self.deliveries.to_json(),
            "credits": self.credits.to_json(),
            "nps": self.nps.to_json(),
            "kb_article": self.kb_article.to_json(),
            "customers_told": self.customers_told.to_json(),
            "maintenance": None if self.maintenance is None else self.maintenance.to_json(),
        }
