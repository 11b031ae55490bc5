"""Which replies a person must see now (``[[escalation]]``), and who: rules tried in order, the
first whose conditions all hold wins. Conditions: the reply's label, its score, words or
phrases (whole words, any case; in any language), the customer's tier, how many incidents hurt
them lately (repeat hurt), the size of their credit."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from outagecomms.config.model import EscalationRule
from outagecomms.models import Customer


@dataclass(frozen=True)
class Facts:
    """What the rules look at."""

    text: str
    label: str | None
    score: float | None
    customer: Customer
    incidents_in: dict[int, int]  # window in days -> incidents declared in it (this one too)
    credit: Decimal | None  # their credit for this incident, in their currency


@dataclass(frozen=True)
class Decision:
    rule: str
    why: str
    notify: tuple[str, ...]


@lru_cache(maxsize=256)
def _words_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Whole words where the script has word boundaries; anywhere for CJK (no spaces)."""
    parts = []
    for w in sorted(words, key=len, reverse=True):
        esc = re.escape(w.lower()).replace(r"\ ", r"\s+")
        parts.append(esc if _cjk(w) else rf"(?<!\w){esc}(?!\w)")
    return re.compile("|".join(parts) or r"(?!x)x", re.IGNORECASE)


def _cjk(word: str) -> bool:
    return any("\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in word)


def matched_words(text: str, words: Sequence[str]) -> list[str]:
    found: list[str] = []
    for m in _words_pattern(tuple(words)).finditer(text):
        w = " ".join(m[0].lower().split())
        if w not in found:
            found.append(w)
    return found


def window_days(rule: EscalationRule) -> int:
    return max(1, round(rule.incidents_within.total_seconds() / 86400))


def decide(rules: Sequence[EscalationRule], facts: Facts) -> Decision | None:
    for rule in rules:
        why: list[str] = []
        if rule.labels:
            if facts.label not in rule.labels:
                continue
            why.append(f"label {facts.label}")
        if rule.score_below is not None:
            if facts.score is None or facts.score >= rule.score_below:
                continue
            why.append(f"score {facts.score:+.2f} < {rule.score_below:+.2f}")
        if rule.scored is not None:
            if (facts.score is not None) != rule.scored:
                continue
            why.append("scored" if rule.scored else "not scored: a person reads it")
        if rule.words:
            hits = matched_words(facts.text, rule.words)
            if not hits:
                continue
            why.append("words " + ", ".join(repr(h) for h in hits[:5]))
        if rule.tiers:
            if facts.customer.tier not in rule.tiers:
                continue
            why.append(f"tier {facts.customer.tier}")
        if rule.incidents_at_least:
            n = facts.incidents_in.get(window_days(rule), 0)
            if n < rule.incidents_at_least:
                continue
            why.append(f"{n} incidents in {window_days(rule)}d")
        if rule.credit_at_least is not None:
            if facts.credit is None or facts.credit < rule.credit_at_least:
                continue
            why.append(f"credit {facts.credit} {facts.customer.currency}")
        return Decision(rule=rule.name, why="; ".join(why) or "every reply", notify=rule.notify)
    return None


def windows(rules: Sequence[EscalationRule]) -> set[int]:
    """The repeat-hurt windows (days) the rules ask about."""
    return {window_days(r) for r in rules if r.incidents_at_least}


def quarter_start(now: datetime) -> datetime:
    """The first moment of ``now``'s calendar quarter (UTC): "incidents this quarter"."""
    month = 3 * ((now.month - 1) // 3) + 1
    return now.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
