"""Print each message (subject and text) to standard error: dry runs and demos."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import ClassVar

from outagecomms.channels.base import (
    Channel,
    DeliveryResult,
    KeySpec,
    OutboundMessage,
    ProbeResult,
)


class ConsoleChannel(Channel):
    kind = "console"
    template_channel = "email"
    contact_field = "email"
    max_connections = 1
    config_keys: ClassVar[dict[str, KeySpec]] = {}

    async def probe(self, contacts: Sequence[str] = ()) -> list[ProbeResult]:
        return [ProbeResult(target="standard error", ok=True, detail="prints each message")]

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        sys.stderr.write(
            f"--- to {message.to_name} <{message.to}> ---\nSubject: {message.subject}\n\n"
            f"{message.text}\n"
        )
        return DeliveryResult.sent(f"console:{message.delivery_id}")
