"""Is it a bounce, and what bounced: RFC 3464 DSNs and the common non-standard NDR shapes.

Permanence decides whether a contact channel is switched off, so a status is read from the
machine-readable DSN fields when they exist and from the human text only when they do not
(qmail, old Exchange, Gmail's and Yahoo's plain-text notices). The bounced message's
Message-ID and our ``X-Outagecomms-*`` headers tie the bounce to a delivery; they are read from
the attached original (message/rfc822, text/rfc822-headers) or, failing that, the quoted copy
in the text.
"""

from __future__ import annotations

import email
import email.message
import email.parser
import email.policy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from outagecomms.inbound.parse import ParsedMessage


@dataclass(frozen=True, kw_only=True)
class Bounce:
    """What a delivery failure notice says (see ``classify.Bounce``)."""

    permanent: bool
    status: str
    action: str
    recipients: tuple[str, ...]
    diagnostic: str
    original_message_id: str
    original_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


_BOUNCE_SUBJECT = re.compile(
    r"""^\s*(?:
        undeliverable\b|undelivered\smail|undeliverable\smail|mail\sdelivery\sfailed
      | (?:mail\s)?delivery\sstatus\snotification\b|returned\smail\b|mail\sfailure\b
      | mail\scould\snot\sbe\sdelivered|failed\sdelivery\b|mail\sfailed,\sreturning
      | warning\W+could\snot\ssend\smail|there\swas\san\serror\ssending\syour\smail
      | メールエラー通知
      | failure\snotice\b|delivery\sfailure\b|mail\ssystem\serror|nondeliverable\smail
      | non-?delivery\sreport|message\snot\sdelivered|delivery\snotification:\s*delivery\shas
      | warning:\s*could\snot\ssend\smessage|delayed\smail|mail\sdelivery\s(?:failure|problem)
      | unzustellbar\s?:|non\sremis\s?:|no\sse\spuede\sentregar\s?:|não\sé\spossível\sentregar
      | 配信不能|配信エラー|undelivered\smessage
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_DAEMON = re.compile(
    r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon|mdaemon|mailer)@", re.IGNORECASE
)
# a mailer daemon writes nothing but delivery reports; a postmaster may be a person
_MAILER_DAEMON = re.compile(r"^(?:mailer-daemon|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_DAEMON_NAME = re.compile(r"mail delivery (?:subsystem|system)|mailer-daemon", re.IGNORECASE)
_BOUNCE_TEXT = re.compile(
    r"""(?:hi\.\sthis\sis\sthe\sqmail-send\sprogram
      | this\smessage\swas\screated\sautomatically\sby\smail\sdelivery\ssoftware
      | delivery\shas\sfailed\sto\sthese\srecipients
      | delivery\sto\sthe\sfollowing\srecipients?\s(?:failed|has\sbeen\sdelayed)
      | i'm\ssorry\sto\shave\sto\sinform\syou\sthat\syour\smessage\scould\snot
      | this\sis\sthe\smail\ssystem\sat\shost
      | your\smessage\s(?:couldn't|could\snot|wasn't|was\snot)\sbe(?:en)?\sdelivered
      | sorry,\swe\swere\sunable\sto\sdeliver\syour\smessage
      | the\sfollowing\saddresses\shad\spermanent\sfatal\serrors
      | message\scould\snot\sbe\sdelivered\sto\sone\sor\smore\srecipients
      | your\smessage\sdid\snot\sreach\ssome\sor\sall\sof\sthe\sintended\srecipients
      | a\smessage\sthat\syou\ssent\scould\snot\sbe\sdelivered
      | \*\*\s?address\snot\sfound\s?\*\*
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|antw|odp|vs|r|回复|答复)\s?:", re.IGNORECASE)
_TRANSIENT_TEXT = re.compile(
    r"delay(?:ed)?\b|will\s(?:be\s)?retr(?:y|ied)|temporar(?:y|ily)|still\strying"
    r"|not\syet\sbeen\sdelivered|will\skeep\strying|deferred|mailbox\sfull|over\squota",
    re.IGNORECASE,
)
_ENHANCED = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
_SMTP = re.compile(r"(?<![\w.:/-])([45][0-5]\d)(?=[\s-])")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# where the quoted copy of the bounced message starts in a plain-text notice
_ORIGINAL_START = re.compile(
    r"""^\s*(?:-{2,}\s*original\smessage\s*-{2,}
      | -{2,}\s*below\sthis\sline\sis\sa\scopy\sof\sthe\smessage\.?
      | -{2,}\s*this\sis\sa\scopy\sof\sthe\smessage.*
      | -{2,}\s*original\smessage\sfollows.*
      | -{2,}\s*the\sheader\sof\sthe\soriginal\smessage.*
      | original\smessage\sheaders?:?
      | ----\s*start\sof\sforwarded\smessage\s*----
    )\s*$""",
    re.VERBOSE | re.IGNORECASE | re.MULTILINE,
)
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60}):[ \t]*(.*)$")
_DIAG_LEAD = re.compile(
    r"(?:diagnostic-code|remote\sserver\sreplied|the\serror\sthat\sthe\sother\sserver\sreturned"
    r"\swas|smtp\serror|remote\shost\ssaid|said)\s*:\s*(.+)",
    re.IGNORECASE,
)


