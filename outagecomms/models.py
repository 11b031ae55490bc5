"""Domain objects: frozen, keyword-only, UTC-aware datetimes; states are StrEnums."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, TypeAlias, TypedDict, Unpack

from outagecomms.values import MAX_ID

#: the customer id of a delivery made once per round, not per customer (a status page)
ROUND_WIDE = "*"
#: a channel name with this suffix is a copy for the customer's account manager
COPY_SUFFIX = "+am"


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    VOIDED = "voided"  # a false alarm or a duplicate, taken back (``void``)


#: an incident in one of these is over: nothing more is promised (``Incident.is_open``)
CLOSED_STATUSES = (IncidentStatus.RESOLVED.value, IncidentStatus.VOIDED.value)


class RoundKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    UPDATE = "update"
    HOLDING = "holding"
    RESOLUTION = "resolution"
    FOLLOW_UP = "follow_up"
    CREDIT = "credit"  # the credit notice: an approved credit's amount (or its correction)
    VOID = "void"  # "please disregard": to those already told of a voided incident
    REOPENED = "reopened"  # the outage came back after its resolution


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    SUPERSEDED = "superseded"  # a newer round replaced it before it was sent


@dataclass(frozen=True, kw_only=True)
class Customer:
    id: str
    name: str
    email: str = ""
    phone: str = ""
    slack_webhook: str = ""
    teams_webhook: str = ""
    webhook_url: str = ""
    tier: str = "standard"
    monthly_fee: Decimal = Decimal(0)
    currency: str = "USD"
    components: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    timezone: str = "UTC"
    locale: str = "en_US"
    channels: tuple[str, ...] = ()
    account_manager: str = ""

    def contact(self, field_name: str) -> str:
        return str(getattr(self, field_name, "") or "")


class SelectorArgs(TypedDict, total=False):
    """The selector's fields as keyword arguments (``Selector.of``, ``App.declare``,
    ``App.customers``): kinds AND, values of one kind OR; ``customers`` adds, ``exclude``
    removes."""

    components: Iterable[str]
    regions: Iterable[str]
    tiers: Iterable[str]
    tags: Iterable[str]
    customers: Iterable[str]
    exclude: Iterable[str]


@dataclass(frozen=True, kw_only=True)
class Selector:
    """Who an incident affects. Different kinds AND together; values of one kind OR."""

    components: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()  # added explicitly, whatever the other selectors say
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, **values: Unpack[SelectorArgs]) -> Selector:
        """From values as people give them (:class:`SelectorArgs`): stripped, blanks and
        repeats dropped; a bare string is one value (``"auth"``, not ``a, u, t, h``)."""

        def vals(v: Iterable[str]) -> tuple[str, ...]:
            return tuple(
                dict.fromkeys(x.strip() for x in ((v,) if isinstance(v, str) else v) if x.strip())
            )

        unknown = set(values) - set(SelectorArgs.__annotations__)
        if unknown:
            raise TypeError(f"unknown selector field(s): {', '.join(sorted(unknown))}")
        return cls(**{k: vals(v) for k, v in values.items()})  # type: ignore[arg-type]

    @property
    def has_filters(self) -> bool:
        return bool(self.components or self.regions or self.tiers or self.tags)

    def to_json(self) -> dict[str, list[str]]:
        return {k: list(getattr(self, k)) for k in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, list[str]]) -> Selector:
        return cls(**{k: tuple(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, kw_only=True)
class Incident:
    id: int
    title: str
    severity: str
    status: IncidentStatus
    components: tuple[str, ...]
    regions: tuple[str, ...]
    selector: Selector
    started_at: datetime
    declared_at: datetime
    resolved_at: datetime | None
    commander: str
    update_every: timedelta
    next_update_due: datetime | None
    ack_due: datetime
    reminded_for: datetime | None = None
    audience_size: int = 0
    follow_up_due: datetime | None = None  # when the follow-up (feedback request) goes out

    @property
    def ref(self) -> str:
        return f"INC-{self.id}" if self.id else "INC-NEW"  # id 0: not yet written (dry run)

    @property
    def is_open(self) -> bool:
        return self.status.value not in CLOSED_STATUSES


@dataclass(frozen=True, kw_only=True)
class Round:
    id: int
    incident_id: int
    seq: int
    kind: RoundKind
    message: str
    status: IncidentStatus
    created_at: datetime
    due_by: datetime | None  # the promise this round keeps (ack: started_at + ack_within)
    promised_next_by: datetime | None  # what this round tells customers


@dataclass(frozen=True, kw_only=True)
class RoundStats:
    round: Round
    owed: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0
    retrying: int = 0  # of pending: tried already, a retry is scheduled
    on_time: int = 0
    first_sent_at: datetime | None = None
    last_sent_at: datetime | None = None
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class IncidentRef:
    """How people and scripts name an incident: ``INC-7``, ``inc-7``, ``"7"``, ``7``, the
    :class:`Incident` itself or a read model of it (anything with a ``ref``) all parse to the
    same ref; ``str()`` gives ``INC-7``."""

    id: int

    def __str__(self) -> str:
        return f"INC-{self.id}"

    def to_json(self) -> str:
        return str(self)

    @classmethod
    def parse(cls, value: RefLike) -> IncidentRef:
        """Raises ``InputError`` (field ``incident``) for anything that is not an incident id."""
        if isinstance(value, IncidentRef):
            return value
        ref = getattr(value, "ref", None)  # a read model: IncidentSummary, WatchRow
        if isinstance(ref, IncidentRef):
            return ref
        if isinstance(value, Incident):
            value = value.id  # 0: a dry run's incident, never written
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        elif isinstance(value, str):
            s = value.strip().upper().removeprefix("INC-")
            n = int(s) if s.isascii() and s.isdigit() else 0
        else:
            n = 0
        if not 0 < n <= MAX_ID:  # the store's ids are 64-bit integers
            from outagecomms.errors import InputError

            raise InputError(
                "not an incident id; incident ids look like INC-12",
                field="incident",
                value=value,
            )
        return cls(n)


class HasIncidentRef(Protocol):
    """A read model of an incident (``IncidentSummary``, ``IncidentDetail``, ``WatchRow``)."""

    @property
    def ref(self) -> IncidentRef: ...


#: anything that names an incident (see ``IncidentRef.parse``)
RefLike: TypeAlias = IncidentRef | Incident | HasIncidentRef | str | int


def incident_id_from_ref(ref: RefLike) -> int:
    """``INC-42``, ``inc-42``, ``42`` (or an ``IncidentRef`` / ``Incident``) → 42."""
    return IncidentRef.parse(ref).id


class DraftStatus(StrEnum):
    OPEN = "open"  # waiting for the commander: declare or dismiss
    DECLARED = "declared"  # an incident was declared from it
    DISMISSED = "dismissed"  # the commander decided it is not an incident


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, kw_only=True)
class Draft:
    """An incident proposed by a monitoring alert (``POST /hooks/...``), waiting for the
    commander. Repeats of the same alert refresh it (``times_seen``) instead of adding drafts."""

    id: int
    source: str  # alertmanager | generic
    dedup_key: str  # hash of (source, group key, rule): one open draft per key
    group_key: str  # the sender's group key / alert key, as sent
    rule: str  # the [[hooks.rules]] entry that mapped it
    title: str
    severity: str
    components: tuple[str, ...]
    regions: tuple[str, ...]
    labels: dict[str, str]
    annotations: dict[str, str]
    url: str
    status: DraftStatus
    alert_state: AlertState
    update_every: timedelta | None  # the rule's cadence, if it sets one
    commander: str
    started_at: datetime  # when the alert says the trouble began
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    times_seen: int
    alerts: int  # alerts in the group at the last notification
    incident_id: int | None
    note: str

    @property
    def incident_ref(self) -> str | None:
        return f"INC-{self.incident_id}" if self.incident_id else None


# --- scheduled maintenance (issue 15) ---------------------------------------------------------


class MaintenanceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class NoticeKind(StrEnum):
    """What a maintenance notice tells (``templates/maintenance/``)."""

    ANNOUNCEMENT = "maintenance_announcement"
    UPDATE = "maintenance_update"  # new words, or new times (a reschedule)
    REMINDER = "maintenance_reminder"
    STARTED = "maintenance_started"
    COMPLETED = "maintenance_completed"
    CANCELLED = "maintenance_cancelled"


@dataclass(frozen=True, kw_only=True)
class MaintenanceWindow:
    id: int
    title: str
    message: str
    components: tuple[str, ...]
    regions: tuple[str, ...]
    selector: Selector
    starts_at: datetime
    ends_at: datetime
    status: MaintenanceStatus
    sequence: int  # iCalendar SEQUENCE: +1 on each reschedule and on cancellation
    remind: tuple[timedelta, ...]  # before the start, longest first
    audience_size: int
    commander: str
    created_at: datetime
    told_at: datetime  # customers last heard the times (announcement or reschedule)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    overrun_reminded_at: datetime | None = None  # the commander was told it overran
    incident_id: int | None = None  # the incident declared when it overran
    version: int = 1

    @property
    def ref(self) -> str:
        return f"MNT-{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status in (MaintenanceStatus.SCHEDULED, MaintenanceStatus.IN_PROGRESS)


@dataclass(frozen=True, kw_only=True)
class MaintenanceNotice:
    id: int
    maintenance_id: int
    seq: int
    key: str
    kind: NoticeKind
    status: str  # queued | skipped
    message: str
    detail: str
    created_at: datetime
    due_at: datetime | None
    starts_at: datetime
    ends_at: datetime
    previous_starts_at: datetime | None
    previous_ends_at: datetime | None
    sequence: int


def maintenance_id_from_ref(ref: str | int) -> int:
    """``MNT-4``, ``mnt-4``, ``4`` -> 4; anything else is an ``InputError`` (field
    ``maintenance``)."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        n = ref
    else:
        s = str(ref).strip().upper().removeprefix("MNT-")
        n = int(s) if s.isascii() and s.isdigit() else 0
    if not 0 < n <= MAX_ID:
        from outagecomms.errors import InputError

        raise InputError(
            "not a maintenance id; maintenance ids look like MNT-3", field="maintenance", value=ref
        )
    return n
