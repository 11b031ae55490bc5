"""Channel kinds that exist only in tests, registered for one test with :func:`register`."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from outagecomms.channels import registry
from outagecomms.channels.base import Channel, DeliveryResult, OutboundMessage


class Recording(Channel):
    """A test channel kind that notes what it sent in ``sent``."""

    sent: ClassVar[list[Any]] = []


class RecordingWide(Recording):
    """A once-per-round channel kind that keeps what it was asked to send."""

    kind = "recording-wide"
    template_channel = "webhook"
    contact_field = None

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        RecordingWide.sent.append(message)
        return DeliveryResult.sent(f"page-{len(RecordingWide.sent)}")


class SlowChannel(Recording):
    """Takes longer than a 1.5 s lease to send; keeps every address it sent to."""

    kind = "slow-test"
    contact_field = "email"

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        await asyncio.sleep(2.5)  # the lease is 1.5 s
        SlowChannel.sent.append(message.to)
        return DeliveryResult.sent("slow")


class CrashingChannel(Recording):
    """Raises RuntimeError for ``BOOM`` once ``slow`` other sends are in flight, each waiting
    for ``gate``: they are still sending when the error comes. Call :meth:`arm` in the event
    loop that sends."""

    kind = "crashing-test"
    contact_field = "email"
    BOOM: ClassVar[str] = "boom@example.com"
    slow: ClassVar[int] = 0
    gate: ClassVar[asyncio.Event]
    waiting: ClassVar[asyncio.Event]  # every slow send is in flight

    @classmethod
    def arm(cls, slow: int) -> asyncio.Event:
        """Expect ``slow`` sends besides BOOM; returns the gate that lets them finish."""
        cls.slow, cls.gate, cls.waiting = slow, asyncio.Event(), asyncio.Event()
        return cls.gate

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        cls = CrashingChannel
        if message.to == cls.BOOM:
            await cls.waiting.wait()
            raise RuntimeError("the plugin tripped over its own feet")
        cls.slow -= 1
        if cls.slow == 0:
            cls.waiting.set()
        await cls.gate.wait()
        cls.sent.append(message.to)
        return DeliveryResult.sent(f"id-{message.delivery_id}")


def register(monkeypatch: pytest.MonkeyPatch, cls: type[Recording]) -> list[Any]:
    """Make ``cls`` a known kind for this test; returns its (emptied) record of sends."""
    cls.sent = []
    monkeypatch.setitem(registry._loaded, cls.kind, cls)
    return cls.sent
