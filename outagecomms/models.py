"""Domain objects: frozen, keyword-only, UTC-aware datetimes; states are StrEnums."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

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


class RoundKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    UPDATE = "update"
    HOLDING = "holding"
    RESOLUTION = "resolution"
    FOLLOW_UP = "follow_up"


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


@dataclass(frozen=True, kw_only=True)
class Selector:
    """Who an incident affects. Different kinds AND together; values of one kind OR."""

    components: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()  # added explicitly, whatever the other selectors say
    exclude: tuple[str, ...] = ()

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
        return self.status != IncidentStatus.RESOLVED


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
    on_time: int = 0
    first_sent_at: datetime | None = None
    last_sent_at: datetime | None = None
    by_status: dict[str, int] = field(default_factory=dict)


def incident_id_from_ref(ref: str) -> int:
    """``INC-42``, ``inc-42`` or ``42`` → 42."""
    from outagecomms.errors import InputError

    s = ref.strip().upper()
    if s.startswith("INC-"):
        s = s[4:]
    if not s.isdigit():
        raise InputError(f"not an incident id: {ref!r}; incident ids look like INC-12")
    return int(s)


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
