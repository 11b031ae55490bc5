"""Shared fixtures: an isolated user environment, a real SMTP server (aiosmtpd) on loopback
that records every message, and helpers to write a config and run the CLI."""

from __future__ import annotations

import email
import email.policy
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

import outagecomms

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
PACKAGED_SAMPLE = REPO / "outagecomms" / "samples" / "customers.csv"


def sample_csv() -> Path:
    """The shared sample directory (40 customers), or the packaged copy of it."""
    p = SHARED_DATA / "customers_sample.csv"
    return p if p.exists() else PACKAGED_SAMPLE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    """Records every message; ``reject`` maps a recipient to an SMTP reply (e.g. 550/451)."""

    messages: list[Received] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    #: advertise PIPELINING (RFC 2920) like Postfix and Exim do; aiosmtpd reads commands in
    #: order, so pipelined groups are answered correctly
    pipelining: bool = True

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
            self.messages.append(rec)
            self.cond.notify_all()
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


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every user path points into the test's temp dir; no OUTAGECOMMS_* leaks in."""
    home = tmp_path / "home"
    home.mkdir()
    for var in list(os.environ):
        if var.startswith("OUTAGECOMMS_"):
            monkeypatch.delenv(var)
    # CLI/daemon subprocesses import the very package under test, whatever PYTHONPATH said
    # (a relative one, or an editable install of another checkout, would silently differ)
    code = str(Path(outagecomms.__file__).resolve().parent.parent)
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([code, *rest]))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


CONFIG_TEMPLATE = """\
[store]
url = "{store_url}"

[company]
name = "S1 Technology"
status_page_url = "https://status.example.com"
support_email = "support@example.com"

[policy.default]
update_every = "30m"
ack_within = "10m"
remind_before = "5m"
channels = {{ default = ["email"] }}

[channels.email]
kind = "smtp"
host = "{host}"
port = {port}
from = "S1 Support <support@example.com>"
max_connections = 4

[dispatch]
retry_base = "1s"
lease = "20s"

[daemon]
reconcile_every = "300ms"
min_margin = "1s"
{extra}
"""


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    def make(
        server: SmtpServer | None = None,
        *,
        extra: str = "",
        name: str = "outagecomms.toml",
        store_url: str | None = None,
    ) -> Path:
        path = tmp_path / name
        path.write_text(
            CONFIG_TEMPLATE.format(
                store_url=store_url or f"sqlite:///{tmp_path / 'store.db'}",
                host=server.host if server else "127.0.0.1",
                port=server.port if server else free_port(),
                extra=extra,
            )
        )
        return path

    return make


PG_URL = os.environ.get("OUTAGECOMMS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL for one test; skipped when none is reachable
    unless CI is set (in CI PostgreSQL must be there)."""
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Run the CLI in-process (Typer's CliRunner) and return exit code, stdout, stderr."""
    from outagecomms.cli import app

    def run(*args: str, input: str | None = None) -> CliResult:
        runner = CliRunner()
        res = runner.invoke(app, list(args), input=input, catch_exceptions=False)
        return CliResult(res.exit_code, res.stdout, res.stderr)

    return run


def run_cli_process(
    *args: str, config: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "outagecomms", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
