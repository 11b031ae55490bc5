"""The daemon's inbound half: the SMTP/LMTP listeners, the IMAP poller, processing what they
stored, and the inbound send loop (escalations, acknowledgements, responses).

Kept out of ``scheduler/daemon.py`` so the daemon only starts and stops it. The order of
events for one message is: stored (durable; the listener answers 250) → queued, and processed
with whatever else was stored meanwhile by ``pipeline.process_many`` in a worker thread
(classify, match, queue what to send) → the send loop is kicked and
``InboundSender.send_due()`` sends at once. The loop also wakes at ``next_due()`` (a retry's
time). At start ``process_pending`` picks up what a crash left between the 250 and the
processing. Nothing of a message's text is reported: ids, kinds, labels and counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from outagecomms.app import App
from outagecomms.errors import StoreUnavailable
from outagecomms.inbound.listeners import Event, InboundHandler, log_only, start_listener, where

#: after a failed processing or send run, try again this much later
RETRY_AFTER = 5.0
#: the longest the send loop sleeps without a kick (it re-reads ``next_due`` then)
MAX_NAP = 60.0
#: threads storing for the listeners (a 250 waits on one, never behind a message's processing):
#: SQLite takes one writer at a time, more threads only wait in its busy handler (measured: 1
#: thread answers more 250s than 2 or 4); PostgreSQL takes concurrent inserts
STORE_THREADS = {"sqlite": 1}
STORE_THREADS_DEFAULT = 4
#: stored messages are processed in batches of at most this many (``pipeline.process_many``),
#: one batch at a time: batching, not threads, is what scales (the GIL), and one writer does not
#: contend for SQLite's write lock with itself; what waits is already durable
BATCH = 100
PROCESS_THREADS = 1


async def _first(*events: asyncio.Event, timeout: float | None) -> None:
    """Return when any of ``events`` is set or ``timeout`` seconds have passed."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