def looks_like_bounce(msg: ParsedMessage) -> str | None:
    """The reason ``msg`` is a bounce, or None."""
    ctype = msg.header("content-type").lower()
    if "multipart/report" in ctype and re.search(r"report-type\s*=\s*\"?delivery-status", ctype):
        return "DSN: report-type=delivery-status"
    if any(kind == "message/delivery-status" for kind, _ in msg.parts):
        return "DSN: message/delivery-status part"
    if _BOUNCE_SUBJECT.search(msg.subject):
        return f"subject: {msg.subject[:60]}"
    own = _own_lines(msg.text)[:4000]
    # a customer's "Re:" that pastes an error is a reply; a notice's text counts without one
    found = None if is_reply_subject(msg.subject) else _BOUNCE_TEXT.search(own)
    if found:
        return f"text: {found.group(0)[:60]}"
    if _MAILER_DAEMON.match(msg.from_addr):
        return f"sender: {msg.from_addr}"
    daemon = _DAEMON.match(msg.from_addr) or _DAEMON_NAME.search(msg.from_name)
    if daemon and (msg.header("x-failed-recipients") or _ENHANCED.search(own) or _SMTP.search(own)):
        return f"sender: {msg.from_addr or msg.from_name}"
    return None


def is_reply_subject(subject: str) -> bool:
    """Whether ``subject`` starts with a reply prefix (Re:, AW:, SV:, 回复: ...): what a
    person's answer carries and a machine's notice does not."""
    return _REPLY_PREFIX.match(subject) is not None


def _own_lines(text: str) -> str:
    """The text without ``>``-quoted lines: a customer's reply quoting a bounce is a reply."""
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))


def read_bounce(msg: ParsedMessage) -> Bounce:
    """The details of a message ``looks_like_bounce`` said yes to."""
    original_id, original = _original(msg)
    for kind, data in msg.parts:
        if kind == "message/delivery-status":
            dsn = _from_dsn(data, original_id, original)
            if dsn is not None:
                return dsn
    return _from_text(msg, original_id, original)


def _fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    name = ""
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and name:
            out[name] += " " + line.strip()
            continue
        found = _HEADER_LINE.match(line.rstrip("\r"))
        if found:
            name = found.group(1).lower()
            out.setdefault(name, found.group(2).strip())
    return out


def _from_dsn(data: bytes, original_id: str, original: Mapping[str, str]) -> Bounce | None:
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    blocks = [b for b in re.split(r"\n[ \t]*\n", text) if b.strip()]
    recipients: list[tuple[dict[str, str], str]] = []
    for block in blocks:
        fields = _fields(block)
        address = _typed_address(fields.get("final-recipient") or fields.get("original-recipient"))
        if address or "action" in fields or "status" in fields:
            recipients.append((fields, address))
    if not recipients:
        return None
    failed = [r for r in recipients if r[0].get("action", "").lower() in ("failed", "delayed")]
    chosen = failed or recipients
    fields = next((f for f, _ in chosen if f.get("action", "").lower() == "failed"), chosen[0][0])
    action = fields.get("action", "").strip().lower()
    found = _ENHANCED.search(fields.get("status", ""))
    status = found.group(1) if found else ""
    permanent = status.startswith("5") if status else action == "failed"
    if action == "delayed":
        permanent = False
    return Bounce(
        permanent=permanent,
        status=status,
        action=action,
        recipients=tuple(dict.fromkeys(a for _, a in chosen if a)),
        diagnostic=_one_line(fields.get("diagnostic-code", "")),
        original_message_id=original_id,
        original_headers=original,
    )


