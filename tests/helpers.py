"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from conftest import sample_csv


def parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def sample_rows() -> list[dict[str, str]]:
    with sample_csv().open(newline="") as fh:
        return list(csv.DictReader(fh))


def expected_ids(component: str, region: str) -> set[str]:
    return {
        r["id"]
        for r in sample_rows()
        if component in r["components"].split(";") and region in r["regions"].split(";")
    }


def cli_json(config: Path, *args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "outagecomms", "--config", str(config), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "outagecomms", "--config", str(config), "daemon"],
        stdout=fh,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def wait_until(predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.1) -> None:
    """Poll a condition that has no event to wait on (the state of another process's store)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


@contextmanager
def serve_web(app: Any) -> Iterator[httpx.Client]:
    """The daemon's HTTP endpoint (``serve_http``: feedback links, hooks) on a free loopback
    port, in a thread with its own event loop, for the block; yields a client on its base URL.
    Needs ``OUTAGECOMMS_SECRET`` set, as the daemon does."""
    import asyncio
    import threading

    from conftest import free_port

    from outagecomms.web.server import serve_http

    port = free_port()
    state: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = asyncio.Event()
        ready.set()
        await serve_http(app, f"127.0.0.1:{port}", state["stop"])

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
    deadline = time.monotonic() + 10
    while True:
        assert "error" not in state, state.get("error")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).text == "ok":
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the HTTP endpoint did not come up within 10 s"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(15)
        assert not thread.is_alive(), "serve_http did not stop after the stop event"
