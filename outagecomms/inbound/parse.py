"""Raw inbound bytes -> ``ParsedMessage``: the fields matching and classification need.

Inbound mail is hostile or broken often enough (bounces quote half-sent messages, old MTAs
send 8-bit headers, spam sends anything) that ``parse_message`` never raises: whatever looked
wrong is recorded in ``notes`` and the rest is still read. Shapes that would make the stdlib
parser slow or blow its recursion limit (thousands of nested multiparts, 100,000 headers) are
cut off before it sees them (``mimecut``).

The stdlib ``compat32`` policy is used: it never raises on bad header syntax, and headers are
decoded by ``decoding`` (RFC 2047, 8-bit bytes, unknown charsets), where each failure is caught.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from outagecomms.inbound.decoding import decode_bytes, decode_header, decode_words, unfold
from outagecomms.inbound.mimecut import precut
from outagecomms.inbound.textclean import html_to_text


@dataclass(frozen=True, kw_only=True)
class ParseLimits:
    """How much of a message is read: past these it is cut and a note says so."""

    max_depth: int = 20  # MIME nesting deeper than this is not descended (note added)
    max_headers: int = 500  # headers beyond this are dropped (note added)
    keep_attachments: bool = False


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """A non-text leaf part; ``data`` only when ``ParseLimits.keep_attachments``."""

    filename: str
    content_type: str
    size: int
    data: bytes | None


@dataclass(frozen=True, kw_only=True)
class ParsedMessage:
    """One inbound message as the pipeline sees it (see the module docstring)."""

    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_addr: str
    from_name: str
    to_addrs: tuple[str, ...]
    subject: str
    date: datetime | None
    headers: Mapping[str, tuple[str, ...]]
    text: str
    html: bool
    notes: tuple[str, ...]
    attachments: tuple[Attachment, ...]
    parts: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        """The first value of header ``name`` (any case), "" when absent."""
        values = self.headers.get(name.lower(), ())
        return values[0] if values else ""


_MSGID = re.compile(r"<[^<>\s]+>")
_MAX_HTML = 256_000
_RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to")


def parse_message(raw: bytes, *, limits: ParseLimits = ParseLimits()) -> ParsedMessage:
    """Parse ``raw``; never raises (what was odd is in ``notes``)."""
    notes: list[str] = []
    try:
        return _parse(raw, limits, notes)
    except Exception as exc:  # the last resort: a stdlib corner we did not foresee
        notes.append(f"malformed MIME: {type(exc).__name__}: {str(exc)[:200]}")
        return _empty(notes)


def _empty(notes: list[str]) -> ParsedMessage:
    return ParsedMessage(
        message_id="",
        in_reply_to=(),
        references=(),
        from_addr="",
        from_name="",
        to_addrs=(),
        subject="",
        date=None,
        headers=MappingProxyType({}),
        text="",
        html=False,
        notes=tuple(notes),
        attachments=(),
        parts=(),
    )


def _parse(raw: bytes, limits: ParseLimits, notes: list[str]) -> ParsedMessage:
    if not isinstance(raw, bytes | bytearray | memoryview):
        notes.append(f"malformed MIME: not bytes but {type(raw).__name__}")
        return _empty(notes)
    raw = bytes(raw)
    lf = raw.count(b"\n")
    if lf and raw.count(b"\r\n") < lf:
        notes.append("bare LF line endings")
    raw = precut(raw, max_depth=limits.max_depth, max_headers=limits.max_headers, notes=notes)
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except RecursionError:
        notes.append(f"MIME nested deeper than {limits.max_depth}: not descended")
        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            raw, headersonly=True
        )
    for defect in msg.defects[:5]:
        notes.append(f"malformed MIME: {type(defect).__name__}")

    headers: dict[str, list[str]] = {}
    encoded: dict[str, list[str]] = {}  # address headers before RFC 2047 decoding
    for name, value in msg.raw_items():  # raw (name, value): compat32 keeps 8-bit as surrogates
        key = str(name).strip().lower()
        line = unfold(value, notes)
        headers.setdefault(key, []).append(decode_words(line, notes))
        if key == "from" or key in _RECIPIENT_HEADERS:
            encoded.setdefault(key, []).append(line)

    def first(name: str) -> str:
        values = headers.get(name)
        return values[0] if values else ""

    # addresses are split before the names are decoded: "=?utf-8?q?Doe=2C_John?=" is one name
    senders = _addresses(encoded.get("from", [""])[0], notes)
    from_name, from_addr = senders[0] if senders else ("", "")
    recipients: list[str] = []
    for key in _RECIPIENT_HEADERS:
        for value in encoded.get(key, ()):
            for _name, addr in _addresses(value, notes):
                if addr and addr not in recipients:
                    recipients.append(addr)

    walker = _Walker(limits, notes)
    walker.walk(msg, 0)
    return ParsedMessage(
        message_id=_first_msgid(first("message-id")),
        in_reply_to=tuple(_MSGID.findall(first("in-reply-to"))),
        references=tuple(_MSGID.findall(" ".join(headers.get("references", ())))),
        from_addr=from_addr,
        from_name=from_name,
        to_addrs=tuple(recipients),
        subject=first("subject"),
        date=_date(first("date")),
        headers=MappingProxyType({k: tuple(v) for k, v in headers.items()}),
        text=walker.text(),
        html=walker.text_is_html,
        notes=tuple(dict.fromkeys(notes)),
        attachments=tuple(walker.attachments),
        parts=tuple(walker.parts),
    )


def _addresses(value: str, notes: list[str]) -> list[tuple[str, str]]:
    """(decoded display name, bare address) of each address in a raw header value."""
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:
        return []
    return [(decode_words(name, notes).strip(), _bare(addr)) for name, addr in pairs]


def _bare(addr: str) -> str:
    addr = addr.strip().strip("<>")
    if addr.count("@") != 1 or any(ch.isspace() for ch in addr):
        return ""
    local, domain = addr.split("@")
    if not local or not domain:
        return ""
    return f"{local}@{domain.lower()}"


def _first_msgid(value: str) -> str:
    found = _MSGID.search(value)
    if found:
        return found.group(0)
    token = value.strip()
    return f"<{token}>" if token and " " not in token else ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except Exception:
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


class _Walker:
    """Visits the parts depth-first (bounded by ``max_depth``), collecting the leaf parts,
    the attachments and the human text (first text/plain, else first text/html)."""

    def __init__(self, limits: ParseLimits, notes: list[str]) -> None:
        self.limits = limits
        self.notes = notes
        self.parts: list[tuple[str, bytes]] = []
        self.attachments: list[Attachment] = []
        self.plain: str | None = None
        self.html: str | None = None
        self.text_is_html = False

    def text(self) -> str:
        if self.plain is not None:
            return self.plain
        if self.html is not None:
            self.text_is_html = True
            html = self.html
            if len(html) > _MAX_HTML:  # html.parser costs ~10 us a tag; the words are on top
                self.notes.append(f"HTML over {_MAX_HTML // 1000} kB: the rest not read")
                html = html[:_MAX_HTML]
            return html_to_text(html)
        return ""

    def walk(self, part: email.message.Message, depth: int) -> None:
        if depth > self.limits.max_depth:
            self.notes.append(f"MIME nested deeper than {self.limits.max_depth}: not descended")
            return
        ctype = _content_type(part)
        payload = part.get_payload()
        if ctype == "message/rfc822" or ctype == "message/delivery-status":
            self.parts.append((ctype, _message_bytes(part, payload)))
            return
        if part.is_multipart() and isinstance(payload, list):
            for child in payload:
                if isinstance(child, email.message.Message):
                    self.walk(child, depth + 1)
            return
        data = _payload_bytes(part, self.notes)
        self.parts.append((ctype, data))
        filename = _filename(part)
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        is_text = ctype in ("text/plain", "text/html")
        if is_text and disposition != "attachment" and not filename:
            text = decode_bytes(data, part.get_content_charset("us-ascii"), self.notes)
            if ctype == "text/plain" and self.plain is None:
                self.plain = text.replace("\r\n", "\n")
            elif ctype == "text/html" and self.html is None:
                self.html = text
            return
        if filename or disposition == "attachment" or not ctype.startswith("text/"):
            keep = data if self.limits.keep_attachments else None
            self.attachments.append(
                Attachment(filename=filename, content_type=ctype, size=len(data), data=keep)
            )


def _content_type(part: email.message.Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _filename(part: email.message.Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        return ""
    if not name:
        return ""
    return decode_header(name, [])


def _payload_bytes(part: email.message.Message, notes: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        notes.append(f"malformed MIME: payload not decodable ({type(exc).__name__})")
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


def _message_bytes(part: email.message.Message, payload: object) -> bytes:
    """The body of a message/rfc822 or message/delivery-status part as bytes: compat32 has
    parsed them into sub-messages (one per DSN field block), which are written back."""
    if isinstance(payload, list):
        blocks: list[bytes] = []
        for sub in payload:
            if not isinstance(sub, email.message.Message):
                continue
            try:
                blocks.append(sub.as_bytes(policy=email.policy.compat32))
            except Exception:
                lines = [f"{k}: {v}" for k, v in sub.raw_items()]
                blocks.append("\n".join(lines).encode("utf-8", "surrogateescape"))
        return b"\n".join(blocks)
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""