def _typed_address(value: str | None) -> str:
    """``rfc822; user@example.com`` -> ``user@example.com`` (domain lower-cased)."""
    if not value:
        return ""
    value = value.split(";", 1)[-1].strip().strip("<>")
    found = _ADDRESS.search(value)
    return _norm(found.group(0)) if found else ""


def _norm(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _one_line(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if text.lower().startswith("smtp;"):
        text = text[5:].strip()
    return text[:300]


def _from_text(msg: ParsedMessage, original_id: str, original: Mapping[str, str]) -> Bounce:
    text = _own_lines(msg.text)
    start = _ORIGINAL_START.search(text)
    notice = text[: start.start()] if start else text
    enhanced = _ENHANCED.search(notice)
    smtp = _SMTP.search(notice)
    status = enhanced.group(1) if enhanced else ""
    if status:
        permanent = status.startswith("5")
    elif smtp:
        permanent = smtp.group(1).startswith("5")
    else:
        permanent = not _TRANSIENT_TEXT.search(notice)
    return Bounce(
        permanent=permanent,
        status=status,
        action="failed" if permanent else "delayed",
        recipients=_text_recipients(msg, notice),
        diagnostic=_text_diagnostic(notice, enhanced or smtp),
        original_message_id=original_id,
        original_headers=original,
    )


def _text_recipients(msg: ParsedMessage, notice: str) -> tuple[str, ...]:
    listed = [
        _norm(a)
        for value in msg.headers.get("x-failed-recipients", ())
        for a in _ADDRESS.findall(value)
    ]
    if listed:
        return tuple(dict.fromkeys(listed))
    ours = {msg.from_addr, *msg.to_addrs}
    found = []
    for address in _ADDRESS.findall(notice):
        address = _norm(address.rstrip("."))
        if address in ours or _DAEMON.match(address):
            continue
        found.append(address)
    return tuple(dict.fromkeys(found))


def _text_diagnostic(notice: str, code: re.Match[str] | None) -> str:
    lead = _DIAG_LEAD.search(notice)
    if lead:
        return _one_line(lead.group(1))
    if code is not None:
        start = notice.rfind("\n", 0, code.start()) + 1
        end = notice.find("\n", code.end())
        return _one_line(notice[start : end if end >= 0 else len(notice)])
    for line in notice.split("\n"):
        if line.strip():
            return _one_line(line)
    return ""


def _original(msg: ParsedMessage) -> tuple[str, Mapping[str, str]]:
    """Message-ID and headers of the bounced message: attached, else quoted in the text."""
    for kind, data in msg.parts:
        if kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            headers = _header_map(data)
            if headers:
                return _msgid(headers.get("message-id", "")), headers
    start = _ORIGINAL_START.search(msg.text)
    if start:
        headers = _text_headers(msg.text[start.end() :])
        if headers:
            return _msgid(headers.get("message-id", "")), headers
    found = re.search(r"^\s*message-id:\s*(<[^>\s]+>)", msg.text, re.IGNORECASE | re.MULTILINE)
    return (found.group(1) if found else ""), MappingProxyType({})


def _header_map(data: bytes) -> Mapping[str, str]:
    try:
        parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            data, headersonly=True
        )
    except Exception:
        return MappingProxyType({})
    out: dict[str, str] = {}
    for name, value in parsed.raw_items():
        out.setdefault(str(name).lower(), re.sub(r"\s+", " ", str(value)).strip())
    return MappingProxyType(out)


def _text_headers(text: str) -> Mapping[str, str]:
    """The first header block in ``text`` (a quoted original): lines indented deeper than the
    block's first line continue the header above."""
    out: dict[str, str] = {}
    name = ""
    base: int | None = None
    for line in text.split("\n")[:300]:
        stripped = line.strip()
        if not stripped:
            if out:
                break
            continue
        indent = len(line) - len(line.lstrip())
        if base is None:
            base = indent
        found = _HEADER_LINE.match(stripped)
        if found and indent <= base:
            name = found.group(1).lower()
            out.setdefault(name, found.group(2).strip())
        elif name:
            out[name] = (out[name] + " " + stripped).strip()
        else:
            break
    return MappingProxyType(out)


def _msgid(value: str) -> str:
    found = re.search(r"<[^<>\s]+>", value)
    return found.group(0) if found else ""
