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


def register(monkeypatch: pytest.MonkeyPatch, cls: type[Recording]) -> list[Any]:
    """Make ``cls`` a known kind for this test; returns its (emptied) record of sends."""
    cls.sent = []
    monkeypatch.setitem(registry._loaded, cls.kind, cls)
    return cls.sent
