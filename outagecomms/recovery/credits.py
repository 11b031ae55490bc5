"""The credit engine: what a customer is owed for one incident, from credit policy as data.

Pure: no I/O, no clock, no store. ``parse_credit_policy`` validates the ``[credits]`` table of
the config; ``compute_credit`` applies it to one customer and one resolved incident.

Rules (``[[credits.rules]]``, ``kind`` and its keys; the names are the contract of issue 4):

- ``response_sla``: ``percent`` (of the monthly fee) or ``amount``; earned when the
  acknowledgement reached the customer after ``started_at + ack_within``, or never.
- ``downtime_step``: ``percent_per_block`` for each ``block`` of downtime after a free ``after``
  (default 0); ``rounding = "floor"`` counts complete blocks, ``"ceil"`` counts a started block
  ("or part thereof"); optional ``max_percent`` caps this rule (before multipliers).
- ``uptime_table``: ``tiers = [{below, percent}, ...]`` and ``minutes = "exact" | "whole"``.
  Uptime of a calendar month (UTC) is ``100 × (1 − downtime / length of the month)``; the
  percent is that of the lowest ``below`` the uptime is strictly under (compared exactly, as
  rationals). The month's downtime is the union of the customer's incident intervals in that
  month (overlaps count once). With ``"whole"``, each incident's downtime within the month is
  floored to whole minutes before the union is taken. An incident's credit is the month's credit
  with the customer's incidents up to and including it (ordered by ``started_at``, then id)
  minus the month's credit without it, so the credits of a month's incidents add up to the
  month's credit and a later incident never changes an earlier one's credit.
- ``downtime_multiple``: ``multiple × monthly_fee × months_in(period) × downtime /
  length_of(period)``, ``period = "month" | "quarter"`` (calendar, UTC).
- ``repeat``: ``window``, ``min_incidents``, then ``percent`` or ``amount``: earned when at
  least ``min_incidents`` of the customer's incidents (this one included) started within
  ``window`` before this one started (inclusive: one that started exactly ``window`` earlier
  counts; incidents that started later do not).

Then ``[credits.multipliers]`` ``severity``/``tier`` (default 1) multiply every line,
``cap_percent`` (default 100) limits a customer's credits in one calendar month, and
``minimum`` (default 0) suppresses a credit below it. A fixed ``amount`` and ``minimum`` are in
the customer's own currency.

Approval: ``auto_approve_up_to`` says which credits are approved at resolution (and stated in
the resolution notice): a table by currency, ``{ EUR = "50", GBP = 40, "*" = "10%" }`` (an amount
in that currency or a percent of the customer's monthly fee; ``"*"``: any other currency), or one
percent for every currency, ``"10%"``. A credit above it, or in a currency it does not name, is
*held*: the notice says a credit is being applied and that the customer will hear the amount
within ``approval_within`` (default 48h), without an amount; ``credits INC --approve`` sends it.
No ``auto_approve_up_to``: every credit above 0 is held.

A reopened incident (``reopen``) is down over several spans: its ``Span.gaps`` (resolved, then
back) are not downtime. Every rule uses the sum of its spans (``downtime_step``,
``downtime_multiple``) or the spans themselves (``uptime_table``; with ``"whole"`` each span is
floored to whole minutes), and ``repeat`` counts it once.

Money: every line is computed exactly (as a rational number); the total is rounded **once**,
half-up (``ROUND_HALF_UP`` semantics), to the currency's minor unit (Babel: USD 2, JPY 0, BHD 3).
The cap is ``cap_percent`` of the monthly fee rounded half-up to the minor unit, so a customer's
rounded credits in a month never add up to more than that. ``credited_this_month`` is the sum
of the rounded credits already proposed/approved for this customer for incidents that started
earlier in the same calendar month; the remaining room is ``cap − credited_this_month`` (never
below 0). A credit whose rounded amount is above 0 but below ``minimum`` becomes 0 with
``below_minimum = True``.

An incident that crosses a month's end (UTC):

- its downtime is attributed to the months (for ``period = "quarter"``: the quarters) it fell
  in. ``uptime_table`` earns, for every month the incident touched, that month's increase in
  credit (so a 23:00–02:00 outage over 31 January lowers January's uptime by 1 h and
  February's by 2 h, and may earn in both); ``downtime_multiple`` prices each part at the rate
  of its own period (a minute of February is worth more than a minute of March);
  ``downtime_step`` and ``response_sla`` look at the incident as one outage (blocks are not
  split, so a boundary never loses a partial block);
- the credit as a whole belongs to the month the incident **started**: that month's cap applies
  and ``credited_this_month`` must be that month's earlier credits.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, ClassVar

from babel.core import UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision

from outagecomms.errors import ConfigError
from outagecomms.models import Customer, Severity
from outagecomms.values import FieldReader

__all__ = [
    "ApprovalLimit",
    "Credit",
    "CreditForReview",
    "CreditLine",
    "CreditPolicy",
    "CreditRule",
    "DowntimeMultipleRule",
    "DowntimeStepRule",
    "RepeatRule",
    "ResponseSlaRule",
    "Span",
    "UptimeTableRule",
    "UptimeTier",
    "auto_approves",
    "compute_credit",
    "compute_credit_or_review",
    "credit_reason",
    "format_money",
    "parse_credit_policy",
]

RULE_KINDS = ("response_sla", "downtime_step", "uptime_table", "downtime_multiple", "repeat")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ZERO = Fraction(0)
_MICRO = timedelta(microseconds=1)

# --- policy --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ResponseSlaRule:
    """A fixed remedy when the acknowledgement was late or never delivered."""

    kind: ClassVar[str] = "response_sla"
    percent: Decimal | None = None
    amount: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class DowntimeStepRule:
    """``percent_per_block`` for each (complete or started) ``block`` of downtime after ``after``."""

    kind: ClassVar[str] = "downtime_step"
    percent_per_block: Decimal
    block: timedelta
    rounding: str  # "floor" | "ceil"
    after: timedelta = timedelta(0)
    max_percent: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class UptimeTier:
    below: Decimal  # uptime percent, e.g. 99.99
    percent: Decimal  # credit percent of the monthly fee


@dataclass(frozen=True, kw_only=True)
class UptimeTableRule:
    """Monthly uptime thresholds; ``tiers`` sorted by ``below``, lowest first."""

    kind: ClassVar[str] = "uptime_table"
    tiers: tuple[UptimeTier, ...]
    minutes: str = "exact"  # "exact" | "whole"


@dataclass(frozen=True, kw_only=True)
class DowntimeMultipleRule:
    """``multiple`` × the fee paid for the downtime."""

    kind: ClassVar[str] = "downtime_multiple"
    multiple: Decimal
    period: str = "month"  # "month" | "quarter"


@dataclass(frozen=True, kw_only=True)
class RepeatRule:
    """A remedy for a customer hit by ``min_incidents`` incidents within ``window``."""

    kind: ClassVar[str] = "repeat"
    window: timedelta
    min_incidents: int
    percent: Decimal | None = None
    amount: Decimal | None = None


CreditRule = (
    ResponseSlaRule | DowntimeStepRule | UptimeTableRule | DowntimeMultipleRule | RepeatRule
)


def _frozen_map() -> Mapping[str, Decimal]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ApprovalLimit:
    """One ``auto_approve_up_to`` limit: an ``amount`` in the currency, or a ``percent`` of the
    customer's monthly fee."""

    amount: Decimal | None = None
    percent: Decimal | None = None

    def of(self, monthly_fee: Decimal) -> Decimal:
        if self.percent is not None:
            return monthly_fee * self.percent / 100
        assert self.amount is not None
        return self.amount


