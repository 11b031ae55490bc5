"""Large fan-outs shared with spawned sender processes (one per core) over the same outbox."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.outbox.dispatch import Dispatcher, DispatchSummary, Progress, pending_count


def _worker_process(config_path: str | None, incident_id: int | None) -> dict[str, Any]:
    """Entry point of an extra sender process (spawned): same outbox, its own leases. It
    loads the same config (same file, same environment) rather than unpickling ours."""
    app = App.from_config(load_config(config_path))

    async def run() -> DispatchSummary:
        # Ctrl-C in the terminal reaches every process of the group: stop as the parent does
        with interrupted_by_sigint() as interrupt:
            return await dispatch_due(app, incident_id=incident_id, interrupt=interrupt)

    try:
        return asdict(asyncio.run(run()))
    finally:
        app.close()


@contextlib.contextmanager
def interrupted_by_sigint() -> Iterator[asyncio.Event]:
    """An event the first SIGINT (Ctrl-C) sets, in the running loop, instead of raising
    ``KeyboardInterrupt`` wherever the code happens to be (half-written results, futures
    nobody awaits). A second Ctrl-C interrupts as usual."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()

    def first() -> None:
        event.set()
        loop.remove_signal_handler(signal.SIGINT)  # the next one is KeyboardInterrupt again

    try:
        loop.add_signal_handler(signal.SIGINT, first)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        yield event
        return
    try:
        yield event
    finally:
        loop.remove_signal_handler(signal.SIGINT)


@dataclass(frozen=True)
class Interrupted:
    """A fan-out stopped by Ctrl-C: what this command sent and what the outbox still owes
    (a daemon or ``tick`` sends it)."""

    summary: DispatchSummary
    queued: int


async def dispatch_interruptible(
    app: App, *, incident_id: int | None = None, progress: Progress | None = None
) -> DispatchSummary | Interrupted:
    """``dispatch_parallel`` that Ctrl-C stops cleanly: no new send starts, the ones in
    flight (at most one per worker) end and are recorded, leases go back; then
    ``Interrupted`` says how many were sent and how many are queued."""
    with interrupted_by_sigint() as interrupt:
        summary = await dispatch_parallel(
            app, incident_id=incident_id, progress=progress, interrupt=interrupt
        )
    if not interrupt.is_set():
        return summary
    return Interrupted(summary, pending_count(app, incident_id))


def _ignore_sigint() -> None:
    """A sender process's start: Ctrl-C (the terminal signals the whole process group) is
    handled once its loop runs (``interrupted_by_sigint``), never as a traceback before."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def sender_processes(app: App) -> int:
    n = app.config.dispatch.processes or min(4, os.cpu_count() or 1)
    return max(1, n)


async def dispatch_parallel(
    app: App,
    *,
    incident_id: int | None = None,
    progress: Progress | None = None,
    interrupt: asyncio.Event | None = None,
) -> DispatchSummary:
    """Like ``dispatch_due``, but a large fan-out is shared with extra sender processes.

    Rendering and MIME building are CPU-bound Python, so one process saturates one core; the
    outbox's leases let several processes drain the same deliveries without sending any
    twice. Progress then comes from the store, which counts every process's results.
    """
    owed = pending_count(app, incident_id)
    procs = min(sender_processes(app), max(1, owed // max(1, app.config.dispatch.batch_size)))
    if procs <= 1 or owed < app.config.dispatch.parallel_min:
        return await dispatch_due(
            app, incident_id=incident_id, progress=progress, interrupt=interrupt
        )
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")  # never fork a process holding DB connections
    total = DispatchSummary()
    with ProcessPoolExecutor(
        max_workers=procs - 1, mp_context=ctx, initializer=_ignore_sigint
    ) as pool:
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
            total.add(await dispatch_due(app, incident_id=incident_id, interrupt=interrupt))
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
    app: App,
    *,
    incident_id: int | None = None,
    progress: Progress | None = None,
    interrupt: asyncio.Event | None = None,
) -> DispatchSummary:
    """One-shot: send everything due now, then close the channels (``interrupt``: see
    ``Dispatcher.run``)."""
    async with Dispatcher(app) as d:
        return await d.run(incident_id=incident_id, progress=progress, interrupt=interrupt)
