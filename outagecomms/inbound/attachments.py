"""Attachments are not kept unless ``[inbound] keep_attachments``: once a message is processed,
its stored copy has each attachment's body replaced by a line naming what it was (type, size,
file name). Stored first as received (nothing is lost before it is processed), trimmed after."""

from __future__ import annotations

import email
import email.message
from email.policy import compat32

#: a stored copy's attachment, in place of its body
REMOVED = "X-Outagecomms-Removed"


def _is_attachment(part: email.message.Message) -> bool:
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "message/delivery-status", "text/rfc822-headers"):
        return False  # a bounce's evidence: small, and what a person needs to read it
    try:
        filename = part.get_filename()
    except Exception:
        filename = None
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        return False
    return bool(filename) or disposition == "attachment" or not ctype.startswith("text/")


def without_attachments(raw: bytes, *, max_depth: int) -> tuple[bytes, int] | None:
    """(the message without its attachments' bodies, how many were removed), or None when
    there is nothing to remove (or the message cannot be rewritten: it is kept as it is)."""
    try:
        msg = email.message_from_bytes(raw, policy=compat32)
        removed = 0
        stack: list[tuple[email.message.Message, int]] = [(msg, 0)]
        while stack:
            part, depth = stack.pop()
            if depth > max_depth:
                continue
            payload = part.get_payload()
            if part.is_multipart() and isinstance(payload, list):
                stack.extend(
                    (p, depth + 1) for p in payload if isinstance(p, email.message.Message)
                )
                continue
            if part is msg or not _is_attachment(part):
                continue
            data = part.get_payload(decode=True) or b""
            name = part.get_filename() or ""
            what = f"{part.get_content_type()}; {len(data)} bytes" + (f"; {name}" if name else "")
            for header in ("Content-Transfer-Encoding", "Content-Type", REMOVED):
                del part[header]
            part[REMOVED] = what[:300]
            part["Content-Type"] = 'text/plain; charset="us-ascii"'
            part.set_payload(f"[attachment not kept: {what}]\n")
            removed += 1
        if not removed:
            return None
        return msg.as_bytes(policy=compat32), removed
    except Exception:
        return None
