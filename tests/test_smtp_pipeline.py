"""SMTP PIPELINING (RFC 2920): the channel drives a server that offers it with two round trips
per message, and falls back to aiosmtplib's one-command-at-a-time dialogue when it does not.
Against aiosmtpd (which answers pipelined groups in order) and a scripted raw server that
checks the grouping and misbehaves on purpose."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from outagecomms.channels.base import OutboundMessage, Outcome
from outagecomms.channels.smtp_pipeline import PipelinedSession
from tests.fakes.smtp import RecordingHandler, ScriptedServer, running_smtp
from tests.support.smtp import smtp_channel as _channel
from tests.support.smtp import smtp_message as _msg


@pytest.fixture
def aiosmtpd_server() -> Iterator[Callable[[bool], tuple[int, RecordingHandler]]]:
    with ExitStack() as servers:

        def start(pipelining: bool) -> tuple[int, RecordingHandler]:
            server = servers.enter_context(running_smtp(RecordingHandler(pipelining=pipelining)))
            return server.port, server.handler

        yield start


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


def _send_to(server: ScriptedServer, **settings: Any) -> Any:
    """One message through the channel to the scripted server; the server is let go after."""
    try:
        [result] = asyncio.run(
            _send_all(_channel(server.port, **settings), [_msg(1, to="a@example.com")])
        )
    finally:
        server.done.set()
    return result


@pytest.mark.parametrize("mode", ["whole", "dribble"])
def test_envelope_and_data_go_in_one_group_and_replies_parse_in_any_chunking(mode: str) -> None:
    server = ScriptedServer(mode)
    result = _send_to(server)
    assert result.outcome == Outcome.SENT, result
    assert "queued as ABC" in (result.provider_id or "")
    assert server.chunks[0] == (
        b"MAIL FROM:<support@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n"
    )
    assert server.chunks[1].endswith(b"\r\n.\r\n")


@pytest.mark.parametrize(
    ("mode", "settings", "words"),
    [("drop", {}, "SMTP connection failed"), ("hang", {"timeout": 1}, "did not answer within 1s")],
    ids=["a-dropped-connection", "a-server-that-stops-answering"],
)
def test_is_a_retry(mode: str, settings: dict[str, Any], words: str) -> None:
    result = _send_to(ScriptedServer(mode), **settings)
    assert result.outcome == Outcome.RETRY
    assert words in (result.error or "")


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
