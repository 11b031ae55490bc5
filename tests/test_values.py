"""One config file, one rule per kind of value: every table that takes a duration, a number or a
whole number reads it through ``values.FieldReader``, so the same TOML value is accepted (as the
same thing) or refused (naming the key) in ``[policy]``, ``[dispatch]``, ``[credits]``,
``[[goodwill]]`` and ``[[hooks.rules]]`` alike."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from outagecomms.config.loader import load_config
from outagecomms.config.model import Config
from outagecomms.errors import ConfigError, InputError
from outagecomms.values import MAX_TIME, MIN_TIME, parse_duration, parse_time

# Where a value can stand: the dotted key, and a TOML document that puts VALUE there (a
# cadence's floor, min_update_every, lowered so that it does not refuse the short ones).
FLOOR = '[policy.default]\nmin_update_every = "1ms"\n'
RULE = '[[credits.rules]]\nkind = "downtime_step"\npercent_per_block = 5\nrounding = "ceil"\n'
DURATION_PLACES = {
    "policy.default.update_every": FLOOR + "update_every = VALUE",
    "dispatch.lease": "[dispatch]\nlease = VALUE",
    "hooks.rules[0].every": FLOOR + "[[hooks.rules]]\nevery = VALUE",
    "credits.rules[0].block": RULE + "block = VALUE",
    "goodwill[0].min_duration": '[[goodwill]]\noffer = "a call"\nmin_duration = VALUE',
}

# (TOML value, the duration it means, or None and a fragment of the error)
DURATIONS: list[tuple[str, timedelta | None, str]] = [
    ('"90s"', timedelta(seconds=90), ""),
    ('"1h30m"', timedelta(minutes=90), ""),
    ('" 2D "', timedelta(days=2), ""),
    ('"500ms"', timedelta(milliseconds=500), ""),
    # a bare number is refused everywhere: seconds, minutes or days? (the hint says how)
    ("90", None, 'for 90 seconds write "90s"'),
    ("1.5", None, "with a unit"),
    ("true", None, "with a unit"),
    ('"90"', None, "not a duration"),
    ('"soon"', None, "not a duration"),
    ('"-5m"', None, "not a duration"),
    ('"0m"', None, "not a duration"),  # zero only where a key says so (credits' `after`)
    # bounded: at most 10 years (values.MAX_DURATION), never an overflow in date arithmetic
    ('"3650d"', timedelta(days=3650), ""),
    ('"3651d"', None, "at most 3650d"),
    ('"1000000000000s"', None, "at most 3650d"),
    ('"99999999999999999999999999999999999999d"', None, "at most 3650d"),
    ("1000000000000", None, "with a unit"),  # and no hint to write an out-of-range "...s"
]


NUMBER_PLACES = {
    "channels.email.rate_per_second": '[channels.email]\nkind = "smtp"\nrate_per_second = VALUE',
    "credits.rules[0].percent": '[[credits.rules]]\nkind = "response_sla"\npercent = VALUE',
    "credits.cap_percent": "[credits]\ncap_percent = VALUE",
}

NUMBERS: list[tuple[str, Decimal | None, str]] = [
    ("10", Decimal(10), ""),
    ("2.5", Decimal("2.5"), ""),
    ('"2.5"', Decimal("2.5"), ""),
    ("0", Decimal(0), ""),
    ("-1", None, "0 or more"),
    ('"ten"', None, "must be a number"),
    ("true", None, "must be a number"),
    ("nan", None, "finite"),
    ("1e300", None, "at most"),
    ('"1e999999"', None, "at most"),
]


REPEAT = '[[credits.rules]]\nkind = "repeat"\nwindow = "30d"\npercent = 5\n'
COUNT_PLACES = {
    "dispatch.max_attempts": "[dispatch]\nmax_attempts = VALUE",
    "credits.rules[0].min_incidents": REPEAT + "min_incidents = VALUE",
    "goodwill[0].min_incidents": '[[goodwill]]\noffer = "a"\nwindow = "9d"\nmin_incidents = VALUE',
}

COUNTS: list[tuple[str, int | None, str]] = [
    ("3", 3, ""),
    ("2.5", None, "whole number"),
    ('"3"', None, "whole number"),
    ("true", None, "whole number"),
    ("-1", None, "whole number"),
    ("10000000000000000000", None, "at most"),
]


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "outagecomms.toml"
    path.write_text(text)
    return load_config(path)


def _read(cfg: Config, key: str) -> Any:
    """The loaded value at a dotted key (``policy`` is ``Config.policies``)."""
    obj: Any = cfg
    for part in re.findall(r"[^.\[\]]+", key):
        if part.isdigit():
            obj = obj[int(part)]
        elif isinstance(obj, Mapping):
            obj = obj[part]
        else:
            obj = getattr(obj, "policies" if part == "policy" else part)
    return obj


CASES = [
    pytest.param(toml.replace("VALUE", value), key, expected, fragment, id=f"{key}={value}")
    for places, values in (
        (DURATION_PLACES, DURATIONS),
        (NUMBER_PLACES, NUMBERS),
        (COUNT_PLACES, COUNTS),
    )
    for key, toml in places.items()
    for value, expected, fragment in values
]


@pytest.mark.parametrize(("text", "key", "expected", "fragment"), CASES)
def test_a_value_means_the_same_in_every_table(
    tmp_path: Path, text: str, key: str, expected: object, fragment: str
) -> None:
    if expected is not None:
        assert _read(_load(tmp_path, text + "\n"), key) == expected
        return
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text + "\n")
    assert info.value.key == key
    assert fragment in str(info.value)
    assert str(tmp_path / "outagecomms.toml") in str(info.value)


def test_zero_where_a_key_allows_it(tmp_path: Path) -> None:
    """``after`` (the free downtime of a step rule) may be zero, with or without a unit."""
    base = RULE + 'block = "30m"\n'
    for value in ('"0"', '"0m"', '"0.0s"'):
        cfg = _load(tmp_path, base + f"after = {value}\n")
        assert cfg.credits.rules[0].after == timedelta(0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("999999999d", "at most 3650d"),
        ("1e400d", "not a duration"),
        ("9" * 400 + "s", "at most 3650d"),
    ],
)
def test_flag_durations_are_bounded(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment) as info:
        parse_duration(text, field="every")
    assert info.value.field == "every"


NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "-99999999d",
        "+3651d",
    ],
)
def test_flag_times_are_bounded(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_time(text, now=NOW, field="started_at")
    assert info.value.field == "started_at" and info.value.value == text
    assert "out of range" in str(info.value) or "at most 3650d" in str(info.value)


def test_times_inside_the_bounds_parse() -> None:
    assert parse_time("1970-01-01T00:00:00Z", now=NOW, field="t") == MIN_TIME
    assert parse_time("-3650d", now=NOW, field="t") == NOW - timedelta(days=3650)
    assert parse_time("2999-12-31T23:59:59Z", now=NOW, field="t") == MAX_TIME
