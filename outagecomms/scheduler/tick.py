"""``tick``, the cron form of the daemon: do everything that is due now, send it, return."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from outagecomms.app import App
from outagecomms.outbox.dispatch import Dispatcher, DispatchSummary, Progress
from outagecomms.scheduler.due import DueResult, run_due


@dataclass
class TickResult:
    due: DueResult
    dispatch: DispatchSummary


async def tick(app: App, *, progress: Progress | None = None) -> TickResult:
    """The cron form: do everything that is due now, send it, return."""
    due = await asyncio.to_thread(run_due, app)  # it may email the commander (its own loop)
    async with Dispatcher(app) as d:
        summary = await d.run(progress=progress)
    return TickResult(due, summary)