def _no_limits() -> Mapping[str, ApprovalLimit]:
    return MappingProxyType({})


#: the default ``approval_within``: when a held credit's customer will hear its amount
APPROVAL_WITHIN = timedelta(hours=48)


@dataclass(frozen=True, kw_only=True)
class CreditPolicy:
    """The validated ``[credits]`` table. No rules: every credit is zero.

    ``auto_approve_up_to``: currency (or ``"*"``) -> the largest credit approved at resolution;
    empty: every credit above 0 is held for a person's approval."""

    rules: tuple[CreditRule, ...] = ()
    severity_multipliers: Mapping[str, Decimal] = field(default_factory=_frozen_map)
    tier_multipliers: Mapping[str, Decimal] = field(default_factory=_frozen_map)
    cap_percent: Decimal = Decimal(100)
    minimum: Decimal = Decimal(0)
    auto_approve_up_to: Mapping[str, ApprovalLimit] = field(default_factory=_no_limits)
    approval_within: timedelta = APPROVAL_WITHIN
    #: downtime inside a maintenance window the customer was told of at least this long before
    #: it started is not downtime (``[credits] exclude_announced_maintenance``); None: it is
    exclude_announced_maintenance: timedelta | None = None


def auto_approves(
    policy: CreditPolicy, amount: Decimal, currency: str, monthly_fee: Decimal
) -> bool:
    """Whether a credit of ``amount`` is approved at resolution (at or under the policy's
    ``auto_approve_up_to`` for ``currency``); 0 always is (nothing is promised)."""
    if amount <= 0:
        return True
    limit = policy.auto_approve_up_to.get(currency) or policy.auto_approve_up_to.get("*")
    return limit is not None and amount <= limit.of(monthly_fee)


