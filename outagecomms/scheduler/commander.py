"""Telling the incident commander (not customers): reminders before a promise falls due, and
that a holding update went out because no update was posted.

The commander is reached on the internal channel ``[daemon] commander_channel``: an email-kind
channel (default ``email``) when ``--commander`` is an email address, or a chat channel (slack,
teams, webhook) posting to the incident room whose webhook URL is in the environment variable
``[daemon] commander_webhook_env``. Always in the store's events (``show``), the daemon's log
and ``watch``. Delivery to the commander is best effort: a failure is
recorded as an event and never stops the customers' messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.channels.base import OutboundMessage, Outcome, round_data
from outagecomms.errors import OutageCommsError
from outagecomms.models import Incident
from outagecomms.rendering.mime import sender_domain
from outagecomms.store import incidents as incidents_db

log = logging.getLogger("outagecomms.commander")


def commander_address(inc: Incident) -> str | None:
    who = inc.commander.strip()
    return who if "@" in who and " " not in who else None


def notify_commander(app: App, inc: Incident, subject: str, text: str) -> bool:
    """Tell the commander on the commander channel (email to their address, or a post to the
    incident room); False when there is nowhere to send. Must not be called from inside a
    running event loop (the scheduler runs it in a worker thread)."""
    name = app.config.daemon.commander_channel
    cfg = app.config.channels.get(name)
    if cfg is None:
        return False
    cls = registry.get(cfg.kind)
    if cls.template_channel == "email":
        to = commander_address(inc)
    else:
        var = app.config.daemon.commander_webhook_env
        to = (os.environ.get(var) or None) if var else None
    if to is None or cls.contact_field is None:
        return False
    channel = cls(cfg, app.config.company)
    msg = OutboundMessage(
        delivery_id=0, to=to, to_name="Incident commander", subject=subject, text=text + "\n", html=None,
        message_id=f"<oc.cmd.{uuid.uuid4().hex}@{sender_domain(str(cfg.settings.get('from', '')))}>",
        headers={"X-Outagecomms-Incident": inc.ref},
        # for a webhook-kind room: the same shape as a round, kind "commander"
        data=round_data(
            inc, status=inc.status.value, kind="commander", seq=0, message=text, customer="",
            promised_next_by=inc.next_update_due,
        ),
    )  # fmt: skip

    async def send() -> bool:
        await channel.open()
        try:
            result = await channel.deliver(msg)
        finally:
            await channel.close()
        if result.outcome != Outcome.SENT:
            where = to if cls.template_channel == "email" else f"the {name} room"
            raise OutageCommsError(f"could not reach the commander at {where}: {result.error}")
        return True

    try:
        return asyncio.run(send())
    except OutageCommsError as exc:
        log.warning("%s", exc)
        with app.store.write() as conn:
            incidents_db.add_event(conn, inc.id, app.clock(), "error", str(exc))
        return False
