"""The SMTP channel against a real aiosmtpd server: pooled connections, AUTH with a password
from the environment, results by SMTP code."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import RecordingHandler, free_port

from outagecomms.channels.base import OutboundMessage, Outcome
from outagecomms.channels.smtp import SmtpChannel
from outagecomms.config.model import ChannelConfig, CompanyConfig
from outagecomms.errors import ConfigError


def _channel(port: int, **settings: Any) -> SmtpChannel:
    base = {k: default for k, (_t, default) in SmtpChannel.config_keys.items()}
    base.update(port=port, **settings)
    cfg = ChannelConfig(
        name="email", kind="smtp", max_connections=2, rate_per_second=0, settings=base
    )
    return SmtpChannel(cfg, CompanyConfig(support_email="support@example.com"))


def _msg(i: int, to: str = "ops@example.com") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=i, to=to, to_name=f"Customer {i}", subject=f"Subject {i}", text="hello",
        html="<p>hello</p>", message_id=f"<m{i}@example.com>",
    )  # fmt: skip


class CountingController(Controller):
    connections = 0

    def factory(self) -> Any:
        CountingController.connections += 1
        return super().factory()


def test_connections_are_pooled_and_reused() -> None:
    handler = RecordingHandler()
    port = free_port()
    CountingController.connections = 0
    ctl = CountingController(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        ch = _channel(port)

        async def go() -> list[Any]:
            try:
                return await asyncio.gather(*(ch.send(_msg(i)) for i in range(40)))
            finally:
                await ch.close()

        results = asyncio.run(go())
    finally:
        ctl.stop()
    assert all(r.outcome == Outcome.SENT for r in results)
    assert len(handler.messages) == 40
    # Controller.start() opens one probe connection itself; the channel opened at most 2
    assert CountingController.connections - 1 <= 2


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_a_pooled_connection_the_server_closed_while_idle_is_not_used(pipelining: bool) -> None:
    """Servers close idle connections (smtp-sink after 100 s, aiosmtpd after ``timeout``);
    a daemon keeps its pool between rounds, so the next round must not lose a send to one."""
    handler = RecordingHandler(pipelining=pipelining)
    port = free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port, timeout=0.2)
    ctl.start()
    try:
        ch = _channel(port)

        async def go() -> list[Any]:
            try:
                first = await ch.send(_msg(1))
                idle = list(ch._all)
                for _ in range(200):  # bounded: until the server has dropped the idle one
                    if not any(c.is_connected for c in idle):
                        break
                    await asyncio.sleep(0.02)
                assert idle and not any(c.is_connected for c in idle)
                return [first, await ch.send(_msg(2))]
            finally:
                await ch.close()

        results = asyncio.run(go())
    finally:
        ctl.stop()
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT], results
    assert len(handler.messages) == 2


class Auth:
    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"bot"
            and auth_data.password == b"s3cret"
        )
        return AuthResult(success=ok)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_auth_uses_the_password_from_the_named_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = RecordingHandler()
    port = free_port()
    ctl = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=Auth(), auth_required=True,
        auth_require_tls=False,
    )  # fmt: skip
    ctl.start()
    try:
        monkeypatch.setenv("SMTP_PW_FOR_TEST", "s3cret")
        ch = _channel(port, username="bot", password_env="SMTP_PW_FOR_TEST")
        ok = asyncio.run(_send_close(ch))
        assert ok.outcome == Outcome.SENT
        monkeypatch.setenv("SMTP_PW_FOR_TEST", "wrong")
        bad = asyncio.run(
            _send_close(_channel(port, username="bot", password_env="SMTP_PW_FOR_TEST", timeout=3))
        )
        assert bad.outcome == Outcome.RETRY and bad.error  # wrong password: nothing sent
        monkeypatch.delenv("SMTP_PW_FOR_TEST")
        with pytest.raises(ConfigError, match="SMTP_PW_FOR_TEST is not set"):
            asyncio.run(
                _send_close(_channel(port, username="bot", password_env="SMTP_PW_FOR_TEST"))
            )
    finally:
        ctl.stop()
    assert len(handler.messages) == 1


async def _send_close(ch: SmtpChannel) -> Any:
    try:
        return await ch.send(_msg(1))
    finally:
        await ch.close()
