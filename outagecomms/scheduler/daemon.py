"""The long-running form: an APScheduler (3.x) scheduler whose jobs are derived from the store.

Jobs: ``reconcile`` (every ``daemon.reconcile_every``) re-reads the store and (re)schedules one
wake-up job for the earliest due moment (holding round, reminder, retry); the wake-up runs
``run_due`` and dispatches. A dispatch loop sends whatever the outbox owes, including rounds
queued by a CLI in another terminal. Nothing lives only in memory: kill -9 and restart, and
the jobs are rebuilt from the store.

On SQLite one daemon per database file is enforced with a lock file. SIGTERM/SIGINT stop
gracefully: the current batch finishes, leases still held are released. With systemd
``Type=notify`` the daemon reports READY=1 / STOPPING=1 on ``$NOTIFY_SOCKET``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from outagecomms.app import App
from outagecomms.errors import StateError
from outagecomms.logs import log_event
from outagecomms.maintenance.sender import MaintenanceSender
from outagecomms.outbox.dispatch import Dispatcher, DispatchSummary
from outagecomms.scheduler.due import next_send_at, next_wakeup, run_due
from outagecomms.scheduler.leadership import Leadership
from outagecomms.values import utcnow

log = logging.getLogger("outagecomms.daemon")


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(state.encode())


class DaemonLock:
    """One daemon per SQLite database file (an flock beside it)."""

    def __init__(self, db: Path):
        self.path = db.with_name(db.name + ".daemon.lock")
        self.fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            other = fh.read().strip() or "?"
            fh.close()
            raise StateError(
                f"another daemon (pid {other}) is already running on {self.path.with_suffix('')}; "
                "SQLite allows one daemon per database file"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self.fh = fh

    def release(self) -> None:
        if self.fh:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


async def _set(event: asyncio.Event) -> None:
    """A job: wake a loop up. Jobs are coroutines, run on the event loop (an ``asyncio.Event``
    is not thread-safe: set from APScheduler's thread pool it need not wake the loop)."""
    event.set()


async def _notify(state: str) -> None:
    sd_notify(state)


class _Jobs(AsyncIOExecutor):  # type: ignore[misc]  # APScheduler 3 has no types
    """The scheduler's executor. Shutting down cancels the jobs submitted but not yet run (a
    wake-up falling due as SIGTERM arrives): that is the daemon stopping, not a job failing,
    so it is not logged as ``Error running job ... CancelledError``."""

    _stopping = False

    def shutdown(self, wait: bool = True) -> None:
        self._stopping = True
        super().shutdown(wait)

    def _run_job_error(self, job_id: str, exc: BaseException, traceback: Any = None) -> None:
        if self._stopping and isinstance(exc, asyncio.CancelledError):
            return
        super()._run_job_error(job_id, exc, traceback)


def new_scheduler() -> AsyncIOScheduler:
    """The daemon's APScheduler: UTC, coalescing, one instance of a job at a time, and an
    executor that stops quietly (:class:`_Jobs`)."""
    return AsyncIOScheduler(
        timezone="UTC",
        executors={"default": _Jobs()},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )


class Daemon:
    """Runs the scheduler and the dispatch loop until ``stop`` is set (or ``until()`` is true)."""

    def __init__(
        self,
        app: App,
        *,
        until: Callable[[], bool] | None = None,
        on_event: Callable[[str], None] | None = None,
        reconcile_every: timedelta | None = None,
        http: str | None = None,
    ):
        self.app = app
        self.http = http if http is not None else app.config.daemon.http
        self.until = until
        self.on_event = on_event  # None: events go to the log (as JSON fields where JSON)
        self.reconcile_every = min(
            reconcile_every or app.config.daemon.reconcile_every, app.config.daemon.leader_lease / 3
        )
        self.stop = asyncio.Event()
        self.kick = asyncio.Event()  # something may be owed: dispatch
        self.wake = asyncio.Event()  # something may be due: run_due
        self.dispatcher = Dispatcher(app)
        self.maintenance = MaintenanceSender(app)
        self._reopen_channels = False
        self.leadership = Leadership(app.store, app.config.daemon.leader_lease)
        self.last_tick: datetime | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.sent = DispatchSummary()

    def _event(self, event: str, message: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(message)
        else:
            log_event(log, event, message, **fields)

    def reload(self) -> None:
        """SIGHUP: re-read the config file and the templates; a bad config keeps the old one."""
        from outagecomms.config.loader import load_config
        from outagecomms.errors import OutageCommsError
        from outagecomms.rendering.templates import Renderer

        try:
            config = load_config(self.app.config.path)
        except OutageCommsError as exc:
            self._event("reload_refused", f"reload refused, keeping the running config: {exc}")
            return
        self.app.config = config
        self.app.renderer = Renderer(
            company=config.company,
            user_dir=config.templates_dir,
            locale_dir=config.locale_dir,
            public_url=config.daemon.public_url,
            names=config.names,
            limits=config.template_limits,
        )
        self._reopen_channels = True  # between two dispatch runs, never mid-batch
        self.kick.set()
        self.wake.set()
        self._event("reloaded", "reloaded config and templates")

    def _schedule_wakeup(self) -> None:
        """(Re)arm the APScheduler date jobs: ``wakeup`` (run_due) at the earliest moment a
        scheduler decision falls due, ``send`` (the dispatch loop) when the outbox next owes a
        send. Kept apart so that a long fan-out (pending sends due now) does not spin the
        scheduler's decisions while the dispatcher works through it."""
        assert self.scheduler is not None
        self._arm("wakeup", next_wakeup(self.app, include_pending=False), self.wake)
        send_at = next_send_at(self.app)
        if send_at is not None and send_at > self.app.clock():
            self._arm("send", send_at, self.kick)  # a retry's time
        else:
            self._arm("send", None, self.kick)
            if send_at is not None:
                self.kick.set()  # owed now: the dispatch loop takes it (again) as it can

    def _arm(self, job: str, when: datetime | None, event: asyncio.Event) -> None:
        assert self.scheduler is not None
        if when is None:
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(job)
            return
        self.scheduler.add_job(
            _set,
            DateTrigger(run_date=max(when, utcnow())),
            args=[event],
            id=job,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    async def _woken(self, event: asyncio.Event) -> bool:
        """Wait for ``event`` and take it; False once the daemon is stopping."""
        if self.stop.is_set():
            return False
        await event.wait()
        event.clear()
        return not self.stop.is_set()

    async def _due_loop(self) -> None:
        """Runs what is due each time a job wakes us; APScheduler only says when."""
        while await self._woken(self.wake):
            if not self._lead():
                self._schedule_wakeup()
                continue  # a follower only dispatches; the leader decides what is due
            due = await asyncio.to_thread(run_due, self.app)
            self.last_tick = utcnow()
            for h in due.holding:
                self._event("holding_queued", f"holding update queued: {h}", round=h)
            for r in due.reminders:
                self._event("reminder_sent", f"reminder sent to the commander of {r}", incident=r)
            for f in due.follow_ups:
                self._event("follow_up_queued", f"follow-up queued: {f}", round=f)
            for m in due.maintenance_reminders:
                self._event("maintenance_reminder", f"maintenance reminder queued: {m}", window=m)
            for m in due.maintenance_started:
                self._event("maintenance_started", f"maintenance started: {m}", window=m)
            for m in due.maintenance_incidents:
                self._event("maintenance_overrun", f"maintenance overran: {m}", window=m)
            for e in due.errors:
                self._event("error", f"ERROR {e}")
            self.kick.set()
            self._schedule_wakeup()

    def status(self) -> dict[str, Any]:
        """For ``/healthz`` and ``/metrics``: leader or follower, and when the scheduler last ran."""
        return {
            "role": "leader" if self.leadership.leader else "follower",
            "leader": self.leadership.leader,
            "last_tick": self.last_tick.isoformat() if self.last_tick else None,
            "pid": os.getpid(),
        }

    def _lead(self) -> bool:
        was = self.leadership.leader
        now = self.leadership.check()
        if now != was:
            self._event(
                "leadership",
                "became the scheduling leader" if now else "lost the scheduling leadership",
                leader=now,
            )
            if now:
                self.wake.set()  # take over every open promise at once
        return now

    async def _reconcile(self) -> None:
        """Notice what other processes changed: new incidents, updates, queued rounds."""
        if self.until is not None and self.until():
            self.stop.set()
            return
        self._lead()
        self._schedule_wakeup()
        self.kick.set()

    async def _dispatch_loop(self) -> None:
        while await self._woken(self.kick):
            if self._reopen_channels:
                self._reopen_channels = False
                await self.dispatcher.close()  # reopened lazily with the reloaded settings
                await self.maintenance.close()
            summary = await self.dispatcher.run(stop=self.stop)
            planned = await self.maintenance.send_due()
            if planned.claimed:
                self._event(
                    "maintenance_dispatched",
                    f"maintenance notices: {planned.sent} sent, {planned.retry} to retry, "
                    f"{planned.failed + planned.dead} failed",
                    claimed=planned.claimed,
                    sent=planned.sent,
                )
                self._schedule_wakeup()
            if summary.claimed:
                self.sent.add(summary)
                self._event(
                    "dispatched",
                    f"dispatched {summary.claimed}: {summary.sent} sent, {summary.retry} to retry, "
                    f"{summary.failed} failed, {summary.dead} dead",
                    claimed=summary.claimed,
                    sent=summary.sent,
                    retry=summary.retry,
                    failed=summary.failed,
                    dead=summary.dead,
                )
                if summary.dead:
                    self.wake.set()  # the scheduler tells the commander now, not at its next job
                self._schedule_wakeup()

    async def run(self) -> DispatchSummary:
        if self.http:
            from outagecomms.recovery.feedback import feedback_secret
            from outagecomms.web.bind import parse_bind

            feedback_secret(self.app)  # fail at start, not at the first click
            parse_bind(self.http)
        from outagecomms.inbound.service import InboundService

        # Always: the inbound send loop (what `inbound ingest` or the Twilio webhook queued,
        # retries) and process_pending at start; the listeners and the mailbox when configured,
        # first: a taken port stops the daemon before anything else started.
        inbound = InboundService(
            self.app, stop=self.stop, event=self._event, on_processed=self.kick.set
        )
        await inbound.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        self.scheduler = new_scheduler()
        self.scheduler.add_job(
            self._reconcile,
            IntervalTrigger(seconds=self.reconcile_every.total_seconds()),
            id="reconcile",
            replace_existing=True,
        )
        watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        if watchdog_usec > 0:
            # systemd WatchdogSec: tell it we are alive twice per interval
            self.scheduler.add_job(
                _notify, IntervalTrigger(seconds=watchdog_usec / 2e6), args=["WATCHDOG=1"],
                id="watchdog", replace_existing=True,
            )  # fmt: skip
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.scheduler.start()
        tasks = [asyncio.create_task(self._dispatch_loop()), asyncio.create_task(self._due_loop())]
        if self.http:
            from outagecomms.web.server import serve_http

            http_task = asyncio.create_task(serve_http(self.app, self.http, self.stop, self.status))

            # A listener that cannot start (port taken) stops the daemon with its error.
            def _on_done(t: asyncio.Task[None]) -> None:
                if not t.cancelled() and t.exception() is not None:
                    self.stop.set()

            http_task.add_done_callback(_on_done)
            tasks.append(http_task)
            self._event("http", f"feedback links served on http://{self.http}")
        # Everything open in the store is picked up at start: overdue promises first.
        self.wake.set()
        sd_notify("READY=1")
        self._event("ready", "daemon ready")
        try:
            await self.stop.wait()
        finally:
            sd_notify("STOPPING=1")
            self.scheduler.shutdown(wait=False)
            self.kick.set()
            self.wake.set()
            _, late = await asyncio.wait(tasks, timeout=30)
            for task in late:
                task.cancel()
            failed = [
                exc
                for t in tasks
                if t.done() and not t.cancelled() and (exc := t.exception()) is not None
            ]
            await inbound.close()
            self.leadership.release()
            released = self.dispatcher.release()
            await self.dispatcher.close()
            await self.maintenance.close()
            if released:
                self._event(
                    "released",
                    f"released {released} in-flight deliveries for another sender",
                    released=released,
                )
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        if failed:
            raise failed[0]  # e.g. ConfigError: daemon.http port taken
        return self.sent


def run_daemon(app: App, **kwargs: Any) -> DispatchSummary:
    """Run the daemon in the foreground (blocking), holding the SQLite daemon lock."""
    lock = DaemonLock(app.store.sqlite_path) if app.store.sqlite_path else None
    if lock:
        lock.acquire()
    try:
        return asyncio.run(Daemon(app, **kwargs).run())
    finally:
        if lock:
            lock.release()


def follow(app: App, incident_id: int, *, on_event: Callable[[str], None]) -> None:
    """Run the scheduler and the senders in this process until the incident is resolved and
    owes nothing more (``declare --follow``: one terminal, no daemon needed)."""
    from outagecomms.outbox.dispatch import pending_count
    from outagecomms.store import incidents as incidents_db

    def settled() -> bool:
        with app.store.read() as conn:
            inc = incidents_db.get_incident(conn, incident_id).incident
        return not inc.is_open and pending_count(app, incident_id) == 0

    asyncio.run(Daemon(app, until=settled, on_event=on_event).run())
