"""The HTTP listener's defence against slow and numerous clients (``[web]``).

uvicorn closes an idle kept-alive connection, but a client that opens a connection and then
trickles its headers or its body a byte at a time keeps it (and its memory, and a file
descriptor) for as long as it likes, and nothing bounds how many such connections there are.
:func:`guarded_protocol` makes uvicorn's HTTP/1.1 protocol class with three limits:

- ``header_timeout``: from the moment a connection opens (or its previous response ended) the
  request line and headers must be complete within this time; else ``408`` and the connection
  is closed. A connection that sends nothing at all is closed silently.
- ``body_timeout``: from the end of the headers the whole body must be in within this time;
  else the connection is closed (the route sees a disconnect and records nothing).
- ``max_connections``: open connections at once; one more is answered ``503`` and closed at
  once, before its request is read.

Both timeouts are deadlines for the whole phase, not gaps between bytes: one byte every two
seconds does not keep a connection alive.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from outagecomms.config.model import WebConfig

log = logging.getLogger("outagecomms.web")


def _plain(status: str, text: str, *headers: str) -> bytes:
    """A whole response written by the protocol itself (no request cycle to answer with)."""
    body = (text + "\r\n").encode()
    head = [
        f"HTTP/1.1 {status}",
        "content-type: text/plain; charset=utf-8",
        f"content-length: {len(body)}",
        *headers,
        "connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_TIMEOUT_408 = _plain("408 Request Timeout", "the request did not arrive in time")
_BUSY_503 = _plain(
    "503 Service Unavailable", "too many connections; try again shortly", "retry-after: 5"
)


def guarded_protocol(limits: WebConfig) -> type[H11Protocol]:
    """uvicorn's h11 protocol with ``limits`` (pass as ``uvicorn.Config(http=...)``)."""
    header_timeout = limits.header_timeout.total_seconds()
    body_timeout = limits.body_timeout.total_seconds()
    max_connections = limits.max_connections
    warned_at: list[float] = []  # when the last refusal was logged: at most one line a minute

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase: Any = None  # the client's h11 state the running deadline is for
        _received: bool = False  # bytes of the current request's head have arrived
        _refused: bool = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                self._refused = True
                now = self.loop.time()
                if not warned_at or now - warned_at[-1] >= 60:
                    warned_at[:] = [now]
                    log.warning(
                        "refusing connections: %d are open ([web] max_connections)",
                        max_connections,
                    )
                transport.write(_BUSY_503)
                transport.close()
                return
            self._watch()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self.conn.their_state is h11.IDLE:
                self._received = True
            super().data_received(data)
            self._watch()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

        def _cancel(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _watch(self) -> None:
            """Start the deadline of the phase the client is in, when it changed."""
            phase = self.conn.their_state
            if phase is self._phase:
                return
            self._cancel()
            self._phase = phase
            if phase is h11.IDLE:
                self._received = False
                self._deadline = self.loop.call_later(header_timeout, self._too_slow, "headers")
            elif phase is h11.SEND_BODY:
                self._deadline = self.loop.call_later(body_timeout, self._too_slow, "body")

        def _too_slow(self, what: str) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            log.debug("closed a connection: its request's %s did not arrive in time", what)
            if what == "headers" and self._received and self.conn.our_state is h11.IDLE:
                self.transport.write(_TIMEOUT_408)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.keep_alive = False
            self.transport.close()

    return GuardedH11Protocol
