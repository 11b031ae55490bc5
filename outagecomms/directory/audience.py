"""Selecting the affected customers, and which channels each of them gets."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from outagecomms.config.model import Config, PolicyConfig
from outagecomms.errors import InputError
from outagecomms.models import COPY_SUFFIX, ROUND_WIDE, Customer, Selector


def _closest_first(value: str, known: Iterable[str]) -> list[str]:
    known = sorted(set(known))
    close = difflib.get_close_matches(value, known, n=len(known), cutoff=0.0)
    return close or known


def _check_known(kind: str, field: str, values: Sequence[str], known: set[str]) -> None:
    for v in values:
        if v not in known:
            listing = ", ".join(_closest_first(v, known)[:20]) or "none (import customers first)"
            raise InputError(
                f"unknown {kind} {v!r}; known {kind}s, closest first: {listing}",
                field=field,
                value=None,
            )


def validate_selector(selector: Selector, customers: Sequence[Customer]) -> None:
    """Every value named must exist in the directory: a typo must not select nobody."""
    comps: set[str] = set()
    regions: set[str] = set()
    tiers: set[str] = set()
    tags: set[str] = set()
    ids: set[str] = set()
    for c in customers:
        comps.update(c.components)
        regions.update(c.regions)
        tiers.add(c.tier)
        tags.update(c.tags)
        ids.add(c.id)
    _check_known("component", "components", selector.components, comps)
    _check_known("region", "regions", selector.regions, regions)
    _check_known("tier", "tiers", selector.tiers, tiers)
    _check_known("tag", "tags", selector.tags, tags)
    _check_known("customer", "customers", selector.customers, ids)
    _check_known("customer", "exclude", selector.exclude, ids)


def matches(selector: Selector, c: Customer) -> bool:
    """Kinds AND together, values of one kind OR; an empty kind does not filter."""
    if selector.components and not set(selector.components).intersection(c.components):
        return False
    if selector.regions and not set(selector.regions).intersection(c.regions):
        return False
    if selector.tiers and c.tier not in selector.tiers:
        return False
    return not (selector.tags and not set(selector.tags).intersection(c.tags))


def select(selector: Selector, customers: Sequence[Customer]) -> list[Customer]:
    """The customers a selector names: filters, plus explicit ids, minus exclusions.

    With no filter at all only the explicit ``--customer`` ids are selected (never "everyone"
    by accident)."""
    explicit = set(selector.customers)
    excluded = set(selector.exclude)
    out = []
    for c in customers:
        if c.id in excluded:
            continue
        if c.id in explicit or (selector.has_filters and matches(selector, c)):
            out.append(c)
    return out


@dataclass(frozen=True)
class Audience:
    customers: list[Customer]
    pairs: list[tuple[str, str]]  # (customer id, channel name)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def size(self) -> int:
        return len(self.customers)

    def channel_counts(self) -> dict[str, int]:
        return dict(Counter(ch for _, ch in self.pairs))

    def channels_by_customer(self) -> dict[str, list[str]]:
        """Customer id -> the channels they are told on, in plan order."""
        by_customer: dict[str, list[str]] = {}
        for cid, ch in self.pairs:
            by_customer.setdefault(cid, []).append(ch)
        return by_customer


def split_channel(name: str) -> tuple[str, bool]:
    """``email+am`` -> (``email``, True): the configured channel and whether it is a copy for
    the account manager rather than the customer."""
    if name.endswith(COPY_SUFFIX):
        return name[: -len(COPY_SUFFIX)], True
    return name, False


def channels_for(c: Customer, policy: PolicyConfig) -> tuple[str, ...]:
    return c.channels or policy.channels_for_tier(c.tier)


def plan(customers: Sequence[Customer], config: Config, policy: PolicyConfig) -> Audience:
    """Pick each customer's channels: their own list, else the policy's for their tier.
    A channel without a contact for that customer is skipped and counted, not an error.

    A channel kind with no per-customer contact (a status page) gets one delivery per round,
    under the customer id ``*``, when any chosen customer's list names it. Customers of the
    policy's ``account_manager_tiers`` add a copy to their account manager."""
    from outagecomms.channels import registry

    pairs: list[tuple[str, str]] = []
    skipped: Counter[str] = Counter()
    round_wide: list[str] = []
    contact_field = {
        name: registry.get(ch.kind).contact_field for name, ch in config.channels.items()
    }
    am_tiers = set(policy.account_manager_tiers)
    am_channel = policy.account_manager_channel
    for c in customers:
        chosen = channels_for(c, policy)
        got = False
        for name in chosen:
            if name not in config.channels:
                skipped[f"{name}: channel not configured"] += 1
                continue
            fld = contact_field[name]
            if fld is None:
                if name not in round_wide:
                    round_wide.append(name)
                continue
            if not c.contact(fld):
                skipped[f"{name}: no {fld}"] += 1
                continue
            pairs.append((c.id, name))
            got = True
        if not got:
            skipped["no reachable channel"] += 1
        if c.tier in am_tiers:
            if not c.account_manager:
                skipped[f"{am_channel}{COPY_SUFFIX}: no account_manager"] += 1
            elif contact_field.get(am_channel) != "email":
                skipped[f"{am_channel}{COPY_SUFFIX}: channel does not send email"] += 1
            else:
                pairs.append((c.id, am_channel + COPY_SUFFIX))
    if pairs:
        pairs.extend((ROUND_WIDE, name) for name in round_wide)
    return Audience(list(customers), pairs, dict(skipped))
