"""Write each email into a local Maildir instead of sending it: demos, dry runs, tests."""

from __future__ import annotations

import mailbox
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from outagecomms.channels.base import Channel, DeliveryResult, KeySpec, OutboundMessage
from outagecomms.mime import build_email, check_from


class MaildirChannel(Channel):
    kind = "maildir"
    template_channel = "email"
    contact_field = "email"
    max_connections = 1
    config_keys: ClassVar[dict[str, KeySpec]] = {
        "path": ("path", "maildir"),
        "from": (str, "Support <support@example.com>"),
    }

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        return check_from(settings["from"])

    async def open(self) -> None:
        root = Path(self.settings["path"])
        for sub in ("tmp", "new", "cur"):  # Maildir() only creates them for a new folder
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.box = mailbox.Maildir(self.settings["path"], create=True)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if not hasattr(self, "box"):
            await self.open()
        try:
            data = build_email(
                message, from_addr=self.settings["from"], reply_to=self.company.support_email
            )
        except ValueError as exc:
            return DeliveryResult.failed(str(exc))
        try:
            key = self.box.add(data)
        except OSError as exc:
            return DeliveryResult.retry(f"cannot write to maildir: {exc}")
        return DeliveryResult.sent(key)
