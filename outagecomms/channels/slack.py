"""Slack through incoming webhooks: one URL per customer (Slack Connect) or per team.

Each message is one ``POST`` of ``{"text": ..., "blocks": [header, section...]}``. ``text`` is
the notification fallback; the header block carries the subject as ``plain_text`` (at most 150
characters) and section blocks carry the body as ``mrkdwn`` (at most 3,000 characters each).
User text is escaped as Slack asks: ``&`` → ``&amp;``, ``<`` → ``&lt;``, ``>`` → ``&gt;``, so a
customer name or incident title can neither ping ``<!channel>`` nor forge a link.

Slack answers ``200`` with the body ``ok``. Errors come as a short body naming the problem;
those meaning the webhook or its channel is gone or forbidden (``channel_not_found``,
``invalid_token``, ``no_service``, ...) are permanent whatever the status, ``rollup_error``
and 5xx are transient, and ``429`` carries ``Retry-After``. Slack allows one message per second
per webhook URL, so ``rate_per_second`` (default 1) applies to each URL.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx

from outagecomms.channels.base import DeliveryResult, KeySpec, OutboundMessage
from outagecomms.channels.http_base import HTTP_KEYS, HttpChannel, body_excerpt, classify_status

HEADER_MAX = 150
SECTION_MAX = 3000
TEXT_MAX = 4000  # Slack truncates top-level text beyond 40,000; a notification needs far less
MAX_BLOCKS = 50
#: bodies Slack documents for a webhook that cannot post, whatever the HTTP status
PERMANENT_ERRORS = frozenset(
    {
        "invalid_payload",
        "user_not_found",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "posting_to_general_channel_denied",
        "too_many_attachments",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "invalid_token",
        "no_active_hooks",
    }
)
TRANSIENT_ERRORS = frozenset({"rollup_error"})


def escape(text: str) -> str:
    """Escape the three characters Slack gives meaning to in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sections(text: str, limit: int = SECTION_MAX) -> list[str]:
    """Split escaped text into chunks of at most ``limit`` characters, at paragraph or line
    breaks where possible and never inside an ``&amp;``-style entity."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n\n", 0, limit)
        if cut <= 0:
            cut = rest.rfind("\n", 0, limit)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
            amp = rest.rfind("&", max(0, cut - 5), cut)
            if amp > 0 and ";" not in rest[amp:cut]:
                cut = amp
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def build_payload(subject: str, text: str) -> dict[str, Any]:
    """The incoming-webhook JSON for one message."""
    body = escape(text.strip()) or escape(subject)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(subject or "Notice", HEADER_MAX)},
        }
    ]
    for chunk in sections(body)[: MAX_BLOCKS - 1]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    fallback = escape(subject) if subject else body
    return {"text": _cut(fallback, TEXT_MAX), "blocks": blocks}


class SlackChannel(HttpChannel):
    kind = "slack"
    template_channel = "slack"
    contact_field = "slack_webhook"
    provider = "Slack"
    max_connections = 16
    rate_per_second = 1.0  # per webhook URL
    config_keys: ClassVar[dict[str, KeySpec]] = dict(HTTP_KEYS)

    def payload(self, message: OutboundMessage) -> bytes:
        doc = build_payload(message.subject, message.text)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def result(self, response: httpx.Response) -> DeliveryResult:
        status = response.status_code
        body = body_excerpt(response)
        if status == 200 and body == "ok":
            return DeliveryResult.sent(response.headers.get("x-slack-req-id"))
        if body in PERMANENT_ERRORS:
            return DeliveryResult.failed(f"Slack {body} (HTTP {status})")
        if body in TRANSIENT_ERRORS:
            return DeliveryResult.retry(f"Slack {body} (HTTP {status})")
        if 200 <= status < 300:
            # Slack's only success is "ok"; anything else (a proxy page?) did not post.
            return DeliveryResult.failed(
                f"Slack HTTP {status} without 'ok': {body or '<empty body>'}"
            )
        return classify_status(response, provider=self.provider)
