"""A window that runs past its end: the commander is reminded once at end + ``[maintenance]
grace``; at end + ``overrun_after`` an incident is declared for the window's own audience
(its selection), linked to the window, with the normal acknowledgement, promises and credits.

Both happen once however many schedulers run: the reminder is a versioned write of
``overrun_reminded_at`` before anything is sent (at most once, best effort, as the commander's
other notices), and the incident is linked to the window in the very transaction that declares
it (``commit_declare``'s ``on_commit``), so a crash leaves either both or neither. An incident
already open for those customers (the commander declared one) is linked instead of a second."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime

from sqlalchemy import Connection

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.channels.base import OutboundMessage, Outcome
from outagecomms.errors import DuplicateIncident, StateError
from outagecomms.models import MaintenanceWindow
from outagecomms.rendering.mime import sender_domain
from outagecomms.store import maintenance as mdb

log = logging.getLogger("outagecomms.maintenance")


def remind_commander(app: App, w: MaintenanceWindow, now: datetime) -> bool:
    """Once per window; True when this process took the reminder (sent or not)."""
    with app.store.write() as conn:
        if not mdb.update_window(conn, w.id, w.version, overrun_reminded_at=now):
            return False
    late = int((now - w.ends_at).total_seconds() // 60)
    text = (
        f"{w.ref} ({w.title}) was planned to end at {w.ends_at:%Y-%m-%d %H:%M} UTC and is not "
        f"complete ({late} min over). When it is: `outagecomms maintenance complete {w.ref}`."
    )
    if app.config.maintenance.overrun_after is not None:
        at = w.ends_at + app.config.maintenance.overrun_after
        text += f" At {at:%H:%M} UTC an incident is declared for its {w.audience_size} customers."
    log.warning("overrun: %s", text)
    _tell(app, w, f"[{w.ref}] maintenance overran its end", text)
    return True


def _tell(app: App, w: MaintenanceWindow, subject: str, text: str) -> None:
    """Best effort, on the commander channel, when the commander is an email address."""
    who = w.commander.strip()
    cfg = app.config.channels.get(app.config.daemon.commander_channel)
    if cfg is None or "@" not in who or " " in who:
        return
    cls = registry.get(cfg.kind)
    if cls.template_channel != "email":
        return
    channel = cls(cfg, app.config.company)
    domain = sender_domain(str(cfg.settings.get("from", "")))
    msg = OutboundMessage(
        delivery_id=0, to=who, to_name="Maintenance commander", subject=subject,
        text=text + "\n", html=None, message_id=f"<oc.cmd.{uuid.uuid4().hex}@{domain}>",
        headers={"X-Outagecomms-Maintenance": w.ref},
        data={"maintenance": w.ref, "kind": "commander", "message": text},
    )  # fmt: skip

    async def send() -> None:
        await channel.open()
        try:
            result = await channel.deliver(msg)
        finally:
            await channel.close()
        if result.outcome != Outcome.SENT:
            log.error("could not reach the commander of %s: %s", w.ref, result.error)

    asyncio.run(send())


def declare_overrun(app: App, w: MaintenanceWindow, now: datetime) -> str | None:
    """The incident for an overrun window (``INC-<n>``), or None when another scheduler did it
    first."""
    from outagecomms.incidents.lifecycle import commit_declare, plan_declare, refuse_duplicate

    cfg = app.config.maintenance
    assert cfg.overrun_after is not None
    plan = plan_declare(
        app,
        title=f"{w.title}: planned maintenance overran"[:200],
        severity=cfg.overrun_severity,
        selector=w.selector,
        message=(
            f"The planned maintenance {w.ref} was to end at {w.ends_at:%Y-%m-%d %H:%M} UTC and "
            "is still going on; we are sorry for the longer disruption."
        ),
        started_at=w.ends_at,
        commander=w.commander,
    )
    try:
        refuse_duplicate(plan)
    except DuplicateIncident:
        existing = plan.overlaps[0].incident  # the commander declared one already: link it
        with app.store.write() as conn:
            if not mdb.update_window(conn, w.id, w.version, incident_id=existing.id):
                return None
        return existing.ref

    def link(conn: Connection, incident_id: int) -> None:
        if not mdb.update_window(conn, w.id, w.version, incident_id=incident_id):
            raise StateError(f"{w.ref} changed meanwhile")  # rolls the declare back

    try:
        created = commit_declare(app, plan, on_commit=link, new=True)
    except StateError:
        return None
    return created.incident.ref
