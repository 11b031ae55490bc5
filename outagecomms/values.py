"""The values people write, parsed by one set of rules wherever they are written.

Durations (``90s``, ``10m``, ``1h30m``) and times (ISO 8601 or ``-15m`` relative to now) for
flags, and the typed fields of the config file (``FieldReader``): the ``[policy]`` and
``[dispatch]`` tables, ``[credits]`` and ``[[goodwill]]`` all read their durations, numbers and
choices through it, so one TOML file has one rule for each kind of value.

A duration always has a unit, in a flag and in the file alike: a bare ``30`` is refused, not read
as seconds, because it is as likely meant as minutes (``update_every``) or days (a credit
``window``), and a wrong guess breaks a promise to customers or miscounts money. Numbers in the
file are read exactly (``Decimal(str(value))``: a TOML ``0.1`` stays 0.1).

Every number has bounds, checked here and nowhere else (``docs/config.md`` lists them): a
duration is at most :data:`MAX_DURATION`, a time lies between :data:`MIN_TIME` and
:data:`MAX_TIME`, a config integer is at most its key's maximum (:data:`MAX_INTEGER` unless the
key says less), an exact number at most :data:`MAX_DECIMAL`, an id at most :data:`MAX_ID`. A value
outside them is an ``InputError`` / ``ConfigError`` naming the flag or key, never an overflow deep
in date arithmetic or the database driver.

Secrets are never printed: :func:`mask_url` hides the password of every URL in a text, and
:func:`env_name_problem` tells a variable's name from a pasted secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, TypeVar, overload

from outagecomms.errors import ConfigError, InputError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}

#: the longest duration anywhere (a cadence, a window, a relative time): 10 years
MAX_DURATION = timedelta(days=3650)
#: times (``--started-at``, ``--at``) lie in this range, UTC
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)
#: the largest whole number a config key takes unless the key says less
MAX_INTEGER = 1_000_000_000
#: the largest exact number (money, percentages) a config key takes
MAX_DECIMAL = Decimal(1_000_000_000_000)
#: the largest id (an incident's, a draft's): the store's 64-bit integer
MAX_ID = 2**63 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def _duration_seconds(s: str) -> float | None:
    """The seconds a normalised duration text says, or None when it is not one."""
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(s) and pos else None


def _duration_bound_problem(total: float) -> str | None:
    if total <= 0:
        return "a duration must be greater than zero"
    if not total <= MAX_DURATION.total_seconds():  # also inf and nan
        return f"a duration must be at most {format_duration(MAX_DURATION)} (10 years)"
    return None


def parse_duration(text: str, *, field: str = "duration") -> timedelta:
    """Parse ``90s``, ``10m``, ``1h30m``, ``2d``, ``500ms`` into a timedelta (> 0, at most
    :data:`MAX_DURATION`)."""
    s = str(text).strip().lower().replace(" ", "")
    if not s:
        raise InputError("a duration is required, e.g. 30m or 1h30m", field=field, value=text)
    total = _duration_seconds(s)
    if total is None:
        raise InputError(
            "not a duration; use a number with a unit: 90s, 10m, 1h30m, 2d",
            field=field,
            value=_quoted(text),
        )
    problem = _duration_bound_problem(total)
    if problem:
        raise InputError(problem, field=field, value=_quoted(text))
    return timedelta(seconds=total)


def _quoted(value: object, limit: int = 80) -> object:
    """A value to quote in an error: strings cut to ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    return value


def format_duration(delta: timedelta) -> str:
    secs = delta.total_seconds()
    if secs != int(secs):
        return f"{secs:g}s"
    secs_i = int(secs)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs_i >= size:
            out += f"{secs_i // size}{unit}"
            secs_i %= size
    return out or "0s"


