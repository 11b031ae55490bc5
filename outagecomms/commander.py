"""Telling the incident commander (not customers): reminders before a promise falls due, and
that a holding update went out because no update was posted.

The commander is reached on the internal channel ``[daemon] commander_channel`` (an email-kind
channel, default ``email``) when ``--commander`` is an email address; always in the store's
events (``show``) and the daemon's log. Delivery to the commander is best effort: a failure is
recorded as an event and never stops the customers' messages.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.channels.base import OutboundMessage, Outcome
from outagecomms.errors import OutageCommsError
from outagecomms.mime import sender_domain
from outagecomms.models import Incident
from outagecomms.store import repository as repo

log = logging.getLogger("outagecomms.commander")


def commander_address(inc: Incident) -> str | None:
    who = inc.commander.strip()
    return who if "@" in who and " " not in who else None


def notify_commander(app: App, inc: Incident, subject: str, text: str) -> bool:
    """Email the commander (when they have an address and the channel exists). Must not be
    called from inside a running event loop (the scheduler runs it in a worker thread)."""
    to = commander_address(inc)
    name = app.config.daemon.commander_channel
    cfg = app.config.channels.get(name)
    if to is None or cfg is None:
        return False
    cls = registry.get(cfg.kind)
    if cls.template_channel != "email":
        return False
    channel = cls(cfg, app.config.company)
    msg = OutboundMessage(
        delivery_id=0, to=to, to_name="Incident commander", subject=subject, text=text + "\n", html=None,
        message_id=f"<oc.cmd.{uuid.uuid4().hex}@{sender_domain(str(cfg.settings.get('from', '')))}>",
        headers={"X-Outagecomms-Incident": inc.ref},
    )  # fmt: skip

    async def send() -> bool:
        await channel.open()
        try:
            result = await channel.deliver(msg)
        finally:
            await channel.close()
        if result.outcome != Outcome.SENT:
            raise OutageCommsError(f"could not reach the commander at {to}: {result.error}")
        return True

    try:
        return asyncio.run(send())
    except OutageCommsError as exc:
        log.warning("%s", exc)
        with app.store.write() as conn:
            repo.add_event(conn, inc.id, app.clock(), "error", str(exc))
        return False
