"""The Python API: ``outagecomms.App``, the one object a script holds.

It is the application context (``outagecomms.app.App``: config, store, renderer, clock) with
the commander's verbs as methods. Each method validates like the CLI does (the same library
functions run underneath), names incidents with anything ``IncidentRef.parse`` accepts
(``"INC-7"``, ``7``, an ``Incident``), returns a frozen result and raises only the
``OutageCommsError`` tree. Sending is synchronous (``send`` runs the dispatcher to completion);
``send_async`` is the same for code that already runs an event loop::

    with outagecomms.App.open("outagecomms.toml") as app:
        app.import_customers("customers.csv")
        res = app.declare("Login failing", severity="sev2", components=["auth"])
        app.update(res.incident, "Cause found: an expired certificate.", status="identified")
        app.resolve(res.incident, "We renewed the certificate; logins work again.")
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Unpack

from outagecomms import app as context
from outagecomms.directory.importer import ImportResult, import_file
from outagecomms.directory.views import CustomerRow, list_customers
from outagecomms.errors import InputError
from outagecomms.incidents import lifecycle
from outagecomms.incidents.lifecycle import DeclarePlan, RoundCreated
from outagecomms.incidents.views import (
    IncidentDetail,
    IncidentSummary,
    WatchRow,
    list_incidents,
    show_incident,
    watch_snapshot,
)
from outagecomms.models import Incident, IncidentRef, RefLike, Round, Selector, SelectorArgs
from outagecomms.outbox.deliveries import DeliveryRow, list_deliveries
from outagecomms.outbox.dispatch import DispatchSummary, Progress
from outagecomms.values import as_utc, parse_duration, parse_time
from outagecomms.workspace.channel_checks import ChannelsReport

if TYPE_CHECKING:
    from outagecomms.inbound.pipeline import Processed
    from outagecomms.inbound.respond import Response
    from outagecomms.maintenance.views import MaintenanceWatchRow

#: how a round reaches customers: ``True`` queue and send now, ``"queue"`` queue only (a daemon
#: or ``tick`` sends), ``False`` record only (history: nothing is sent, now or later)
SendMode = bool | Literal["queue"]


@dataclass(frozen=True, kw_only=True)
class RoundOutcome:
    """What a verb did: the incident as it now stands, its new round, the deliveries queued
    for that round and, when sent at once, how the sending went."""

    incident: Incident
    round: Round
    queued: int
    sent: DispatchSummary | None  # None unless ``send=True``


@dataclass(frozen=True, kw_only=True)
class Declared(RoundOutcome):
    """``declare``'s outcome; ``plan`` says who was (or, on a dry run, would be) told what."""

    plan: DeclarePlan
    dry_run: bool  # nothing written: ``incident`` and ``round`` are the plan's (id 0)


def _send_mode(send: SendMode) -> SendMode:
    if send is True or send is False or send == "queue":
        return send
    raise InputError(
        "use True (send now), 'queue' or False (record only)", field="send", value=send
    )


