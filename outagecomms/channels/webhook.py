"""Generic webhook: the round as signed JSON, POSTed to the customer's ``webhook_url``.

The body is ``message.data`` (incident, title, severity, status, kind, round, message,
customer, components, regions, started_at, promised_next_by) plus ``subject`` and ``text`` (the
rendered ``webhook`` templates) and ``delivery_id``. Headers:

- ``Idempotency-Key``: the delivery's Message-ID without the angle brackets; the same on every
  resend of one delivery (after a retry or a crash), so receivers can deduplicate;
- ``X-Outagecomms-Timestamp`` (configurable): unix seconds when this attempt was signed;
- ``X-Outagecomms-Signature`` (configurable): ``v1=`` + hex HMAC-SHA256 with the shared secret
  over ``f"{timestamp}.{body}"`` (the raw body bytes exactly as received).

The secret is read from the environment variable that ``[channels.<name>] secret_env`` names.
Any 2xx is success; 429 (``Retry-After`` honoured), 5xx, timeouts and connection errors are
retried; other 4xx and redirects are permanent.

A receiver verifies a request like this (Python; any language with HMAC-SHA256 works)::

    import hashlib, hmac, time

    def verify(secret: bytes, body: bytes, timestamp: str, signature: str,
               tolerance: int = 300) -> bool:
        if abs(time.time() - int(timestamp)) > tolerance:  # refuse replays of old requests
            return False
        expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest("v1=" + expected, signature)

    # verify(SECRET, request.body, request.headers["X-Outagecomms-Timestamp"],
    #        request.headers["X-Outagecomms-Signature"]) and then deduplicate on
    # request.headers["Idempotency-Key"] before acting.

See ``docs/webhooks.md`` for the payload and more.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from outagecomms.channels.base import KeySpec, OutboundMessage
from outagecomms.channels.http_base import HTTP_KEYS, HttpChannel
from outagecomms.config.model import ChannelConfig, CompanyConfig

SIGNATURE_VERSION = "v1"
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an HTTP header name (RFC 9110 token)
_RESERVED = {"content-type", "content-length", "host", "idempotency-key", "user-agent"}


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def idempotency_key(message_id: str) -> str:
    """The Message-ID without its angle brackets: stable per delivery."""
    return message_id.strip().removeprefix("<").removesuffix(">")


class WebhookChannel(HttpChannel):
    kind = "webhook"
    template_channel = "webhook"
    contact_field = "webhook_url"
    provider = "webhook"
    max_connections = 32
    rate_per_second = 0.0  # per URL; 0 = unlimited
    config_keys: ClassVar[dict[str, KeySpec]] = {
        **HTTP_KEYS,
        "secret_env": (str, ""),
        "signature_header": (str, "X-Outagecomms-Signature"),
        "timestamp_header": (str, "X-Outagecomms-Timestamp"),
    }

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        problem = super().check_config(settings)
        if problem:
            return problem
        if not settings["secret_env"]:
            return (
                "secret_env must name the environment variable holding the HMAC secret "
                "that signs every request"
            )
        names = []
        for key in ("signature_header", "timestamp_header"):
            value = settings[key]
            if not _TOKEN.match(value):
                return f"{key} must be an HTTP header name, got {value!r}"
            if value.lower() in _RESERVED:
                return f"{key} must not be the standard header {value!r}"
            names.append(value.lower())
        if names[0] == names[1]:
            return "signature_header and timestamp_header must be different headers"
        return None

    def __init__(self, config: ChannelConfig, company: CompanyConfig, **kwargs: Any):
        super().__init__(config, company, **kwargs)
        self._secret: bytes | None = None

    def _load_secret(self) -> bytes:
        if self._secret is None:
            self._secret = self.required_secret("secret", "the webhook signing secret").encode()
        return self._secret

    async def open(self) -> None:
        self._load_secret()  # a missing secret stops here, before anything is sent
        await super().open()

    def document(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON document for one message."""
        return {
            **message.data,
            "subject": message.subject,
            "text": message.text,
            "delivery_id": message.delivery_id,
        }

    def payload(self, message: OutboundMessage) -> bytes:
        doc = self.document(message)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode()

    def headers(self, message: OutboundMessage, body: bytes) -> dict[str, str]:
        timestamp = int(self.clock())
        return {
            "Idempotency-Key": idempotency_key(message.message_id),
            self.settings["timestamp_header"]: str(timestamp),
            self.settings["signature_header"]: sign(self._load_secret(), timestamp, body),
        }
