"""Read models for ``list``, ``show`` and ``watch``: frozen, typed views of the store.

Each one's ``to_json()`` is the document the CLI prints with ``--json``; those keys are part of
the command-line contract, so a field may be renamed here but its JSON key may not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from outagecomms.app import App
from outagecomms.errors import NotFound
from outagecomms.incidents.reply_views import (
    CustomerReply,
    ReplyCounts,
    ReplyLine,
    ReplySend,
    customer_replies,
    newest_replies,
    reply_counts,
)
from outagecomms.models import (
    DeliveryStatus,
    Incident,
    IncidentRef,
    IncidentStatus,
    RefLike,
    RoundKind,
    RoundStats,
    Selector,
)
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.values import JsonModel, json_key


@dataclass(frozen=True, kw_only=True)
class TimelineEvent(JsonModel):
    """One line of an incident's history (declared, reminder, error, holding, ...)."""

    at: datetime
    kind: str
    detail: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> TimelineEvent:
        return cls(at=row["at"], kind=row["kind"], detail=row["detail"])


@dataclass(frozen=True, kw_only=True)
class RoundSummary(JsonModel):
    """A round and how its fan-out went."""

    round: int  # the round's number within its incident (1 = the acknowledgement)
    kind: RoundKind
    status: IncidentStatus
    message: str
    created_at: datetime
    due_by: datetime | None
    promised_next_by: datetime | None
    owed: int
    sent: int
    failed: int
    pending: int
    retrying: int
    on_time: int
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    deliveries: Mapping[str, int]  # delivery status -> count

    @classmethod
    def of(cls, s: RoundStats) -> RoundSummary:
        r = s.round
        return cls(
            round=r.seq, kind=r.kind, status=r.status, message=r.message,
            created_at=r.created_at, due_by=r.due_by, promised_next_by=r.promised_next_by,
            owed=s.owed, sent=s.sent, failed=s.failed, pending=s.pending, retrying=s.retrying,
            on_time=s.on_time, first_sent_at=s.first_sent_at, last_sent_at=s.last_sent_at,
            deliveries=s.by_status,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class PromisesKept(JsonModel):
    """The headline figure: on-time deliveries / deliveries owed."""

    json_extra = ("ratio",)

    on_time: int
    owed: int

    @property
    def ratio(self) -> float | None:
        return (self.on_time / self.owed) if self.owed else None

    @classmethod
    def of(cls, stats: list[RoundStats]) -> PromisesKept:
        """Over the rounds that keep a promise (not the follow-up, not rounds recorded without
        sending)."""
        kept = [s for s in stats if s.round.due_by is not None]
        return cls(on_time=sum(s.on_time for s in kept), owed=sum(s.owed for s in kept))


@dataclass(frozen=True, kw_only=True)
class IncidentHead(JsonModel):
    """What every view of an incident starts with."""

    ref: IncidentRef = json_key("incident")
    title: str
    severity: str
    status: IncidentStatus


@dataclass(frozen=True, kw_only=True)
class IncidentSummary(IncidentHead):
    """An incident as ``list`` shows it."""

    components: tuple[str, ...]
    regions: tuple[str, ...]
    selector: Selector
    commander: str
    started_at: datetime
    declared_at: datetime
    resolved_at: datetime | None
    update_every: timedelta = json_key("update_every_seconds")
    next_update_due: datetime | None
    ack_due: datetime
    audience: int  # customers affected

    @classmethod
    def of(cls, inc: Incident) -> IncidentSummary:
        return cls(**cls._fields_of(inc))

    @staticmethod
    def _fields_of(inc: Incident) -> dict[str, Any]:
        """The summary's fields from the incident: the same names, and the ref and audience."""
        names = {f.name for f in fields(IncidentSummary)} - {"ref", "audience"}
        return {
            **{n: getattr(inc, n) for n in names},
            "ref": IncidentRef(inc.id),
            "audience": inc.audience_size,
        }


@dataclass(frozen=True, kw_only=True)
class FlaggedContact(JsonModel):
    """A contact a provider refused for good: later rounds skip it until the customer's
    contact changes (re-import)."""

    customer: str
    channel: str
    contact: str
    reason: str
    flagged_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class CustomerDelivery(JsonModel):
    """One message an incident owed one customer, and what became of it."""

    json_extra = ("on_time",)

    round: int
    kind: RoundKind
    channel: str
    status: DeliveryStatus
    attempts: int
    sent_at: datetime | None
    due_by: datetime | None
    provider_id: str | None
    last_error: str | None
    message: Mapping[str, Any] | None  # as sent: to, message_id, subject, text, ...

    @property
    def on_time(self) -> bool:
        return bool(self.sent_at and self.due_by and self.sent_at <= self.due_by)


@dataclass(frozen=True, kw_only=True)
class CustomerDeliveries(JsonModel):
    """``show --customer``: exactly what one customer was sent, what they sent back
    (``replies``) and what we sent because of that (``reply_sends``)."""

    id: str
    deliveries: tuple[CustomerDelivery, ...]
    replies: tuple[CustomerReply, ...] = ()
    reply_sends: tuple[ReplySend, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DowntimeSpan(JsonModel):
    """One span of an incident's downtime: one unless it was reopened (``reopen``)."""

    started_at: datetime
    resolved_at: datetime | None  # None: still going on


@dataclass(frozen=True, kw_only=True)
class IncidentDetail(IncidentSummary):
    """An incident as ``show`` shows it: its rounds, promises kept and history."""

    channels: Mapping[str, int]  # channel -> audience members reached on it
    skipped: Mapping[str, int]  # reason -> customers that no channel could reach
    flagged_contacts: tuple[FlaggedContact, ...]
    rounds: tuple[RoundSummary, ...]
    promises_kept: PromisesKept
    events: tuple[TimelineEvent, ...]
    downtime_spans: tuple[DowntimeSpan, ...] = ()  # several once reopened
    replies: ReplyCounts = field(default_factory=lambda: ReplyCounts.of({}))
    customer: CustomerDeliveries | None = None  # with ``show(..., customer=...)``
    #: the maintenance window (``MNT-<n>``) this incident overran from, if any
    maintenance: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.customer is None:
            del out["customer"]
        return out


@dataclass(frozen=True, kw_only=True)
class WatchRow(IncidentHead):
    """One open incident on the live dashboard."""

    audience: int
    latest_round: RoundSummary | None
    deliveries: Mapping[str, int]  # delivery status -> count, over all rounds
    next_update_due: datetime | None
    seconds_to_promise: float | None  # negative: the promise is late
    recent: tuple[TimelineEvent, ...]  # the last few notable events
    replies: ReplyCounts = field(default_factory=lambda: ReplyCounts.of({}))


def list_incidents(app: App, *, include_resolved: bool = False) -> list[IncidentSummary]:
    with app.store.read() as conn:
        return [
            IncidentSummary.of(i)
            for i in incidents_db.list_incidents(conn, include_resolved=include_resolved)
        ]


def show_incident(app: App, ref: RefLike, *, customer: str | None = None) -> IncidentDetail:
    from outagecomms.store import maintenance as maintenance_db

    iid = IncidentRef.parse(ref).id
    with app.store.read() as conn:
        row, stats, events = outbox_db.incident_history(conn, iid)
        window = maintenance_db.window_for_incident(conn, iid)
        gaps = incidents_db.incident_gaps(conn, [iid]).get(iid, ())
        channels = incidents_db.audience_channels(conn, iid)
        flags = customers_db.incident_contact_flags(conn, iid)
        counts = reply_counts(conn, iid)
        sent_to = None
        if customer is not None:
            found = customers_db.get_customers(conn, [customer])
            rows = outbox_db.customer_deliveries(conn, iid, customer)
            replies, reply_sends = customer_replies(conn, iid, customer)
            if customer not in found and not rows and not replies:
                raise NotFound(
                    f"customer {customer!r} is not in the audience of {row.incident.ref}"
                )
            sent_to = CustomerDeliveries(
                id=customer,
                replies=replies,
                reply_sends=reply_sends,
                deliveries=tuple(
                    CustomerDelivery(
                        round=r["seq"],
                        kind=RoundKind(r["kind"]),
                        channel=r["channel"],
                        status=DeliveryStatus(r["status"]),
                        attempts=r["attempts"],
                        sent_at=r["sent_at"],
                        due_by=r["due_by"],
                        provider_id=r["provider_id"],
                        last_error=r["last_error"],
                        message=r["content"],
                    )
                    for r in rows
                ),
            )
    return IncidentDetail(
        **IncidentSummary._fields_of(row.incident),
        channels=channels,
        skipped=row.skipped,
        flagged_contacts=tuple(
            FlaggedContact(
                customer=f["customer_id"],
                channel=f["channel"],
                contact=f["contact"],
                reason=f["reason"],
                flagged_at=f["flagged_at"],
            )
            for f in flags
        ),
        rounds=tuple(RoundSummary.of(s) for s in stats),
        promises_kept=PromisesKept.of(stats),
        events=tuple(TimelineEvent.of(e) for e in events),
        downtime_spans=tuple(
            DowntimeSpan(started_at=a, resolved_at=b)
            for a, b in incidents_db.downtime_spans(row.incident, gaps)
        ),
        replies=counts,
        customer=sent_to,
        maintenance=window.ref if window is not None else None,
    )


#: the events the dashboard shows as "recent"
WATCHED_EVENTS = (
    "reminder", "error", "holding", "update", "follow_up", "alert_resolved", "reopened",
)  # fmt: skip


def watch_snapshot(app: App, ref: RefLike | None = None) -> list[WatchRow]:
    """What the live dashboard shows: for each open incident (or the one named) its latest
    round's fan-out progress, deliveries by outcome, the next promise and recent problems."""
    now = app.clock()
    with app.store.read() as conn:
        if ref is not None:
            incidents = [incidents_db.get_incident(conn, IncidentRef.parse(ref).id).incident]
        else:
            incidents = incidents_db.list_incidents(conn)
        out = []
        for inc in incidents:
            stats = outbox_db.round_stats(conn, inc.id)
            events = incidents_db.list_events(conn, inc.id)
            due = inc.next_update_due
            out.append(
                WatchRow(
                    ref=IncidentRef(inc.id),
                    title=inc.title,
                    severity=inc.severity,
                    status=inc.status,
                    audience=inc.audience_size,
                    latest_round=RoundSummary.of(stats[-1]) if stats else None,
                    deliveries=outbox_db.count_deliveries(conn, inc.id),
                    next_update_due=due,
                    seconds_to_promise=(due - now).total_seconds() if due else None,
                    recent=tuple(
                        TimelineEvent.of(e) for e in events[-5:] if e["kind"] in WATCHED_EVENTS
                    ),
                    replies=reply_counts(conn, inc.id),
                )
            )
    return out


def watch_replies(app: App, rows: Sequence[WatchRow], limit: int = 8) -> tuple[ReplyLine, ...]:
    """The newest ``limit`` messages customers sent in the incidents ``watch`` shows, newest
    first (the dashboard's "Replies" panel)."""
    with app.store.read() as conn:
        return newest_replies(conn, [w.ref.id for w in rows], limit)
