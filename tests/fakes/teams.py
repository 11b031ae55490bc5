"""Teams Workflows ("When a Teams webhook request is received"), as Microsoft documents a
request to one."""

from __future__ import annotations

from tests.fakes.asgi import Recorded

PATH = "/workflows/0f1e2d3c4b5a69788796a5b4c3d2e1f0/triggers/manual/paths/invoke"
QUERY = "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AbC-123_xyz"
RUN_ID = "08584512345678901234"
CARD = {
    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
    "type": "AdaptiveCard",
    "version": "1.4",
}


def problems(req: Recorded) -> list[str]:
    """A message with one Adaptive Card of wrapped TextBlocks, the signed query kept."""
    p: list[str] = []
    if req.query != QUERY:
        p.append(f"query string (with sig) not kept: {req.query!r}")
    doc = req.json()
    if not isinstance(doc, dict) or doc.get("type") != "message":
        return [*p, 'type must be "message"']
    atts = doc.get("attachments")
    if not isinstance(atts, list) or len(atts) != 1:
        return [*p, "attachments must hold one card"]
    att = atts[0]
    if att.get("contentType") != "application/vnd.microsoft.card.adaptive":
        p.append("wrong contentType")
    if "contentUrl" not in att or att["contentUrl"] is not None:
        p.append("contentUrl must be null")
    card = att.get("content") or {}
    for k, v in CARD.items():
        if card.get(k) != v:
            p.append(f"card {k} must be {v!r}, got {card.get(k)!r}")
    body = card.get("body")
    if not isinstance(body, list) or not body:
        return [*p, "card body must be a non-empty list"]
    for i, el in enumerate(body):
        if (
            el.get("type") != "TextBlock"
            or not isinstance(el.get("text"), str)
            or el.get("wrap") is not True
        ):
            p.append(f"body {i}: a wrapped TextBlock with text required")
    if len(req.body) > 28_000:
        p.append("card larger than Teams accepts")
    return p
