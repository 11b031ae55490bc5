"""Sending what the outbox owes: claim deliveries with a lease, render, send, record.

Any process can dispatch (the CLI right after declare/update, the daemon, ``tick``); leases
make sure each delivery has one sender at a time, and a crashed sender's lease simply runs
out so another picks the delivery up. A resend reuses the delivery's Message-ID."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.channels.base import (
    Channel,
    DeliveryResult,
    OutboundMessage,
    Outcome,
    round_data,
)
from outagecomms.directory.audience import split_channel
from outagecomms.errors import OutageCommsError
from outagecomms.inbound.tokens import reply_address
from outagecomms.models import ROUND_WIDE, Customer, DeliveryStatus, Incident, Round, RoundKind
from outagecomms.recovery import feedback, ledger
from outagecomms.rendering.mime import sender_domain
from outagecomms.rendering.templates import ACCOUNT_MANAGER_TEMPLATES, Rendered
from outagecomms.store import credits as credits_db
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.store import threads as threads_db
from outagecomms.values import mask_url

Progress = Callable[[int, int], None]  # (done in this step, total known so far)


MAX_BACKOFF = timedelta(minutes=15)


FEEDBACK_LINK_LIFETIME = timedelta(days=30)


log = logging.getLogger("outagecomms.dispatch")


#: how long results wait for others to share their write (group commit); a worker sends its
#: next delivery only once its last result is written
GROUP_WAIT = 0.003


@dataclass
class DispatchSummary:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retry: int = 0
    dead: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> int:
        return self.failed + self.retry + self.dead

    def add(self, other: DispatchSummary) -> None:
        for k in ("claimed", "sent", "failed", "retry", "dead"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v


def _describe(exc: BaseException) -> str:
    """An unexpected exception as a delivery's error: its type and message."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def owner_prefix() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def message_id(delivery_id: int, incident: Incident, rnd: Round, domain: str) -> str:
    """Stable per delivery: a resend after a crash carries the same Message-ID."""
    return f"<oc.{delivery_id}.{incident.ref.lower()}.r{rnd.seq}@{domain}>"


def thread_headers(root_message_id: str) -> dict[str, str]:
    """A later message of an incident answers the customer's acknowledgement, so mail
    clients keep one thread per incident (the subject keeps the same stem too)."""
    return {"In-Reply-To": root_message_id, "References": root_message_id}


def backoff(attempts: int, base: timedelta, retry_after: float | None) -> timedelta:
    delay: timedelta = min(base * (2 ** max(0, attempts - 1)), MAX_BACKOFF)
    delay = delay * random.uniform(0.5, 1.0)  # full jitter keeps retries from marching together
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


