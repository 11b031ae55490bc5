"""The report's "What customers told us": what came back while the incident ran (issue 12).

Definitions:

- *Sentiment per round*: a person's replies (kind ``reply``) attributed to the round whose
  message they answer (``inbound.round_id``), counted by label; the mean is over the scored ones
  only (a reply in a language the scorer does not read is ``unscored`` and is left out of the
  mean, not counted as neutral). Replies attributed to no round are a last row, "no round".
- *Escalated*: replies that were escalated (``escalated_at``): when the first escalation was
  accepted by a channel (``inbound_sends.sent_at`` of kind ``escalation``; the seconds after
  receipt are the issue's "≤ 5 s" figure), and how fast someone answered the customer
  (``responded_at - received_at``; ``respond`` sets it).
- *Suggestions to pass on*: a person's reply whose text contains one of :data:`SUGGESTION_WORDS`
  (English, German, French and Japanese phrasings of "I suggest", "you should", "could you",
  "please add", "it would help"; matched case-insensitively, any label), or a reply labelled
  neutral or positive that asks a question (``?`` or the full-width ``？``). An angry reply with
  a question mark ("why is it down again?") is escalated, not a suggestion.
- *Bounced contacts to fix*: permanent bounces (kind ``bounce``, ``bounce.permanent``): the
  customer, the address that failed, the status and diagnostic, and the channel the message
  was sent on instead, if any. A transient one is not listed (it was recorded only).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from outagecomms.inbound.views import LABELS
from outagecomms.models import RoundStats
from outagecomms.store import inbound as inbound_db
from outagecomms.values import JsonModel

UNSCORED = "unscored"
#: how much of a customer's words the report quotes
QUOTE = 300

#: phrasings of a suggestion (lower case; matched as substrings of the lower-cased text)
SUGGESTION_WORDS: Mapping[str, tuple[str, ...]] = {
    "en": (
        "suggest", "should", "could you", "please add", "it would help", "would be helpful",
        "would be nice", "would be great", "recommend", "why not",
    ),
    "de": (
        "vorschlag", "schlage vor", "sollten", "solltet", "könnten sie", "könntet ihr",
        "bitte fügen", "es wäre hilfreich", "wäre hilfreich", "wäre schön", "würde helfen",
    ),
    "fr": (
        "suggère", "suggérer", "suggestion", "devriez", "pourriez-vous", "pourriez vous",
        "merci d'ajouter", "veuillez ajouter", "il serait utile", "ce serait bien",
        "ça aiderait", "cela aiderait",
    ),
    "ja": (
        "提案", "してほしい", "して欲しい", "すべき", "べきです", "追加してください",
        "追加して頂", "追加していただ", "助かります", "いただけますか", "いただけると",
        "頂けると",
    ),
}  # fmt: skip
_WORDS = tuple(w for words in SUGGESTION_WORDS.values() for w in words)
_QUESTION = re.compile("[?？]")


def is_suggestion(text: str, label: str | None) -> bool:
    """The rule above: one of the words, or a question in a reply that is not negative."""
    lowered = text.lower()
    if any(w in lowered for w in _WORDS):
        return True
    return label in ("neutral", "positive") and _QUESTION.search(text) is not None


def quote(text: str, limit: int = QUOTE) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True, kw_only=True)
class RoundMood(JsonModel):
    """How the replies to one round felt."""

    round: int | None  # the round's number; None: replies matched to no round
    kind: str
    replies: int
    mean_score: float | None  # over the scored replies; None when none was scored
    labels: Mapping[str, int]  # negative / neutral / positive / unscored -> n


@dataclass(frozen=True, kw_only=True)
class EscalatedReply(JsonModel):
    json_extra = ("escalation_seconds", "answered_in_seconds")

    id: int
    customer: str
    received_at: datetime
    label: str | None
    text: str
    rule: str
    escalated_at: datetime | None
    escalation_sent_at: datetime | None  # the first escalation a channel accepted
    responded_at: datetime | None

    @property
    def escalation_seconds(self) -> float | None:
        if self.escalation_sent_at is None:
            return None
        return (self.escalation_sent_at - self.received_at).total_seconds()

    @property
    def answered_in_seconds(self) -> float | None:
        if self.responded_at is None:
            return None
        return (self.responded_at - self.received_at).total_seconds()


@dataclass(frozen=True, kw_only=True)
class Suggestion(JsonModel):
    id: int
    customer: str
    received_at: datetime
    label: str | None
    text: str


@dataclass(frozen=True, kw_only=True)
class BouncedContact(JsonModel):
    customer: str
    contacts: tuple[str, ...]  # the addresses the bounce names
    status: str
    diagnostic: str
    received_at: datetime
    resent_on: str | None  # the channel the bounced message went out on instead


@dataclass(frozen=True, kw_only=True)
class CustomersTold(JsonModel):
    """Everything the section shows; ``messages`` 0: there were no replies."""

    messages: int
    replies: int
    auto_replies: int
    bounces: int
    per_round: tuple[RoundMood, ...]
    escalated: tuple[EscalatedReply, ...]
    suggestions: tuple[Suggestion, ...]
    bounced_contacts: tuple[BouncedContact, ...]

    @property
    def scored(self) -> int:
        return sum(r.replies - r.labels.get(UNSCORED, 0) for r in self.per_round)


def _per_round(
    replies: Sequence[Mapping[str, Any]], stats: Sequence[RoundStats]
) -> list[RoundMood]:
    by_round: dict[int | None, list[Mapping[str, Any]]] = {}
    for r in replies:
        by_round.setdefault(r["round_id"], []).append(r)
    known = {s.round.id: s.round for s in stats}
    out = []
    order: list[int | None] = [s.round.id for s in stats if s.round.id in by_round]
    order += sorted(k for k in by_round if k is not None and k not in known)
    if None in by_round:
        order.append(None)
    for rid in order:
        rows = by_round[rid]
        labels = Counter(r["label"] or UNSCORED for r in rows)
        scores = [float(r["sentiment"]) for r in rows if r["sentiment"] is not None]
        rnd = known.get(rid) if rid is not None else None
        out.append(
            RoundMood(
                round=rnd.seq if rnd is not None else None,
                kind=rnd.kind.value if rnd is not None else "no round",
                replies=len(rows),
                mean_score=round(statistics.fmean(scores), 3) if scores else None,
                labels={
                    **{k: labels.get(k, 0) for k in LABELS},
                    **({UNSCORED: labels[UNSCORED]} if labels.get(UNSCORED) else {}),
                },
            )
        )
    return out


def customers_told(
    messages: Sequence[Mapping[str, Any]],
    sends: Sequence[Mapping[str, Any]],
    stats: Sequence[RoundStats],
) -> CustomersTold:
    """The section from an incident's messages (``store.inbound.replies``), what was sent
    because of them (``sends_for``) and its rounds."""
    replies = [m for m in messages if m["kind"] == "reply"]
    first_sent: dict[int, datetime] = {}
    for s in sends:
        if s["kind"] == "escalation" and s["sent_at"] is not None and s["inbound_id"] is not None:
            at = first_sent.get(s["inbound_id"])
            first_sent[s["inbound_id"]] = s["sent_at"] if at is None else min(at, s["sent_at"])
    escalated = tuple(
        EscalatedReply(
            id=m["id"],
            customer=m["customer_id"],
            received_at=m["received_at"],
            label=m["label"],
            text=quote(m["text"]),
            rule=str((m["escalation"] or {}).get("rule", "")),
            escalated_at=m["escalated_at"],
            escalation_sent_at=first_sent.get(m["id"]),
            responded_at=m["responded_at"],
        )
        for m in messages
        if m["escalated_at"] is not None or m["id"] in first_sent
    )
    bounced = []
    for m in messages:
        b = m["bounce"] or {}
        if m["kind"] == "bounce" and b.get("permanent"):
            bounced.append(
                BouncedContact(
                    customer=m["customer_id"],
                    contacts=tuple(b.get("recipients") or ()),
                    status=str(b.get("status") or ""),
                    diagnostic=quote(str(b.get("diagnostic") or m["text"] or "")),
                    received_at=m["received_at"],
                    resent_on=b.get("resent_on"),
                )
            )
    return CustomersTold(
        messages=len(messages),
        replies=len(replies),
        auto_replies=sum(1 for m in messages if m["kind"] == "auto_reply"),
        bounces=sum(1 for m in messages if m["kind"] == "bounce"),
        per_round=tuple(_per_round(replies, stats)),
        escalated=escalated,
        suggestions=tuple(
            Suggestion(
                id=m["id"],
                customer=m["customer_id"],
                received_at=m["received_at"],
                label=m["label"],
                text=quote(m["text"]),
            )
            for m in replies
            if is_suggestion(m["text"], m["label"])
        ),
        bounced_contacts=tuple(bounced),
    )


def read_customers_told(
    conn: Connection, incident_id: int, stats: Sequence[RoundStats]
) -> CustomersTold:
    return customers_told(
        inbound_db.replies(conn, incident_id), inbound_db.sends_for(conn, incident_id), stats
    )
