"""Internationalised addresses against a real aiosmtpd, with and without SMTPUTF8 (RFC 6531).

An IDN domain goes as IDNA A-labels (every server takes it); a local part that is not ASCII
needs SMTPUTF8: sent with it when the server offers it, a permanent failure that says so when it
does not. The To header carries the address once, never an encoded word inside an encoded
word."""

from __future__ import annotations

import email
import email.policy
from email.headerregistry import Address
from typing import Any, cast

import pytest

from outagecomms.channels.base import Outcome
from outagecomms.rendering.mime import build_email, wire_address
from tests.fakes.smtp import RecordingHandler, running_smtp
from tests.support.channels import deliver_each
from tests.support.smtp import smtp_channel, smtp_message

PIPELINING = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])


class RawHandler(RecordingHandler):
    """Also keeps each message's bytes: the stdlib parser reads 8-bit headers as surrogates."""

    raw: list[bytes]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.content)
        return await super().handle_DATA(server, session, envelope)


def _handler(pipelining: bool) -> RawHandler:
    h = RawHandler(pipelining=pipelining)
    h.raw = []
    return h


def _to(raw: bytes) -> Address:
    parsed = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    (addr,) = parsed["To"].addresses
    return cast(Address, addr)


def test_wire_address_idna_domain_and_smtputf8_need() -> None:
    assert wire_address("ops@bücher.de") == ("ops@xn--bcher-kva.de", False)
    assert wire_address("ünïcode@example.com") == ("ünïcode@example.com", True)
    assert wire_address("ops@example.com") == ("ops@example.com", False)


@PIPELINING
def test_smtputf8_server_receives_the_address_as_written(pipelining: bool) -> None:
    handler = _handler(pipelining)
    with running_smtp(handler, enable_SMTPUTF8=True) as server:
        ch = smtp_channel(server.port, pipelining=pipelining)
        msgs = [smtp_message(1, "ünïcode@example.com"), smtp_message(2, "ops@bücher.de")]
        msgs[0] = msgs[0].__class__(**{**msgs[0].__dict__, "to_name": "Ünïcode GmbH"})
        results = deliver_each(ch, *msgs, send=True)
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT], results
    first, second = handler.messages
    assert first.rcpt_tos == ["ünïcode@example.com"]
    assert _to(handler.raw[0]).addr_spec == "ünïcode@example.com"
    assert _to(handler.raw[0]).display_name == "Ünïcode GmbH"  # decoded once: not "=?utf-8?..."
    assert second.rcpt_tos == ["ops@xn--bcher-kva.de"]
    assert _to(handler.raw[1]).addr_spec == "ops@xn--bcher-kva.de"


@PIPELINING
def test_without_smtputf8_a_non_ascii_local_part_fails_for_good_and_idna_still_goes(
    pipelining: bool,
) -> None:
    handler = RecordingHandler(pipelining=pipelining)
    with running_smtp(handler, enable_SMTPUTF8=False) as server:
        ch = smtp_channel(server.port, pipelining=pipelining)
        results = deliver_each(
            ch, smtp_message(1, "ünïcode@example.com"), smtp_message(2, "ops@bücher.de"), send=True
        )
    refused, idna = results
    assert refused.outcome == Outcome.FAILED
    assert "does not offer SMTPUTF8" in refused.error and "ünïcode@example.com" in refused.error
    assert "codec" not in refused.error
    assert idna.outcome == Outcome.SENT
    assert [m.rcpt_tos for m in handler.messages] == [["ops@xn--bcher-kva.de"]]


def test_to_header_is_encoded_once() -> None:
    msg = smtp_message(1, "ops@example.com")
    msg = msg.__class__(**{**msg.__dict__, "to_name": "Zoë, Ünïcode & Co"})
    raw = build_email(msg, from_addr="Support <support@example.com>")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    (addr,) = parsed["To"].addresses
    assert (addr.display_name, addr.addr_spec) == ("Zoë, Ünïcode & Co", "ops@example.com")
