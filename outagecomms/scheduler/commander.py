"""Telling the incident commander (not customers): reminders before a promise falls due, and
that a holding update went out because no update was posted.

The commander is reached on the internal channel ``[daemon] commander_channel``: an email-kind
channel (default ``email``) when ``--commander`` is an email address, or a chat channel (slack,
teams, webhook) posting to the incident room whose webhook URL is in the environment variable
``[daemon] commander_webhook_env``. Always in the store's events (``show``), the daemon's log
and ``watch``. Delivery to the commander is best effort: a failure never stops the customers'
messages. It is recorded as an event, and since the commander did not hear it (often because
the commander's channel is the very channel that is broken), the notice itself goes to the log
at error level (the event ``commander_unreachable``) and the process's health
(``App.health``, check ``commander``) is degraded until a notice gets through: the daemon's
``/healthz`` then answers 503 with the reason, so monitoring sees it.
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
from outagecomms.logs import log_event
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
        sent = asyncio.run(send())
    except OutageCommsError as exc:
        unreachable(app, inc, name, subject, text, str(exc))
        return False
    app.health.ok("commander")
    return sent


def unreachable(app: App, inc: Incident, channel: str, subject: str, text: str, error: str) -> None:
    """A notice the commander did not get: in the store's events, in the log at error level
    with the notice itself, and in the process's health (``/healthz`` degraded)."""
    now = app.clock()
    log_event(
        log,
        "commander_unreachable",
        f"{error}; the notice was: {subject}: {' '.join(text.split())}",
        level=logging.ERROR,
        incident=inc.ref,
        channel=channel,
        subject=subject,
        text=text,
        error=error,
    )
    app.health.fail("commander", f"{inc.ref}: {error} (channel {channel}; notice: {subject})", now)
    with app.store.write() as conn:
        incidents_db.add_event(conn, inc.id, now, "error", error)
