"""The channel protocol every delivery channel implements.

A channel turns one rendered :class:`OutboundMessage` into a :class:`DeliveryResult`:
``sent`` (with the provider's id), ``retry`` (transient: worth trying again later, optionally
after ``retry_after`` seconds) or ``failed`` (permanent). A send never returns a bare bool and
never raises for a delivery problem; it raises only for programming errors.

Channels declare their limits and config keys as class attributes; ``[channels.<name>]`` in the
config may override ``max_connections`` and ``rate_per_second``.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from outagecomms.config.model import ChannelConfig, CompanyConfig
from outagecomms.models import Incident


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class OutboundMessage:
    """One rendered message for one customer on one channel."""

    delivery_id: int
    to: str  # the contact: an email address, a phone number, a URL
    to_name: str
    subject: str
    text: str
    html: str | None
    message_id: str  # stable across resends so receivers can deduplicate
    headers: Mapping[str, str] = field(default_factory=dict)
    #: the round as data, for channels that send structured payloads (webhook, status page):
    #: incident, title, severity, status, kind, round, message, customer, promised_next_by
    data: Mapping[str, Any] = field(default_factory=dict)
    #: an iCalendar object (RFC 5545) an email carries as a ``text/calendar`` alternative part
    #: (a maintenance invitation), with its iTIP method (``REQUEST``, ``CANCEL``)
    calendar: str = ""
    calendar_method: str = ""


def round_data(
    incident: Incident,
    *,
    status: str,
    kind: str,
    seq: int,
    message: str,
    customer: str,
    promised_next_by: datetime | None,
    page_url: str = "",
) -> dict[str, Any]:
    """``OutboundMessage.data``: the round as data, the same shape for every channel that sends
    structured payloads (and for the commander's notices, kind ``commander``). ``page_url``:
    the customer's own incident page (``pages.incident``), null when messages carry none."""
    return {
        "incident": incident.ref,
        "title": incident.title,
        "severity": incident.severity,
        "status": status,
        "kind": kind,
        "round": seq,
        "message": message,
        "customer": customer,
        "components": list(incident.components),
        "regions": list(incident.regions),
        "started_at": incident.started_at.isoformat(),
        "promised_next_by": promised_next_by.isoformat() if promised_next_by else None,
        "page_url": page_url or None,
    }


@dataclass(frozen=True, kw_only=True)
class DeliveryResult:
    outcome: Outcome
    provider_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    #: the contact itself was refused for good (invalid number, opted out): later rounds skip
    #: it until the customer's contact changes
    flag_contact: bool = False

    @classmethod
    def sent(cls, provider_id: str | None = None) -> DeliveryResult:
        return cls(outcome=Outcome.SENT, provider_id=provider_id)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryResult:
        return cls(outcome=Outcome.RETRY, error=error, retry_after=retry_after)

    @classmethod
    def failed(cls, error: str, *, flag_contact: bool = False) -> DeliveryResult:
        return cls(outcome=Outcome.FAILED, error=error, flag_contact=flag_contact)


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """What one read-only check of a channel found (``doctor``): ``target`` names what was
    checked (``smtp 127.0.0.1:25``, ``GET https://api.twilio.com/...``, ``hooks.slack.com:443``),
    ``detail`` says what answered, or why it failed, in a few words (``connection refused``)."""

    target: str
    ok: bool
    detail: str


# A config key spec: (type, default); type is str, int, bool, "path" or a tuple of choices.
KeySpec = tuple[Any, Any]


class Channel(ABC):
    """Base class of all channels. Subclasses set the class attributes and ``send``."""

    kind: ClassVar[str]
    #: which template set renders for this channel (``<kind>/<template_channel>.<part>.j2``)
    template_channel: ClassVar[str] = "email"
    #: the Customer attribute holding this channel's address; None = once per round
    contact_field: ClassVar[str | None] = "email"
    max_connections: ClassVar[int] = 8
    rate_per_second: ClassVar[float] = 0.0
    max_body_len: ClassVar[int | None] = None
    config_keys: ClassVar[dict[str, KeySpec]] = {}

    def __init__(self, config: ChannelConfig, company: CompanyConfig):
        self.config = config
        self.company = company
        self.settings = config.settings
        self.limiter = RateLimiter(config.rate_per_second) if config.rate_per_second else None

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        """Return a sentence describing a problem with the settings, or None."""
        return None

    @classmethod
    def required_secrets(cls, settings: Mapping[str, Any]) -> tuple[str, ...]:
        """The secrets a send needs, by key (``password`` for ``password_env``): every
        ``*_env`` setting that names a variable, unless the channel says otherwise. Pre-flight
        checks each is set before a round is queued."""
        return tuple(k[: -len("_env")] for k, v in settings.items() if k.endswith("_env") and v)

    @classmethod
    def secret_problem(cls, key: str, value: str) -> str | None:
        """Why the secret ``key`` cannot be right, from its form alone (never quoting it)."""
        return None

    async def probe(self, contacts: Sequence[str] = ()) -> list[ProbeResult]:
        """Check, without sending anything to anyone, that the channel could send now (a
        connection, a login, a read-only API call); ``contacts`` are the addresses it would send
        to (for channels that post to each customer's URL). Never raises for what it finds: an
        unreachable server is a result with ``ok=False``. The channel is open around it."""
        return []

    @classmethod
    def delivers(cls, kind: str) -> bool:
        """Whether rounds of ``kind`` go out on this channel. A once-per-round channel (no
        ``contact_field``: a status page, a team chat) has no follow-up to send (the follow-up
        asks each customer for their own score) and no credit notice (a customer's own)."""
        return cls.contact_field is not None or kind not in ("follow_up", "credit")

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Open pooled connections (optional)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close pooled connections (optional)."""

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Send honouring the channel's rate limit."""
        if self.limiter:
            await self.limiter.acquire()
        return await self.send(message)

    @abstractmethod
    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one message and say how it went."""


class RateLimiter:
    """A token bucket: at most ``rate`` acquisitions per second, bursts up to ``burst``.

    Waiters reserve their slot, so each waits exactly once for its own time; there is no
    polling loop. ``granted`` keeps the times (``time.monotonic()``) of the latest slots: the
    limiter's own schedule, which tests assert on (measured gaps jitter on a loaded machine).
    """

    #: how many grant times ``granted`` keeps (a daemon's limiters live as long as it does)
    GRANTS_KEPT = 64

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1.0, rate))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.granted: deque[float] = deque(maxlen=self.GRANTS_KEPT)

    async def acquire(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        self.granted.append(now + wait)
        if wait:
            await asyncio.sleep(wait)
