"""The credit engine (issue 4, part 1): credit policy as data, computed exactly, rounded once.

Cases follow published schedules; each id shows the arithmetic:

- hosting (Rackspace-style network SLA): 5% of the monthly fee per 30 minutes of downtime, up to
  100%; hardware: after a 1-hour repair window, 5% per additional hour;
- cloud monthly uptime tiers: Azure VMs <99.99% → 10%, <99% → 25%, <95% → 100%; AWS EC2
  <99.99% → 10%, <99% → 30%, <95% → 100%;
- SaaS (Slack-style): 100 × the fee paid for the downtime.

Month lengths: Feb 2026 = 40,320 min, Feb 2028 (leap) = 41,760, April = 43,200, March/January
= 44,640; Q1 2026 = 129,600 min, Q2 = 131,040.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from outagecomms.errors import ConfigError
from outagecomms.models import Customer
from outagecomms.recovery.credits import (
    Credit,
    CreditPolicy,
    DowntimeMultipleRule,
    DowntimeStepRule,
    RepeatRule,
    ResponseSlaRule,
    Span,
    UptimeTableRule,
    UptimeTier,
    compute_credit,
    credit_reason,
    format_money,
    parse_credit_policy,
)
from tests.support.data import step_rule

SOURCE = "/etc/outagecomms/outagecomms.toml"

# --- published schedules as rule tables ------------------------------------------------------

RACKSPACE = {"kind": "downtime_step", "percent_per_block": 5, "block": "30m", "rounding": "ceil"}
RACKSPACE_FLOOR = {**RACKSPACE, "rounding": "floor"}
RACKSPACE_HW = {
    "kind": "downtime_step",
    "percent_per_block": 5,
    "block": "1h",
    "after": "1h",
    "rounding": "ceil",
}
AZURE_VM = {
    "kind": "uptime_table",
    "tiers": [
        {"below": 99.99, "percent": 10},
        {"below": 99.0, "percent": 25},
        {"below": 95.0, "percent": 100},
    ],
}
AWS_EC2 = {
    "kind": "uptime_table",
    "tiers": [
        {"below": 99.99, "percent": 10},
        {"below": 99.0, "percent": 30},
        {"below": 95.0, "percent": 100},
    ],
}
SLACK = {"kind": "downtime_multiple", "multiple": 100, "period": "month"}
LATE_ACK = {"kind": "response_sla", "percent": 5}
REPEAT_3_IN_30D = {"kind": "repeat", "window": "30d", "min_incidents": 3, "percent": 10}


# --- helpers -----------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def span(
    incident_id: int,
    start: str,
    minutes: float | None = None,
    *,
    end: str | None = None,
    seconds: float = 0,
    severity: str = "sev2",
) -> Span:
    started = at(start)
    if end is not None:
        resolved = at(end)
    else:
        resolved = started + timedelta(minutes=minutes or 0, seconds=seconds)
    return Span(incident_id, started, resolved, severity)


def customer(
    fee: str = "200.00", currency: str = "USD", tier: str = "standard", locale: str = "en_US"
) -> Customer:
    return Customer(
        id="cust-1",
        name="Acme",
        monthly_fee=Decimal(fee),
        currency=currency,
        tier=tier,
        locale=locale,
    )


def policy(*rules: dict[str, Any], **top: Any) -> CreditPolicy:
    return parse_credit_policy({"rules": list(rules), **top}, source=SOURCE)


def credit(
    pol: CreditPolicy,
    incident: Span,
    *,
    cust: Customer | None = None,
    history: Sequence[Span] = (),
    ack: datetime | str | None = "on-time",
    ack_within: timedelta = timedelta(minutes=10),
    credited: str = "0",
) -> Credit:
    if ack == "on-time":
        ack_at: datetime | None = incident.started_at + timedelta(minutes=1)
    else:
        assert not isinstance(ack, str)
        ack_at = ack
    return compute_credit(
        pol,
        customer=cust or customer(),
        incident=incident,
        ack_delivered_at=ack_at,
        ack_within=ack_within,
        history=history,
        credited_this_month=Decimal(credited),
    )


# --- downtime_step -----------------------------------------------------------------------------

STEP_CASES = [
    # (rule, downtime, fee, expected amount, capped)
    pytest.param(RACKSPACE, timedelta(0), "200.00", "0.00", False, id="0min_ceil_0blocks=0.00"),
    pytest.param(
        RACKSPACE,
        timedelta(minutes=30),
        "200.00",
        "10.00",
        False,
        id="30min_exact_boundary_ceil_1block_x5pct_of_200=10.00",
    ),
    pytest.param(
        RACKSPACE_FLOOR,
        timedelta(minutes=30),
        "200.00",
        "10.00",
        False,
        id="30min_exact_boundary_floor_1block_x5pct_of_200=10.00",
    ),
    pytest.param(
        RACKSPACE_FLOOR,
        timedelta(minutes=29),
        "200.00",
        "0.00",
        False,
        id="29min_floor_0blocks=0.00",
    ),
    pytest.param(
        RACKSPACE,
        timedelta(minutes=29),
        "200.00",
        "10.00",
        False,
        id="29min_ceil_1started_block_x5pct_of_200=10.00",
    ),
    pytest.param(
        RACKSPACE,
        timedelta(seconds=30),
        "200.00",
        "10.00",
        False,
        id="30s_ceil_1started_block_x5pct_of_200=10.00",
    ),
    pytest.param(
        RACKSPACE_FLOOR,
        timedelta(minutes=31),
        "200.00",
        "10.00",
        False,
        id="31min_floor_1block_x5pct_of_200=10.00",
    ),
    pytest.param(
        RACKSPACE,
        timedelta(minutes=31),
        "200.00",
        "20.00",
        False,
        id="31min_ceil_2blocks_x5pct_of_200=20.00",
    ),
    pytest.param(
        RACKSPACE_FLOOR,
        timedelta(minutes=95),
        "200.00",
        "30.00",
        False,
        id="95min_floor_3blocks_x5pct_of_200=30.00",
    ),
    pytest.param(
        RACKSPACE,
        timedelta(minutes=95),
        "200.00",
        "40.00",
        False,
        id="95min_ceil_4blocks_x5pct_of_200=40.00",
    ),
    pytest.param(
        RACKSPACE,
        timedelta(minutes=600),
        "200.00",
        "200.00",
        False,
        id="600min_ceil_20blocks_x5pct=100pct_cap_reached_exactly=200.00",
    ),
    pytest.param(
        RACKSPACE,
        timedelta(minutes=601),
        "200.00",
        "200.00",
        True,
        id="601min_ceil_21blocks_x5pct=105pct>cap100pct_capped=200.00",
    ),
    pytest.param(
        RACKSPACE_HW,
        timedelta(minutes=60),
        "200.00",
        "0.00",
        False,
        id="hw_60min_within_1h_free=0blocks=0.00",
    ),
    pytest.param(
        RACKSPACE_HW,
        timedelta(minutes=61),
        "200.00",
        "10.00",
        False,
        id="hw_61min-1h_free=1min_ceil_1block_x5pct_of_200=10.00",
    ),
    pytest.param(
        RACKSPACE_HW,
        timedelta(minutes=180),
        "200.00",
        "20.00",
        False,
        id="hw_180min-1h_free=2h_exact_2blocks_x5pct_of_200=20.00",
    ),
    pytest.param(
        {**RACKSPACE_HW, "rounding": "floor"},
        timedelta(minutes=239),
        "200.00",
        "20.00",
        False,
        id="hw_239min-1h_free=179min_floor_2blocks_x5pct_of_200=20.00",
    ),
    pytest.param(
        {**RACKSPACE, "max_percent": 50},
        timedelta(minutes=900),
        "200.00",
        "100.00",
        False,
        id="900min_ceil_30blocks_x5pct=150pct_rule_max50pct_of_200=100.00",
    ),
    pytest.param(
        {**RACKSPACE, "percent_per_block": "2.5"},
        timedelta(minutes=95),
        "49.99",
        "5.00",
        False,
        id="95min_ceil_4blocks_x2.5pct=10pct_of_49.99=4.999=5.00",
    ),
]


@pytest.mark.parametrize(("rule", "downtime", "fee", "expected", "capped"), STEP_CASES)
def test_downtime_step(
    rule: dict[str, Any], downtime: timedelta, fee: str, expected: str, capped: bool
) -> None:
    start = at("2026-04-10T09:00:00Z")
    incident = Span(7, start, start + downtime, "sev2")
    got = credit(policy(rule), incident, cust=customer(fee))
    assert str(got.amount) == expected
    assert got.capped is capped
    assert all(line.rule == "downtime_step" for line in got.lines)
    assert len(got.lines) == (0 if expected == "0.00" else 1)


def test_downtime_step_line_is_exact_and_explained() -> None:
    got = credit(policy(RACKSPACE), span(1, "2026-04-10T09:00:00Z", 95))
    (line,) = got.lines
    assert line.amount == Decimal("40")
    assert "95 min downtime" in line.detail and "4 started 30 min block(s)" in line.detail
    assert line.reason == "20% of your monthly fee for 4 started 30-minute blocks of downtime"


# --- uptime_table: thresholds, month lengths, whole minutes ------------------------------------

APR = "2026-04-10T00:00:00Z"  # April: 43,200 min; 0.01% = 4.32 min = 259.2 s; 1% = 432 min

UPTIME_CASES = [
    # (rule, start, downtime, expected)
    pytest.param(AZURE_VM, APR, timedelta(0), "0.00", id="apr_0min_uptime100=0.00"),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(seconds=259.2),
        "0.00",
        id="apr_259.2s=4.32min_uptime=99.99_exactly_not_under=0.00",
    ),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(seconds=259.2, microseconds=1),
        "20.00",
        id="apr_259.2s+1us_uptime<99.99_10pct_of_200=20.00",
    ),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(seconds=199.2),
        "0.00",
        id="apr_3.32min=1min_under_threshold_uptime99.9923=0.00",
    ),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(seconds=319.2),
        "20.00",
        id="apr_5.32min=1min_over_threshold_uptime99.9876_10pct_of_200=20.00",
    ),
    pytest.param(
        AZURE_VM, APR, timedelta(minutes=431), "20.00", id="apr_431min_uptime99.0023_10pct=20.00"
    ),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(minutes=432),
        "20.00",
        id="apr_432min_uptime=99.0_exactly_not_under99_10pct=20.00",
    ),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(minutes=433),
        "50.00",
        id="apr_433min_uptime98.9977<99_25pct_of_200=50.00",
    ),
    pytest.param(
        AWS_EC2,
        APR,
        timedelta(minutes=433),
        "60.00",
        id="aws_apr_433min_uptime98.9977<99_30pct_of_200=60.00",
    ),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(minutes=2160),
        "50.00",
        id="apr_2160min_uptime=95.0_exactly_25pct=50.00",
    ),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(minutes=2161),
        "200.00",
        id="apr_2161min_uptime94.9977<95_100pct_of_200=200.00",
    ),
    pytest.param(
        AZURE_VM,
        "2026-02-10T00:00:00Z",
        timedelta(minutes=420),
        "50.00",
        id="feb2026_420min/40320_uptime98.958<99_25pct=50.00",
    ),
    pytest.param(
        AZURE_VM,
        "2026-03-10T00:00:00Z",
        timedelta(minutes=420),
        "20.00",
        id="mar2026_31days_420min/44640_uptime99.059_10pct=20.00",
    ),
    pytest.param(
        AZURE_VM,
        "2028-02-10T00:00:00Z",
        timedelta(minutes=420),
        "50.00",
        id="feb2028_leap_420min/41760_uptime98.994<99_25pct=50.00",
    ),
    pytest.param(
        AZURE_VM,
        "2026-02-10T00:00:00Z",
        timedelta(minutes=403, seconds=12),
        "20.00",
        id="feb2026_403.2min=1pct_of_40320_uptime=99.0_exactly_10pct=20.00",
    ),
    pytest.param(
        AZURE_VM,
        "2026-02-10T00:00:00Z",
        timedelta(minutes=404, seconds=12),
        "50.00",
        id="feb2026_404.2min=1min_over_uptime<99_25pct=50.00",
    ),
    pytest.param(
        AZURE_VM,
        APR,
        timedelta(minutes=4, seconds=30),
        "20.00",
        id="apr_4m30s_exact_4.5min>4.32_10pct=20.00",
    ),
    pytest.param(
        {**AZURE_VM, "minutes": "whole"},
        APR,
        timedelta(minutes=4, seconds=30),
        "0.00",
        id="apr_4m30s_whole_floored_4min<4.32_0pct=0.00",
    ),
    pytest.param(
        {**AZURE_VM, "minutes": "whole"},
        APR,
        timedelta(minutes=5),
        "20.00",
        id="apr_5min_whole_5>4.32_10pct=20.00",
    ),
]


@pytest.mark.parametrize(("rule", "start", "downtime", "expected"), UPTIME_CASES)
def test_uptime_table_single_incident(
    rule: dict[str, Any], start: str, downtime: timedelta, expected: str
) -> None:
    incident = Span(1, at(start), at(start) + downtime, "sev2")
    got = credit(policy(rule), incident, history=[incident])
    assert str(got.amount) == expected
    assert all(line.rule == "uptime_table" for line in got.lines)


# history: A, B, C ... ; the incident credited is named by id
A_300 = span(1, "2026-04-10T00:00:00Z", 300)
B_300_OVERLAPS_A = span(2, "2026-04-10T01:40:00Z", 300)  # union with A: 00:00–06:40 = 400 min
EARLY_200 = span(3, "2026-04-03T00:00:00Z", 200)
LATE_300 = span(4, "2026-04-20T00:00:00Z", 300)
MARCH_500 = span(5, "2026-03-20T00:00:00Z", 500)
SHORT_A = span(6, "2026-04-10T00:00:00Z", seconds=210)  # 3m30s
SHORT_B = span(7, "2026-04-20T00:00:00Z", seconds=110)  # 1m50s
CROSS_4H = span(8, "2026-01-31T22:00:00Z", end="2026-02-01T02:00:00Z")
CROSS_8H30 = span(9, "2026-01-31T16:00:00Z", end="2026-02-01T00:30:00Z")
TO_MIDNIGHT = span(10, "2026-01-31T23:00:00Z", end="2026-02-01T00:00:00Z")
FEB_AFTER_CROSS = span(11, "2026-02-01T01:00:00Z", end="2026-02-01T03:00:00Z")

HISTORY_CASES = [
    # (rule, history, incident, expected, number of lines)
    pytest.param(
        AZURE_VM,
        [A_300, B_300_OVERLAPS_A],
        B_300_OVERLAPS_A,
        "0.00",
        0,
        id="overlap_A300+B300_union400<432_10pct-earlier10pct=0pct=0.00",
    ),
    pytest.param(
        AZURE_VM,
        [A_300, B_300_OVERLAPS_A],
        A_300,
        "20.00",
        1,
        id="overlap_A_first_300min_10pct_later_B_not_counted=20.00",
    ),
    pytest.param(
        AZURE_VM,
        [EARLY_200, LATE_300],
        LATE_300,
        "30.00",
        1,
        id="earlier200+this300=500>432_25pct-earlier10pct=15pct_of_200=30.00",
    ),
    pytest.param(
        AZURE_VM,
        [EARLY_200, LATE_300],
        EARLY_200,
        "20.00",
        1,
        id="earlier_incident_alone_200min_10pct_later_ignored=20.00",
    ),
    pytest.param(
        AZURE_VM,
        [MARCH_500, LATE_300],
        LATE_300,
        "20.00",
        1,
        id="march_500min_other_month_ignored_apr300min_10pct=20.00",
    ),
    pytest.param(
        AZURE_VM,
        [SHORT_A, SHORT_B],
        SHORT_B,
        "20.00",
        1,
        id="exact_3.5min+1.83min=5.33>4.32_10pct-0=20.00",
    ),
    pytest.param(
        {**AZURE_VM, "minutes": "whole"},
        [SHORT_A, SHORT_B],
        SHORT_B,
        "0.00",
        0,
        id="whole_3min+1min=4<4.32_0pct=0.00",
    ),
    pytest.param(
        AZURE_VM,
        [CROSS_4H],
        CROSS_4H,
        "40.00",
        2,
        id="cross_jan31_2200-feb01_0200_jan120min_10pct+feb120min_10pct=20pct_of_200=40.00",
    ),
    pytest.param(
        AZURE_VM,
        [CROSS_8H30],
        CROSS_8H30,
        "70.00",
        2,
        id="cross_split_jan480>446.4_25pct+feb30min_10pct=35pct_of_200=70.00",
    ),
    pytest.param(
        AZURE_VM,
        [TO_MIDNIGHT],
        TO_MIDNIGHT,
        "20.00",
        1,
        id="ends_exactly_at_month_end_jan60min_10pct_feb_untouched=20.00",
    ),
    pytest.param(
        AZURE_VM,
        [CROSS_4H, FEB_AFTER_CROSS],
        FEB_AFTER_CROSS,
        "0.00",
        0,
        id="feb_incident_overlapping_cross_union180min_10pct-10pct=0.00",
    ),
]


@pytest.mark.parametrize(("rule", "history", "incident", "expected", "n_lines"), HISTORY_CASES)
def test_uptime_table_with_history(
    rule: dict[str, Any], history: list[Span], incident: Span, expected: str, n_lines: int
) -> None:
    got = credit(policy(rule), incident, history=history)
    assert str(got.amount) == expected
    assert len(got.lines) == n_lines


def test_uptime_credits_of_a_month_add_up_to_the_month_credit() -> None:
    incidents = [EARLY_200, LATE_300, span(12, "2026-04-25T00:00:00Z", 2000)]  # 2500 > 2160
    pol = policy(AZURE_VM)
    amounts = [credit(pol, i, history=incidents).amount for i in incidents]
    assert amounts == [Decimal("20.00"), Decimal("30.00"), Decimal("150.00")]  # 10+15+75=100%
    assert sum(amounts) == Decimal("200.00")


def test_uptime_reason_and_detail_show_exact_comparison() -> None:
    got = credit(policy(AZURE_VM), LATE_300, history=[EARLY_200, LATE_300])
    (line,) = got.lines
    assert line.amount == Decimal("30")
    assert "2026-04: 500 min downtime of 43200 min" in line.detail
    assert "uptime 98.842% < 99%" in line.detail
    assert line.reason == (
        "15% of your monthly fee because your uptime in April 2026 was 98.842%, under 99%"
        " (25% in all, less 10% already credited)"
    )


def test_history_copy_of_the_incident_is_replaced_by_the_incident() -> None:
    stale = span(1, APR, 600)  # an older record of the same incident, before it was edited
    fresh = span(1, APR, 300)
    got = credit(policy(AZURE_VM), fresh, history=[stale, stale])
    assert got.amount == Decimal("20.00")  # 300 min → 10%, not 600 min → 25%


# --- response_sla --------------------------------------------------------------------------------

START = at("2026-04-10T10:00:00Z")

ACK_CASES = [
    pytest.param(LATE_ACK, START + timedelta(minutes=3), "0.00", id="ack_after_3min<10min=0.00"),
    pytest.param(
        LATE_ACK, START + timedelta(minutes=10), "0.00", id="ack_at_due_10min_exactly_on_time=0.00"
    ),
    pytest.param(
        LATE_ACK,
        START + timedelta(minutes=10, seconds=1),
        "10.00",
        id="ack_1s_late_5pct_of_200=10.00",
    ),
    pytest.param(LATE_ACK, None, "10.00", id="ack_never_delivered_5pct_of_200=10.00"),
    pytest.param(
        {"kind": "response_sla", "amount": "25"},
        START + timedelta(minutes=42),
        "25.00",
        id="ack_32min_late_fixed_amount_25=25.00",
    ),
]


@pytest.mark.parametrize(("rule", "ack", "expected"), ACK_CASES)
def test_response_sla(rule: dict[str, Any], ack: datetime | None, expected: str) -> None:
    incident = Span(1, START, START + timedelta(minutes=90), "sev2")
    got = credit(policy(rule), incident, ack=ack)
    assert str(got.amount) == expected


def test_response_sla_reason() -> None:
    incident = Span(1, START, START + timedelta(minutes=90), "sev2")
    got = credit(policy(LATE_ACK), incident, ack=None)
    assert got.lines[0].reason == (
        "5% of your monthly fee because our first notice did not reach you within 10 minutes"
    )
    assert "never delivered" in got.lines[0].detail


# --- downtime_multiple ---------------------------------------------------------------------------

MULTIPLE_CASES = [
    # (rule, incident, fee, expected)
    pytest.param(
        SLACK,
        span(1, APR, 45),
        "1000.00",
        "104.17",
        id="slack_100x_1000_x_45min/43200min(apr)=104.1666=104.17",
    ),
    pytest.param(
        {**SLACK, "multiple": 10},
        span(1, "2026-02-10T00:00:00Z", 60),
        "1000.00",
        "14.88",
        id="10x_1000_x_60min/40320min(feb)=14.8809=14.88",
    ),
    pytest.param(
        {**SLACK, "multiple": 10},
        span(1, "2026-03-10T00:00:00Z", 60),
        "1000.00",
        "13.44",
        id="10x_1000_x_60min/44640min(mar)=13.4408=13.44",
    ),
    pytest.param(
        {**SLACK, "multiple": 10, "period": "quarter"},
        span(1, "2026-02-10T00:00:00Z", 60),
        "1000.00",
        "13.89",
        id="quarter_10x_1000x3months_x_60min/129600min(q1)=13.8888=13.89",
    ),
    pytest.param(
        {**SLACK, "multiple": 10, "period": "quarter"},
        span(1, "2026-05-10T00:00:00Z", 60),
        "1000.00",
        "13.74",
        id="quarter_10x_1000x3months_x_60min/131040min(q2)=13.7362=13.74",
    ),
    pytest.param(
        {**SLACK, "multiple": 10},
        span(1, "2026-01-31T23:30:00Z", end="2026-02-01T00:30:00Z"),
        "1000.00",
        "14.16",
        id="cross_month_10x_1000x(30/44640+30/40320)=6.7204+7.4404=14.1609=14.16",
    ),
    pytest.param(
        {**SLACK, "multiple": 10, "period": "quarter"},
        span(1, "2026-03-31T23:30:00Z", end="2026-04-01T00:30:00Z"),
        "1000.00",
        "13.81",
        id="cross_quarter_10x_3000x(30/129600+30/131040)=6.9444+6.8681=13.8125=13.81",
    ),
    pytest.param(SLACK, span(1, APR, 0), "1000.00", "0.00", id="slack_0min=0.00"),
    pytest.param(
        SLACK,
        span(1, APR, 600),
        "1000.00",
        "1000.00",
        id="slack_100x_1000x600/43200=1388.89>cap100pct_capped=1000.00",
    ),
]


@pytest.mark.parametrize(("rule", "incident", "fee", "expected"), MULTIPLE_CASES)
def test_downtime_multiple(rule: dict[str, Any], incident: Span, fee: str, expected: str) -> None:
    got = credit(policy(rule), incident, cust=customer(fee))
    assert str(got.amount) == expected


def test_downtime_multiple_line_keeps_the_exact_value() -> None:
    got = credit(policy(SLACK), span(1, APR, 45), cust=customer("1000.00"))
    (line,) = got.lines
    assert line.amount.quantize(Decimal("1E-20")) == Decimal("104.16666666666666666667")
    assert line.detail == "100 × 1000.00 USD × 1 × 45 min / 43200 min (2026-04)"
    assert line.reason == "100 times your fee for the 45 minutes of downtime"


# --- repeat ----------------------------------------------------------------------------------------

T = "2026-04-10T10:00:00Z"
NOW_INC = span(100, T, 60)

REPEAT_CASES = [
    # (rule, history, expected)
    pytest.param(
        REPEAT_3_IN_30D,
        [span(1, "2026-03-11T10:00:00Z", 10), span(2, "2026-03-31T10:00:00Z", 10)],
        "20.00",
        id="3rd_incident_first_exactly_30d_before_counts_10pct_of_200=20.00",
    ),
    pytest.param(
        REPEAT_3_IN_30D,
        [span(1, "2026-03-11T09:59:59Z", 10), span(2, "2026-03-31T10:00:00Z", 10)],
        "0.00",
        id="first_30d+1s_before_outside_window_only_2<3=0.00",
    ),
    pytest.param(
        REPEAT_3_IN_30D,
        [span(2, "2026-03-31T10:00:00Z", 10), span(3, "2026-04-11T10:00:00Z", 10)],
        "0.00",
        id="later_incident_not_counted_2<3=0.00",
    ),
    pytest.param(
        REPEAT_3_IN_30D,
        [span(2, "2026-03-31T10:00:00Z", 10), NOW_INC, NOW_INC],
        "0.00",
        id="this_incident_repeated_in_history_counted_once_2<3=0.00",
    ),
    pytest.param(
        {"kind": "repeat", "window": "90d", "min_incidents": 4, "amount": 50},
        [
            span(1, "2026-01-15T00:00:00Z", 10),
            span(2, "2026-02-15T00:00:00Z", 10),
            span(3, "2026-03-15T00:00:00Z", 10),
        ],
        "50.00",
        id="4th_within_90d_fixed_amount_50=50.00",
    ),
    pytest.param(
        {"kind": "repeat", "window": "1h", "min_incidents": 1, "percent": 1},
        [],
        "2.00",
        id="min_incidents_1_this_one_counts_1pct_of_200=2.00",
    ),
]


@pytest.mark.parametrize(("rule", "history", "expected"), REPEAT_CASES)
def test_repeat(rule: dict[str, Any], history: list[Span], expected: str) -> None:
    got = credit(policy(rule), NOW_INC, history=history)
    assert str(got.amount) == expected


def test_repeat_reason() -> None:
    history = [span(1, "2026-03-20T10:00:00Z", 10), span(2, "2026-04-01T10:00:00Z", 10)]
    got = credit(policy(REPEAT_3_IN_30D), NOW_INC, history=history)
    assert got.lines[0].reason == (
        "10% of your monthly fee because this is the 3rd incident to affect you within 30 days"
    )


# --- multipliers -------------------------------------------------------------------------------------

MULT = {"severity": {"sev1": 1.5, "sev4": 0.1}, "tier": {"enterprise": 2}}

MULTIPLIER_CASES = [
    # (rules, severity, tier, expected, line amounts)
    pytest.param(
        [RACKSPACE],
        "sev1",
        "enterprise",
        "60.00",
        ["60"],
        id="31min_2blocks_10pct_of_200=20_x1.5_sev1_x2_enterprise=60.00",
    ),
    pytest.param(
        [RACKSPACE],
        "sev4",
        "standard",
        "2.00",
        ["2"],
        id="31min_2blocks_10pct_of_200=20_x0.1_sev4_exact=2.00",
    ),
    pytest.param(
        [RACKSPACE],
        "sev2",
        "business",
        "20.00",
        ["20"],
        id="unlisted_severity_and_tier_x1=20.00",
    ),
    pytest.param(
        [LATE_ACK, RACKSPACE],
        "sev1",
        "standard",
        "45.00",
        ["15", "30"],
        id="each_line_(5pct=10)+(10pct=20)_x1.5=15+30=45.00",
    ),
    pytest.param(
        [{**RACKSPACE, "percent_per_block": 30}],
        "sev1",
        "enterprise",
        "200.00",
        ["360"],
        id="2blocks_x30pct=60pct_of_200=120_x1.5x2=360>cap_200=200.00",
    ),
]


@pytest.mark.parametrize(("rules", "severity", "tier", "expected", "lines"), MULTIPLIER_CASES)
def test_multipliers(
    rules: list[dict[str, Any]], severity: str, tier: str, expected: str, lines: list[str]
) -> None:
    incident = Span(1, START, START + timedelta(minutes=31), severity)
    got = credit(policy(*rules, multipliers=MULT), incident, cust=customer(tier=tier), ack=None)
    assert str(got.amount) == expected
    assert [line.amount for line in got.lines] == [Decimal(x) for x in lines]


# --- the monthly cap and earlier credits ---------------------------------------------------------------

CAP_CASES = [
    # (fee, cap_percent, downtime minutes, credited this month, expected, capped)
    pytest.param("200.00", None, 95, "0", "40.00", False, id="credited0_new40_room200=40.00"),
    pytest.param("200.00", None, 95, "150.00", "40.00", False, id="credited150_room50_new40=40.00"),
    pytest.param(
        "200.00", None, 95, "160.00", "40.00", False, id="credited160_room40_new40_exactly=40.00"
    ),
    pytest.param(
        "200.00", None, 95, "170.00", "30.00", True, id="credited170_room30_new40_capped=30.00"
    ),
    pytest.param(
        "200.00", None, 95, "200.00", "0.00", True, id="credited200_cap_reached_capped=0.00"
    ),
    pytest.param("200.00", None, 95, "250.00", "0.00", True, id="credited250_over_cap_room0=0.00"),
    pytest.param(
        "200.00",
        50,
        1200,
        "0",
        "100.00",
        True,
        id="cap50pct_of_200=100_new40blocks=200_capped=100.00",
    ),
    pytest.param(
        "33.33",
        50,
        1200,
        "0",
        "16.67",
        True,
        id="cap50pct_of_33.33=16.665_half_up=16.67_capped=16.67",
    ),
    pytest.param(
        "33.33",
        50,
        1200,
        "16.00",
        "0.67",
        True,
        id="cap16.67-credited16.00=room0.67_capped=0.67",
    ),
    pytest.param("200.00", 0, 95, "0", "0.00", True, id="cap0pct_nothing_credited=0.00"),
]


@pytest.mark.parametrize(
    ("fee", "cap_percent", "minutes", "credited", "expected", "capped"), CAP_CASES
)
def test_monthly_cap(
    fee: str, cap_percent: int | None, minutes: int, credited: str, expected: str, capped: bool
) -> None:
    top = {} if cap_percent is None else {"cap_percent": cap_percent}
    got = credit(
        policy(RACKSPACE, **top), span(1, APR, minutes), cust=customer(fee), credited=credited
    )
    assert str(got.amount) == expected
    assert got.capped is capped


# --- minimum ---------------------------------------------------------------------------------------------

MINIMUM_CASES = [
    # (fee, currency, minimum, downtime minutes, expected, below_minimum)
    pytest.param(
        "99.80", "USD", "5", 30, "0.00", True, id="5pct_of_99.80=4.99<minimum5_not_issued=0.00"
    ),
    pytest.param(
        "100.00", "USD", "5", 30, "5.00", False, id="5pct_of_100=5.00=minimum5_issued=5.00"
    ),
    pytest.param(
        "99.90",
        "USD",
        "5",
        30,
        "5.00",
        False,
        id="5pct_of_99.90=4.995_half_up_5.00>=minimum_issued=5.00",
    ),
    pytest.param("200.00", "USD", "5", 0, "0.00", False, id="no_downtime_nothing_earned=0.00"),
    pytest.param(
        "1990", "JPY", "100", 30, "100", False, id="jpy_5pct_of_1990=99.5_half_up_100=minimum=100"
    ),
    pytest.param("1970", "JPY", "100", 30, "0", True, id="jpy_5pct_of_1970=98.5_half_up_99<100=0"),
]


@pytest.mark.parametrize(
    ("fee", "currency", "minimum", "minutes", "expected", "below"), MINIMUM_CASES
)
def test_minimum(
    fee: str, currency: str, minimum: str, minutes: int, expected: str, below: bool
) -> None:
    got = credit(
        policy(RACKSPACE, minimum=minimum),
        span(1, APR, minutes),
        cust=customer(fee, currency),
    )
    assert str(got.amount) == expected
    assert got.below_minimum is below


# --- rounding: once, half-up, to the currency's minor unit -------------------------------------------------

ROUNDING_CASES = [
    # (rules, fee, currency, downtime minutes, ack, expected)
    pytest.param(
        [RACKSPACE], "2.50", "USD", 30, "on-time", "0.13", id="usd_5pct_of_2.50=0.125_half_up=0.13"
    ),
    pytest.param(
        [LATE_ACK, RACKSPACE],
        "2.50",
        "USD",
        30,
        None,
        "0.25",
        id="usd_0.125+0.125=0.25_rounded_once_not_0.13+0.13=0.26",
    ),
    pytest.param(
        [RACKSPACE], "4970", "JPY", 30, "on-time", "249", id="jpy_5pct_of_4970=248.5_half_up=249"
    ),
    pytest.param(
        [RACKSPACE],
        "9999",
        "JPY",
        95,
        "on-time",
        "2000",
        id="jpy_4blocks_20pct_of_9999=1999.8=2000",
    ),
    pytest.param(
        [{**RACKSPACE, "percent_per_block": "0.1"}],
        "12345",
        "JPY",
        30,
        "on-time",
        "12",
        id="jpy_0.1pct_of_12345=12.345=12",
    ),
    pytest.param(
        [RACKSPACE],
        "12.345",
        "BHD",
        30,
        "on-time",
        "0.617",
        id="bhd_3places_5pct_of_12.345=0.61725=0.617",
    ),
    pytest.param(
        [RACKSPACE], "9.99", "EUR", 30, "on-time", "0.50", id="eur_5pct_of_9.99=0.4995=0.50"
    ),
]


@pytest.mark.parametrize(("rules", "fee", "currency", "minutes", "ack", "expected"), ROUNDING_CASES)
def test_rounding(
    rules: list[dict[str, Any]],
    fee: str,
    currency: str,
    minutes: int,
    ack: str | None,
    expected: str,
) -> None:
    got = credit(policy(*rules), span(1, APR, minutes), cust=customer(fee, currency), ack=ack)
    assert str(got.amount) == expected  # the exponent too: JPY has no decimals, BHD three
    assert got.currency == currency


def test_no_policy_means_no_credit() -> None:
    for data in (None, {}, {"rules": []}):
        pol = parse_credit_policy(data, source=SOURCE)
        assert pol == CreditPolicy()
        got = credit(pol, span(1, APR, 600), ack=None)
        assert got == Credit("cust-1", "USD", Decimal("0.00"), (), False, False)


def test_negative_earlier_credits_are_a_caller_error() -> None:
    with pytest.raises(ValueError, match="credited_this_month"):
        credit(policy(RACKSPACE), span(1, APR, 95), credited="-1")


# --- Span --------------------------------------------------------------------------------------------------


def test_span_requires_aware_ordered_times_and_normalises_to_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Span(1, datetime(2026, 4, 10, 10, 0), datetime(2026, 4, 10, 11, 0), "sev2")
    with pytest.raises(ValueError, match="before"):
        Span(1, at("2026-04-10T11:00:00Z"), at("2026-04-10T10:00:00Z"), "sev2")
    cet = timezone(timedelta(hours=1))
    s = Span(
        1, datetime(2026, 5, 1, 0, 30, tzinfo=cet), datetime(2026, 5, 1, 0, 50, tzinfo=cet), ""
    )
    assert s.started_at == at("2026-04-30T23:30:00Z") and s.started_at.tzinfo is UTC
    # 23:30–23:50 UTC on 30 April: the month is April (UTC), not May (local)
    got = credit(policy({**SLACK, "multiple": 1}), s, cust=customer("432.00"))
    assert got.lines[0].detail == "1 × 432.00 USD × 1 × 20 min / 43200 min (2026-04)"
    assert got.amount == Decimal("0.20")  # 432 × 20 / 43200
    assert got.lines[0].reason == "the fee for the 20 minutes of downtime"


# --- wording --------------------------------------------------------------------------------------------


def test_credit_reason_sentences() -> None:
    inc = span(1, APR, 31)
    assert credit_reason(credit(policy(RACKSPACE), inc)) == (
        "10% of your monthly fee for 2 started 30-minute blocks of downtime"
    )
    assert credit_reason(credit(policy(RACKSPACE_FLOOR), span(1, APR, 95))) == (
        "15% of your monthly fee for 3 complete 30-minute blocks of downtime"
    )
    assert credit_reason(credit(policy(RACKSPACE_HW), span(1, APR, 130))) == (
        "10% of your monthly fee for 2 started 1-hour blocks of downtime beyond the first 1 hour"
    )
    assert credit_reason(credit(policy(RACKSPACE), span(1, APR, 0))) == (
        "no service credit applies to this incident"
    )
    sev1 = Span(1, inc.started_at, inc.resolved_at, "sev1")
    both = credit(policy(LATE_ACK, RACKSPACE, multipliers=MULT), sev1, ack=None)
    assert credit_reason(both) == (
        "5% of your monthly fee because our first notice did not reach you within 10 minutes,"
        " plus 10% of your monthly fee for 2 started 30-minute blocks of downtime;"
        " all times 1.5 for a sev1 incident"
    )
    capped = credit(policy(RACKSPACE), inc, credited="190")
    assert credit_reason(capped).endswith("; limited to the most we credit in one month")
    full = credit(policy(RACKSPACE), inc, credited="200")
    assert credit_reason(full).endswith("already reached the monthly limit")
    below = credit(policy(RACKSPACE, minimum=50), inc)
    assert credit_reason(below) == (
        "the credit this incident earned is below the smallest credit we issue"
    )


def test_fixed_amount_reason_uses_the_customers_locale() -> None:
    incident = Span(1, START, START + timedelta(minutes=90), "sev2")
    cust = customer("200.00", "EUR", locale="de_DE")
    got = credit(policy({"kind": "response_sla", "amount": "25"}), incident, cust=cust, ack=None)
    assert got.lines[0].reason.startswith("25,00\xa0€ because")


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        pytest.param("1234.5", "USD", "en_US", "$1,234.50", id="usd_en_US"),
        pytest.param("1234.5", "EUR", "de_DE", "1.234,50\xa0€", id="eur_de_DE"),
        pytest.param("1234.5", "JPY", "ja_JP", "￥1,235", id="jpy_ja_JP_half_up_no_decimals"),
        pytest.param("1234.5", "JPY", "en_US", "¥1,235", id="jpy_en_US"),
        pytest.param("0.125", "USD", "en_US", "$0.13", id="usd_half_up_not_half_even"),
        pytest.param("5", "USD", "xx_XX", "$5.00", id="unknown_locale_falls_back_to_en_US"),
        pytest.param("5", "GBP", "en-GB", "£5.00", id="hyphenated_locale"),
    ],
)
def test_format_money(amount: str, currency: str, locale: str, expected: str) -> None:
    assert format_money(Decimal(amount), currency, locale) == expected


# --- parsing the [credits] table ----------------------------------------------------------------------------

EXAMPLE = """\
[credits]
# Service credits per affected customer, proposed at resolution (`outagecomms credits INC`).
# Percentages are of the customer's monthly_fee; amounts are in the customer's own currency.
# Lines are exact; the total is rounded once, half-up, to the currency's minor unit (JPY: none).
# Without [credits] or without rules nobody is credited. Durations need a unit: "30m", "1h", "30d".
cap_percent = 100                            # a customer's credits in one calendar month (UTC)
                                             # never exceed this % of the monthly fee
