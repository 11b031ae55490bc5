"""The daemon's SMTP and LMTP listeners (``[inbound] smtp``, ``[inbound] lmtp``): replies come in
as mail, one aiosmtpd handler for both.

The promise to a sending MTA is the whole point: **250 only once the message is durable**.
The sessions' messages are stored by ``pipeline.store_many`` in a worker thread (a blocking
database write), those arriving while a write is under way together in the next one (a group
commit: :class:`GroupCommit`), and each reply waits for its message's write; a store that cannot take the write answers 451 (4.3.0) so the sender keeps
the message and retries, never 5xx (that would lose a customer's words). Classification and
escalation run *after* the 250, off the SMTP session: a slow scorer never holds a sender, and a
crash between the two is repaired by ``process_pending`` at the next start.

LMTP (RFC 2033) answers DATA once per accepted recipient; the message is stored once with all
of them, so every recipient gets the same answer. Size is refused early (``SIZE`` advertised,
``MAIL FROM ... SIZE=`` over the limit: 552) and again at the end of DATA.

Nothing of a message's text is logged (replies are personal data): a failure is logged with
the exception's type and where it happened, never ``str(exc)`` (a database error quotes the
parameters it was given, the raw message among them). aiosmtpd's own logger writes DATA lines
at DEBUG, so it is held at WARNING.
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from functools import partial
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from outagecomms.app import App
from outagecomms.errors import ConfigError, InputError, StoreUnavailable
from outagecomms.logs import log_event
from outagecomms.web.bind import parse_bind

log = logging.getLogger("outagecomms.inbound.listeners")

#: aiosmtpd logs every DATA line at DEBUG: a reply's text must never reach a log
logging.getLogger("mail.log").setLevel(logging.WARNING)

#: the answers, as RFC 3463 enhanced status codes
STORED = "250 2.0.0 Ok: stored"
DUPLICATE = "250 2.0.0 Ok: already stored"
TOO_BIG = "552 5.3.4 Message too big for this system"
TRY_LATER = "451 4.3.0 Cannot store the message now; try again later"
#: a line longer than SMTP allows (1000) is refused by aiosmtpd (500, which a sender bounces);
#: a customer's badly wrapped reply is still a reply, so lines up to this are taken
LINE_LIMIT = 64 * 1024

OnStored = Callable[[int], None]
#: how a listener reports: the daemon's ``_event(event, message, **fields)``
Event = Callable[..., None]


def log_only(event: str, message: str, **fields: Any) -> None:
    """The default ``Event``: a log line (outside a daemon, e.g. a test or a benchmark)."""
    log_event(log, event, message, **fields)


def where(exc: BaseException) -> str:
    """``Type at file:line``: enough to find a failure in the code, nothing of the data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {last.filename}:{last.lineno}"


#: the most messages one group commit writes
GROUP_MAX = 200