class InboundService:
    """Started by every daemon (the send loop and ``process_pending`` always; the listeners and
    the mailbox when ``[inbound]`` names them); ``close()`` at stop."""

    def __init__(
        self,
        app: App,
        *,
        stop: asyncio.Event,
        event: Event = log_only,
        on_processed: Callable[[], None] | None = None,
    ):
        self.app = app
        self.stop = stop
        self.event = event
        #: the daemon's dispatcher kick: a bounced message resent on another channel is the
        #: outbox's (kicked only then: a dispatcher run per reply would cost for nothing)
        self.on_processed = on_processed
        self.kick = asyncio.Event()  # a message was processed: something may be owed
        self.servers: list[asyncio.Server] = []
        self.handlers: list[InboundHandler] = []
        self.poller: Any = None  # imap.ImapPoller
        self.tasks: list[asyncio.Task[Any]] = []
        self.queue: list[int] = []  # stored, to be processed
        self.wanted = asyncio.Event()  # the queue is not empty
        self.processed = 0
        self.sent = 0
        self._retry_pending = False
        self.store_pool = ThreadPoolExecutor(
            STORE_THREADS.get(app.store.dialect, STORE_THREADS_DEFAULT),
            thread_name_prefix="inbound-store",
        )
        self.process_pool = ThreadPoolExecutor(
            PROCESS_THREADS, thread_name_prefix="inbound-process"
        )
        #: a process of its own for processing when the listeners are on (``inbound.worker``)
        self.worker: Any = None

    async def start(self) -> None:
        """Listen and watch. A listener that cannot bind raises ``ConfigError`` (naming
        ``inbound.smtp`` / ``inbound.lmtp``) with nothing left open."""
        cfg = self.app.config.inbound
        try:
            for key, bind, lmtp in (("inbound.smtp", cfg.smtp, False), ("inbound.lmtp", cfg.lmtp, True)):  # fmt: skip
                if not bind:
                    continue
                server, handler = await start_listener(
                    self.app, bind, key=key, on_stored=self.stored, lmtp=lmtp, event=self.event,
                    executor=self.store_pool,
                )  # fmt: skip
                self.servers.append(server)
                self.handlers.append(handler)
                self.event(
                    "inbound_listening", f"{handler.source.upper()} listener on {bind}",
                    source=handler.source, bind=bind,
                )  # fmt: skip
            if cfg.imap_url_env:
                from outagecomms.inbound.imap import ImapPoller

                loop = asyncio.get_running_loop()

                def from_thread(inbound_id: int) -> None:
                    loop.call_soon_threadsafe(self.stored, inbound_id)

                self.poller = ImapPoller.from_config(
                    self.app, on_stored=from_thread, event=self.event
                )
                self.tasks.append(asyncio.create_task(asyncio.to_thread(self.poller.run)))
        except BaseException:
            await self.close()
            raise
        from outagecomms.inbound import worker

        if worker.wanted(self.app):
            self.worker = worker.ProcessWorker(str(self.app.config.path))
            self.worker.config = self.app.config  # the config its process loaded
            self.tasks.append(asyncio.create_task(self._start_worker()))
        self.tasks.append(asyncio.create_task(self._recover()))
        self.tasks.append(asyncio.create_task(self._process_loop()))
        self.tasks.append(asyncio.create_task(self._send_loop()))
        # a text the Twilio webhook (this daemon's HTTP listener) processed: send what it queued
        self.app.inbound_kick = self.kick.set

    # --- processing -------------------------------------------------------------------------

    def stored(self, inbound_id: int) -> None:
        """A message is durable (called on the event loop): queue it for the processing loop."""
        self.queue.append(inbound_id)
        self.wanted.set()

    async def _process_loop(self) -> None:
        """Process what the listeners stored, in batches: whatever arrived while the previous
        batch ran (up to ``BATCH``) goes to ``process_many`` together (one read and one write
        transaction), so the busier it gets, the cheaper each message."""
        while True:
            await _first(self.wanted, self.stop, timeout=None)
            if self.stop.is_set():
                return  # the rest is stored: process_pending takes it at the next start
            self.wanted.clear()
            batch, self.queue = self.queue[:BATCH], self.queue[BATCH:]
            if self.queue:
                self.wanted.set()
            if batch:
                await self._process(batch)

    async def _start_worker(self) -> None:
        try:
            await self.worker.start()
        except Exception as exc:  # processing stays in this process's threads
            self.event(
                "inbound_error", f"ERROR the inbound worker process did not start ({where(exc)})"
            )
            self.worker = None
            return
        self.event(
            "inbound_worker", f"inbound messages processed by worker process {self.worker.pid}",
            pid=self.worker.pid,
        )  # fmt: skip

    async def _process(self, batch: list[int]) -> None:
        from outagecomms.inbound import pipeline

        try:
            if self.worker is not None:
                if self.worker.config is not self.app.config:
                    # SIGHUP reloaded the config: the next batch goes to a new worker that
                    # reads it (rules, templates, scorer), after the one in hand finished
                    await asyncio.to_thread(self.worker.close)
                    self.worker.config = self.app.config
                    self.event("inbound_worker", "inbound worker restarted for the reloaded config")
                done = await self.worker.process(batch)
            else:
                done = await asyncio.get_running_loop().run_in_executor(
                    self.process_pool, pipeline.process_many, self.app, batch
                )
        except Exception as exc:
            # left "received": process_pending takes them after a pause (and at every start)
            what = "store unavailable" if isinstance(exc, StoreUnavailable) else where(exc)
            self.event(
                "inbound_error", f"ERROR processing {len(batch)} inbound failed ({what})",
                inbound=batch[:20],
            )  # fmt: skip
            self._recover_later()
            return
        self._report(done)
        self.kick.set()
        if any(d.resent_on for d in done) and self.on_processed is not None:
            self.on_processed()  # a bounce resent on another channel: the outbox owes it now

    def _report(self, done: list[Any]) -> None:
        """One line per batch: counts by kind and label, never a message's text."""
        if not done:
            return
        self.processed += len(done)
        kinds = Counter(f"{d.kind or 'unknown'}" + (f" {d.label}" if d.label else "") for d in done)
        escalated = sum(1 for d in done if d.escalated)
        unmatched = sum(1 for d in done if d.customer_id is None)
        parts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        self.event(
            "inbound_processed",
            f"processed {len(done)} inbound: {parts}; {escalated} escalated, {unmatched} unmatched",
            count=len(done), kinds=dict(kinds), escalated=escalated, unmatched=unmatched,
            ids=[d.id for d in done][:20],
        )  # fmt: skip

    def _recover_later(self) -> None:
        if self._retry_pending or self.stop.is_set():
            return
        self._retry_pending = True
        self.tasks.append(asyncio.create_task(self._recover(delay=RETRY_AFTER)))

    async def _recover(self, delay: float = 0.0) -> None:
        """``process_pending``: what was stored and not processed (a crash, a failure)."""
        from outagecomms.inbound import pipeline

        if delay:
            await _first(self.stop, timeout=delay)
            self._retry_pending = False
            if self.stop.is_set():
                return
        try:
            n = await asyncio.get_running_loop().run_in_executor(
                self.process_pool, pipeline.process_pending, self.app
            )
        except Exception as exc:
            self.event("inbound_error", f"ERROR processing pending inbound failed ({where(exc)})")
            self._recover_later()
            return
        if n:
            self.processed += n
            self.event("inbound_recovered", f"processed {n} inbound stored before", count=n)
            self.kick.set()
            if self.on_processed is not None:
                self.on_processed()

    # --- sending ----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        from outagecomms.inbound.sender import InboundSender

        sender = InboundSender(self.app)
        try:
            while not self.stop.is_set():
                try:
                    due = await asyncio.to_thread(sender.next_due)
                except Exception as exc:
                    self.event("inbound_error", f"ERROR inbound next_due failed ({where(exc)})")
                    due = None
                nap = MAX_NAP
                if due is not None:
                    nap = min(MAX_NAP, max(0.0, (due - self.app.clock()).total_seconds()))
                if nap > 0:
                    await _first(self.kick, self.stop, timeout=nap)
                if self.stop.is_set():
                    break
                self.kick.clear()
                try:
                    n = await sender.send_due()
                except Exception as exc:
                    self.event("inbound_error", f"ERROR inbound send failed ({where(exc)})")
                    await _first(self.stop, timeout=RETRY_AFTER)
                    continue
                self.sent += n
                if n:
                    self.event("inbound_sent", f"inbound: sent {n}", sent=n)
                elif nap == 0:
                    # due now yet nothing went: do not spin on it
                    await _first(self.kick, self.stop, timeout=1.0)
        finally:
            with contextlib.suppress(Exception):
                await sender.close()

    # --- stopping ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening and watching, let processing in flight finish, close the senders."""
        if self.app.inbound_kick == self.kick.set:
            self.app.inbound_kick = None
        for server in self.servers:
            server.close()
        if self.poller is not None:
            self.poller.stop()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self.kick.set()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=30)
            for task in late:
                task.cancel()
        self.store_pool.shutdown(wait=False, cancel_futures=True)
        self.process_pool.shutdown(wait=False, cancel_futures=True)
        if self.worker is not None:
            await asyncio.to_thread(self.worker.close)  # after the batch in hand