class App(context.App):
    """The application context with the commander's verbs; open it with ``App.open(path)``
    (or ``App.from_config(config)``) and close it (or use ``with``)."""

    # --- the directory ---------------------------------------------------------------------

    def import_customers(
        self,
        path: str | Path,
        *,
        fmt: str | None = None,
        replace: bool = False,
        allow_mixed_script: bool = False,
        yes: bool = False,
    ) -> ImportResult:
        """Import a CSV, JSON or JSONL directory: all rows or none (``replace`` removes the
        customers not in the file; those of an open incident's audience only with ``yes``;
        ``allow_mixed_script`` accepts look-alike email domains)."""
        return import_file(
            self, Path(path), fmt=fmt, replace=replace, allow_mixed_script=allow_mixed_script,
            yes=yes,
        )  # fmt: skip

    def customers(self, **selector: Unpack[SelectorArgs]) -> list[CustomerRow]:
        """The customers a selector matches (the same selectors as ``declare``; none: all)."""
        return list_customers(self, Selector.of(**selector))

    # --- declare / update / resolve --------------------------------------------------------

    def declare(
        self,
        title: str,
        *,
        severity: str,
        every: timedelta | str | None = None,
        started_at: datetime | str | None = None,
        message: str | None = None,
        commander: str | None = None,
        dry_run: bool = False,
        send: SendMode = True,
        new: bool = False,
        allow_short_cadence: bool = False,
        credits: bool = False,
        **selector: Unpack[SelectorArgs],
    ) -> Declared:
        """Declare an incident and acknowledge every affected customer at once, selected by
        ``components``, ``regions``, ``tiers``, ``tags``, ``customers`` and ``exclude``.

        ``every`` is the promised update cadence (default: the severity's policy; below its
        ``min_update_every`` only with ``allow_short_cadence``);
        ``started_at`` when customers were first hurt (ISO 8601, ``-15m`` or a datetime;
        default now). ``dry_run`` plans and pre-flights the templates but writes nothing
        (``plan.overlaps`` lists the open incidents it would repeat). A declare that sends is
        refused with ``DuplicateIncident`` when an open incident already covers the outage
        (``outagecomms.incidents.overlap``), unless ``new``. ``send=False`` records history:
        its resolution proposes no credits or goodwill unless ``credits``."""
        mode = _send_mode(send)
        plan = lifecycle.plan_declare(
            self,
            title=title,
            severity=severity,
            selector=Selector.of(**selector),
            every=self._duration(every, "every"),
            message=message or "",
            started_at=self._time(started_at, "started_at"),
            commander=commander or "",
            allow_short_cadence=allow_short_cadence,
        )
        if dry_run:
            return Declared(
                incident=plan.incident, round=plan.round, queued=0, sent=None, plan=plan,
                dry_run=True,
            )  # fmt: skip
        # send="queue": a daemon sends, with its own environment's secrets
        created = lifecycle.commit_declare(
            self,
            plan,
            send=mode is not False,
            verify_secrets=mode is True,
            new=new,
            credits=credits,
        )
        out = self._sent(created, mode)
        return Declared(
            incident=out.incident, round=out.round, queued=out.queued, sent=out.sent, plan=plan,
            dry_run=False,
        )  # fmt: skip

    def update(
        self,
        incident: RefLike,
        message: str,
        *,
        status: str | None = None,
        every: timedelta | str | None = None,
        send: SendMode = True,
        allow_short_cadence: bool = False,
    ) -> RoundOutcome:
        """Post the commander's update to the whole audience; the cadence restarts from now.
        ``status``: investigating, identified or monitoring; ``every``: a new cadence (below
        the policy's ``min_update_every`` only with ``allow_short_cadence``)."""
        every_ = self._duration(every, "every")
        return self._round(
            send,
            lambda write: lifecycle.post_update(
                self,
                incident,
                message,
                status=status,
                every=every_,
                send=write,
                verify_secrets=send is True,
                allow_short_cadence=allow_short_cadence,
            ),
        )

    def resolve(
        self,
        incident: RefLike,
        message: str,
        *,
        resolved_at: datetime | str | None = None,
        send: SendMode = True,
        credits: bool = False,
    ) -> RoundOutcome:
        """Send the resolution notice (with each customer's proposed credit) and stop the
        updates. ``resolved_at``: when service was restored (default now). Recorded history
        (``send=False`` here or at ``declare``) proposes no credits unless ``credits``."""
        at = self._time(resolved_at, "resolved_at")
        return self._round(
            send,
            lambda write: lifecycle.resolve(
                self,
                incident,
                message,
                resolved_at=at,
                send=write,
                verify_secrets=send is True,
                credits=credits,
            ),
        )

    def void(self, incident: RefLike, reason: str, *, send: SendMode = True) -> RoundOutcome:
        """Take back a false alarm or a duplicate: nothing more is promised or credited, and
        those already told get a short "please disregard" notice carrying ``reason``."""
        from outagecomms.incidents import corrections

        return self._round(
            send,
            lambda write: corrections.void(
                self, incident, reason, send=write, verify_secrets=send is True
            ),
        )

    def reopen(
        self,
        incident: RefLike,
        message: str,
        *,
        every: timedelta | str | None = None,
        back_at: datetime | str | None = None,
        send: SendMode = True,
        allow_short_cadence: bool = False,
    ) -> RoundOutcome:
        """The outage came back after ``resolve``: the audience hears it, the cadence resumes
        (``every``, else the incident's), and the next ``resolve`` computes downtime and credits
        over both spans. ``back_at``: when it came back (default now)."""
        from outagecomms.incidents import corrections

        every_ = self._duration(every, "every")
        back = self._time(back_at, "back_at")
        return self._round(
            send,
            lambda write: corrections.reopen(
                self, incident, message, every=every_, back_at=back, send=write,
                verify_secrets=send is True, allow_short_cadence=allow_short_cadence,
            ),
        )  # fmt: skip

    def edit(
        self,
        incident: RefLike,
        *,
        title: str | None = None,
        severity: str | None = None,
        started_at: datetime | str | None = None,
        resolved_at: datetime | str | None = None,
        confirm: bool = False,
        send_corrections: bool = False,
    ) -> Incident:
        """Correct an incident's facts; proposed credits are recomputed, nothing is sent.
        A change to a credit that was approved or that a customer was told raises
        ``CreditChangesNeedConfirmation`` (its ``changes``: before/after) unless ``confirm``;
        ``send_corrections`` then queues a correction to each customer whose announced
        amount changed (``send`` delivers it)."""
        return lifecycle.edit(
            self, incident, title=title, severity=severity,
            started_at=self._time(started_at, "started_at"),
            resolved_at=self._time(resolved_at, "resolved_at"),
            confirm=confirm, send_corrections=send_corrections,
        ).incident  # fmt: skip

    # --- sending ---------------------------------------------------------------------------

    def send(
        self, incident: RefLike | None = None, *, progress: Progress | None = None
    ) -> DispatchSummary:
        """Send what the outbox owes now (one incident's deliveries, or every incident's) and
        return when done. Not from inside a running event loop: await ``send_async`` there."""
        return asyncio.run(self.send_async(incident, progress=progress))

    async def send_async(
        self, incident: RefLike | None = None, *, progress: Progress | None = None
    ) -> DispatchSummary:
        """``send`` for code that already runs an event loop. ``progress(n, total)`` is
        called as deliveries finish."""
        from outagecomms.outbox.senders import dispatch_due, dispatch_parallel

        iid = IncidentRef.parse(incident).id if incident is not None else None
        # Extra sender processes load the config from its file: one built in code has none.
        fan_out = dispatch_parallel if self.config.path else dispatch_due
        return await fan_out(self, incident_id=iid, progress=progress)

    def run_daemon(
        self,
        *,
        until: Callable[[], bool] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> DispatchSummary:
        """Run the scheduler and the dispatcher in the foreground (as ``outagecomms daemon``
        does) until SIGTERM/SIGINT or until ``until()`` is true; ``on_event`` hears what the
        scheduler does. Returns what it sent."""
        from outagecomms.scheduler.daemon import run_daemon

        return run_daemon(self, until=until, on_event=on_event)

    # --- seeing ----------------------------------------------------------------------------

    def incidents(self, *, include_resolved: bool = False) -> list[IncidentSummary]:
        """Open incidents (with ``include_resolved``, resolved ones too)."""
        return list_incidents(self, include_resolved=include_resolved)

    def show(self, incident: RefLike, *, customer: str | None = None) -> IncidentDetail:
        """An incident's rounds, promises kept and history; with ``customer``, exactly what
        that customer was sent."""
        return show_incident(self, incident, customer=customer)

    def deliveries(self, incident: RefLike, *, status: str | None = None) -> list[DeliveryRow]:
        """An incident's deliveries (the outbox), optionally only those in one status."""
        return list_deliveries(self, incident, status=status)

    def watch(self, incident: RefLike | None = None) -> list[WatchRow]:
        """The live dashboard's data: each open incident's fan-out and next promise."""
        return watch_snapshot(self, incident)

    def watch_maintenance(self) -> list[MaintenanceWatchRow]:
        """The dashboard's maintenance panel: scheduled and in-progress windows, each with its
        next reminder and its notices' deliveries (apart from ``watch``'s incident rows)."""
        from outagecomms.maintenance.views import watch_windows

        return watch_windows(self)

    def credits(self, incident: RefLike) -> dict[str, Any]:
        """The service credits proposed at resolution (``credits --json``)."""
        from outagecomms.recovery.ledger import credits_report

        return credits_report(self, IncidentRef.parse(incident).id)

    # --- what customers send back ------------------------------------------------------------

    def ingest(
        self, raw: bytes, *, source: str = "pipe", recipients: Sequence[str] = ()
    ) -> Processed:
        """Store one RFC 5322 message (a reply, auto-reply or bounce), then classify it, match
        it to the delivery it answers and act on it (escalate, acknowledge, fall back).
        Raises ``StoreUnavailable`` when it cannot be stored now. What it queued is sent by the
        daemon, ``tick``, or :meth:`send_inbound`."""
        from outagecomms.inbound.pipeline import ingest

        return ingest(self, raw, source=source, recipients=recipients)

    def ingest_sms(self, *, sender: str, to: str, body: str, message_sid: str) -> Processed:
        """An inbound text message (Twilio's webhook calls this): matched by the number."""
        from outagecomms.inbound.pipeline import ingest_sms

        return ingest_sms(self, sender=sender, to=to, body=body, message_sid=message_sid)

    def replies(
        self,
        incident: RefLike | None = None,
        *,
        label: str | None = None,
        kind: str | None = None,
        unmatched: bool = False,
    ) -> list[dict[str, Any]]:
        """What customers sent back about an incident (or, ``unmatched``, attributed to
        nobody), oldest first (``replies --json``'s rows, as stored)."""
        from outagecomms.inbound.views import list_replies

        rows, _ = list_replies(self, incident, label=label, kind=kind, unmatched=unmatched)
        return rows

    def respond(self, incident: RefLike, customer: str, message: str, *, by: str = "") -> Response:
        """A personal answer to a customer who wrote, on their channel, threaded; sent now
        (when the channel takes it) and recorded."""
        from outagecomms.inbound.respond import respond
        from outagecomms.inbound.sender import send_due_now

        resp = respond(self, incident, customer, message, by=by)
        send_due_now(self)
        return resp

    def send_inbound(self) -> int:
        """Send the escalations, acknowledgements and answers that are due; how many."""
        from outagecomms.inbound.sender import send_due_now

        return send_due_now(self)

    # --- checking ---------------------------------------------------------------------------

    def check_channels(self, *, probe: bool = True) -> ChannelsReport:
        """What ``doctor`` checks of the channels: the secrets the daemon needs are set and
        (with ``probe``) every channel answers a probe that sends nothing to anyone. Must not
        be called from inside a running event loop."""
        from outagecomms.workspace.channel_checks import check_channels

        return check_channels(self, probe=probe)

    # --- helpers ---------------------------------------------------------------------------

    def _round(self, send: SendMode, post: Callable[[bool], RoundCreated]) -> RoundOutcome:
        """Write a round with ``post`` (its deliveries too unless ``send`` is False), then send
        or queue them as ``send`` says."""
        mode = _send_mode(send)
        return self._sent(post(mode is not False), mode)

    def _sent(self, created: RoundCreated, mode: SendMode) -> RoundOutcome:
        summary = self.send(created.incident) if mode is True and created.queued else None
        return RoundOutcome(
            incident=created.incident, round=created.round, queued=created.queued, sent=summary
        )

    def _duration(self, value: timedelta | str | None, name: str) -> timedelta | None:
        if value is None or isinstance(value, timedelta):
            return value
        return parse_duration(value, field=name)

    def _time(self, value: datetime | str | None, name: str) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return as_utc(value)  # a naive datetime means UTC, as on the command line
        return parse_time(value, now=self.clock(), field=name)
