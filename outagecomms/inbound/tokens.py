"""Reply-To tokens: ``replies+<token>@status.example.com`` names the delivery a reply answers.

The token is the delivery's id in base 36 and 50 bits of an HMAC-SHA256 of it under the daemon
secret (``[daemon] secret_env``, domain-separated from the feedback links), in lower case
letters and digits only: mail systems may fold a local part's case, and some drop what they do
not like. ``d7-k2m4q9x1ab`` names delivery 259. Anyone can read the id; nobody without the
secret can make a token for another delivery, so a changed token is never attributed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_LABEL = b"outagecomms/reply-to\x00"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN = re.compile(r"([0-9a-z]{1,13})-([a-z2-7]{10})")


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def _mac(secret: bytes, delivery_id: int) -> str:
    digest = hmac.new(secret, _LABEL + str(delivery_id).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:7]).decode("ascii").lower()[:10]


def make_token(secret: bytes, delivery_id: int) -> str:
    return f"{_b36(delivery_id)}-{_mac(secret, delivery_id)}"


def read_token(secret: bytes, token: str) -> int | None:
    """The delivery a token names, or None when it is not one of ours (malformed or changed)."""
    m = _TOKEN.fullmatch(token.strip().lower())
    if m is None:
        return None
    delivery_id = int(m[1], 36)
    if not hmac.compare_digest(_mac(secret, delivery_id), m[2]):
        return None
    return delivery_id


def reply_address(reply_to: str, secret: bytes, delivery_id: int) -> str:
    """``replies@status.example.com`` -> ``replies+<token>@status.example.com``."""
    local, _, domain = reply_to.rpartition("@")
    return f"{local}+{make_token(secret, delivery_id)}@{domain}"


def token_of(reply_to: str, address: str) -> str | None:
    """The token in ``address`` when it is ``reply_to``'s local part plus a token at its
    domain (any case); None for any other address (a plain ``reply_to`` included)."""
    local, _, domain = reply_to.lower().rpartition("@")
    a_local, at, a_domain = address.strip().strip("<>").lower().rpartition("@")
    if not at or a_domain != domain:
        return None
    base, plus, token = a_local.partition("+")
    if base != local or not plus:
        return None
    return token