class Dispatcher:
    """Claims and sends due deliveries. Use as ``async with Dispatcher(app) as d``."""

    def __init__(self, app: App, *, owner: str | None = None):
        self.app = app
        self.owner = owner or owner_prefix()
        self._claims = 0
        self.channels: dict[str, Channel] = {}
        self._incidents: dict[int, Incident] = {}
        self._rounds: dict[int, Round] = {}
        self._domains: dict[str, str] = {}
        self._credits: dict[tuple[int, str], dict[str, Any] | None] = {}
        self._retrying: dict[int, dict[str, int]] = {}  # incident -> error kind -> count
        self._latest: dict[int, Round | None] = {}  # holding round -> the news it restates
        self._acks: dict[int, Round | None] = {}  # incident -> its acknowledgement round
        # (incident, customer, channel) -> the acknowledgement delivery: the thread's root
        self._roots: dict[tuple[int, str, str], int] = {}
        self._looked_up: set[tuple[int, str]] = set()  # (incident, customer) roots read

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        chans, self.channels = list(self.channels.values()), {}
        await asyncio.gather(*(c.close() for c in chans), return_exceptions=True)

    async def _channel(self, name: str) -> Channel | None:
        return await registry.open_channel(self.app.config, self.channels, name)

    def release(self) -> int:
        """Give back whatever this dispatcher still holds (graceful shutdown)."""
        with self.app.store.write() as conn:
            return outbox_db.release_leases(conn, self.owner)

    async def run(
        self,
        *,
        incident_id: int | None = None,
        progress: Progress | None = None,
        stop: asyncio.Event | None = None,
        interrupt: asyncio.Event | None = None,
    ) -> DispatchSummary:
        """Send every delivery that is due now until none is left (see :class:`_Run`).
        ``stop``: claim no more batches (the claimed ones are still sent). ``interrupt``
        (Ctrl-C): start no more sends at all; the sends in flight (at most one per worker) end
        and are recorded, and the rest of the claimed batch goes back to the outbox."""
        return await _Run(
            self, incident_id=incident_id, progress=progress, stop=stop, interrupt=interrupt
        ).run()

    def _claim(
        self, incident_id: int | None
    ) -> tuple[str, list[outbox_db.Claimed], dict[str, Customer]]:
        app = self.app
        cfg = app.config.dispatch
        self._claims += 1
        token = f"{self.owner}:{self._claims}"
        with app.store.write() as conn:
            claimed = outbox_db.claim_deliveries(
                conn,
                owner=token,
                now=app.clock(),
                lease=cfg.lease,
                limit=cfg.batch_size,
                incident_id=incident_id,
                not_owner_prefix=self.owner + ":",
            )
        if not claimed:
            return token, [], {}
        with app.store.read() as conn:
            customers = customers_db.customers_for_incidents(
                conn, {c.incident_id for c in claimed}, (c.customer_id for c in claimed)
            )
            missing_rounds = {c.round_id for c in claimed} - set(self._rounds)
            self._rounds.update(incidents_db.get_rounds(conn, missing_rounds))
            for iid in {c.incident_id for c in claimed}:
                # Re-read per batch: status and resolution time feed the templates.
                self._incidents[iid] = incidents_db.get_incident(conn, iid).incident
            for c in claimed:
                if self._rounds[c.round_id].kind in (RoundKind.RESOLUTION, RoundKind.CREDIT):
                    key = (c.incident_id, c.customer_id)
                    if key not in self._credits:
                        self._credits[key] = credits_db.customer_credit(conn, *key)
            self._load_references(conn, claimed)
        return token, claimed, customers

    def _load_references(self, conn: Connection, claimed: list[outbox_db.Claimed]) -> None:
        """What the claimed messages refer back to: a holding round's latest news, and each
        later message's acknowledgement (the root of that customer's thread)."""
        later: dict[int, set[str]] = {}
        for c in claimed:
            rnd = self._rounds[c.round_id]
            if rnd.kind == RoundKind.HOLDING and rnd.id not in self._latest:
                self._latest[rnd.id] = threads_db.latest_news(conn, c.incident_id, rnd.seq)
            if rnd.kind != RoundKind.ACKNOWLEDGEMENT:
                later.setdefault(c.incident_id, set()).add(c.customer_id)
        for iid, customer_ids in later.items():
            if iid not in self._acks:
                self._acks[iid] = threads_db.acknowledgement(conn, iid)
            ack = self._acks[iid]
            wanted = {x for x in customer_ids if (iid, x) not in self._looked_up}
            if ack is not None and wanted:
                found = threads_db.acknowledgement_deliveries(conn, ack, wanted)
                self._roots.update({(iid, *k): v for k, v in found.items()})
                self._looked_up.update((iid, x) for x in wanted)

    def _result_row(
        self,
        claim: outbox_db.Claimed,
        result: DeliveryResult,
        content: bytes | None,
        summary: DispatchSummary,
        contact: str = "",
    ) -> dict[str, Any]:
        now = self.app.clock()
        cfg = self.app.config.dispatch
        # an error quoting a URL (a webhook's, an Apprise target's) keeps its password unsaid
        error = mask_url(result.error) if result.error else result.error
        row: dict[str, Any] = {"id": claim.id, "last_error": error}
        if result.outcome == Outcome.SENT:
            summary.sent += 1
            row.update(
                status=DeliveryStatus.SENT.value,
                sent_at=now,
                provider_id=result.provider_id,
                content=content,
            )
            return row
        key = (error or "error").split(":")[0][:80]
        summary.errors[key] = summary.errors.get(key, 0) + 1
        if result.outcome == Outcome.RETRY:
            retry_at = now + backoff(claim.attempts, cfg.retry_base, result.retry_after)
            next_round = self._next_round_start(claim)
            if next_round is not None and retry_at >= next_round:
                # A retry then would arrive after the next round has started, which carries
                # newer news (and the promise): give up now, visibly, rather than send a stale
                # message.
                summary.dead += 1
                row.update(
                    status=DeliveryStatus.DEAD.value,
                    last_error=f"{error}; no retry: the next round starts at "
                    f"{next_round:%H:%M:%S} UTC",
                )
            elif claim.attempts < cfg.max_attempts:
                summary.retry += 1
                row.update(status=DeliveryStatus.PENDING.value, next_attempt_at=retry_at)
                per = self._retrying.setdefault(claim.incident_id, {})
                per[key] = per.get(key, 0) + 1
            else:
                summary.dead += 1
                row.update(status=DeliveryStatus.DEAD.value)
            return row
        summary.failed += 1
        row.update(status=DeliveryStatus.FAILED.value)
        if result.flag_contact and contact:
            row["flag"] = {
                "customer_id": claim.customer_id,
                "channel": claim.channel,
                "contact": contact,
                "reason": (error or "refused")[:500],
                "incident_id": claim.incident_id,
                "flagged_at": now,
            }
        return row

    def _next_round_start(self, claim: outbox_db.Claimed) -> datetime | None:
        """When the round after this one starts (the holding round begins a margin before
        the promise); None when no round follows (resolution, follow-up)."""
        from outagecomms.incidents.promises import fanout_margin

        promise = self._rounds[claim.round_id].promised_next_by
        if promise is None:
            return None
        return promise - fanout_margin(self._incidents[claim.incident_id], self.app.config)

    def note_retries(self) -> None:
        """An event per incident for the retries this sender scheduled: ``show`` and
        ``watch`` tell the commander, not only this process's log."""
        retrying, self._retrying = self._retrying, {}
        if not retrying:
            return
        now = self.app.clock()
        with self.app.store.write() as conn:
            for iid, errors in retrying.items():
                n = sum(errors.values())
                why = "; ".join(
                    f"{k} ({v})" for k, v in sorted(errors.items(), key=lambda kv: -kv[1])[:3]
                )
                incidents_db.add_event(
                    conn, iid, now, "retry", f"{n} deliveries will be retried: {why}"
                )
                log.warning("INC-%d: %d deliveries will be retried: %s", iid, n, why)

    def _extras(self, claim: outbox_db.Claimed, customer: Customer) -> dict[str, Any]:
        """Per-customer parts of a notice: the credit (or that one is being applied) and offer
        in the resolution; the amount, its reasons and the offer in a credit notice."""
        rnd = self._rounds[claim.round_id]
        kind = rnd.kind
        row = self._credits.get((claim.incident_id, claim.customer_id))
        if kind == RoundKind.RESOLUTION:
            credit, goodwill = ledger.notice_context(row, customer.locale)
            held_until = None
            if ledger.held(row):
                held_until = rnd.created_at + ledger.approval_within(self.app)
            return {"credit": credit, "goodwill": goodwill, "credit_held_until": held_until}
        if kind == RoundKind.CREDIT:
            if row is None:
                return {}
            return {
                "credit": ledger.credit_notice_context(row, customer.locale),
                "goodwill": row["goodwill"] or None,
            }
        if kind == RoundKind.FOLLOW_UP:
            secret = self._feedback_secret()
            public = self.app.config.daemon.public_url
            if secret is None or not public:
                return {}  # no signed links: the message asks for a reply instead
            expires = self.app.clock() + FEEDBACK_LINK_LIFETIME
            links = feedback.feedback_links(
                public, secret, claim.incident_id, claim.customer_id, expires
            )
            return {"feedback_links": links}
        return {}

    def _thread_headers(
        self, claim: outbox_db.Claimed, incident: Incident, rnd: Round, domain: str
    ) -> dict[str, str]:
        """In-Reply-To/References to this customer's acknowledgement on this channel (its
        Message-ID derived from that delivery, as it was sent), for every later round."""
        if rnd.kind == RoundKind.ACKNOWLEDGEMENT:
            return {}
        ack = self._acks.get(claim.incident_id)
        root = self._roots.get((claim.incident_id, claim.customer_id, claim.channel))
        if ack is None or root is None:
            return {}
        return thread_headers(message_id(root, incident, ack, domain))

    def _reply_to(
        self, claim: outbox_db.Claimed, channel: Channel, am_copy: bool
    ) -> dict[str, str]:
        """``Reply-To: replies+<token>@...`` on a customer's email when ``[inbound] reply_to``
        is set: the reply names its delivery (``inbound.tokens``). Without the daemon secret
        the plain address (replies still thread by In-Reply-To)."""
        reply_to = self.app.config.inbound.reply_to
        if not reply_to or am_copy or channel.template_channel != "email":
            return {}
        if claim.customer_id == ROUND_WIDE:
            return {"Reply-To": reply_to}
        secret = self._feedback_secret()
        if secret is None:
            return {"Reply-To": reply_to}
        return {"Reply-To": reply_address(reply_to, secret, claim.id)}

    def _fit_sms(
        self,
        claim: outbox_db.Claimed,
        customer: Customer,
        incident: Incident,
        rnd: Round,
        rendered: Rendered,
        page_url: str,
    ) -> Rendered:
        """Two segments are a promise, the rest a help: a text that would take more (a script
        that costs twice, UCS-2: Japanese) goes without the page link, then without the
        commander's words (the email and the page have them), keeping what was promised and
        when they hear next; if even that does not fit, the shortest of them."""
        latest = self._latest.get(rnd.id)
        extras = self._extras(claim, customer)
        tries = []
        if page_url:
            tries.append((rnd, latest))
        if rnd.message or (latest is not None and latest.message):
            bare = None if latest is None else replace(latest, message="")
            tries.append((replace(rnd, message=""), bare))
        best = rendered
        for r, news in tries:
            out = self.app.renderer.render_customer(
                r.kind, "sms", incident=incident, round=r, customer=customer, latest=news,
                **extras,
            )  # fmt: skip
            if len(out.text) < len(best.text):
                best = out
            if not _over_two_segments(out.text):
                return out
        return best

    def _page_url(self, claim: outbox_db.Claimed, am_copy: bool) -> str:
        """The customer's own incident page (``pages.incident``) when the daemon has a public
        URL and the secret; "" for a round-wide message or an account manager's copy."""
        if am_copy or claim.customer_id == ROUND_WIDE:
            return ""
        from outagecomms.pages.incident import link_for, links_enabled

        if not hasattr(self, "_pages"):
            self._pages: bytes | None = self._feedback_secret() if links_enabled(self.app) else None
        if self._pages is None:
            return ""

        return link_for(self.app, self._pages, claim.incident_id, claim.customer_id)

    def _feedback_secret(self) -> bytes | None:
        if not hasattr(self, "_secret"):
            try:
                self._secret: bytes | None = feedback.feedback_secret(self.app)
            except OutageCommsError as exc:
                log.warning("follow-up without one-click links: %s", exc)
                self._secret = None
        return self._secret

    async def _send_one(
        self, claim: outbox_db.Claimed, customer: Customer | None
    ) -> tuple[outbox_db.Claimed, DeliveryResult, bytes | None, str]:
        def unsent(
            result: DeliveryResult, contact: str = ""
        ) -> tuple[outbox_db.Claimed, DeliveryResult, bytes | None, str]:
            return claim, result, None, contact

        base_name, am_copy = split_channel(claim.channel)
        if claim.customer_id == ROUND_WIDE:
            customer = self.app.renderer.neutral_customer()
        if customer is None:
            return unsent(DeliveryResult.failed("customer is no longer in the directory"))
        try:
            channel = await self._channel(base_name)
        except OutageCommsError as exc:
            # e.g. a secret's environment variable is missing: fixable without losing anything
            return unsent(DeliveryResult.retry(f"channel {base_name!r} cannot open: {exc}"))
        except Exception as exc:  # the channel's own bug: as above, and logged for its author
            log.exception("channel %r raised opening", base_name)
            return unsent(
                DeliveryResult.retry(f"channel {base_name!r} cannot open: {_describe(exc)}")
            )
        if channel is None:
            return unsent(DeliveryResult.failed(f"channel {base_name!r} is no longer configured"))
        template_set = channel.template_channel
        if am_copy:
            contact = customer.account_manager
            template_set = ACCOUNT_MANAGER_TEMPLATES
            if not contact:
                return unsent(DeliveryResult.failed("customer has no account_manager"))
        elif claim.customer_id == ROUND_WIDE or channel.contact_field is None:
            contact = ""
        else:
            contact = customer.contact(channel.contact_field)
            if not contact:
                return unsent(DeliveryResult.failed(f"customer has no {channel.contact_field}"))
        incident = self._incidents[claim.incident_id]
        rnd = self._rounds[claim.round_id]
        page_url = self._page_url(claim, am_copy)
        try:
            rendered = self.app.renderer.render_customer(
                rnd.kind,
                template_set,
                incident=incident,
                round=rnd,
                customer=customer,
                latest=self._latest.get(rnd.id),
                page_url=page_url,
                **self._extras(claim, customer),
            )
            if template_set == "sms" and _over_two_segments(rendered.text):
                rendered = self._fit_sms(claim, customer, incident, rnd, rendered, page_url)
        except OutageCommsError as exc:
            return unsent(DeliveryResult.failed(str(exc)), contact)
        domain = self._domains.get(base_name)
        if domain is None:
            domain = self._domains[base_name] = sender_domain(str(channel.settings.get("from", "")))
        msg = OutboundMessage(
            delivery_id=claim.id,
            to=contact,
            to_name=customer.name if not am_copy else "",
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id(claim.id, incident, rnd, domain),
            headers={
                "X-Outagecomms-Incident": incident.ref,
                "X-Outagecomms-Round": f"{rnd.seq} {rnd.kind.value}",
                "X-Outagecomms-Customer": customer.id,
                **self._thread_headers(claim, incident, rnd, domain),
                **self._reply_to(claim, channel, am_copy),
            },
            data=round_data(
                incident,
                status=rnd.status.value,
                kind=rnd.kind.value,
                seq=rnd.seq,
                message=rnd.message,
                customer=customer.id,
                promised_next_by=rnd.promised_next_by,
                page_url=page_url,
            ),
        )
        try:
            result = await channel.deliver(msg)
        except OutageCommsError as exc:
            result = DeliveryResult.failed(str(exc))
        except Exception as exc:
            # A channel's own bug (a plugin's, say) costs this delivery a retry, not the run:
            # the other workers' sends are in flight under leases that must stay ours.
            log.exception("channel %r raised sending delivery %d", base_name, claim.id)
            result = DeliveryResult.retry(_describe(exc))
        content = None
        if result.outcome == Outcome.SENT:
            content = outbox_db.encode_content(
                {
                    "channel": claim.channel,
                    "sender": self.owner,  # host:pid:nonce of the process that sent it
                    "to": contact,
                    "message_id": msg.message_id,
                    "subject": rendered.subject,
                    "text": rendered.text,
                    "html": rendered.html,
                }
            )
        return claim, result, content, contact


