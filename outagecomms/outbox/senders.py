"""Large fan-outs shared with spawned sender processes (one per core) over the same outbox."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.outbox.dispatch import Dispatcher, DispatchSummary, Progress, pending_count


def _worker_process(config_path: str | None, incident_id: int | None) -> dict[str, Any]:
    """Entry point of an extra sender process (spawned): same outbox, its own leases. It
    loads the same config (same file, same environment) rather than unpickling ours."""
    app = App.from_config(load_config(config_path))
    try:
        return asdict(asyncio.run(dispatch_due(app, incident_id=incident_id)))
    finally:
        app.close()


def sender_processes(app: App) -> int:
    n = app.config.dispatch.processes or min(4, os.cpu_count() or 1)
    return max(1, n)


async def dispatch_parallel(
    app: App, *, incident_id: int | None = None, progress: Progress | None = None
) -> DispatchSummary:
    """Like ``dispatch_due``, but a large fan-out is shared with extra sender processes.

    Rendering and MIME building are CPU-bound Python, so one process saturates one core; the
    outbox's leases let several processes drain the same deliveries without sending any
    twice. Progress then comes from the store, which counts every process's results.
    """
    owed = pending_count(app, incident_id)
    procs = min(sender_processes(app), max(1, owed // max(1, app.config.dispatch.batch_size)))
    if procs <= 1 or owed < app.config.dispatch.parallel_min:
        return await dispatch_due(app, incident_id=incident_id, progress=progress)
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")  # never fork a process holding DB connections
    total = DispatchSummary()
    with ProcessPoolExecutor(max_workers=procs - 1, mp_context=ctx) as pool:
        futures = [
            loop.run_in_executor(
                pool,
                _worker_process,
                str(app.config.path) if app.config.path else None,
                incident_id,
            )
            for _ in range(procs - 1)
        ]
        done = asyncio.Event()
        poller = asyncio.create_task(_poll_progress(app, incident_id, owed, progress, done))
        try:
            total.add(await dispatch_due(app, incident_id=incident_id))
            for result in await asyncio.gather(*futures):
                total.add(DispatchSummary(**result))
        finally:
            done.set()
            await poller
    return total


async def _poll_progress(
    app: App, incident_id: int | None, owed: int, progress: Progress | None, done: asyncio.Event
) -> None:
    if progress is None:
        await done.wait()
        return
    reported = 0
    while True:
        finished = owed - pending_count(app, incident_id)
        if finished > reported:
            progress(finished - reported, owed)
            reported = finished
        if done.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.2)


async def dispatch_due(
    app: App, *, incident_id: int | None = None, progress: Progress | None = None
) -> DispatchSummary:
    """One-shot: send everything due now, then close the channels."""
    async with Dispatcher(app) as d:
        return await d.run(incident_id=incident_id, progress=progress)
