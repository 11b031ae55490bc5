"""``tick``, the cron form of the daemon: do everything that is due now, send it, return."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from outagecomms.app import App
from outagecomms.outbox.dispatch import Dispatcher, DispatchSummary, Progress
from outagecomms.outbox.redelivery import report_dead
from outagecomms.scheduler.due import DueResult, run_due


@dataclass
class TickResult:
    due: DueResult
    dispatch: DispatchSummary

    @property
    def unsent(self) -> int:
        """Deliveries this tick left unsent: failed, to be retried, or dead (``tick`` exits 3)."""
        return self.dispatch.failed + self.dispatch.retry + self.dispatch.dead

    @property
    def errors(self) -> dict[str, int]:
        """Everything that went wrong, error text -> how many: what the scheduler could not do
        (each once) and the deliveries' errors (how many got each)."""
        merged = dict(self.dispatch.errors)
        for e in self.due.errors:
            merged[e] = merged.get(e, 0) + 1
        return merged


async def tick(app: App, *, progress: Progress | None = None) -> TickResult:
    """The cron form: do everything that is due now, send it, return."""
    due = await asyncio.to_thread(run_due, app)  # it may email the commander (its own loop)
    async with Dispatcher(app) as d:
        summary = await d.run(progress=progress)
    if summary.dead:  # the commander hears of them now, not at the next tick
        due.dead_reported += await asyncio.to_thread(report_dead, app)
    return TickResult(due, summary)
