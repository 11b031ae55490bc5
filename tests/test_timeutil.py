"""Durations (``90s``, ``1h30m``) and times (ISO 8601 or relative to an injected now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from outagecomms.errors import InputError
from outagecomms.values import format_duration, parse_duration, parse_time

NOW = datetime(2026, 1, 15, 13, 30, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h", timedelta(hours=1)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 15M ", timedelta(minutes=15)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "10", "abc", "5x", "0s", "0m0s", "-5m", "m", "10m5"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_duration(text, field="--every")
    err = info.value
    assert err.field == "--every"
    assert "--every" in str(err)
    assert err.exit_code == 2


def test_parse_duration_error_names_the_value() -> None:
    with pytest.raises(InputError) as info:
        parse_duration("5x", field="--every")
    assert "'5x'" in str(info.value)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=90), "1h30m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(days=2), "2d"),
        (timedelta(milliseconds=500), "0.5s"),
    ],
)
def test_format_duration_round_trips(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15T12:00:00Z", datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
        ("2026-01-15T12:00:00z", datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),  # RFC 3339 5.6
        ("2026-01-15T12:00:00.250Z", datetime(2026, 1, 15, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2026-01-15T12:00:00+00:00", datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
        # naive means UTC
        ("2026-01-15T12:00:00", datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
        ("2026-01-15 12:00", datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
        # an explicit zone is converted to UTC
        ("2026-01-15T13:00:00+01:00", datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
        ("2026-01-15T07:00:00-05:00", datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
        ("2026-01-15T21:00:00+09:00", datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
    ],
)
def test_parse_time_iso(text: str, expected: datetime) -> None:
    got = parse_time(text, now=NOW)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-15m", NOW - timedelta(minutes=15)),
        ("-1h30m", NOW - timedelta(hours=1, minutes=30)),
        ("-90s", NOW - timedelta(seconds=90)),
        ("+10m", NOW + timedelta(minutes=10)),
        ("now", NOW),
    ],
)
def test_parse_time_relative_to_injected_now(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


def test_parse_time_relative_uses_the_given_now_not_the_clock() -> None:
    other = datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time("-5m", now=other) == other - timedelta(minutes=5)


@pytest.mark.parametrize("text", ["", "yesterday", "-5x", "-0m", "2026-13-40T00:00:00", "12:99"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_time(text, now=NOW, field="--started-at")
    assert info.value.field == "--started-at"
    assert "--started-at" in str(info.value)
