"""``tick``, the cron form of the daemon: do everything that is due now, send it, return."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from outagecomms.app import App
from outagecomms.maintenance.sender import MaintenanceSender, SendSummary
from outagecomms.outbox.dispatch import Dispatcher, DispatchSummary, Progress
from outagecomms.outbox.redelivery import report_dead
from outagecomms.scheduler.due import DueResult, run_due


@dataclass
class TickResult:
    due: DueResult
    dispatch: DispatchSummary
    #: inbound messages stored but not yet processed (a crash), processed now
    inbound_processed: int = 0
    #: escalations, acknowledgements and answers sent (``inbound_sends``)
    inbound_sent: int = field(default=0)
    #: scheduled maintenance's notices sent (``maintenance.sender``)
    maintenance: SendSummary = field(default_factory=SendSummary)

    @property
    def unsent(self) -> int:
        """Deliveries this tick left unsent: failed, to be retried, or dead (``tick`` exits 3)."""
        m = self.maintenance
        return (
            self.dispatch.failed
            + self.dispatch.retry
            + self.dispatch.dead
            + m.failed
            + m.retry
            + m.dead
        )

    @property
    def errors(self) -> dict[str, int]:
        """Everything that went wrong, error text -> how many: what the scheduler could not do
        (each once) and the deliveries' errors (how many got each)."""
        merged = dict(self.dispatch.errors)
        for k, v in self.maintenance.errors.items():
            merged[k] = merged.get(k, 0) + v
        for e in self.due.errors:
            merged[e] = merged.get(e, 0) + 1
        return merged


async def tick(app: App, *, progress: Progress | None = None) -> TickResult:
    """The cron form: do everything that is due now, send it, return."""
    from outagecomms.inbound.pipeline import process_pending
    from outagecomms.inbound.sender import InboundSender

    due = await asyncio.to_thread(run_due, app)  # it may email the commander (its own loop)
    processed = await asyncio.to_thread(process_pending, app)
    async with InboundSender(app) as inbound:
        inbound_sent = await inbound.send_due()
    async with Dispatcher(app) as d:
        summary = await d.run(progress=progress)
    async with MaintenanceSender(app) as m:
        maintenance = await m.send_due()
    if summary.dead:  # the commander hears of them now, not at the next tick
        due.dead_reported += await asyncio.to_thread(report_dead, app)
    return TickResult(
        due, summary, inbound_processed=processed, inbound_sent=inbound_sent,
        maintenance=maintenance,
    )  # fmt: skip
