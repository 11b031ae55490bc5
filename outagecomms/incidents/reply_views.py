"""Read models of what customers sent back (issue 12), for ``show``, ``show --customer`` and
``watch``. Their ``to_json()`` keys are part of the ``--json`` contract, like ``views``.

A message's text is personal data: these views carry at most :data:`EXCERPT` characters of it
(``show --customer``) or a line's worth (``watch``), never the raw message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from outagecomms.inbound.views import LABELS
from outagecomms.models import IncidentRef
from outagecomms.store import inbound as inbound_db
from outagecomms.store import inbound_recent
from outagecomms.values import JsonModel, json_key

#: characters of a message's text that ``show --customer`` prints
EXCERPT = 200
#: a person's reply that was not scored (another language, no scorer): someone should read it
UNSCORED = "unscored"


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """The first ``limit`` characters of ``text`` on one line, ``…`` when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True, kw_only=True)
class ReplyCounts(JsonModel):
    """An incident's messages by kind, and a person's replies by label: ``{"reply":
    {"negative": n, "neutral": n, "positive": n[, "unscored": n]}, "auto_reply": n,
    "bounce": n}``."""

    by_label: Mapping[str, int]  # reply label (or "unscored") -> n
    auto_reply: int
    bounce: int
    other: Mapping[str, int]  # a kind we do not know yet -> n (kept, not hidden)

    @property
    def replies(self) -> int:
        return sum(self.by_label.values())

    @property
    def total(self) -> int:
        return self.replies + self.auto_reply + self.bounce + sum(self.other.values())

    @classmethod
    def of(cls, counts: Mapping[tuple[str, str], int]) -> ReplyCounts:
        """From ``store.inbound.counts``: (kind, label or "") -> n."""
        by_label = dict.fromkeys(LABELS, 0)
        kinds: dict[str, int] = {}
        for (kind, label), n in counts.items():
            if kind == "reply":
                key = label or UNSCORED
                by_label[key] = by_label.get(key, 0) + n
            else:
                kinds[kind or "unprocessed"] = kinds.get(kind or "unprocessed", 0) + n
        return cls(
            by_label=by_label,
            auto_reply=kinds.pop("auto_reply", 0),
            bounce=kinds.pop("bounce", 0),
            other=kinds,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "reply": dict(self.by_label),
            "auto_reply": self.auto_reply,
            "bounce": self.bounce,
            **dict(self.other),
        }


@dataclass(frozen=True, kw_only=True)
class CustomerReply(JsonModel):
    """One message a customer sent in an incident (``show --customer``)."""

    id: int
    kind: str | None
    label: str | None
    sentiment: float | None
    channel: str
    received_at: datetime
    text: str  # the first EXCERPT characters
    escalated_at: datetime | None
    responded_at: datetime | None

    json_extra = ("escalated", "responded")

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None

    @property
    def responded(self) -> bool:
        return self.responded_at is not None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> CustomerReply:
        return cls(
            id=row["id"], kind=row["kind"], label=row["label"], sentiment=row["sentiment"],
            channel=row["channel"], received_at=row["received_at"], text=excerpt(row["text"]),
            escalated_at=row["escalated_at"], responded_at=row["responded_at"],
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ReplySend(JsonModel):
    """Something we sent because of a customer's message: an escalation, the acknowledgement,
    a person's ``respond``."""

    inbound_id: int | None = json_key("reply_id")
    kind: str
    channel: str
    to: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    text: str  # the first EXCERPT characters

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> ReplySend:
        return cls(
            inbound_id=row["inbound_id"], kind=row["kind"], channel=row["channel"],
            to=row["to"], status=row["status"], created_at=row["created_at"],
            sent_at=row["sent_at"], text=excerpt(row["text"]),
        )  # fmt: skip


def reply_counts(conn: Connection, incident_id: int) -> ReplyCounts:
    return ReplyCounts.of(inbound_db.counts(conn, incident_id))


def customer_replies(
    conn: Connection, incident_id: int, customer_id: str
) -> tuple[tuple[CustomerReply, ...], tuple[ReplySend, ...]]:
    """A customer's messages in the incident, and what we sent because of them."""
    rows = inbound_db.replies(conn, incident_id, customer_id=customer_id)
    sends = inbound_db.sends_for(conn, incident_id, customer_id)
    return tuple(CustomerReply.of(r) for r in rows), tuple(ReplySend.of(s) for s in sends)


@dataclass(frozen=True, kw_only=True)
class ReplyLine(JsonModel):
    """One new message on the live dashboard."""

    ref: IncidentRef = json_key("incident")
    id: int
    customer_id: str
    channel: str
    kind: str | None
    label: str | None
    received_at: datetime
    text: str
    escalated: bool
    needs_person: bool

    @classmethod
    def of(cls, row: Mapping[str, Any], width: int = 80) -> ReplyLine:
        return cls(
            ref=IncidentRef(row["incident_id"]), id=row["id"], customer_id=row["customer_id"],
            channel=row["channel"], kind=row["kind"], label=row["label"],
            received_at=row["received_at"], text=excerpt(row["text"], width),
            escalated=row["escalated_at"] is not None, needs_person=row["needs_person"],
        )  # fmt: skip


def newest_replies(
    conn: Connection, incident_ids: Sequence[int], limit: int = 8
) -> tuple[ReplyLine, ...]:
    """The newest ``limit`` messages of these incidents, newest first."""
    return tuple(ReplyLine.of(r) for r in inbound_recent.newest(conn, incident_ids, limit))
