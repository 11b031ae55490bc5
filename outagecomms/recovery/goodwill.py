"""Goodwill: "something extra" beyond the contract, from ``[[goodwill]]`` rules in the config.

Each rule has an ``offer`` (the text customers read) and optional conditions, all of which
must hold: ``tiers`` (list), ``severities`` (list), ``min_duration`` (the incident's downtime
at least this long) and ``min_incidents`` within ``window`` (this customer's incidents that
started within the window before this one, this one included). Rules are tried in order; the
first that matches gives the customer's offer, so put the most generous, most specific first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from outagecomms.values import FieldReader

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
    fields = FieldReader(source)
    if not isinstance(data, list):
        raise fields.err("goodwill", "must be an array of tables ([[goodwill]])")
    rules = []
    for i, raw in enumerate(data):
        prefix = f"goodwill[{i}]"
        table = fields.table(raw, prefix)
        fields.known(table, prefix, _KEYS)
        offer = table.get("offer")
        if not isinstance(offer, str) or not offer.strip() or "\n" in offer.strip():
            raise fields.err(f"{prefix}.offer", "is required: one line customers will read")
        lists = {}
        for k in ("tiers", "severities"):
            v = table.get(k, [])
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise fields.err(f"{prefix}.{k}", "must be a list of names")
            lists[k] = tuple(v)
        durations = {
            k: fields.duration(table, prefix, k) if k in table else None
            for k in ("min_duration", "window")
        }
        n = fields.integer(table, prefix, "min_incidents", 0)
        if n and durations["window"] is None:
            raise fields.err(f"{prefix}.window", "min_incidents needs a window")
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