def parse_time(text: str, *, now: datetime, field: str = "time") -> datetime:
    """Parse an ISO 8601 time (naive means UTC) or ``-15m`` (relative to ``now``); the time
    must lie between :data:`MIN_TIME` and :data:`MAX_TIME`."""
    s = str(text).strip()
    if s.startswith(("-", "+")) and s[1:2].isdigit() and not s[1:].replace(":", "").isdigit():
        try:
            delta = parse_duration(s[1:], field=field)
        except InputError as exc:  # quote what was written, sign and all
            raise InputError(exc.text, field=field, value=_quoted(text)) from None
        return _in_range(now - delta if s[0] == "-" else now + delta, text, field)
    if s.lower() == "now":
        return now
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    except ValueError:
        raise InputError(
            "not a time; use ISO 8601 (2026-11-25T14:00:00Z) or relative (-15m)",
            field=field,
            value=_quoted(text),
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        utc = dt.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        raise _out_of_range(text, field) from None
    return _in_range(utc, text, field)


def _out_of_range(text: str, field: str) -> InputError:
    return InputError(
        f"is out of range; a time must lie between {MIN_TIME:%Y-%m-%d} and {MAX_TIME:%Y-%m-%d} (UTC)",
        field=field,
        value=_quoted(text),
    )


def _in_range(dt: datetime, text: str, field: str) -> datetime:
    if not MIN_TIME <= dt <= MAX_TIME:
        raise _out_of_range(text, field)
    return dt


@overload
def as_utc(dt: datetime) -> datetime: ...
@overload
def as_utc(dt: None) -> None: ...
@overload
def as_utc(dt: datetime | None) -> datetime | None: ...
def as_utc(dt: datetime | None) -> datetime | None:
    """Make a datetime read back from the store UTC-aware (SQLite drops the offset)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    """A UTC time as the ``--json`` documents write it: ISO 8601 with ``Z``."""
    return dt.isoformat().replace("+00:00", "Z") if dt else None


# --- config file fields ---------------------------------------------------------------------

_T = TypeVar("_T")
_ZERO_DURATION = re.compile(r"0+(\.0+)?(ms|s|m|h|d)?")


class FieldReader:
    """Typed reads from one TOML document; every error is a ``ConfigError`` naming the file and
    the dotted key (``policy.sev1.update_every``). ``prefix`` is the dotted path of ``data``."""

    def __init__(self, source: Path | str | None):
        self.source = source

    def err(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.source or "<defaults>", key=key)

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.err(key, f"must be a table, got {value!r}")
        return dict(value)

    def known(self, data: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for k in data:
            if k not in allowed:
                raise self.err(
                    f"{prefix}.{k}" if prefix else k,
                    "unknown key; known keys here: " + ", ".join(sorted(allowed)),
                )

    def integer(
        self,
        data: Mapping[str, Any],
        prefix: str,
        key: str,
        default: int | None = None,
        minimum: int = 0,
        maximum: int = MAX_INTEGER,
    ) -> int:
        """A whole number from ``minimum`` to ``maximum``; ``default`` None: required."""
        if key not in data:
            return self._default(prefix, key, default, f": a whole number >= {minimum}")
        v = data[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.err(
                f"{prefix}.{key}",
                f"must be an integer (a whole number) >= {minimum}, got {_quoted(repr(v))}",
            )
        if v > maximum:
            raise self.err(f"{prefix}.{key}", f"must be at most {maximum}, got {_quoted(repr(v))}")
        return v

    def number(
        self,
        data: Mapping[str, Any],
        prefix: str,
        key: str,
        default: float,
        *,
        maximum: float | None = None,
    ) -> float:
        """A rate or a size, >= 0 (and at most ``maximum``): a float is exact enough."""
        value = float(self.decimal(data, prefix, key, Decimal(str(default))))
        if maximum is not None and value > maximum:
            raise self.err(f"{prefix}.{key}", f"must be at most {maximum:g}, got {data[key]!r}")
        return value

    def decimal(
        self,
        data: Mapping[str, Any],
        prefix: str,
        key: str,
        default: Decimal | None = None,
        *,
        positive: bool = False,
    ) -> Decimal:
        """An exact number >= 0 (> 0 with ``positive``) for money and percentages; ``default``
        None: required. ``str()`` first, so a TOML float 0.1 stays exactly 0.1."""
        if key not in data:
            return self._default(prefix, key, default, "")
        full = f"{prefix}.{key}"
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.err(full, f"must be a number, got {value!r}")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.err(full, f"must be a number, got {value!r}") from None
        if not number.is_finite():
            raise self.err(full, f"must be a finite number, got {_quoted(repr(value))}")
        if abs(number) > MAX_DECIMAL:
            raise self.err(full, f"must be at most {MAX_DECIMAL}, got {_quoted(repr(value))}")
        if positive and number <= 0:
            raise self.err(full, f"must be greater than 0, got {value!r}")
        if number < 0:
            raise self.err(full, f"must be 0 or more, got {value!r}")
        return number

    def duration(
        self,
        data: Mapping[str, Any],
        prefix: str,
        key: str,
        default: timedelta | None = None,
        *,
        allow_zero: bool = False,
    ) -> timedelta:
        """A duration with a unit (see the module docstring); ``default`` None: required."""
        if key not in data:
            return self._default(prefix, key, default, ': a duration such as "30m" or "1h"')
        full = f"{prefix}.{key}"
        value = data[key]
        if not isinstance(value, str):
            raise self.err(
                full,
                f'must be a duration with a unit, such as "90s", "30m" or "1h", got '
                f"{_quoted(repr(value))}"
                + (f' (for {value} seconds write "{value}s")' if _is_count(value) else ""),
            )
        text = value.strip().lower()
        if allow_zero and _ZERO_DURATION.fullmatch(text):
            return timedelta(0)
        total = _duration_seconds(text.replace(" ", ""))
        if total is None or total <= 0:
            raise self.err(
                full,
                f"not a duration: {_quoted(repr(value))}; use a number with a unit: "
                '"90s", "30m", "1h30m"',
            )
        problem = _duration_bound_problem(total)
        if problem:
            raise self.err(full, f"{problem}, got {_quoted(repr(value))}")
        return timedelta(seconds=total)

    def choice(
        self,
        data: Mapping[str, Any],
        prefix: str,
        key: str,
        options: tuple[str, ...],
        default: str | None = None,
    ) -> str:
        """One of ``options``; ``default`` None: required."""
        if key not in data:
            return self._default(prefix, key, default, ": one of " + ", ".join(options))
        value = data[key]
        if value not in options:
            raise self.err(f"{prefix}.{key}", f"must be one of {', '.join(options)}, got {value!r}")
        return str(value)

    def _default(self, prefix: str, key: str, default: _T | None, needed: str) -> _T:
        """What an absent key means: ``default``, or an error when there is none (required)."""
        if default is None:
            raise self.err(f"{prefix}.{key}", "is required" + needed)
        return default


def _is_count(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 < value <= MAX_DURATION.total_seconds()
    )


# --- secrets: never printed ---------------------------------------------------------------

_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):[^\s'\"]*@")
_QUERY_SECRET = re.compile(
    r"([?&](?:password|passwd|pass|pwd|secret|token|api_key|apikey|auth_token)=)[^&\s'\"]*",
    re.IGNORECASE,
)
MASK = "***"


def mask_url(text: str) -> str:
    """``text`` (a URL, or a message quoting URLs) with every URL's password shown as ``***``:
    ``postgresql://app:s3cret@db/x`` -> ``postgresql://app:***@db/x``, and ``password=`` (or
    ``token=``...) query parameters alike. What we print or log about a store or an endpoint
    goes through here."""
    return _QUERY_SECRET.sub(rf"\1{MASK}", _URL_PASSWORD.sub(rf"\1:{MASK}@", text))


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_name_problem(name: str) -> str | None:
    """Why ``name`` (what a ``*_env`` key holds) is not a usable environment-variable name, or
    None: a name has letters, digits and ``_`` and does not start with a digit; one that looks
    like a credential (long, no ``_``, letters mixed with digits: a pasted token or SID) is
    most likely the secret itself. The sentence never quotes the name."""
    if not _ENV_NAME.fullmatch(name):
        return (
            "is not a valid environment variable name (letters, digits and _, not starting "
            "with a digit); it may be a secret pasted in place of the variable's name "
            "(the value is not shown)"
        )
    digits = any(c.isdigit() for c in name)
    mixed_case = any(c.islower() for c in name) and any(c.isupper() for c in name)
    if len(name) > 128 or (len(name) >= 16 and digits and ("_" not in name or mixed_case)):
        return (
            "looks like a secret, not the name of an environment variable: put the secret in "
            "the environment and name the variable here (the value is not shown)"
        )
    return None


def shown_env(name: str) -> str:
    """An environment variable's name as an error may show it: ``$NAME``, or a placeholder
    when the "name" looks like a pasted secret (:func:`env_name_problem`)."""
    return (
        f"${name}" if env_name_problem(name) is None else "(name not shown: it looks like a secret)"
    )


# --- JSON documents ---------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A value as the ``--json`` documents write it: times in ISO 8601 with ``Z``, durations in
    seconds, exact amounts as strings, enums by value, read models by their ``to_json()``."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    to_json = getattr(value, "to_json", None)
    if to_json is not None:
        return to_json()
    if isinstance(value, Mapping):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    raise TypeError(f"no JSON form for {type(value).__name__}")


def json_key(name: str | None) -> Any:
    """A dataclass field whose JSON key is ``name`` (``None``: left out of the document)."""
    return field(metadata={"json": name})


class JsonModel:
    """A frozen dataclass whose ``to_json()`` is its fields, in order, each through
    :func:`json_value`; then the properties named in ``json_extra``. A field's key is its name
    unless :func:`json_key` says otherwise. The keys are a contract (``--json``): rename a
    field freely, never its key."""

    json_extra: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            key = f.metadata.get("json", f.name)
            if key is not None:
                out[key] = json_value(getattr(self, f.name))
        for name in self.json_extra:
            out[name] = json_value(getattr(self, name))
        return out
