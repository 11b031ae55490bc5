"""Write each email into a local Maildir instead of sending it: demos, dry runs, tests.

The folder is created when the channel opens, or at the first delivery when it could not be
then. A folder that cannot be created or written (a file in the way, a full or read-only
disk) is a ``retry`` naming the maildir, like an SMTP server that is down: never an exception
out of ``open`` or ``deliver``, which would stop a whole dispatch run.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

from outagecomms.channels.base import DeliveryResult, KeySpec, OutboundMessage, ProbeResult
from outagecomms.channels.email_base import EmailChannel
from outagecomms.files import PRIVATE_MODE
from outagecomms.rendering.mime import build_email


class PrivateMaildir(mailbox.Maildir):
    """A Maildir whose messages are ``0600`` whatever the umask (they hold a customer's
    address and, in a follow-up, feedback links): each file is narrowed while still empty, in
    ``tmp/``, before the message is written and moved to ``new/``."""

    def _create_tmp(self) -> IO[Any]:
        fh: IO[Any] = super()._create_tmp()  # type: ignore[misc]
        os.fchmod(fh.fileno(), PRIVATE_MODE)
        return fh


class MaildirChannel(EmailChannel):
    kind = "maildir"
    max_connections = 1
    config_keys: ClassVar[dict[str, KeySpec]] = {
        "path": ("path", "maildir"),
        **EmailChannel.from_key,
    }
    box: PrivateMaildir | None = None

    def _box(self) -> mailbox.Maildir:
        """The Maildir, created on first use; OSError when it cannot be."""
        if self.box is None:
            root = Path(self.settings["path"])
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            for sub in ("tmp", "new", "cur"):  # Maildir() only creates them for a new folder
                (root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
            self.box = PrivateMaildir(root, create=True)
        return self.box

    async def open(self) -> None:
        with contextlib.suppress(OSError):  # each delivery will say why, as a retry
            self._box()

    async def probe(self, contacts: Sequence[str] = ()) -> list[ProbeResult]:
        """The folder exists (or can be created) and is writable; nothing is written to it."""
        root = Path(self.settings["path"])
        target = f"maildir {root}"
        try:
            self._box()
        except OSError as exc:
            return [ProbeResult(target=target, ok=False, detail=f"cannot create it: {exc}")]
        if not all(os.access(root / sub, os.W_OK) for sub in ("tmp", "new")):
            return [ProbeResult(target=target, ok=False, detail="not writable")]
        return [ProbeResult(target=target, ok=True, detail="writable")]

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            data = build_email(
                message, from_addr=self.settings["from"], reply_to=self.company.support_email
            )
        except ValueError as exc:
            return DeliveryResult.failed(str(exc))
        try:
            key = self._box().add(data)
        except OSError as exc:
            return DeliveryResult.retry(f"cannot write to maildir: {exc}")
        return DeliveryResult.sent(key)
