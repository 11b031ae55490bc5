"""The daemon's HTTP endpoint (``serve_http``: feedback links, hooks) in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from outagecomms.web.server import serve_http
from tests.fakes.asgi import free_port
from tests.support.processes import wait_until


@contextmanager
def serve_web(
    app: Any, *, port: int | None = None, bind: str | None = None
) -> Iterator[httpx.Client]:
    """``serve_http(app)`` on ``bind`` (default: loopback, a free ``port``), in a thread with
    its own event loop, for the block; yields a client on its base URL. Needs
    ``OUTAGECOMMS_SECRET`` set, as the daemon does."""
    port = port or free_port()
    state: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = asyncio.Event()
        ready.set()
        await serve_http(app, bind or f"127.0.0.1:{port}", state["stop"])

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            state["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="web-test", daemon=True)
    thread.start()
    assert ready.wait(10)
    base = f"http://127.0.0.1:{port}"
    # one client for the polling and the test (each new one loads the CA bundle, ~25 ms)
    client = httpx.Client(base_url=base, timeout=30)

    def up() -> bool:
        assert "error" not in state, state.get("error")
        try:
            return client.get("/healthz", timeout=1).text == "ok"
        except httpx.TransportError:
            return False

    try:
        wait_until(up, timeout=10, interval=0.02)
        yield client
    finally:
        client.close()
        if "loop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(15)
        assert not thread.is_alive(), "serve_http did not stop after the stop event"
        if "error" in state:
            raise state["error"]
