"""Sends what an inbound message caused (``inbound_sends``): escalations, acknowledgements and
``respond``'s answers, on the configured channels, with a lease (a crashed sender's rows are
taken again when it runs out) and a growing delay between attempts. Channels stay open between
calls, so the daemon reaches an account manager's mail server in milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.channels.base import Channel, DeliveryResult, OutboundMessage, Outcome
from outagecomms.errors import OutageCommsError
from outagecomms.rendering.mime import sender_domain
from outagecomms.store import inbound as inbound_db

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("outagecomms.inbound")

LEASE = timedelta(seconds=60)
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=5)


def retry_delay(attempts: int) -> timedelta:
    delay: timedelta = FIRST_RETRY * (2 ** max(0, min(attempts, 20)))
    return min(delay, MAX_RETRY)


class InboundSender:
    """``async with InboundSender(app) as s: await s.send_due()``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.channels: dict[str, Channel] = {}
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> InboundSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        chans, self.channels = list(self.channels.values()), {}
        await asyncio.gather(*(c.close() for c in chans), return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def next_due(self) -> datetime | None:
        with self.app.store.read() as conn:
            return inbound_db.next_send_due(conn)

    async def send_due(self) -> int:
        """Send everything due now; how many were sent."""
        sent = 0
        due = await asyncio.to_thread(self.next_due)
        if due is None or due > self.app.clock():
            return 0  # nothing owed: no write transaction (tick runs this every minute)
        while True:
            now = self.app.clock()
            rows = await asyncio.to_thread(self._claim, now)
            if not rows:
                return sent
            results = await asyncio.gather(*(self._send(r) for r in rows))
            await asyncio.to_thread(self._record, rows, results)
            sent += sum(1 for r in results if r.outcome == Outcome.SENT)

    def _claim(self, now: datetime) -> list[dict[str, Any]]:
        with self.app.store.write() as conn:
            return inbound_db.claim_sends(conn, now, LEASE)

    def _record(self, rows: list[dict[str, Any]], results: list[DeliveryResult]) -> None:
        now = self.app.clock()
        cap = self.app.config.dispatch.max_attempts
        with self.app.store.write() as conn:
            for row, result in zip(rows, results, strict=True):
                if result.outcome == Outcome.SENT:
                    inbound_db.finish_send(conn, row["id"], status="sent", at=now)
                elif result.outcome == Outcome.RETRY and row["attempts"] + 1 < cap:
                    delay = retry_delay(row["attempts"])
                    if result.retry_after:
                        delay = max(delay, timedelta(seconds=result.retry_after))
                    inbound_db.finish_send(
                        conn,
                        row["id"],
                        status="pending",
                        at=now,
                        error=result.error,
                        next_attempt_at=now + delay,
                    )
                else:
                    inbound_db.finish_send(
                        conn, row["id"], status="failed", at=now, error=result.error
                    )
                    log.warning(
                        "an inbound %s (send %d) could not be sent on %s: %s",
                        row["kind"],
                        row["id"],
                        row["channel"],
                        result.error,
                    )

    async def _channel(self, name: str) -> Channel | None:
        return await registry.open_channel(self.app.config, self.channels, name)

    async def _send(self, row: dict[str, Any]) -> DeliveryResult:
        try:
            if row["channel"] == "http":
                return await self._post(row["to"], row)
            channel = await self._channel(row["channel"])
            if channel is None:
                return DeliveryResult.failed(f"channel {row['channel']!r} is not configured")
            to = row["to"]
            if to.startswith("env:"):
                to = os.environ.get(to[4:], "")
                if not to:
                    return DeliveryResult.failed(f"${row['to'][4:]} is not set")
            domain = sender_domain(str(channel.settings.get("from", "")))
            msg = OutboundMessage(
                delivery_id=0,
                to=to,
                to_name="",
                subject=row["subject"],
                text=row["text"],
                html=None,
                message_id=row["message_id"] or f"<oc.in{row['id']}.{row['kind']}@{domain}>",
                headers=dict(row["headers"] or {}),
                data={"kind": row["kind"], "text": row["text"], "subject": row["subject"]},
            )
            return await channel.deliver(msg)
        except OutageCommsError as exc:
            return DeliveryResult.retry(str(exc))
        except Exception as exc:  # a channel's own bug: retried, logged for its author
            log.exception("sending inbound %s %d raised", row["kind"], row["id"])
            return DeliveryResult.retry(f"{type(exc).__name__}: {exc}")

    async def _post(self, url: str, row: dict[str, Any]) -> DeliveryResult:
        import httpx  # ~140 ms: only when a webhook is told (tick imports this module)

        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        body = {
            "event": f"reply_{row['kind']}",
            "incident": f"INC-{row['incident_id']}" if row["incident_id"] else None,
            "customer": row["customer_id"],
            "subject": row["subject"],
            "text": row["text"],
        }
        try:
            resp = await self._http.post(
                url, json=body, headers={"Idempotency-Key": f"oc-in-{row['id']}"}
            )
        except httpx.HTTPError as exc:
            return DeliveryResult.retry(f"{type(exc).__name__}: {exc}")
        if resp.status_code < 300:
            return DeliveryResult.sent()
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            return DeliveryResult.retry(f"HTTP {resp.status_code}")
        return DeliveryResult.failed(f"HTTP {resp.status_code}")


def send_due_now(app: App) -> int:
    """Send what is due from a CLI (``inbound ingest``, ``respond``); how many were sent."""

    async def run() -> int:
        async with InboundSender(app) as sender:
            return await sender.send_due()

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run())
    return 0
