"""Header and body text from the bytes mail actually carries.

RFC 2047 encoded words are decoded here in one linear pass (``email.header.decode_header`` is
quadratic: 100,000 words took it 20 s); 8-bit header bytes are read as UTF-8, else Latin-1;
unknown charsets as Latin-1 and text mislabelled UTF-8 as Windows-1252, the commonest
mislabel. Each fallback adds a note rather than raising.
"""

from __future__ import annotations

import binascii
import codecs
import re

_SURROGATE = re.compile("[\udc80-\udcff]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_SPACES = re.compile(r"\s+")
_FOLD = re.compile(r"\r?\n[ \t]*")


def unfold(value: object, notes: list[str]) -> str:
    """A raw header value as one line of text, 8-bit bytes read as UTF-8 else Latin-1."""
    text = value if isinstance(value, str) else str(value)
    if _SURROGATE.search(text):
        data = text.encode("ascii", "surrogateescape")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
            notes.append("8-bit header read as latin-1")
    return _FOLD.sub(" ", text).strip()


def decode_header(value: object, notes: list[str]) -> str:
    """One header value as text: unfolded, RFC 2047 words decoded."""
    return decode_words(unfold(value, notes), notes)


def decode_words(text: str, notes: list[str]) -> str:
    """RFC 2047 encoded words decoded, in one linear pass (``email.header.decode_header`` is
    quadratic: 100,000 words took it 20 s). Adjacent words of one charset are joined as bytes
    first, since a client may split a multibyte character between them; the whitespace
    between two encoded words is dropped, as RFC 2047 says."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset = ""
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending:
            out.append(decode_bytes(bytes(pending), pending_charset, notes))
            pending.clear()
        pending_charset = ""

    for word in _ENCODED_WORD.finditer(text):
        gap = text[position : word.start()]
        if gap.strip() or (gap and position == 0):
            flush()
            out.append(gap)
        # else: only whitespace between two encoded words, which RFC 2047 drops
        charset = word.group(1).split("*", 1)[0].lower()
        data = _word_bytes(word.group(2), word.group(3))
        if data is None:
            flush()
            out.append(word.group(0))
        else:
            if charset != pending_charset:
                flush()
                pending_charset = charset
            pending.extend(data)
        position = word.end()
    flush()
    out.append(text[position:])
    return _SPACES.sub(" ", "".join(out)).strip()


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            return binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        return binascii.a2b_qp(payload.replace("_", " ").encode("ascii", "replace"))
    except (binascii.Error, ValueError):
        return None


def decode_bytes(data: bytes, charset: str | None, notes: list[str]) -> str:
    name = (charset or "us-ascii").strip().lower()
    if name in ("unknown-8bit", "x-unknown"):
        name = "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        notes.append(f"unknown charset {name!r} read as latin-1")
        return data.decode("latin-1")
    try:
        return data.decode(name)
    except UnicodeDecodeError:
        if codecs.lookup(name).name in ("utf-8", "ascii"):
            # the commonest mislabel: Windows-1252 text declared as UTF-8 or ASCII
            notes.append(f"text not valid {name}: read as windows-1252")
            return data.decode("cp1252", errors="replace")
        notes.append(f"text not valid {name}: undecodable bytes replaced")
        return data.decode(name, errors="replace")
    except Exception:  # some codecs (e.g. utf-7 on junk) raise other errors
        return data.decode("latin-1")