# --- inputs and results --------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Span:
    """One of the customer's incidents: downtime from ``started_at`` to ``resolved_at``, less
    its ``gaps``: the times it was resolved before it came back (``reopen``), as (restored,
    back) pairs. An incident reopened once is down over two spans: ``pieces``."""

    incident_id: int
    started_at: datetime
    resolved_at: datetime
    severity: str
    gaps: tuple[tuple[datetime, datetime], ...] = ()

    def pieces(self) -> list[tuple[datetime, datetime]]:
        """The intervals of downtime, in order: ``started_at`` to ``resolved_at`` without the
        gaps (clipped to the incident; overlapping gaps count once)."""
        out: list[tuple[datetime, datetime]] = []
        at = self.started_at
        for a, b in sorted(self.gaps):
            a, b = max(a, self.started_at), min(b, self.resolved_at)
            if b <= a or b <= at:
                continue
            if a > at:
                out.append((at, a))
            at = b
        if self.resolved_at > at:
            out.append((at, self.resolved_at))
        return out

    def __post_init__(self) -> None:
        start = _utc(self.started_at, "started_at")
        end = _utc(self.resolved_at, "resolved_at")
        if end < start:
            raise ValueError(
                f"incident {self.incident_id}: resolved_at {end.isoformat()} is before "
                f"started_at {start.isoformat()}"
            )
        object.__setattr__(self, "started_at", start)
        object.__setattr__(self, "resolved_at", end)
        gaps = tuple((_utc(a, "gap start"), _utc(b, "gap end")) for a, b in self.gaps)
        object.__setattr__(self, "gaps", gaps)

    @property
    def downtime(self) -> timedelta:
        if not self.gaps:
            return self.resolved_at - self.started_at
        return sum((b - a for a, b in self.pieces()), timedelta(0))


@dataclass(frozen=True)
class CreditLine:
    """One rule's contribution: exact (not rounded), after multipliers, before the cap.

    ``detail`` shows the arithmetic (for billing and the report); ``reason`` says it in words
    for the customer ("10% of your monthly fee for 2 started 30-minute blocks of downtime").
    """

    rule: str
    amount: Decimal
    detail: str
    reason: str = ""


@dataclass(frozen=True)
class Credit:
    """What one customer is owed for one incident, rounded once to the currency's minor unit."""

    customer_id: str
    currency: str
    amount: Decimal
    lines: tuple[CreditLine, ...]
    capped: bool
    below_minimum: bool


# --- parsing ----------------------------------------------------------------------------------

