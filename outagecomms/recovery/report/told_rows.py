"""The "What customers told us" tables both renderers show (each escapes the cells its own
way): sentiment per round, escalated replies, suggestions, bounced contacts."""

from __future__ import annotations

from datetime import datetime

from outagecomms.recovery.report.told import UNSCORED, CustomersTold
from outagecomms.recovery.report.units import DASH, human, offset

TITLE = "What customers told us"
NONE = "There were no replies: no customer wrote back, and nothing bounced."
MOOD_HEAD = ("Round", "Replies", "Mean score", "Negative", "Neutral", "Positive", "Unscored")
ESCALATED_HEAD = (
    "Customer", "Received", "Label", "Rule", "Escalation accepted after", "Answered after",
    "Their words",
)  # fmt: skip
SUGGESTION_HEAD = ("Customer", "Received", "Label", "Suggestion")
BOUNCE_HEAD = ("Customer", "Contact", "Status", "Diagnostic", "Sent instead on")
SUGGESTION_NOTE = (
    "A suggestion is a reply with words such as suggest, should, could you, please add or it "
    "would help (in English, German, French or Japanese), or a neutral or positive reply that "
    "asks a question."
)


def seconds(value: float | None, missing: str = "not yet") -> str:
    """``0.8s`` under a minute (the escalation target is 5 s), else ``4m12s``."""
    if value is None:
        return missing
    return f"{value:.1f}s" if value < 60 else human(value)


def summary(told: CustomersTold) -> str:
    return (
        f"{told.messages} messages: {told.replies} replies from people "
        f"({told.scored} scored), {told.auto_replies} automatic replies, "
        f"{told.bounces} bounces; {len(told.escalated)} escalated."
    )


def mood_rows(told: CustomersTold) -> list[list[object]]:
    return [
        [
            "no round" if m.round is None else f"#{m.round} {m.kind}",
            m.replies,
            DASH if m.mean_score is None else f"{m.mean_score:+.2f}",
            m.labels.get("negative", 0),
            m.labels.get("neutral", 0),
            m.labels.get("positive", 0),
            m.labels.get(UNSCORED, 0),
        ]
        for m in told.per_round
    ]


def escalated_rows(told: CustomersTold, start: datetime) -> list[list[object]]:
    return [
        [
            e.customer,
            offset(start, e.received_at),
            e.label or UNSCORED,
            e.rule or DASH,
            seconds(e.escalation_seconds),
            seconds(e.answered_in_seconds, "no answer recorded"),
            e.text,
        ]
        for e in told.escalated
    ]


def suggestion_rows(told: CustomersTold, start: datetime) -> list[list[object]]:
    return [
        [s.customer, offset(start, s.received_at), s.label or UNSCORED, s.text]
        for s in told.suggestions
    ]


def bounce_rows(told: CustomersTold) -> list[list[object]]:
    return [
        [b.customer, ", ".join(b.contacts) or DASH, b.status or DASH, b.diagnostic or DASH,
         b.resent_on or "nothing else"]
        for b in told.bounced_contacts
    ]  # fmt: skip