minimum = 1                                  # a credit below this amount is not issued (0)

[credits.multipliers]                        # multiply every rule's line; unlisted = 1
severity = { sev1 = 1.5, sev2 = 1.0 }        # sev1 .. sev4
tier = { enterprise = 1.0, standard = 1.0 }  # customer tiers

# Late acknowledgement: earned when the first notice reached the customer after
# started_at + ack_within (of the incident's policy), or never.
[[credits.rules]]
kind = "response_sla"
percent = 5                                  # of the monthly fee; or amount = 25 (not both)

# Hosting style: 5% of the monthly fee per 30 minutes of downtime in this incident.
[[credits.rules]]
kind = "downtime_step"
percent_per_block = 5
block = "30m"
after = "0m"                                 # free downtime before blocks count (default 0)
rounding = "ceil"                            # required: ceil = a started block counts
                                             # ("or part thereof"); floor = complete blocks only
# max_percent = 50                           # optional limit of this rule, before multipliers

# Cloud style: monthly uptime = 1 - downtime / minutes of that calendar month (UTC), where the
# downtime is the union of the customer's incidents in the month (overlaps once, split at the
# month's end). Earns the percent of the lowest `below` the uptime is strictly under, less what
# the customer's earlier incidents that month earned. A lower `below` must not give less.
# Usually instead of downtime_step, not with it.
# [[credits.rules]]
# kind = "uptime_table"
# tiers = [{ below = 99.99, percent = 10 }, { below = 99.0, percent = 25 }, { below = 95.0, percent = 100 }]
# minutes = "exact"                          # exact | whole: each incident's downtime in the
                                             # month floored to whole minutes (default exact)

