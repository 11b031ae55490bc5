"""What every fake HTTP provider shares: a free loopback port, serving an ASGI app in a thread,
the reply a test scripts, the request as recorded, and a gauge of connections."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

F = TypeVar("F", bound="Fake")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    """A scripted answer. ``status=None`` is the fake's normal answer (the provider's success,
    after it made the change), which ``slow`` may still hold back."""

    status: int | None = None
    #: a text as it is, anything else as JSON; None: an empty body
    body: str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    slow: bool = False  # hold the answer until the test releases it

    def content(self) -> str:
        if self.body is None or isinstance(self.body, str):
            return self.body or ""
        return json.dumps(self.body)

    def response(self, *, status: int = 200, media_type: str | None = None) -> Response:
        """This reply as a response (``status`` when the reply names none)."""
        return Response(
            self.content(),
            status_code=self.status if self.status is not None else status,
            headers=self.headers,
            media_type=media_type,
        )


@dataclass(frozen=True)
class Recorded:
    """One request as a fake provider received it."""

    method: str
    path: str
    query: str  # the raw query string
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: str = ""  # the client's address and port: one per TCP connection
    form: dict[str, str] = field(default_factory=dict)  # a form-encoded body, parsed

    @classmethod
    async def of(cls, request: Request) -> Recorded:
        return cls(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            peer=f"{request.client.host}:{request.client.port}" if request.client else "",
        )

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class Gauge:
    """ASGI middleware in front of a fake provider: the client connections it has seen and the
    most requests it has had in flight at once (``/health`` not counted).

    With ``hold = n`` each request waits until ``n`` are in flight, then all go on: a channel
    that may run ``n`` at once is seen doing so (answers on loopback are otherwise too quick to
    overlap), and one that runs more shows a higher peak. A channel that never gets to ``n``
    is let go after ``HOLD_TIMEOUT`` and ``held_too_long`` says so. The server runs on one
    event loop, so plain counters are safe; the test reads them after the requests."""

    HOLD_TIMEOUT = 10.0

    def __init__(self, app: Any):
        self.app = app
        self.reset()

    def reset(self) -> None:
        self.peers: set[tuple[str, int]] = set()
        self.in_flight = self.peak = 0
        self.hold = 0
        self.held_too_long = False
        self._gate: asyncio.Event | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        self.peers.add(tuple(scope["client"]))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.hold:
                await self._wait_for_company()
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _wait_for_company(self) -> None:
        if self._gate is None:
            self._gate = asyncio.Event()
        if self.in_flight >= self.hold:
            self._gate.set()
        try:
            await asyncio.wait_for(self._gate.wait(), self.HOLD_TIMEOUT)
        except TimeoutError:
            self.held_too_long = True
            self._gate.set()


class Held:
    """Answers a fake holds back (``Reply(slow=True)``) until the test calls :meth:`set`;
    ``waiting`` says how many are held right now, so a test knows the client gave up on an
    answer that never came (rather than timing how long it took)."""

    def __init__(self) -> None:
        self._release = threading.Event()
        self._lock = threading.Lock()
        self.waiting = 0

    async def wait(self) -> None:
        with self._lock:
            self.waiting += 1
        try:
            await asyncio.to_thread(self._release.wait, 10)
        finally:
            with self._lock:
                self.waiting -= 1

    def set(self) -> None:
        self._release.set()

    def clear(self) -> None:
        self._release.clear()


@contextmanager
def serve_asgi(app: Any, port: int, *, name: str) -> Iterator[str]:
    """Run an ASGI app (a fake provider) on 127.0.0.1:port in a thread for the block; waits,
    bounded, until its ``GET /health`` answers ``up``. Yields the base URL."""
    import httpx
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none",
            http="h11", timeout_graceful_shutdown=2,
        )
    )  # fmt: skip
    done = threading.Event()

    def run() -> None:
        try:
            server.run()
        finally:
            done.set()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    ready = False
    for _ in range(500):  # bounded: at most ~5 s
        try:
            ready = httpx.get(f"{base}/health", timeout=1).text == "up"
        except httpx.TransportError:
            ready = False
        if ready or done.wait(0.01):  # stop early if the server thread died
            break
    assert ready, f"the {name} server did not come up"
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


async def _health(request: Request) -> Response:
    return PlainTextResponse("up")


class Fake:
    """A fake provider: a Starlette ``app`` (``GET /health`` and ``routes``) on its own loopback
    ``port``, behind a :class:`Gauge`. It keeps the ``requests`` it got and ``problems`` it found
    in them, and answers from ``scripts`` (replies a test queued, by a key the fake chooses:
    a path, a method), all under ``lock``; ``release`` lets its held (slow) answers go."""

    def __init__(self, *routes: Route) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.scripts: dict[str, deque[Reply]] = {}
        self.release = Held()
        self.app = Starlette(routes=[Route("/health", _health, methods=["GET"]), *routes])
        self.gauge = Gauge(self.app)

    def reset(self) -> None:
        """Forget everything, for the next test."""
        with self.lock:
            self.requests.clear()
            self.problems.clear()
            self.scripts.clear()
            self.forget()
        self.release.clear()
        self.gauge.reset()

    def forget(self) -> None:
        """A fake's own state to clear on :meth:`reset` (called with ``lock`` held)."""

    def queue(self, key: str, replies: tuple[Reply, ...]) -> None:
        with self.lock:
            self.scripts.setdefault(key, deque()).extend(replies)

    def take(self, rec: Recorded, key: str, problems: list[str] = []) -> Reply:  # noqa: B006
        """Record ``rec`` and what is wrong with it; the next reply queued for ``key`` (or the
        normal answer, ``Reply()``)."""
        with self.lock:
            self.requests.append(rec)
            self.problems.extend(problems)
            queue = self.scripts.get(key)
            return queue.popleft() if queue else Reply()

    def recorded(self, path: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]


@contextmanager
def serve_fake(fake: Fake, name: str) -> Iterator[Fake]:
    """Serve ``fake`` (behind its gauge) for the block; held answers are let go at the end."""
    with serve_asgi(fake.gauge, fake.port, name=name):
        try:
            yield fake
        finally:
            fake.release.set()


@contextmanager
def fresh(fake: F) -> Iterator[F]:
    """``fake`` emptied for one test; any answer still held is let go after it."""
    fake.reset()
    try:
        yield fake
    finally:
        fake.release.set()