_RULE_KEYS: dict[str, set[str]] = {
    "response_sla": {"kind", "percent", "amount"},
    "downtime_step": {"kind", "percent_per_block", "block", "after", "rounding", "max_percent"},
    "uptime_table": {"kind", "tiers", "minutes"},
    "downtime_multiple": {"kind", "multiple", "period"},
    "repeat": {"kind", "window", "min_incidents", "percent", "amount"},
}
_TOP_KEYS = {
    "rules",
    "multipliers",
    "cap_percent",
    "minimum",
    "auto_approve_up_to",
    "approval_within",
    "exclude_announced_maintenance",
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")
_RULE_INDEX = re.compile(r"^credits\.rules\[(\d+)\]")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _Parser(FieldReader):
    """The ``[credits]`` reader: the config's field rules, errors naming the rule by ordinal."""

    def err(self, key: str, message: str) -> ConfigError:
        m = _RULE_INDEX.match(key)
        if m:
            message += f" (in the {_ordinal(int(m.group(1)) + 1)} [[credits.rules]] table)"
        return super().err(key, message)

    def optional(self, data: Mapping[str, Any], prefix: str, key: str) -> Decimal | None:
        return self.decimal(data, prefix, key) if key in data else None

    def percent_or_amount(
        self, data: Mapping[str, Any], prefix: str
    ) -> tuple[Decimal | None, Decimal | None]:
        if "percent" in data and "amount" in data:
            raise self.err(f"{prefix}.amount", "give either percent or amount, not both")
        if "percent" not in data and "amount" not in data:
            raise self.err(
                f"{prefix}.percent",
                "is required: percent (of the monthly fee) or amount (in the customer's currency)",
            )
        return self.optional(data, prefix, "percent"), self.optional(data, prefix, "amount")

    # the tables ---------------------------------------------------------------------------

    def policy(self, data: Mapping[str, Any]) -> CreditPolicy:
        self.known(data, "credits", _TOP_KEYS)
        rules_in = data.get("rules", [])
        if not isinstance(rules_in, list):
            raise self.err("credits.rules", "must be an array of tables: [[credits.rules]]")
        rules = tuple(self.rule(raw, f"credits.rules[{i}]") for i, raw in enumerate(rules_in))

        mult = self.table(data.get("multipliers", {}), "credits.multipliers")
        self.known(mult, "credits.multipliers", {"severity", "tier"})
        severities = {s.value for s in Severity}
        sev = self.multipliers(mult.get("severity", {}), "credits.multipliers.severity")
        for name in sev:
            if name not in severities:
                raise self.err(
                    f"credits.multipliers.severity.{name}",
                    "unknown severity; use " + ", ".join(sorted(severities)),
                )
        tier = self.multipliers(mult.get("tier", {}), "credits.multipliers.tier")

        cap = self.decimal(data, "credits", "cap_percent", Decimal(100))
        minimum = self.decimal(data, "credits", "minimum", Decimal(0))
        within = self.duration(data, "credits", "approval_within", APPROVAL_WITHIN)
        notice = None
        if "exclude_announced_maintenance" in data:  # the notice period the SLA requires
            notice = self.duration(
                data, "credits", "exclude_announced_maintenance", allow_zero=True
            )
        return CreditPolicy(
            rules=rules,
            severity_multipliers=MappingProxyType(sev),
            tier_multipliers=MappingProxyType(tier),
            cap_percent=cap,
            minimum=minimum,
            auto_approve_up_to=MappingProxyType(self.approval_limits(data)),
            approval_within=within,
            exclude_announced_maintenance=notice,
        )

    def approval_limits(self, data: Mapping[str, Any]) -> dict[str, ApprovalLimit]:
        key = "credits.auto_approve_up_to"
        raw = data.get("auto_approve_up_to")
        if raw is None:
            return {}
        if isinstance(raw, str):
            return {"*": self.limit(raw, key, percent_only=True)}
        if not isinstance(raw, dict):
            raise self.err(
                key,
                'must be a percent of the monthly fee ("10%") or a table by currency '
                f'({{ EUR = "50", GBP = "40" }}), got {raw!r}',
            )
        out: dict[str, ApprovalLimit] = {}
        for cur, value in raw.items():
            if cur != "*" and not _CURRENCY.match(cur):
                raise self.err(
                    f"{key}.{cur}",
                    'is not a currency: use a 3-letter code in capitals (EUR) or "*" for any other',
                )
            out[cur] = self.limit(value, f"{key}.{cur}")
        return out

    def limit(self, value: Any, key: str, *, percent_only: bool = False) -> ApprovalLimit:
        if isinstance(value, str):
            m = _PERCENT.match(value)
            if m:
                return ApprovalLimit(percent=Decimal(m.group(1)))
            if percent_only:
                raise self.err(
                    key,
                    f'must be a percent of the monthly fee such as "10%" (or a table by '
                    f"currency), got {value!r}",
                )
        prefix, _, name = key.rpartition(".")
        amount = self.decimal({name: value}, prefix, name)
        return ApprovalLimit(amount=amount)

    def multipliers(self, raw: Any, prefix: str) -> dict[str, Decimal]:
        table = self.table(raw, prefix)
        out: dict[str, Decimal] = {}
        for name in table:
            if not name:
                raise self.err(prefix, "names must not be empty")
            out[name] = self.decimal(table, prefix, name)
        return out

    def rule(self, raw: Any, prefix: str) -> CreditRule:
        data = self.table(raw, prefix)
        kind = data.get("kind")
        if kind is None:
            raise self.err(f"{prefix}.kind", "is required: one of " + ", ".join(RULE_KINDS))
        if not isinstance(kind, str) or kind not in _RULE_KEYS:
            raise self.err(
                f"{prefix}.kind", f"unknown rule kind {kind!r}; known: " + ", ".join(RULE_KINDS)
            )
        self.known(data, prefix, _RULE_KEYS[kind])
        if kind == "response_sla":
            percent, amount = self.percent_or_amount(data, prefix)
            return ResponseSlaRule(percent=percent, amount=amount)
        if kind == "downtime_step":
            return DowntimeStepRule(
                percent_per_block=self.decimal(data, prefix, "percent_per_block"),
                block=self.duration(data, prefix, "block"),
                after=self.duration(data, prefix, "after", timedelta(0), allow_zero=True),
                rounding=self.choice(data, prefix, "rounding", ("floor", "ceil")),
                max_percent=self.optional(data, prefix, "max_percent"),
            )
        if kind == "uptime_table":
            return UptimeTableRule(
                tiers=self.tiers(data, prefix),
                minutes=self.choice(data, prefix, "minutes", ("exact", "whole"), "exact"),
            )
        if kind == "downtime_multiple":
            return DowntimeMultipleRule(
                multiple=self.decimal(data, prefix, "multiple"),
                period=self.choice(data, prefix, "period", ("month", "quarter"), "month"),
            )
        window = self.duration(data, prefix, "window")
        count = self.integer(data, prefix, "min_incidents", minimum=1)
        percent, amount = self.percent_or_amount(data, prefix)
        return RepeatRule(window=window, min_incidents=count, percent=percent, amount=amount)

    def tiers(self, data: Mapping[str, Any], prefix: str) -> tuple[UptimeTier, ...]:
        key = f"{prefix}.tiers"
        raw = data.get("tiers")
        if raw is None:
            raise self.err(key, "is required: e.g. [{below = 99.9, percent = 10}]")
        if not isinstance(raw, list) or not raw:
            raise self.err(key, "must be a non-empty array of {below = ..., percent = ...}")
        tiers: list[UptimeTier] = []
        for i, item in enumerate(raw):
            tp = f"{key}[{i}]"
            table = self.table(item, tp)
            self.known(table, tp, {"below", "percent"})
            below = self.decimal(table, tp, "below", positive=True)
            if below > 100:
                raise self.err(f"{tp}.below", f"is an uptime percent, at most 100, got {below}")
            if any(t.below == below for t in tiers):
                raise self.err(f"{tp}.below", f"below = {below} is given twice")
            tiers.append(UptimeTier(below=below, percent=self.decimal(table, tp, "percent")))
        ordered = sorted(tiers, key=lambda t: t.below)
        for lower, higher in itertools.pairwise(ordered):
            if lower.percent < higher.percent:
                raise self.err(
                    key,
                    f"a lower uptime must not earn less: below = {lower.below} gives "
                    f"{lower.percent}% but below = {higher.below} gives {higher.percent}%",
                )
        return tuple(ordered)


def parse_credit_policy(data: Mapping[str, Any] | None, *, source: str) -> CreditPolicy:
    """Validate the ``[credits]`` table (``source`` names the file in errors).

    Raises ``ConfigError`` with ``key`` such as ``credits.rules[2].block`` (index from 0).
    ``None`` or an empty table gives a policy without rules: every credit is zero.
    """
    parser = _Parser(source)
    if data is None:
        return CreditPolicy()
    return parser.policy(parser.table(data, "credits"))


# --- time and money helpers ---------------------------------------------------------------


def _add_months(start: datetime, months: int) -> datetime:
    years, month0 = divmod(start.month - 1 + months, 12)
    return start.replace(year=start.year + years, month=month0 + 1)


def _periods(start: datetime, end: datetime, months: int) -> Iterator[tuple[datetime, datetime]]:
    """Calendar periods of ``months`` months (1: months, 3: quarters) overlapping [start, end)."""
    p = datetime(start.year, (start.month - 1) // months * months + 1, 1, tzinfo=UTC)
    while p < end:
        nxt = _add_months(p, months)
        yield p, nxt
        p = nxt


def _us(delta: timedelta) -> int:
    return delta // _MICRO


def _union(pieces: list[tuple[datetime, datetime]]) -> timedelta:
    total = timedelta(0)
    cur_start: datetime | None = None
    cur_end: datetime | None = None
    for a, b in sorted(pieces):
        if cur_end is None or a > cur_end:
            if cur_start is not None and cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = a, b
        elif b > cur_end:
            cur_end = b
    if cur_start is not None and cur_end is not None:
        total += cur_end - cur_start
    return total


def _round_half_up(value: Fraction, places: int) -> Decimal:
    """Round an exact value half-up (away from zero) to ``places`` decimals."""
    scaled = abs(value) * 10**places
    n = math.floor(scaled)
    if scaled - n >= Fraction(1, 2):
        n += 1
    return Decimal(-n if value < 0 else n).scaleb(-places)


def _decimal(value: Fraction) -> Decimal:
    """An exact value as a Decimal (exact when it terminates, else to 28 significant digits)."""
    return Decimal(value.numerator) / Decimal(value.denominator)


def _num(value: Decimal | Fraction | int) -> str:
    """A number without exponent or trailing zeros: 10, 7.5, 0.125."""
    d = value if isinstance(value, Decimal) else _decimal(Fraction(value))
    text = format(d.normalize(), "f")
    return text


def _mins(delta: timedelta) -> str:
    """Minutes as a number: 95, 4.32 (floored to 2 decimals)."""
    mins = Fraction(_us(delta), 60_000_000)
    if mins.denominator == 1:
        return str(mins.numerator)
    return str(_decimal(mins).quantize(Decimal("0.01"), rounding=ROUND_FLOOR))


def _minutes(delta: timedelta) -> str:
    return f"{_mins(delta)} min"


def _human(delta: timedelta, *, adjective: bool = False) -> str:
    """10 minutes / 1 hour / 30 days; adjective: 30-minute, 1-hour."""
    secs = Fraction(_us(delta), 1_000_000)
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    unit, n = next(
        ((u, secs / size) for u, size in units if secs >= size and (secs / size).denominator == 1),
        ("second", secs),
    )
    if adjective:
        return f"{_num(n)}-{unit}"
    return f"{_num(n)} {unit}" + ("" if n == 1 else "s")


def _month_name(dt: datetime) -> str:
    return f"{_MONTHS[dt.month - 1]} {dt.year}"


def _floor_display(value: Fraction, places: int = 3) -> str:
    """An uptime shown floored, so a shown value never contradicts "under X" (99.98999 → 99.989)."""
    q = Fraction(1, 10**places)
    floored = Fraction(math.floor(value / q)) * q
    return _num(_decimal(floored))


def format_money(amount: Decimal, currency: str, locale: str) -> str:
    """``amount`` in ``currency`` as ``locale`` writes it ($1,234.50, 1.234,50 €, ￥1,235).

    Rounded half-up to the currency's minor unit first; an unknown locale falls back to en_US.
    """
    places = get_currency_precision(currency)
    rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    try:
        return format_currency(rounded, currency, locale=locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return format_currency(rounded, currency, locale="en_US")


# --- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Base:
    """A rule's contribution before multipliers."""

    amount: Fraction
    detail: str
    reason: str


@dataclass(frozen=True)
class _Ctx:
    customer: Customer
    incident: Span
    fee: Fraction
    money: str  # the fee as text with currency, for details
    spans: tuple[Span, ...]  # the customer's incidents, deduplicated, ordered

    def percent_of_fee(self, percent: Decimal | Fraction) -> Fraction:
        return self.fee * Fraction(percent) / 100

    def fixed(self, percent: Decimal | None, amount: Decimal | None) -> tuple[Fraction, str, str]:
        """(amount, detail, reason prefix) of a percent-or-amount remedy."""
        if percent is not None:
            return (
                self.percent_of_fee(percent),
                f"{_num(percent)}% of {self.money}",
                f"{_num(percent)}% of your monthly fee",
            )
        assert amount is not None
        cur = self.customer.currency
        return (
            Fraction(amount),
            f"{_num(amount)} {cur}",
            format_money(amount, cur, self.customer.locale),
        )


def _order(span: Span) -> tuple[datetime, int]:
    return (span.started_at, span.incident_id)


def _response_sla(
    rule: ResponseSlaRule, ctx: _Ctx, ack: datetime | None, ack_within: timedelta
) -> list[_Base]:
    due = ctx.incident.started_at + ack_within
    if ack is not None and ack <= due:
        return []
    amount, what, reason = ctx.fixed(rule.percent, rule.amount)
    when = (
        "never delivered"
        if ack is None
        else f"delivered {ack:%Y-%m-%d %H:%M:%S} UTC, {_minutes(ack - due)} late"
    )
    detail = f"acknowledgement due {due:%Y-%m-%d %H:%M:%S} UTC, {when}: {what}"
    return [
        _Base(
            amount,
            detail,
            f"{reason} because our first notice did not reach you within {_human(ack_within)}",
        )
    ]


def _downtime_step(rule: DowntimeStepRule, ctx: _Ctx) -> list[_Base]:
    down = ctx.incident.downtime
    eligible = max(down - rule.after, timedelta(0))
    blocks, rest = divmod(eligible, rule.block)
    if rule.rounding == "ceil" and rest:
        blocks += 1
    if blocks == 0:
        return []
    percent = rule.percent_per_block * blocks
    capped = rule.max_percent is not None and percent > rule.max_percent
    if capped:
        assert rule.max_percent is not None
        percent = rule.max_percent
    counted = "started" if rule.rounding == "ceil" else "complete"
    free = f" after {_minutes(rule.after)} free" if rule.after else ""
    detail = (
        f"{_minutes(down)} downtime{free}: {blocks} {counted} {_minutes(rule.block)} block(s)"
        f" × {_num(rule.percent_per_block)}%"
        + (
            f" = {_num(rule.percent_per_block * blocks)}%, rule max {_num(percent)}%"
            if capped
            else ""
        )
        + f" = {_num(percent)}% of {ctx.money}"
    )
    plural = "" if blocks == 1 else "s"
    reason = (
        f"{_num(percent)}% of your monthly fee"
        + (" (the most this rule gives)" if capped else "")
        + f" for {blocks} {counted} {_human(rule.block, adjective=True)} block{plural}"
        " of downtime" + (f" beyond the first {_human(rule.after)}" if rule.after else "")
    )
    return [_Base(ctx.percent_of_fee(percent), detail, reason)]


def _month_uptime(
    rule: UptimeTableRule, spans: Sequence[Span], start: datetime, end: datetime
) -> tuple[timedelta, Fraction, Decimal]:
    """(downtime, uptime percent, credit percent) of the calendar month [start, end)."""
    pieces: list[tuple[datetime, datetime]] = []
    for s in spans:
        for a0, b0 in s.pieces():  # a reopened incident: each of its spans
            a, b = max(a0, start), min(b0, end)
            if rule.minutes == "whole":
                b = a + timedelta(minutes=(b - a) // timedelta(minutes=1)) if b > a else a
            if b > a:
                pieces.append((a, b))
    down = _union(pieces)
    length = _us(end - start)
    uptime = Fraction(100) * (length - _us(down)) / length
    percent = Decimal(0)
    for tier in rule.tiers:  # lowest below first: the first one the uptime is under wins
        if uptime < Fraction(tier.below):
            percent = tier.percent
            break
    return down, uptime, percent


def _uptime_table(rule: UptimeTableRule, ctx: _Ctx) -> list[_Base]:
    inc = ctx.incident
    key = _order(inc)
    upto = [s for s in ctx.spans if _order(s) <= key]
    before = [s for s in ctx.spans if _order(s) < key]
    out: list[_Base] = []
    for start, end in _periods(inc.started_at, inc.resolved_at, 1):
        down, uptime, with_pct = _month_uptime(rule, upto, start, end)
        _, _, without_pct = _month_uptime(rule, before, start, end)
        delta = with_pct - without_pct
        if delta <= 0:
            continue
        under = min(t.below for t in rule.tiers if uptime < Fraction(t.below))
        shown = _floor_display(uptime)
        earlier = f", less {_num(without_pct)}% earned by earlier incidents" if without_pct else ""
        detail = (
            f"{start:%Y-%m}: {_minutes(down)} downtime of {_minutes(end - start)}"
            f" ({rule.minutes} minutes), uptime {shown}% < {_num(under)}% → {_num(with_pct)}%"
            f"{earlier} = {_num(delta)}% of {ctx.money}"
        )
        reason = (
            f"{_num(delta)}% of your monthly fee because your uptime in {_month_name(start)}"
            f" was {shown}%, under {_num(under)}%"
            + (
                f" ({_num(with_pct)}% in all, less {_num(without_pct)}% already credited)"
                if without_pct
                else ""
            )
        )
        out.append(_Base(ctx.percent_of_fee(delta), detail, reason))
    return out


def _downtime_multiple(rule: DowntimeMultipleRule, ctx: _Ctx) -> list[_Base]:
    inc = ctx.incident
    months = 1 if rule.period == "month" else 3
    total = _ZERO
    parts: list[str] = []
    for start, end in _periods(inc.started_at, inc.resolved_at, months):
        piece = sum(
            (max(min(b, end) - max(a, start), timedelta(0)) for a, b in inc.pieces()),
            timedelta(0),
        )
        total += Fraction(rule.multiple) * ctx.fee * months * Fraction(_us(piece), _us(end - start))
        label = f"{start:%Y-%m}" if months == 1 else f"{start.year}-Q{(start.month - 1) // 3 + 1}"
        parts.append(
            f"{_num(rule.multiple)} × {ctx.money} × {months} × {_minutes(piece)}"
            f" / {_minutes(end - start)} ({label})"
        )
    if total == 0:
        return []
    mins = _mins(inc.downtime)
    unit = "minute" if mins == "1" else "minutes"
    times = "the fee" if rule.multiple == 1 else f"{_num(rule.multiple)} times your fee"
    reason = f"{times} for the {mins} {unit} of downtime"
    return [_Base(total, " + ".join(parts), reason)]


def _repeat(rule: RepeatRule, ctx: _Ctx) -> list[_Base]:
    inc = ctx.incident
    since = inc.started_at - rule.window
    count = sum(1 for s in ctx.spans if since <= s.started_at <= inc.started_at)
    if count < rule.min_incidents:
        return []
    amount, what, reason = ctx.fixed(rule.percent, rule.amount)
    detail = (
        f"{count} incidents started within {_human(rule.window)} up to this one"
        f" (at least {rule.min_incidents}): {what}"
    )
    return [
        _Base(
            amount,
            detail,
            f"{reason} because this is the {_ordinal(count)} incident to affect you within"
            f" {_human(rule.window)}",
        )
    ]


def compute_credit(
    policy: CreditPolicy,
    *,
    customer: Customer,
    incident: Span,
    ack_delivered_at: datetime | None,
    ack_within: timedelta,
    history: Sequence[Span],
    credited_this_month: Decimal = Decimal(0),
) -> Credit:
    """What ``customer`` is owed for ``incident`` under ``policy``.

    ``history``: the customer's incidents (any order; may include ``incident``, whose copy here
    wins; deduplicated by id), used by ``uptime_table`` and ``repeat``. ``ack_delivered_at``:
    when the customer's acknowledgement was delivered (None: never). ``credited_this_month``:
    the customer's rounded credits for earlier incidents that started in the calendar month
    (UTC) in which this one started.
    """
    ack = _utc(ack_delivered_at, "ack_delivered_at") if ack_delivered_at is not None else None
    if credited_this_month < 0:
        raise ValueError(f"credited_this_month must be 0 or more, got {credited_this_month}")
    by_id = {s.incident_id: s for s in history}
    by_id[incident.incident_id] = incident
    places = get_currency_precision(customer.currency)
    ctx = _Ctx(
        customer=customer,
        incident=incident,
        fee=Fraction(customer.monthly_fee),
        money=f"{customer.monthly_fee:f} {customer.currency}",
        spans=tuple(sorted(by_id.values(), key=_order)),
    )

    factors: list[tuple[Decimal, str, str]] = []
    sev = policy.severity_multipliers.get(incident.severity)
    if sev is not None and sev != 1:
        factors.append((sev, f"severity {incident.severity}", f"a {incident.severity} incident"))
    tier = policy.tier_multipliers.get(customer.tier)
    if tier is not None and tier != 1:
        factors.append((tier, f"tier {customer.tier}", f"{customer.tier} customers"))
    factor = Fraction(1)
    for f, _, _ in factors:
        factor *= Fraction(f)

    scaled = ""
    if factors:
        scaled = ", times " + " and ".join(f"{_num(f)} for {who}" for f, _, who in factors)
    lines: list[CreditLine] = []
    exact = _ZERO
    for rule in policy.rules:
        if isinstance(rule, ResponseSlaRule):
            bases = _response_sla(rule, ctx, ack, ack_within)
        elif isinstance(rule, DowntimeStepRule):
            bases = _downtime_step(rule, ctx)
        elif isinstance(rule, UptimeTableRule):
            bases = _uptime_table(rule, ctx)
        elif isinstance(rule, DowntimeMultipleRule):
            bases = _downtime_multiple(rule, ctx)
        else:
            bases = _repeat(rule, ctx)
        for base in bases:
            amount = base.amount * factor
            if amount <= 0:
                continue
            detail = base.detail + "".join(f" × {_num(f)} ({what})" for f, what, _ in factors)
            reason = base.reason + scaled
            exact += amount
            lines.append(CreditLine(rule.kind, _decimal(amount), detail, reason))

    cap = _round_half_up(ctx.percent_of_fee(policy.cap_percent), places)
    grid = Decimal(1).scaleb(-places)
    room = max(cap - credited_this_month, Decimal(0)).quantize(grid, rounding=ROUND_FLOOR)
    capped = exact > Fraction(room)
    total = room if capped else _round_half_up(exact, places)
    below = Decimal(0) < total < policy.minimum
    if below:
        total = Decimal(0).scaleb(-places)
    return Credit(
        customer_id=customer.id,
        currency=customer.currency,
        amount=total,
        lines=tuple(lines),
        capped=capped,
        below_minimum=below,
    )


#: a fee beyond these is not computed with (the importer allows at most 10**12 and 5 decimals;
#: a store written before that may hold 1e999999, whose exact arithmetic takes minutes)
_FEE_MAX_DIGITS = 20
_FEE_MAX_DECIMALS = 10


def _fee_out_of_range(fee: Decimal) -> bool:
    if not fee.is_finite():
        return True
    exponent = fee.as_tuple().exponent
    assert isinstance(exponent, int)
    return fee.adjusted() >= _FEE_MAX_DIGITS or exponent < -_FEE_MAX_DECIMALS


@dataclass(frozen=True)
class CreditForReview:
    """A customer whose credit could not be computed: a person decides it (``reason`` says
    why); the incident's other credits and notices do not wait for it."""

    customer_id: str
    currency: str
    reason: str


def compute_credit_or_review(
    policy: CreditPolicy, *, customer: Customer, **facts: Any
) -> Credit | CreditForReview:
    """``compute_credit`` for one customer, isolated: when that customer's arithmetic fails
    (an absurd fee, a value out of range) the result is a ``CreditForReview`` naming why,
    instead of an exception that would fail the whole incident's resolution."""
    fee = customer.monthly_fee
    if _fee_out_of_range(fee):
        return CreditForReview(
            customer.id,
            customer.currency,
            f"monthly_fee {str(fee)[:40]} is outside the range credits are computed for",
        )
    try:
        return compute_credit(policy, customer=customer, **facts)
    except (ArithmeticError, ValueError) as exc:  # decimal.InvalidOperation is an ArithmeticError
        what = " ".join(str(exc).split())[:80]
        return CreditForReview(
            customer.id,
            customer.currency,
            f"the credit could not be computed ({type(exc).__name__}{': ' + what if what else ''})",
        )


def credit_reason(credit: Credit) -> str:
    """Why, in a short phrase for the resolution notice (no final full stop), e.g.
    "10% of your monthly fee for 2 started 30-minute blocks of downtime"."""
    if credit.below_minimum:
        return "the credit this incident earned is below the smallest credit we issue"
    reasons = [line.reason or line.detail for line in credit.lines]
    if not reasons:
        return "no service credit applies to this incident"
    common = re.search(r", times [^;]*$", reasons[0])
    if common and len(reasons) > 1 and all(r.endswith(common.group()) for r in reasons):
        # the same multipliers apply to every line: say so once, at the end
        cut = len(common.group())
        text = ", plus ".join(r[:-cut] for r in reasons) + "; all" + common.group()[1:]
    else:
        text = ", plus ".join(reasons)
    if credit.capped:
        text += (
            "; your credits this month have already reached the monthly limit"
            if credit.amount == 0
            else "; limited to the most we credit in one month"
        )
    return text
