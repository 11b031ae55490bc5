"""Reading what a request carries (query parameters, form fields, headers) strictly: ASCII digits
only, bounded lengths, so that no value a client makes up can reach ``int()`` or a page unchecked.

Every route parses through these helpers; a value they refuse becomes a 4xx page or JSON error,
never a 500. (``str.isdigit()`` is true for ``"²"`` and ``"٣"``; ``int()`` refuses the first and
reads the second as 3, and reads 5,000 digits for a long time before refusing more than 4,300.)
"""

from __future__ import annotations

import re

from starlette.requests import Request

from outagecomms.errors import InputError
from outagecomms.recovery.feedback import SCORES

_SCORE = re.compile(r"[0-9]{1,2}")
_LENGTH = re.compile(r"[0-9]{1,18}")

#: how much of a refused value a page or error quotes back
MAX_QUOTED = 80


def quoted(raw: object) -> str:
    """A value as an error may quote it: at most ``MAX_QUOTED`` characters."""
    text = str(raw)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


def parse_score(raw: str | None) -> int:
    """A feedback score as a link or form sends it: ``0`` to ``10`` in ASCII digits (blanks
    around it allowed). Raises ``InputError`` (field ``score``) for anything else: missing,
    empty, signs, decimals, other scripts' digits, superscripts, long strings."""
    text = (raw or "").strip(" \t")
    if _SCORE.fullmatch(text) is None or int(text) not in SCORES:
        raise InputError(
            "must be a whole number from 0 to 10",
            field="score",
            value=None if raw is None else quoted(raw),
        )
    return int(text)


def parse_content_length(raw: str | None) -> int | None:
    """The ``Content-Length`` header as a number; None when absent or not plain ASCII digits
    (the body is then read and counted instead)."""
    if raw is None or _LENGTH.fullmatch(raw.strip()) is None:
        return None
    return int(raw.strip())


def media_type(raw: str | None) -> str:
    """``Content-Type`` without its parameters, lower case (``""`` when absent)."""
    return (raw or "").split(";", 1)[0].strip().lower()


def is_json_type(raw: str | None) -> bool:
    """A body a JSON endpoint takes: no ``Content-Type`` (curl, scripts), ``application/json``
    or a ``+json`` type."""
    kind = media_type(raw)
    return kind in ("", "application/json") or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` bytes (said by
    ``Content-Length`` or found while reading: nothing past the limit is kept). Raises
    ``ClientDisconnect`` when the client went (or ``[web] body_timeout`` closed it)."""
    length = parse_content_length(request.headers.get("content-length"))
    if length is not None and length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
