"""The signed, expiring link to a customer's own incident page: ``{public_url}/i/{token}``.

The token is ``base64url(payload || tag)`` without padding, where ``payload`` is
``version (1 byte) | incident id (6 bytes) | issued, Unix seconds (4) | expiry, Unix seconds (4)
| customer id (UTF-8)`` and ``tag`` is HMAC-SHA256 under the daemon secret over a label of its
own and the payload, truncated to 96 bits (a guess can only be tried online, one request at a
time; 2^96 is out of reach). It is short on purpose: an SMS carries it within its two segments.

A link is refused when changed (``tampered``), cut short or not one of ours (``malformed``), past
its expiry (``expired``), or issued before the customer's links were revoked (``revoked``:
``page revoke``; the next message they are sent carries a fresh link that works).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from outagecomms.errors import OutageCommsError

TOKEN_VERSION = 1
_LABEL = b"outagecomms/incident-page\x00"  # domain separation from the feedback links' tags
_CSRF_LABEL = b"outagecomms/incident-page-form\x00"
_HEADER = struct.Struct(">B6sII")  # version, incident id (48 bits), issued, expiry
_TAG_BYTES = 12
_MAX_TOKEN_CHARS = 1200
_MAX_CUSTOMER_BYTES = 800

PageTokenReason = Literal["tampered", "expired", "malformed", "revoked"]

_MESSAGES: dict[str, str] = {
    "tampered": "This incident page link is not valid: it was changed or was not issued by us.",
    "malformed": "This incident page link is incomplete or not valid; it may have been cut short.",
    "expired": "This incident page link has expired.",
    "revoked": "This incident page link was withdrawn; a newer message from us has a new one.",
}


class PageTokenError(OutageCommsError):
    """A page link was refused; ``reason`` is tampered, malformed, expired or revoked."""

    exit_code = 2

    def __init__(self, reason: PageTokenReason, message: str | None = None):
        self.reason: PageTokenReason = reason
        super().__init__(message or _MESSAGES[reason])


@dataclass(frozen=True)
class PageToken:
    incident_id: int
    customer_id: str
    issued_at: datetime
    expires_at: datetime


def _epoch(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _tag(secret: bytes, payload: bytes, label: bytes = _LABEL) -> bytes:
    return hmac.new(secret, label + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def make_page_token(
    secret: bytes, incident_id: int, customer_id: str, *, issued_at: datetime, expires_at: datetime
) -> str:
    """A URL-safe token naming one customer of one incident, from ``issued_at`` (compared with
    the customer's revocation) until ``expires_at``."""
    if not secret:
        raise ValueError("the page secret must not be empty")
    if not 0 < incident_id < 2**48:
        raise ValueError(f"incident id out of range: {incident_id}")
    cid = customer_id.encode("utf-8")
    if not cid or len(cid) > _MAX_CUSTOMER_BYTES:
        raise ValueError(f"customer id must be 1..{_MAX_CUSTOMER_BYTES} bytes: {customer_id!r}")
    issued, expires = _epoch(issued_at), _epoch(expires_at)
    if not 0 <= issued <= expires < 2**32:
        raise ValueError(f"issue and expiry out of range: {issued_at!r}, {expires_at!r}")
    payload = _HEADER.pack(TOKEN_VERSION, incident_id.to_bytes(6, "big"), issued, expires) + cid
    return _b64(payload + _tag(secret, payload))


def read_page_token(secret: bytes, token: str, now: datetime) -> PageToken:
    """What a token made by :func:`make_page_token` names. Raises :class:`PageTokenError`
    (``malformed``, ``tampered``, ``expired``; revocation is the caller's: it needs the store)."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
        raise PageTokenError("malformed")
    if any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in token):
        raise PageTokenError("malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise PageTokenError("malformed") from None
    if len(raw) < _HEADER.size + 1 + _TAG_BYTES:
        raise PageTokenError("malformed")
    if _b64(raw) != token:  # the unused low bits of the last character differ from ours
        raise PageTokenError("tampered")
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        raise PageTokenError("tampered")
    version, iid, issued, expires = _HEADER.unpack_from(payload)
    incident_id = int.from_bytes(iid, "big")
    if version != TOKEN_VERSION or incident_id == 0:
        raise PageTokenError("malformed")
    try:
        customer_id = payload[_HEADER.size :].decode("utf-8")
    except UnicodeDecodeError:
        raise PageTokenError("malformed") from None
    if _epoch(now) >= expires:
        raise PageTokenError("expired")
    return PageToken(
        incident_id=incident_id,
        customer_id=customer_id,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def page_url(public_url: str, token: str) -> str:
    return f"{public_url.strip().rstrip('/')}/i/{token}"


# --- the reply form's token (CSRF) ----------------------------------------------------------

_FORM = struct.Struct(">I")  # issued, Unix seconds


def make_form_token(secret: bytes, page_token: str, now: datetime) -> str:
    """The hidden field of the page's form: bound to this page's link and to when the page was
    shown, so a form posted from anywhere else (another site, another customer's page) fails."""
    stamp = _FORM.pack(_epoch(now) & 0xFFFFFFFF)
    return _b64(stamp + _tag(secret, stamp + page_token.encode(), _CSRF_LABEL))


def check_form_token(
    secret: bytes, page_token: str, form_token: str, now: datetime, max_age_s: int
) -> bool:
    """Whether ``form_token`` was made for ``page_token`` by :func:`make_form_token` within
    the last ``max_age_s`` seconds."""
    if not isinstance(form_token, str) or len(form_token) > 64:
        return False
    try:
        raw = base64.urlsafe_b64decode(form_token + "=" * (-len(form_token) % 4))
    except (binascii.Error, ValueError):
        return False
    if len(raw) != _FORM.size + _TAG_BYTES:
        return False
    stamp, tag = raw[: _FORM.size], raw[_FORM.size :]
    if not hmac.compare_digest(tag, _tag(secret, stamp + page_token.encode(), _CSRF_LABEL)):
        return False
    issued = int(_FORM.unpack(stamp)[0])
    return 0 <= _epoch(now) - issued <= max_age_s
