"""Asking how we did: signed NPS links, recording scores, and the NPS report.

A follow-up carries eleven links, one per score 0..10, that share one token per customer::

    {public_url}/feedback/{token}?score=7

Opening a link shows that score chosen; the page's button POSTs it to ``/feedback/{token}``,
which records it (``web.server``): a mail scanner fetching every link records nothing.

The token is ``base64url(payload || tag)`` without padding, where ``payload`` is
``version (1 byte) | incident id (8 bytes) | expiry, Unix seconds (8 bytes) | customer id
(UTF-8)`` and ``tag`` is HMAC-SHA256 over a domain label and the payload, truncated to 128
bits. The secret comes from the environment variable that ``[daemon] secret_env`` names; a
changed character, a different secret, or a token past its expiry is refused. The score travels
in the query string (it is the customer's own choice, so it needs no signature).

NPS = % promoters (9-10) − % detractors (0-6), rounded half-up to one decimal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import Connection

from outagecomms.app import App
from outagecomms.errors import ConfigError, InputError, NotFound, OutageCommsError
from outagecomms.invisible import neutralise
from outagecomms.store import feedback as feedback_db
from outagecomms.store import incidents as incidents_db
from outagecomms.values import shown_env

TOKEN_VERSION = 1
MAX_COMMENT = 4000
SCORES = range(0, 11)
SOURCES = ("link", "manual")

_LABEL = b"outagecomms/feedback\x00"  # domain separation: this secret may sign other things
_HEADER = struct.Struct(">BQQ")  # version, incident id, expiry (Unix seconds)
_TAG_BYTES = 16
_MAX_TOKEN_CHARS = 1024
_MAX_CUSTOMER_BYTES = 800  # customer ids are at most 200 characters

FeedbackTokenReason = Literal["tampered", "expired", "malformed"]

_MESSAGES: dict[str, str] = {
    "tampered": "This feedback link is not valid: it was changed or was not issued by us.",
    "expired": "This feedback link has expired.",
    "malformed": "This feedback link is incomplete or not valid; it may have been cut short.",
}


class FeedbackTokenError(OutageCommsError):
    """A feedback token was refused; ``reason`` is ``tampered``, ``expired`` or ``malformed``."""

    exit_code = 2

    def __init__(self, reason: FeedbackTokenReason, message: str | None = None):
        self.reason: FeedbackTokenReason = reason
        super().__init__(message or _MESSAGES[reason])


# --- the secret and the token ---------------------------------------------------------------


def feedback_secret(app: App) -> bytes:
    """The signing secret, read from the environment variable ``[daemon] secret_env`` names."""
    var = app.config.daemon.secret_env
    value = os.environ.get(var, "") if var else ""
    if not value:
        raise ConfigError(
            f"the environment variable {shown_env(var) if var else '(none)'} that signs "
            "feedback links is not set; "
            f"set it to a long random string (e.g. `openssl rand -hex 32`) or name another "
            f"variable in daemon.secret_env",
            path=app.config.path,
            key="daemon.secret_env",
        )
    return value.encode("utf-8")


def _tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _LABEL + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def _epoch(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_token(secret: bytes, incident_id: int, customer_id: str, expires_at: datetime) -> str:
    """A compact, URL-safe token naming one customer of one incident, valid until
    ``expires_at`` (a naive time is taken as UTC)."""
    if not secret:
        raise ValueError("the feedback secret must not be empty")
    if not 0 < incident_id < 2**63:
        raise ValueError(f"incident id out of range: {incident_id}")
    cid = customer_id.encode("utf-8")
    if not cid or len(cid) > _MAX_CUSTOMER_BYTES:
        raise ValueError(f"customer id must be 1..{_MAX_CUSTOMER_BYTES} bytes: {customer_id!r}")
    expires = _epoch(expires_at)
    if not 0 <= expires < 2**63:
        raise ValueError(f"expiry out of range: {expires_at!r}")
    payload = _HEADER.pack(TOKEN_VERSION, incident_id, expires) + cid
    return _b64encode(payload + _tag(secret, payload))


def read_token(secret: bytes, token: str, now: datetime) -> tuple[int, str]:
    """``(incident_id, customer_id)`` from a token made by :func:`make_token` with ``secret``.

    Raises :class:`FeedbackTokenError`: ``malformed`` when it is not a token at all,
    ``tampered`` when the signature does not match (changed, or another secret), ``expired``
    when ``now`` is at or past its expiry.
    """
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
        raise FeedbackTokenError("malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise FeedbackTokenError("malformed") from None
    if len(raw) < _HEADER.size + 1 + _TAG_BYTES:
        raise FeedbackTokenError("malformed")
    if _b64encode(raw) != token:
        # Not the canonical spelling: characters outside the alphabet were skipped, or the
        # unused low bits of the last character differ from a token we issued.
        bad = any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in token)
        raise FeedbackTokenError("malformed" if bad else "tampered")
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        raise FeedbackTokenError("tampered")
    version, incident_id, expires = _HEADER.unpack_from(payload)
    if version != TOKEN_VERSION or incident_id == 0:
        raise FeedbackTokenError("malformed")
    try:
        customer_id = payload[_HEADER.size :].decode("utf-8")
    except UnicodeDecodeError:
        raise FeedbackTokenError("malformed") from None
    if _epoch(now) >= expires:
        raise FeedbackTokenError("expired")
    return incident_id, customer_id


def feedback_links(
    base_url: str, secret: bytes, incident_id: int, customer_id: str, expires_at: datetime
) -> list[str]:
    """The eleven one-click links, score 0 to 10, that a follow-up message shows."""
    base = (base_url or "").strip().rstrip("/")
    if not base:
        raise ConfigError(
            "is not set; follow-up links need the public address of the daemon's HTTP "
            "endpoint, e.g. https://status.example.com/outagecomms",
            key="daemon.public_url",
        )
    token = quote(make_token(secret, incident_id, customer_id, expires_at), safe="")
    return [f"{base}/feedback/{token}?score={score}" for score in SCORES]


# --- recording ------------------------------------------------------------------------------


def check_score(score: object) -> int:
    """A score from 0 to 10 (an int; ``"7"`` from a command line is accepted too)."""
    value: int | None = None
    if isinstance(score, int) and not isinstance(score, bool):
        value = score
    elif isinstance(score, str) and score.strip().isascii() and score.strip().isdigit():
        value = int(score.strip()) if len(score.strip()) <= 2 else None
    if value is None or value not in SCORES:
        raise InputError("must be a whole number from 0 to 10", field="score", value=score)
    return value


def clean_comment(comment: str) -> str:
    """Normalise a comment for storage: newlines as ``\\n``, no NUL, no bidi controls or
    zero-width characters (U+0085, U+2028, U+2029 become newlines), trimmed."""
    text = neutralise(comment).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.strip()


def _check_audience(conn: Connection, incident_id: int, customer_id: str) -> None:
    if not incidents_db.in_audience(conn, incident_id, customer_id):
        raise NotFound(
            f"customer {customer_id!r} was not among those affected by INC-{incident_id}; "
            f"{{command:deliveries INC-{incident_id}}} lists them"
        )


def record_feedback(
    app: App,
    incident_id: int,
    customer_id: str,
    score: int,
    *,
    comment: str | None = None,
    source: str = "manual",
) -> None:
    """Record (or replace) a customer's score for an incident; one row per customer.

    A second score updates the row. ``comment=None`` keeps the comment already stored.
    """
    value = check_score(score)
    if source not in SOURCES:
        raise InputError("must be one of " + ", ".join(SOURCES), field="source", value=source)
    text: str | None = None
    if comment is not None:
        text = clean_comment(comment)
        if len(text) > MAX_COMMENT:
            raise InputError(
                f"is {len(text)} characters; at most {MAX_COMMENT} are kept",
                field="comment",
            )
    with app.store.write() as conn:
        incidents_db.get_incident(conn, incident_id)  # NotFound names the incident
        _check_audience(conn, incident_id, customer_id)
        feedback_db.upsert_feedback(
            conn,
            {
                "incident_id": incident_id,
                "customer_id": customer_id,
                "score": value,
                "comment": text or "",
                "source": source,
                "received_at": app.clock(),
            },
            keep_comment=text is None,
        )


# --- reporting ------------------------------------------------------------------------------


def nps_from_scores(scores: Iterable[int]) -> dict[str, Any]:
    """Counts and NPS (% promoters 9-10 − % detractors 0-6, half-up to 0.1; None without
    responses) for a collection of scores."""
    values = list(scores)
    promoters = sum(1 for s in values if s >= 9)
    detractors = sum(1 for s in values if s <= 6)
    n = len(values)
    score: float | None = None
    if n:
        exact = Decimal(100 * (promoters - detractors)) / Decimal(n)
        score = float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    return {
        "responses": n,
        "promoters": promoters,
        "passives": n - promoters - detractors,
        "detractors": detractors,
        "nps": score,
    }


def nps(app: App, incident_id: int | None = None) -> dict[str, Any]:
    """The NPS of one incident (or of every incident) with counts and the comments."""
    with app.store.read() as conn:
        if incident_id is not None:
            incidents_db.get_incident(conn, incident_id)
        rows = feedback_db.scores(conn, incident_id)
    return {
        "incident": f"INC-{incident_id}" if incident_id is not None else None,
        **nps_from_scores(r.score for r in rows),
        "comments": [
            {"customer": r.customer_id, "score": r.score, "comment": r.comment}
            for r in rows
            if r.comment
        ],
    }
