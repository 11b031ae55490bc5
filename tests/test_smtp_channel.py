"""The SMTP channel against a real aiosmtpd server: pooled connections, AUTH with a password
from the environment, results by SMTP code."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from outagecomms.channels.base import Outcome
from outagecomms.errors import ConfigError
from tests.fakes.smtp import PasswordAuth, RecordingHandler, running_smtp
from tests.support.channels import deliver_each, while_open
from tests.support.smtp import smtp_channel as _channel
from tests.support.smtp import smtp_message as _msg

# That pooled connections stay within max_connections is the channel contract's
# (test_channel_contract.py::test_deliveries_at_once_each_arrive_once_within_max_connections).


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_a_pooled_connection_the_server_closed_while_idle_is_not_used(pipelining: bool) -> None:
    """Servers close idle connections (smtp-sink after 100 s, aiosmtpd after ``timeout``);
    a daemon keeps its pool between rounds, so the next round must not lose a send to one."""
    with running_smtp(RecordingHandler(pipelining=pipelining), timeout=0.2) as server:
        ch = _channel(server.port)

        async def go() -> list[Any]:
            first = await ch.send(_msg(1))
            idle = list(ch._all)
            for _ in range(200):  # bounded: until the server has dropped the idle one
                if not any(c.is_connected for c in idle):
                    break
                await asyncio.sleep(0.02)
            assert idle and not any(c.is_connected for c in idle)
            return [first, await ch.send(_msg(2))]

        results = while_open(ch, go)
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT], results
    assert len(server.handler.messages) == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_auth_uses_the_password_from_the_named_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options: dict[str, Any] = {"auth_required": True, "auth_require_tls": False}
    with running_smtp(authenticator=PasswordAuth(b"bot", b"s3cret"), **options) as server:

        def send(**settings: Any) -> Any:
            ch = _channel(server.port, username="bot", password_env="SMTP_PW_FOR_TEST", **settings)
            (result,) = deliver_each(ch, _msg(1), send=True)
            return result

        monkeypatch.setenv("SMTP_PW_FOR_TEST", "s3cret")
        assert send().outcome == Outcome.SENT
        monkeypatch.setenv("SMTP_PW_FOR_TEST", "wrong")
        bad = send(timeout=3)
        # wrong password: 535, permanent (retrying bad credentials only delays the fix)
        assert bad.outcome == Outcome.FAILED and "535" in (bad.error or ""), bad
        monkeypatch.delenv("SMTP_PW_FOR_TEST")
        with pytest.raises(ConfigError, match="SMTP_PW_FOR_TEST is not set"):
            send()
    assert len(server.handler.messages) == 1
