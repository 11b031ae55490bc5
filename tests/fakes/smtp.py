"""The SMTP fakes: an aiosmtpd handler that records every message (and can refuse
recipients), and a raw scripted server that checks PIPELINING groups and misbehaves on
purpose."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes.asgi import free_port


@dataclass
class Received:
    at: datetime
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def customer(self) -> str:
        return str(self.message["X-Outagecomms-Customer"])

    @property
    def round(self) -> int:
        return int(str(self.message["X-Outagecomms-Round"]).split()[0])

    @property
    def kind(self) -> str:
        return str(self.message["X-Outagecomms-Round"]).split()[1]

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())


@dataclass
class RecordingHandler:
    """Records every message; ``reject`` maps a recipient to an SMTP reply (e.g. 550/451);
    ``peers`` are the client connections that delivered a message."""

    messages: list[Received] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    #: advertise PIPELINING (RFC 2920) like Postfix and Exim do; aiosmtpd reads commands in
    #: order, so pipelined groups are answered correctly
    pipelining: bool = True
    peers: set[Any] = field(default_factory=set)
    #: a slow server: each message is recorded at once and answered this many seconds later
    delay: float = 0.0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        rec = Received(datetime.now(UTC), envelope.mail_from, list(envelope.rcpt_tos), msg)  # type: ignore[arg-type]
        with self.cond:
            self.peers.add(session.peer)
            self.messages.append(rec)
            self.cond.notify_all()
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Ok: queued"

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0
    ) -> list[Received]:
        """Block until ``predicate(messages)`` holds (no fixed sleeps); fail on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s; have {len(self.messages)} messages"
                    )
                self.cond.wait(left)
            return list(self.messages)

    def snapshot(self) -> list[Received]:
        with self.cond:
            return list(self.messages)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler


class CountingController(Controller):
    """An aiosmtpd controller that counts the connections made to it (``Controller.start()``
    makes one probe connection itself)."""

    connections = 0

    def factory(self) -> Any:
        type(self).connections += 1
        return super().factory()


@contextmanager
def running_smtp(
    handler: RecordingHandler | None = None,
    *,
    controller: type[Controller] = Controller,
    **options: Any,
) -> Iterator[SmtpServer]:
    """aiosmtpd on a free loopback port for the block (``options`` go to the controller)."""
    handler = handler or RecordingHandler()
    port = free_port()
    ctl = controller(handler, hostname="127.0.0.1", port=port, **options)
    ctl.start()
    handler.peers.clear()  # Controller.start() probes the server once
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        ctl.stop()


class PasswordAuth:
    """aiosmtpd authenticator: LOGIN/PLAIN succeeds for one user and password; anything else
    is answered ``535 5.7.8`` like a real server (aiosmtpd's ``handled`` defaults to True,
    which answers nothing at all)."""

    def __init__(self, login: bytes = b"bot", password: bytes = b"s3cret") -> None:
        self.login, self.password = login, password

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.login
            and auth_data.password == self.password
        )
        # handled=False: aiosmtpd answers a refusal itself, "535 5.7.8 Authentication
        # credentials invalid", as servers do (handled=True would leave the client waiting)
        return AuthResult(success=ok, handled=False)


class ScriptedServer:
    """A raw SMTP server on a thread: greets, offers PIPELINING, records what arrives in each
    recv() after EHLO, and answers according to ``mode`` (``whole``, ``dribble``: one byte at a
    time, ``drop``: closes after the data, ``hang``: never answers the envelope)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.chunks: list[bytes] = []
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(b"220 scripted ESMTP\r\n")
            buf = b""
            while b"\r\n" not in buf:
                buf += conn.recv(4096)
            conn.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            group = conn.recv(65536)
            self.chunks.append(group)
            if self.mode == "hang":
                self.done.wait(10)
                return
            replies = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
            if self.mode == "dribble":  # one byte at a time, multi-line final reply
                for b in replies:
                    conn.sendall(bytes([b]))
            else:
                conn.sendall(replies)
            body = b""
            while not body.endswith(b"\r\n.\r\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            self.chunks.append(body)
            if self.mode == "drop":
                return  # accepted nothing: the connection just closes
            final = b"250-2.0.0 Ok\r\n250-queued as ABC\r\n250 2.0.0 done\r\n"
            for b in final if self.mode == "dribble" else [final]:
                conn.sendall(bytes([b]) if isinstance(b, int) else b)
            # answer the channel's QUIT as a server does (unanswered, it held the close for
            # the client's whole QUIT timeout)
            if conn.recv(65536).upper().startswith(b"QUIT"):
                conn.sendall(b"221 2.0.0 Bye\r\n")
            self.done.wait(10)
