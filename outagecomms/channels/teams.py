"""Microsoft Teams through a Workflows (Power Automate) "When a Teams webhook request is
received" trigger; the old Office 365 connector webhooks are retired.

The customer's ``teams_webhook`` is the trigger's HTTP POST URL, query string included (it
carries the ``sig`` that authorises the call). Each message is one ``POST`` of::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                  "type": "AdaptiveCard", "version": "1.4",
                                  "body": [TextBlock, ...]}}]}

The first TextBlock is the subject (bold, medium), then one wrapped TextBlock per paragraph.
The trigger answers ``202 Accepted`` (or ``200``) when the run has been queued; ``429`` carries
``Retry-After``; 5xx is transient; other 4xx (a deleted or disabled flow, an expired ``sig``)
are permanent. The run id (``x-ms-workflow-run-id``) is kept as the provider id.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx

from outagecomms.channels.base import DeliveryResult, KeySpec, OutboundMessage
from outagecomms.channels.http_base import HTTP_KEYS, HttpChannel, classify_status

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"
#: Teams rejects messages over about 28 KB; keep the text well inside it
TEXT_MAX = 20_000
MAX_TEXT_BLOCKS = 40


def text_blocks(subject: str, text: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": subject, "size": "Medium", "weight": "Bolder", "wrap": True}
    ]
    paragraphs = [p.strip() for p in text[:TEXT_MAX].split("\n\n") if p.strip()]
    if len(paragraphs) > MAX_TEXT_BLOCKS:
        paragraphs[MAX_TEXT_BLOCKS - 1 :] = ["\n\n".join(paragraphs[MAX_TEXT_BLOCKS - 1 :])]
    body.extend({"type": "TextBlock", "text": p, "wrap": True} for p in paragraphs)
    return body


def build_payload(subject: str, text: str) -> dict[str, Any]:
    """The Workflows webhook JSON (a message with one Adaptive Card) for one message."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": CARD_CONTENT_TYPE,
                "contentUrl": None,
                "content": {
                    "$schema": CARD_SCHEMA,
                    "type": "AdaptiveCard",
                    "version": CARD_VERSION,
                    "body": text_blocks(subject, text),
                },
            }
        ],
    }


class TeamsChannel(HttpChannel):
    kind = "teams"
    template_channel = "teams"
    contact_field = "teams_webhook"
    provider = "Teams"
    max_connections = 16
    rate_per_second = 0.0  # per workflow URL; 0 = no limit of ours (Power Automate throttles)
    config_keys: ClassVar[dict[str, KeySpec]] = dict(HTTP_KEYS)

    def payload(self, message: OutboundMessage) -> bytes:
        doc = build_payload(message.subject, message.text)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def result(self, response: httpx.Response) -> DeliveryResult:
        if 200 <= response.status_code < 300:  # 202 Accepted (run queued) or 200
            return DeliveryResult.sent(response.headers.get("x-ms-workflow-run-id"))
        res = classify_status(response, provider=self.provider)
        code = _error_code(response)
        if code and res.error:
            return DeliveryResult(
                outcome=res.outcome,
                error=f"Teams {code} (HTTP {response.status_code})"
                + (": " + res.error.split(": ", 1)[1] if ": " in res.error else ""),
                retry_after=res.retry_after,
            )
        return res


def _error_code(response: httpx.Response) -> str | None:
    """Power Automate's ``{"error": {"code": "WorkflowNotFound", ...}}``, if that is the body."""
    try:
        doc = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        code = doc["error"].get("code")
        return str(code)[:80] if code else None
    return None
