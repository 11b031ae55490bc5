"""The HTTP listener under slow and numerous clients (issue 11): real sockets against the real
uvicorn server (``serve_http``), with ``[web]`` timeouts configured small.

A hostile client trickles its request a byte at a time; the test paces it by waiting (a short
while) for the server to close the connection, and sends the next byte only when it has not:
what is asserted is that the server closes, never how long it took."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from outagecomms.app import App
from outagecomms.config.loader import parse_config
from outagecomms.config.model import WebConfig
from outagecomms.directory.importer import import_file
from outagecomms.errors import ConfigError
from outagecomms.incidents.lifecycle import commit_declare, plan_declare
from outagecomms.models import Selector
from outagecomms.recovery.feedback import make_token
from outagecomms.store import incidents as incidents_db
from outagecomms.store import tables as t
from tests.support.data import sample_csv
from tests.support.processes import wait_until
from tests.support.web import serve_web

SECRET = "web-limits-secret-0123456789"
HOOKS_TOKEN = "hooks-token-0123456789abcdef"
#: how long the test waits for the close before it trickles the next byte
PACE = 0.05


def web_config(**keys: str | int) -> str:
    lines = [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in keys.items()]
    return "\n[web]\n" + "\n".join(lines).replace("'", '"') + "\n"


@pytest.fixture
def served(
    make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, int, str, httpx.Client]]:
    """(app, port, a valid feedback token, client) with 300 ms header and body deadlines."""
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    monkeypatch.setenv("OUTAGECOMMS_HOOKS_TOKEN", HOOKS_TOKEN)
    cfg = make_config(extra=web_config(header_timeout="300ms", body_timeout="300ms"))
    with App.open(cfg) as app:
        import_file(app, sample_csv())
        plan = plan_declare(
            app, title="Database down", severity="sev2", selector=Selector(components=("database",))
        )
        incident = commit_declare(app, plan, send=False).incident
        with app.store.read() as conn:
            customer = sorted(incidents_db.audience_customer_ids(conn, incident.id))[0]
        token = make_token(
            SECRET.encode(), incident.id, customer, datetime.now(UTC) + timedelta(days=30)
        )
        with serve_web(app) as client:
            port = int(str(client.base_url).rstrip("/").rsplit(":", 1)[1])
            yield app, port, token, client


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def closed_by_server(sock: socket.socket, trickle: bytes = b"") -> bytes:
    """Send ``trickle`` a byte at a time, each only after the server has not closed the
    connection for a moment, and return what the server answered once it closed. Fails when
    the whole trickle went through (the server waited for it) or, with nothing (left) to
    send, when the server does not close within 10 s."""
    received = b""
    pending = list(trickle)
    while True:
        sock.settimeout(PACE if pending else 10)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            assert pending, "the server did not close the connection"
            try:
                sock.sendall(bytes([pending.pop(0)]))
            except (BrokenPipeError, ConnectionResetError):
                return received
            assert pending or not trickle, "the server took the whole trickled request"
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
PADDING = b"X-Pad: " + b"a" * 4000 + b"\r\n"  # the 4,000 bytes a slow client never finishes


def test_a_connection_that_sends_nothing_is_closed(
    served: tuple[App, int, str, httpx.Client],
) -> None:
    _, port, _, client = served
    with connect(port) as sock:
        assert closed_by_server(sock) == b""  # closed without an answer
    assert client.get("/healthz").text == "ok"


def test_five_clients_trickling_headers_are_all_cut_off_with_408(
    served: tuple[App, int, str, httpx.Client],
) -> None:
    _, port, _, client = served
    socks = [connect(port) for _ in range(5)]
    try:
        for s in socks:
            s.sendall(HEAD[:4])
        answers = [closed_by_server(s, HEAD[4:] + PADDING) for s in socks]
    finally:
        for s in socks:
            s.close()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert b"connection: close" in answer
    assert client.get("/healthz").text == "ok"  # everyone else is still served


def feedback_rows(app: App) -> int:
    with app.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.feedback)).scalar_one())


def test_a_trickled_comment_form_is_cut_off_and_records_nothing(
    served: tuple[App, int, str, httpx.Client],
) -> None:
    app, port, token, client = served
    body = b"score=3&comment=" + b"x" * 1000
    head = (
        f"POST /feedback/{token}/comment HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with connect(port) as sock:
        sock.sendall(head)
        assert closed_by_server(sock, body) == b""
    assert feedback_rows(app) == 0
    # the same form sent at once is recorded
    res = client.post(f"/feedback/{token}/comment", data={"score": "3", "comment": "late"})
    assert res.status_code == 200
    assert feedback_rows(app) == 1


@pytest.mark.parametrize("authorised", [True, False], ids=["with the token", "without"])
def test_a_trickled_hook_body_is_cut_off(
    served: tuple[App, int, str, httpx.Client], authorised: bool
) -> None:
    """Without the token the answer (401) comes before the body; the body's deadline still
    closes the connection the client keeps trickling into."""
    app, port, _, _ = served
    body = b'{"alerts": [' + b" " * 2000 + b"]}"
    auth = f"Authorization: Bearer {HOOKS_TOKEN}\r\n" if authorised else ""
    head = (
        f"POST /hooks/generic HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with connect(port) as sock:
        sock.sendall(head)
        answer = closed_by_server(sock, body)
    if authorised:
        assert answer == b""
    else:
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:80]
    with app.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.drafts)).scalar_one() == 0


def test_connections_past_max_connections_are_answered_503_at_once(
    make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    cfg = make_config(extra=web_config(max_connections=3, header_timeout="1m"))
    with App.open(cfg) as app, serve_web(app) as client:
        port = int(str(client.base_url).rstrip("/").rsplit(":", 1)[1])
        held = [connect(port) for _ in range(3)]
        for s in held:
            s.sendall(HEAD)  # three slow clients, well inside the header deadline
        try:
            with connect(port) as extra:
                answer = closed_by_server(extra, HEAD + PADDING)
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:80]
            assert b"retry-after: 5" in answer
        finally:
            for s in held:
                s.close()

        def served_again() -> bool:  # the server sees the three go, then has room
            try:
                return client.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(served_again, timeout=10, interval=0.05)


def test_web_section_defaults_and_bounds() -> None:
    assert parse_config({}, None).web == WebConfig()
    web = parse_config(
        {"web": {"header_timeout": "5s", "body_timeout": "2m", "max_connections": 20}}, None
    ).web
    assert (web.header_timeout, web.body_timeout, web.max_connections) == (
        timedelta(seconds=5),
        timedelta(minutes=2),
        20,
    )
    for bad, key in [
        ({"header_timeout": "2h"}, "web.header_timeout"),
        ({"body_timeout": 30}, "web.body_timeout"),
        ({"max_connections": 0}, "web.max_connections"),
        ({"max_connections": 10**12}, "web.max_connections"),
        ({"keep_alive": "5s"}, "web.keep_alive"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_config({"web": bad}, None)
        assert err.value.key == key, (bad, str(err.value))
