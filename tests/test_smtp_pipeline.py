"""SMTP PIPELINING (RFC 2920): the channel drives a server that offers it with two round trips
per message, and falls back to aiosmtplib's one-command-at-a-time dialogue when it does not.
Against aiosmtpd (which answers pipelined groups in order) and a scripted raw server that
checks the grouping and misbehaves on purpose."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import RecordingHandler, free_port
from test_smtp_channel import _channel, _msg

from outagecomms.channels.base import OutboundMessage, Outcome
from outagecomms.channels.smtp_pipeline import PipelinedSession


@pytest.fixture
def aiosmtpd_server() -> Iterator[Callable[[bool], tuple[int, RecordingHandler]]]:
    controllers: list[Controller] = []

    def start(pipelining: bool) -> tuple[int, RecordingHandler]:
        handler = RecordingHandler(pipelining=pipelining)
        port = free_port()
        ctl = Controller(handler, hostname="127.0.0.1", port=port)
        ctl.start()
        controllers.append(ctl)
        return port, handler

    yield start
    for c in controllers:
        c.stop()


async def _send_all(ch: Any, msgs: list[OutboundMessage]) -> list[Any]:
    try:
        return list(await asyncio.gather(*(ch.deliver(m) for m in msgs)))
    finally:
        await ch.close()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_messages_arrive_intact_either_way(
    aiosmtpd_server: Callable[[bool], tuple[int, RecordingHandler]], pipelining: bool
) -> None:
    port, handler = aiosmtpd_server(pipelining)
    ch = _channel(port)
    text = ".a line starting with a dot\n..and two\nplain\n.\n"
    msgs = [
        OutboundMessage(
            delivery_id=i,
            to=f"ops{i}@example.com",
            to_name=f"Customer {i}",
            subject=f"S {i}",
            text=text,
            html=f"<p>{i}</p>",
            message_id=f"<m{i}@example.com>",
        )
        for i in range(30)
    ]
    results = asyncio.run(_send_all(ch, msgs))
    assert [r.outcome for r in results] == [Outcome.SENT] * 30
    got = {r.rcpt_tos[0]: r for r in handler.messages}
    assert set(got) == {f"ops{i}@example.com" for i in range(30)}
    assert got["ops7@example.com"].text().replace("\r\n", "\n") == text
    assert got["ops7@example.com"].message_id == "<m7@example.com>"


def test_the_fast_path_is_taken_only_when_offered(
    aiosmtpd_server: Callable[[bool], tuple[int, RecordingHandler]],
) -> None:
    kinds = {}
    for offered in (True, False):
        port, _handler = aiosmtpd_server(offered)
        ch = _channel(port)

        async def go(ch: Any = ch) -> set[str]:
            await ch.deliver(_msg(1))
            names = {type(s).__name__ for s in ch._all}
            await ch.close()
            return names

        kinds[offered] = asyncio.run(go())
    assert kinds == {True: {"PipelinedSession"}, False: {"SMTP"}}
    port, _handler = aiosmtpd_server(True)
    off = _channel(port, pipelining=False)  # the config switch wins

    async def go_off() -> set[str]:
        await off.deliver(_msg(1))
        names = {type(s).__name__ for s in off._all}
        await off.close()
        return names

    assert asyncio.run(go_off()) == {"SMTP"}


def test_refusals_are_classified_and_the_session_is_reused(
    aiosmtpd_server: Callable[[bool], tuple[int, RecordingHandler]],
) -> None:
    port, handler = aiosmtpd_server(True)
    handler.reject = {
        "gone@example.com": "550 5.1.1 No such user",
        "busy@example.com": "451 4.3.0 Try again later",
    }
    ch = _channel(port)

    async def go() -> tuple[list[Any], int]:
        out = []
        for to in ("gone@example.com", "ok1@example.com", "busy@example.com", "ok2@example.com"):
            out.append(await ch.deliver(_msg(len(out), to=to)))
        sessions = len(ch._all)
        await ch.close()
        return out, sessions

    results, sessions = asyncio.run(go())
    assert [r.outcome for r in results] == [
        Outcome.FAILED, Outcome.SENT, Outcome.RETRY, Outcome.SENT,
    ]  # fmt: skip
    assert results[0].error.startswith("SMTP recipient refused: 550")
    assert results[2].error.startswith("SMTP recipient refused: 451")
    assert sessions == 1  # RSET after each refusal, then the same connection goes on
    assert sorted(r.rcpt_tos[0] for r in handler.messages) == ["ok1@example.com", "ok2@example.com"]


class ScriptedServer:
    """A raw SMTP server on a thread: greets, offers PIPELINING, records what arrives in each
    recv() after EHLO, and answers according to ``mode``."""

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
            self.done.wait(10)


@pytest.mark.parametrize("mode", ["whole", "dribble"])
def test_envelope_and_data_go_in_one_group_and_replies_parse_in_any_chunking(mode: str) -> None:
    server = ScriptedServer(mode)
    ch = _channel(server.port)
    try:
        [result] = asyncio.run(_send_all(ch, [_msg(1, to="a@example.com")]))
    finally:
        server.done.set()
    assert result.outcome == Outcome.SENT, result
    assert "queued as ABC" in (result.provider_id or "")
    assert server.chunks[0] == (
        b"MAIL FROM:<support@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
    )
    assert server.chunks[1].endswith(b"\r\n.\r\n")


def test_a_dropped_connection_is_a_retry() -> None:
    server = ScriptedServer("drop")
    ch = _channel(server.port)
    try:
        [result] = asyncio.run(_send_all(ch, [_msg(1)]))
    finally:
        server.done.set()
    assert result.outcome == Outcome.RETRY
    assert "SMTP connection failed" in (result.error or "")


def test_a_server_that_stops_answering_is_a_retry_after_the_timeout() -> None:
    server = ScriptedServer("hang")
    ch = _channel(server.port, timeout=1)
    try:
        [result] = asyncio.run(_send_all(ch, [_msg(1)]))
    finally:
        server.done.set()
    assert result.outcome == Outcome.RETRY
    assert "did not answer within 1s" in (result.error or "")


def test_line_breaks_in_addresses_are_refused() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        session = PipelinedSession(transport, timeout=1)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await session.sendmail("x@example.com", "y@example.com\r\nRCPT TO:<z@x>", b"m\r\n")
        session.close()
        b.close()

    asyncio.run(go())
