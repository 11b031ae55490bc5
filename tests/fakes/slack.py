"""Slack incoming webhooks, as Slack documents a request to one."""

from __future__ import annotations

import re

from tests.fakes.asgi import Recorded

PATH = "/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX"
#: what Slack answers a good request with
OK_BODY, OK_HEADERS = "ok", {"x-slack-req-id": "req-1"}


def problems(req: Recorded) -> list[str]:
    """Slack incoming webhooks: POST JSON with ``text`` and Block Kit ``blocks``."""
    p: list[str] = []
    if not re.fullmatch(r"/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+", req.path):
        p.append(f"not a webhook path: {req.path}")
    doc = req.json()
    if not isinstance(doc, dict):
        return [*p, "body is not a JSON object"]
    if not isinstance(doc.get("text"), str) or not doc["text"]:
        p.append("text must be a non-empty string")
    blocks = doc.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return [*p, "blocks must be a list of 1..50 blocks"]
    texts = [doc.get("text", "")]
    for i, b in enumerate(blocks):
        t = b.get("text") if isinstance(b, dict) else None
        if not isinstance(t, dict) or not isinstance(t.get("text"), str) or not t["text"]:
            p.append(f"block {i}: text object with a non-empty text required")
            continue
        if b["type"] == "header":
            if t.get("type") != "plain_text" or len(t["text"]) > 150:
                p.append(f"block {i}: header needs plain_text of at most 150 characters")
        elif b["type"] == "section":
            if t.get("type") != "mrkdwn" or len(t["text"]) > 3000:
                p.append(f"block {i}: section needs mrkdwn of at most 3000 characters")
            texts.append(t["text"])
        else:
            p.append(f"block {i}: unexpected type {b.get('type')!r}")
    for t in texts:  # mrkdwn text: & < > only as the three entities
        if "<" in t or ">" in t or re.search(r"&(?!amp;|lt;|gt;)", t):
            p.append(f"unescaped control character in {t[:60]!r}")
    return p
