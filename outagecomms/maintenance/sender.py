"""Sends maintenance notices (``maintenance_deliveries``) on the configured channels, as the
outbox's dispatcher does: claimed with a lease (a crashed sender's deliveries are taken again
once it lapses), rendered per customer, a stable Message-ID per delivery (a resend after a
crash carries the same one), each result written only under the lease it was claimed with.

An email of an announcement, update or cancellation carries the iCalendar invitation
(``maintenance.ical``) addressed to that customer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.channels.base import Channel, DeliveryResult, OutboundMessage, Outcome
from outagecomms.errors import OutageCommsError
from outagecomms.maintenance import ical, render
from outagecomms.models import Customer, MaintenanceNotice, MaintenanceWindow, NoticeKind
from outagecomms.outbox.dispatch import backoff
from outagecomms.rendering.mime import sender_domain
from outagecomms.store import customers as customers_db
from outagecomms.store import maintenance as mdb
from outagecomms.values import mask_url

log = logging.getLogger("outagecomms.maintenance")

#: the notices whose emails carry the invitation, and its iTIP method
CALENDAR_METHOD = {
    NoticeKind.ANNOUNCEMENT: "REQUEST",
    NoticeKind.UPDATE: "REQUEST",
    NoticeKind.CANCELLED: "CANCEL",
}


@dataclass
class SendSummary:
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    dead: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def message_id(delivery_id: int, window_id: int, seq: int, domain: str) -> str:
    return f"<oc.m{delivery_id}.mnt-{window_id}.n{seq}@{domain}>"


class MaintenanceSender:
    """``async with MaintenanceSender(app) as s: await s.send_due()``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.channels: dict[str, Channel] = {}

    async def __aenter__(self) -> MaintenanceSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        chans, self.channels = list(self.channels.values()), {}
        await asyncio.gather(*(c.close() for c in chans), return_exceptions=True)

    def next_due(self) -> datetime | None:
        with self.app.store.read() as conn:
            return mdb.next_pending_at(conn)

    async def send_due(self) -> SendSummary:
        """Send every maintenance delivery due now."""
        out = SendSummary()
        due = await asyncio.to_thread(self.next_due)
        if due is None or due > self.app.clock():
            return out  # nothing owed: no write transaction
        while True:
            batch = await asyncio.to_thread(self._claim)
            if batch is None:
                return out
            claims, windows, notices, customers = batch
            out.claimed += len(claims)
            results = await asyncio.gather(
                *(self._send(c, windows, notices, customers.get(c.customer_id)) for c in claims)
            )
            await asyncio.to_thread(self._record, claims, results, out)

    def _claim(
        self,
    ) -> (
        tuple[
            list[mdb.Claimed],
            dict[int, MaintenanceWindow],
            dict[int, MaintenanceNotice],
            dict[str, Customer],
        ]
        | None
    ):
        cfg = self.app.config.dispatch
        with self.app.store.write() as conn:
            claims = mdb.claim_deliveries(
                conn, now=self.app.clock(), lease=cfg.lease, limit=cfg.batch_size
            )
        if not claims:
            return None
        with self.app.store.read() as conn:
            windows = {m: mdb.get_window(conn, m) for m in {c.maintenance_id for c in claims}}
            notices = {n: mdb.get_notice(conn, n) for n in {c.notice_id for c in claims}}
            customers = customers_db.get_customers(conn, {c.customer_id for c in claims})
        return claims, windows, notices, customers

    def _record(
        self, claims: list[mdb.Claimed], results: list[DeliveryResult], out: SendSummary
    ) -> None:
        now = self.app.clock()
        cfg = self.app.config.dispatch
        with self.app.store.write() as conn:
            for claim, result in zip(claims, results, strict=True):
                error = mask_url(result.error) if result.error else None
                values: dict[str, Any] = {"last_error": error}
                if result.outcome == Outcome.SENT:
                    out.sent += 1
                    values.update(status="sent", sent_at=now, provider_id=result.provider_id)
                else:
                    key = (error or "error").split(":")[0][:80]
                    out.errors[key] = out.errors.get(key, 0) + 1
                    if result.outcome == Outcome.RETRY and claim.attempts < cfg.max_attempts:
                        out.retry += 1
                        delay = backoff(claim.attempts, cfg.retry_base, result.retry_after)
                        values.update(status="pending", next_attempt_at=now + delay)
                    elif result.outcome == Outcome.RETRY:
                        out.dead += 1
                        values.update(status="dead")
                    else:
                        out.failed += 1
                        values.update(status="failed")
                    log.warning(
                        "MNT-%d notice %d to %s on %s: %s",
                        claim.maintenance_id, claim.notice_id, claim.customer_id, claim.channel,
                        error,
                    )  # fmt: skip
                mdb.record_result(conn, claim, **values)

    async def _send(
        self,
        claim: mdb.Claimed,
        windows: dict[int, MaintenanceWindow],
        notices: dict[int, MaintenanceNotice],
        customer: Customer | None,
    ) -> DeliveryResult:
        if customer is None:
            return DeliveryResult.failed("customer is no longer in the directory")
        try:
            channel = await registry.open_channel(self.app.config, self.channels, claim.channel)
        except OutageCommsError as exc:
            return DeliveryResult.retry(f"channel {claim.channel!r} cannot open: {exc}")
        if channel is None:
            return DeliveryResult.failed(f"channel {claim.channel!r} is no longer configured")
        field_name = channel.contact_field
        contact = customer.contact(field_name) if field_name else ""
        if field_name and not contact:
            return DeliveryResult.failed(f"customer has no {field_name}")
        window, notice = windows[claim.maintenance_id], notices[claim.notice_id]
        renderer = self.app.renderer
        try:
            rendered = render.render(
                renderer,
                channel.template_channel,
                render.context(renderer, window, notice, customer),
            )
        except OutageCommsError as exc:
            return DeliveryResult.failed(str(exc))
        from_addr = str(channel.settings.get("from", ""))
        domain = sender_domain(from_addr)
        calendar, method = "", ""
        if channel.template_channel == "email" and notice.kind in CALENDAR_METHOD:
            method = CALENDAR_METHOD[notice.kind]
            org_name, org_email = parseaddr(from_addr)
            calendar = ical.invitation(
                maintenance_id=window.id, domain=domain, method=method,
                sequence=notice.sequence, starts_at=notice.starts_at, ends_at=notice.ends_at,
                summary=window.title, description=render.describe(renderer, window, notice, customer),
                organizer=org_email or f"noreply@{domain}", organizer_name=org_name,
                attendee=contact, attendee_name=customer.name, stamp=notice.created_at,
                timezone=customer.timezone, cancelled=notice.kind == NoticeKind.CANCELLED,
            )  # fmt: skip
        msg = OutboundMessage(
            # negative: never the id of an incident's delivery (a channel may key on it, as
            # apprise's per-process memory of the targets already told does)
            delivery_id=-claim.id,
            to=contact,
            to_name=customer.name,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id(claim.id, window.id, notice.seq, domain),
            headers={
                "X-Outagecomms-Maintenance": window.ref,
                "X-Outagecomms-Notice": f"{notice.seq} {notice.kind.value}",
                "X-Outagecomms-Customer": customer.id,
            },
            data={
                "maintenance": window.ref,
                "title": window.title,
                "kind": notice.kind.value,
                "status": window.status.value,
                "notice": notice.seq,
                "message": notice.message or window.message,
                "customer": customer.id,
                "components": list(window.components),
                "regions": list(window.regions),
                "starts_at": notice.starts_at.isoformat(),
                "ends_at": notice.ends_at.isoformat(),
                "sequence": notice.sequence,
            },
            calendar=calendar,
            calendar_method=method,
        )
        try:
            return await channel.deliver(msg)
        except OutageCommsError as exc:
            return DeliveryResult.failed(str(exc))
        except Exception as exc:  # a channel's own bug: a retry, logged for its author
            log.exception(
                "channel %r raised sending maintenance delivery %d", claim.channel, claim.id
            )
            return DeliveryResult.retry(f"{type(exc).__name__}: {exc}")


def send_now(app: App) -> SendSummary:
    """Send what is due from a CLI command (``maintenance schedule`` and the others)."""

    async def run() -> SendSummary:
        async with MaintenanceSender(app) as sender:
            return await sender.send_due()

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run())
    return SendSummary()
