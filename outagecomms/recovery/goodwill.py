"""Goodwill: "something extra" beyond the contract, from ``[[goodwill]]`` rules in the config.

Each rule has an ``offer`` (the text customers read) and optional conditions, all of which
must hold: ``tiers`` (list), ``severities`` (list), ``min_duration`` (the incident's downtime
at least this long) and ``min_incidents`` within ``window`` (this customer's incidents that
started within the window before this one, this one included). Rules are tried in order; the
first that matches gives the customer's offer, so put the most generous, most specific first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from outagecomms.errors import ConfigError, InputError
from outagecomms.values import parse_duration

_KEYS = {"offer", "tiers", "severities", "min_duration", "min_incidents", "window"}


@dataclass(frozen=True, kw_only=True)
class GoodwillRule:
    offer: str
    tiers: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    min_duration: timedelta | None = None
    min_incidents: int = 0
    window: timedelta | None = None

    def matches(
        self, *, tier: str, severity: str, downtime: timedelta, incidents_in_window: int
    ) -> bool:
        if self.tiers and tier not in self.tiers:
            return False
        if self.severities and severity not in self.severities:
            return False
        if self.min_duration is not None and downtime < self.min_duration:
            return False
        return not (self.min_incidents and incidents_in_window < self.min_incidents)


def parse_goodwill(data: Any, *, source: str) -> tuple[GoodwillRule, ...]:
    """Validate the ``[[goodwill]]`` array of tables."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError("must be an array of tables ([[goodwill]])", path=source, key="goodwill")
    rules = []
    for i, raw in enumerate(data):
        prefix = f"goodwill[{i}]"
        if not isinstance(raw, Mapping):
            raise ConfigError("must be a table", path=source, key=prefix)
        for k in raw:
            if k not in _KEYS:
                raise ConfigError(
                    "unknown key; known keys here: " + ", ".join(sorted(_KEYS)),
                    path=source,
                    key=f"{prefix}.{k}",
                )
        offer = raw.get("offer")
        if not isinstance(offer, str) or not offer.strip() or "\n" in offer.strip():
            raise ConfigError(
                "is required: one line customers will read", path=source, key=f"{prefix}.offer"
            )
        lists = {}
        for k in ("tiers", "severities"):
            v = raw.get(k, [])
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ConfigError("must be a list of names", path=source, key=f"{prefix}.{k}")
            lists[k] = tuple(v)
        durations: dict[str, timedelta | None] = {}
        for k in ("min_duration", "window"):
            v = raw.get(k)
            try:
                durations[k] = parse_duration(str(v), field=k) if v is not None else None
            except InputError:
                raise ConfigError(
                    f"not a duration: {v!r}", path=source, key=f"{prefix}.{k}"
                ) from None
        n = raw.get("min_incidents", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(
                f"must be an integer >= 0, got {n!r}", path=source, key=f"{prefix}.min_incidents"
            )
        if n and durations["window"] is None:
            raise ConfigError("min_incidents needs a window", path=source, key=f"{prefix}.window")
        rules.append(
            GoodwillRule(
                offer=offer.strip(),
                tiers=lists["tiers"],
                severities=lists["severities"],
                min_duration=durations["min_duration"],
                min_incidents=n,
                window=durations["window"],
            )
        )
    return tuple(rules)


def choose_offer(
    rules: Sequence[GoodwillRule],
    *,
    tier: str,
    severity: str,
    downtime: timedelta,
    count_in_window: Any,
) -> str:
    """The first matching rule's offer ("" when none). ``count_in_window(window)`` counts the
    customer's incidents that started within ``window`` before this one (this one included)."""
    for rule in rules:
        n = count_in_window(rule.window) if rule.window is not None else 1
        if rule.matches(tier=tier, severity=severity, downtime=downtime, incidents_in_window=n):
            return rule.offer
    return ""