def _over_two_segments(text: str) -> bool:
    from outagecomms.channels.twilio import sms_body, sms_segments

    return sms_segments(sms_body(text))[1] > 2  # as the channel sends it


class _Run:
    """One ``Dispatcher.run``: a fixed set of worker coroutines (as many as the channels have
    connections) pulls deliveries from a local queue; when it runs low the next batch is
    claimed, so the connections never idle between batches.

    A worker takes its next delivery only once the result of its last one is written, so a
    crash leaves at most one accepted but unrecorded delivery per worker (a resend, with the
    same Message-ID). Results that come in while a write is due share it (group commit), and
    each is written only for a delivery this sender still holds the lease on. Leases are
    renewed on a timer while batches drain, and given back only when no worker is sending.
    """

    __slots__ = (
        "commit", "customers", "dispatcher", "exhausted", "incident_id", "interrupt", "lease",
        "leased", "loop", "pending", "progress", "queue", "stop", "store", "summary", "timer",
        "waiting", "width",
    )  # fmt: skip

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        incident_id: int | None,
        progress: Progress | None,
        stop: asyncio.Event | None,
        interrupt: asyncio.Event | None = None,
    ):
        config = dispatcher.app.config
        self.interrupt = interrupt
        self.dispatcher = dispatcher
        self.store = dispatcher.app.store
        self.incident_id = incident_id
        self.progress = progress
        self.stop = stop
        self.summary = DispatchSummary()
        self.queue: deque[tuple[outbox_db.Claimed, str]] = deque()
        self.customers: dict[str, Customer] = {}
        self.pending: dict[str, list[dict[str, Any]]] = {}  # claim token -> results to write
        self.exhausted = False  # nothing more to claim (or told to stop)
        self.leased: set[str] = set()  # claim tokens with deliveries of ours under them
        self.lease = config.dispatch.lease
        self.width = max(1, min(64, sum(c.max_connections for c in config.channels.values())))
        self.loop = asyncio.get_running_loop()
        self.commit: asyncio.Future[None] | None = None  # the next group write, once one is due
        self.timer: asyncio.TimerHandle | None = None
        self.waiting = 0  # results in the group

    async def run(self) -> DispatchSummary:
        self.refill()
        renewer = asyncio.create_task(self.keep_leases())
        workers = [asyncio.create_task(self.worker()) for _ in range(self.width)]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            # A worker failed (a bug of ours: a channel's surprises are a retry already) or the
            # run was cancelled. Start nothing more, and let the sends in flight end and be
            # written before any lease goes back: a lease released under a running send lets
            # another sender send that delivery too.
            self.exhausted = True
            self.queue.clear()  # claimed, not started: released below
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self.flush()
            if self.leased:
                self.dispatcher.release()  # nothing of ours is in flight: orphans go back
            self.dispatcher.note_retries()
        return self.summary

    def interrupted(self) -> bool:
        return self.interrupt is not None and self.interrupt.is_set()

    def refill(self) -> None:
        if self.exhausted or (self.stop is not None and self.stop.is_set()) or self.interrupted():
            return
        token, claimed, got = self.dispatcher._claim(self.incident_id)
        if not claimed:
            self.exhausted = True
            return
        self.leased.add(token)
        self.summary.claimed += len(claimed)
        self.customers.update(got)
        self.queue.extend((c, token) for c in claimed)

    async def worker(self) -> None:
        queue, customers, summary = self.queue, self.customers, self.summary
        send_one, result_row = self.dispatcher._send_one, self.dispatcher._result_row
        while True:
            if self.interrupted():
                queue.clear()  # claimed, not started: released when the run ends
                return
            if not queue:
                self.refill()  # synchronous: one worker claims, the others see the result
                if not queue:
                    return
            claim, token = queue.popleft()
            claim, result, content, contact = await send_one(
                claim, customers.get(claim.customer_id)
            )
            await self.record(token, result_row(claim, result, content, summary, contact))

    async def record(self, token: str, row: dict[str, Any]) -> None:
        """Queue a result for the next group write and wait until it is written."""
        self.pending.setdefault(token, []).append(row)
        self.waiting += 1
        if self.commit is None:
            self.commit = self.loop.create_future()
            # a group gathers for at most GROUP_WAIT, or until every worker is in it
            self.timer = self.loop.call_later(GROUP_WAIT, self.write_group)
        mine = self.commit
        if self.waiting >= self.width:
            self.write_group()
        await asyncio.shield(mine)

    def write_group(self) -> None:
        done, self.commit, self.waiting = self.commit, None, 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if done is None:
            return
        try:
            self.flush()
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)

    def flush(self) -> None:
        """Write every result waiting, per claim token (each is written under its lease)."""
        for token in list(self.pending):
            rows = self.pending.pop(token)
            if rows:
                flags = [r["flag"] for r in rows if "flag" in r]
                with self.store.write() as conn:
                    outbox_db.record_results(conn, token, rows)
                    if flags:
                        customers_db.flag_contacts(conn, flags)
                if self.progress:
                    self.progress(len(rows), self.summary.claimed)

    async def keep_leases(self) -> None:
        # On a timer, not per delivery: one slow send must not outlive the lease either.
        # A sender that dies stops renewing, so its batches are free again within a lease.
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            self.renew_all()  # one quick UPDATE per batch every lease/3

    def renew_all(self) -> None:
        """Keep the lease on every batch that is still draining (slow server, long batch):
        no other sender takes over deliveries this one is still sending. A batch with
        nothing of ours left under it is dropped from the list."""
        until = self.dispatcher.app.clock() + self.lease
        with self.store.write() as conn:
            for token in list(self.leased):
                if outbox_db.renew_lease(conn, token, until) == 0:
                    self.leased.discard(token)


def pending_count(app: App, incident_id: int | None = None) -> int:
    with app.store.read() as conn:
        counts = outbox_db.count_deliveries(conn, incident_id)
    return counts.get(DeliveryStatus.PENDING.value, 0) + counts.get(DeliveryStatus.SENDING.value, 0)