class GroupCommit:
    """Stores that arrive while a write is under way wait for the next one and share it
    (``pipeline.store_many``): one transaction for every session waiting at that moment, each
    still answered only once its message is durable. One write at a time, on ``executor``."""

    def __init__(self, app: App, source: str, executor: Executor | None) -> None:
        self.app = app
        self.source = source
        self.executor = executor
        self.waiting: list[tuple[bytes, list[str], asyncio.Future[Any]]] = []
        self.task: asyncio.Task[None] | None = None

    async def store(self, raw: bytes, recipients: list[str]) -> Any:
        """The message's ``pipeline.Stored``; raises what kept it out (``StoreUnavailable``,
        ``InputError``, a bug)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append((raw, recipients, fut))
        if self.task is None:
            self.task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        from outagecomms.inbound import pipeline

        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:GROUP_MAX], self.waiting[GROUP_MAX:]
                messages = [(raw, rcpts) for raw, rcpts, _ in batch]
                try:
                    results: list[Any] = await loop.run_in_executor(
                        self.executor,
                        partial(pipeline.store_many, self.app, messages, source=self.source),
                    )
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, _, fut), result in zip(batch, results, strict=True):
                    if fut.done():  # its session went away
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self.task = None


class InboundHandler:
    """The aiosmtpd handler: DATA → ``store_message`` (in a thread) → 250, then ``on_stored``
    (the daemon processes the message and kicks the inbound sender)."""

    def __init__(
        self,
        app: App,
        *,
        source: str,
        on_stored: OnStored,
        lmtp: bool = False,
        event: Event = log_only,
        executor: Executor | None = None,
    ):
        self.app = app
        self.event = event
        #: the threads that store (their own: a 250 must not queue behind processing)
        self.executor = executor
        self.source = source
        self.on_stored = on_stored
        self.lmtp = lmtp
        self.stored = 0
        self.duplicates = 0
        self.refused = 0
        self.commits = GroupCommit(app, source, executor)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        status = await self._store(envelope)
        if self.lmtp:
            # RFC 2033 4.2: one reply per recipient that RCPT accepted, in order
            return "\r\n".join(status for _ in envelope.rcpt_tos)
        return status

    async def _store(self, envelope: Envelope) -> str:

        raw = envelope.original_content or b""
        if len(raw) > self.app.config.inbound.max_size:
            self.refused += 1
            return TOO_BIG
        recipients = [str(r) for r in envelope.rcpt_tos]
        try:
            stored = await self.commits.store(raw, recipients)
        except StoreUnavailable:
            self.refused += 1
            self.event(
                "inbound_deferred", f"{self.source}: store unavailable, answered 451",
                source=self.source,
            )  # fmt: skip
            return TRY_LATER
        except InputError:
            self.refused += 1
            return TOO_BIG  # the only input store_message refuses is one over max_size
        except Exception as exc:
            self.refused += 1
            self.event(
                "inbound_error", f"ERROR {self.source}: storing failed ({where(exc)}), answered 451",
                source=self.source,
            )  # fmt: skip
            return TRY_LATER
        if stored.duplicate:
            self.duplicates += 1
            return f"{DUPLICATE} as {stored.id}"
        self.stored += 1
        self.on_stored(stored.id)
        return f"{STORED} as {stored.id}"


class _Smtp(SMTP):
    line_length_limit = LINE_LIMIT  # a class attribute in aiosmtpd 1.4


class _Lmtp(LMTP):
    line_length_limit = LINE_LIMIT


def _protocol(handler: InboundHandler, *, hostname: str) -> SMTP:
    cls = _Lmtp if handler.lmtp else _Smtp
    return cls(
        handler,
        hostname=hostname,
        ident="outagecomms",
        data_size_limit=handler.app.config.inbound.max_size,  # advertised; MAIL SIZE= checked
        enable_SMTPUTF8=True,  # a customer's address may be internationalised
        decode_data=False,  # the bytes as sent: the pipeline parses (and digests) them
        timeout=120,
    )


async def start_listener(
    app: App,
    bind: str,
    *,
    key: str,
    on_stored: OnStored,
    lmtp: bool = False,
    event: Event = log_only,
    executor: Executor | None = None,
) -> tuple[asyncio.Server, InboundHandler]:
    """Listen on ``bind`` (``HOST:PORT``). A wrong or taken address is a one-line
    ``ConfigError`` naming ``key`` (``inbound.smtp`` / ``inbound.lmtp``)."""
    host, port = parse_bind(bind, key=key)
    handler = InboundHandler(
        app,
        source="lmtp" if lmtp else "smtp",
        on_stored=on_stored,
        lmtp=lmtp,
        event=event,
        executor=executor,
    )
    hostname = host if host not in ("", "0.0.0.0", "::") else "outagecomms"
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lambda: _protocol(handler, hostname=hostname), host, port, backlog=1024
        )
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's text repeats it
        raise ConfigError(f"cannot listen on {bind!r}: {why.lower()}", key=key) from None
    return server, handler
