"""An SMTP channel and a message for it, for the tests that drive the channel directly."""

from __future__ import annotations

from typing import Any

from outagecomms.channels.base import OutboundMessage
from outagecomms.channels.smtp import SmtpChannel
from outagecomms.config.model import ChannelConfig, CompanyConfig


def smtp_channel(port: int, **settings: Any) -> SmtpChannel:
    """An SMTP channel to 127.0.0.1:``port`` (two connections at most)."""
    base = {k: default for k, (_t, default) in SmtpChannel.config_keys.items()}
    base.update(port=port, **settings)
    cfg = ChannelConfig(
        name="email", kind="smtp", max_connections=2, rate_per_second=0, settings=base
    )
    return SmtpChannel(cfg, CompanyConfig(support_email="support@example.com"))


def smtp_message(i: int, to: str = "ops@example.com") -> OutboundMessage:
    return OutboundMessage(
        delivery_id=i, to=to, to_name=f"Customer {i}", subject=f"Subject {i}", text="hello",
        html="<p>hello</p>", message_id=f"<m{i}@example.com>",
    )  # fmt: skip