# SaaS style: `multiple` x the fee paid for the downtime =
# monthly_fee x months_in(period) x downtime / minutes of the period.
# [[credits.rules]]
# kind = "downtime_multiple"
# multiple = 10
# period = "month"                           # month | quarter (calendar, UTC; default month)

# Hit again: an extra remedy when at least min_incidents of the customer's incidents (this one
# included) started within `window` before this one started.
[[credits.rules]]
kind = "repeat"
window = "30d"
min_incidents = 3
percent = 10                                 # of the monthly fee; or amount = 50 (not both)
"""

_COMMENTED = re.compile(
    r"^# (?=\[\[credits\.rules\]\]|kind =|tiers =|minutes =|multiple =|period =|max_percent =)",
    re.MULTILINE,
)


def test_example_block_parses() -> None:
    pol = parse_credit_policy(tomllib.loads(EXAMPLE)["credits"], source="config.example.toml")
    assert pol.cap_percent == Decimal(100) and pol.minimum == Decimal(1)
    assert dict(pol.severity_multipliers) == {"sev1": Decimal("1.5"), "sev2": Decimal("1.0")}
    assert dict(pol.tier_multipliers) == {"enterprise": Decimal("1.0"), "standard": Decimal("1.0")}
    assert pol.rules == (
        ResponseSlaRule(percent=Decimal(5)),
        DowntimeStepRule(
            percent_per_block=Decimal(5), block=timedelta(minutes=30), rounding="ceil"
        ),
        RepeatRule(window=timedelta(days=30), min_incidents=3, percent=Decimal(10)),
    )


def test_example_block_with_every_rule_uncommented_parses() -> None:
    text = _COMMENTED.sub("", EXAMPLE)
    pol = parse_credit_policy(tomllib.loads(text)["credits"], source="config.example.toml")
    assert [r.kind for r in pol.rules] == [
        "response_sla",
        "downtime_step",
        "uptime_table",
        "downtime_multiple",
        "repeat",
    ]
    step, uptime, multiple = pol.rules[1], pol.rules[2], pol.rules[3]
    assert isinstance(step, DowntimeStepRule) and step.max_percent == Decimal(50)
    assert uptime == UptimeTableRule(
        tiers=(
            UptimeTier(below=Decimal("95.0"), percent=Decimal(100)),
            UptimeTier(below=Decimal("99.0"), percent=Decimal(25)),
            UptimeTier(below=Decimal("99.99"), percent=Decimal(10)),
        ),
        minutes="exact",
    )
    assert multiple == DowntimeMultipleRule(multiple=Decimal(10), period="month")


@pytest.mark.parametrize(
    "value", [0.1, "0.1", " 0.1 "], ids=["toml_float", "string", "string_spaces"]
)
def test_numbers_are_exact_decimals(value: object) -> None:
    pol = policy({**RACKSPACE, "percent_per_block": value})
    rule = pol.rules[0]
    assert isinstance(rule, DowntimeStepRule)
    assert rule.percent_per_block == Decimal("0.1")


@pytest.mark.parametrize("value", ["0", "0s", "0m", "0.0h"])
def test_after_may_be_zero(value: str) -> None:
    rule = policy({**RACKSPACE, "after": value}).rules[0]
    assert isinstance(rule, DowntimeStepRule) and rule.after == timedelta(0)


UT = {"kind": "uptime_table", "tiers": [{"below": 99.9, "percent": 10}]}
RA = {"kind": "response_sla", "percent": 5}
RP = {"kind": "repeat", "window": "30d", "min_incidents": 3, "percent": 10}
DM = {"kind": "downtime_multiple", "multiple": 10}


def _rules(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"rules": list(rules)}


BAD = [
    # (credits table, key named in the error, part of the message)
    ({"bogus": 1}, "credits.bogus", "unknown key"),
    ({"rules": {"kind": "response_sla"}}, "credits.rules", "array of tables"),
    ({"rules": ["response_sla"]}, "credits.rules[0]", "must be a table"),
    (_rules({}), "credits.rules[0].kind", "is required"),
    (_rules({"kind": "uptime"}), "credits.rules[0].kind", "unknown rule kind"),
    (_rules({"kind": ["uptime_table"]}), "credits.rules[0].kind", "unknown rule kind"),
    (_rules(RA, {**RACKSPACE, "blocks": "30m"}), "credits.rules[1].blocks", "unknown key"),
    (
        _rules(RA, RA, {**RACKSPACE, "block": "30 minutes"}),
        "credits.rules[2].block",
        "not a duration",
    ),
    (_rules({**RACKSPACE, "block": 30}), "credits.rules[0].block", "with a unit"),
    (_rules({**RACKSPACE, "block": "0m"}), "credits.rules[0].block", "not a duration"),
    (
        _rules({k: v for k, v in RACKSPACE.items() if k != "block"}),
        "credits.rules[0].block",
        "is required",
    ),
    (
        _rules({k: v for k, v in RACKSPACE.items() if k != "rounding"}),
        "credits.rules[0].rounding",
        "is required",
    ),
    (_rules({**RACKSPACE, "rounding": "round"}), "credits.rules[0].rounding", "floor, ceil"),
    (_rules({**RACKSPACE, "after": "-5m"}), "credits.rules[0].after", "not a duration"),
    (
        _rules({**RACKSPACE, "percent_per_block": -5}),
        "credits.rules[0].percent_per_block",
        "0 or more",
    ),
    (
        _rules({**RACKSPACE, "percent_per_block": "five"}),
        "credits.rules[0].percent_per_block",
        "must be a number",
    ),
    (
        _rules({**RACKSPACE, "percent_per_block": True}),
        "credits.rules[0].percent_per_block",
        "must be a number",
    ),
    (
        _rules({**RACKSPACE, "percent_per_block": "NaN"}),
        "credits.rules[0].percent_per_block",
        "finite",
    ),
    (
        _rules({**RACKSPACE, "percent_per_block": float("inf")}),
        "credits.rules[0].percent_per_block",
        "finite",
    ),
    (
        _rules({**RACKSPACE, "percent_per_block": "5%"}),
        "credits.rules[0].percent_per_block",
        "must be a number",
    ),
    (_rules({**RACKSPACE, "max_percent": -1}), "credits.rules[0].max_percent", "0 or more"),
    (_rules({**RA, "amount": 10}), "credits.rules[0].amount", "not both"),
    (_rules({"kind": "response_sla"}), "credits.rules[0].percent", "is required"),
    (_rules({"kind": "response_sla", "amount": []}), "credits.rules[0].amount", "number"),
    (_rules(RA, {"kind": "uptime_table"}), "credits.rules[1].tiers", "is required"),
    (_rules({**UT, "tiers": []}), "credits.rules[0].tiers", "non-empty"),
    (_rules({**UT, "tiers": {"below": 99.9}}), "credits.rules[0].tiers", "non-empty array"),
    (
        _rules({**UT, "tiers": [{"below": 101, "percent": 10}]}),
        "credits.rules[0].tiers[0].below",
        "at most 100",
    ),
    (
        _rules({**UT, "tiers": [{"below": 0, "percent": 10}]}),
        "credits.rules[0].tiers[0].below",
        "greater than 0",
    ),
    (
        _rules({**UT, "tiers": [{"below": 99.9, "percent": 10}, {"below": 99, "pct": 25}]}),
        "credits.rules[0].tiers[1].pct",
        "unknown key",
    ),
    (
        _rules({**UT, "tiers": [{"below": 99.9}]}),
        "credits.rules[0].tiers[0].percent",
        "is required",
    ),
    (
        _rules({**UT, "tiers": [{"below": 99.9, "percent": 10}, {"below": "99.90", "percent": 5}]}),
        "credits.rules[0].tiers[1].below",
        "twice",
    ),
    (
        _rules({**UT, "tiers": [{"below": 99.9, "percent": 25}, {"below": 99, "percent": 10}]}),
        "credits.rules[0].tiers",
        "must not earn less",
    ),
    (_rules({**UT, "tiers": ["99.9"]}), "credits.rules[0].tiers[0]", "must be a table"),
    (_rules({**UT, "minutes": "rounded"}), "credits.rules[0].minutes", "exact, whole"),
    (_rules({"kind": "downtime_multiple"}), "credits.rules[0].multiple", "is required"),
    (_rules({**DM, "period": "year"}), "credits.rules[0].period", "month, quarter"),
    (_rules({**DM, "percent": 5}), "credits.rules[0].percent", "unknown key"),
    (
        _rules({k: v for k, v in RP.items() if k != "window"}),
        "credits.rules[0].window",
        "is required",
    ),
    (_rules({**RP, "window": "a month"}), "credits.rules[0].window", "not a duration"),
    (_rules({**RP, "min_incidents": 0}), "credits.rules[0].min_incidents", ">= 1"),
    (_rules({**RP, "min_incidents": 2.5}), "credits.rules[0].min_incidents", "whole number"),
    (_rules({**RP, "min_incidents": "3"}), "credits.rules[0].min_incidents", "whole number"),
    (
        _rules({k: v for k, v in RP.items() if k != "min_incidents"}),
        "credits.rules[0].min_incidents",
        "is required",
    ),
    (
        _rules({k: v for k, v in RP.items() if k != "percent"}),
        "credits.rules[0].percent",
        "is required",
    ),
    (
        {"multipliers": {"severity": {"sev9": 2}}},
        "credits.multipliers.severity.sev9",
        "unknown severity",
    ),
    ({"multipliers": {"severity": 1.5}}, "credits.multipliers.severity", "must be a table"),
    ({"multipliers": {"tier": {"gold": -1}}}, "credits.multipliers.tier.gold", "0 or more"),
    ({"multipliers": {"region": {}}}, "credits.multipliers.region", "unknown key"),
    ({"multipliers": []}, "credits.multipliers", "must be a table"),
    ({"cap_percent": -1}, "credits.cap_percent", "0 or more"),
    ({"minimum": "ten"}, "credits.minimum", "must be a number"),
]


@pytest.mark.parametrize(("data", "key", "message"), BAD, ids=[f"{k}:{m}" for _, k, m in BAD])
def test_bad_credit_config_names_the_key(data: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_credit_policy(data, source=SOURCE)
    err = info.value
    assert err.key == key
    assert err.path == SOURCE
    assert message in str(err)
    assert str(err).startswith(f"{SOURCE}: {key}: ")
    assert err.exit_code == 2


def test_rule_errors_also_say_which_table_in_words() -> None:
    data = _rules(RA, RA, {**RACKSPACE, "block": "30 minutes"})
    with pytest.raises(ConfigError, match=r"in the 3rd \[\[credits\.rules\]\] table"):
        parse_credit_policy(data, source=SOURCE)


def test_credits_must_be_a_table() -> None:
    with pytest.raises(ConfigError) as info:
        parse_credit_policy([1, 2], source=SOURCE)  # type: ignore[arg-type]
    assert info.value.key == "credits"


def test_toml_errors_name_the_rule_index() -> None:
    text = f"""\
[credits]
[[credits.rules]]
kind = "response_sla"
percent = 5
{step_rule()}{step_rule(block="half an hour")}"""
    with pytest.raises(ConfigError) as info:
        parse_credit_policy(tomllib.loads(text)["credits"], source=SOURCE)
    assert info.value.key == "credits.rules[2].block"
