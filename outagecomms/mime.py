"""Build a transactional notice as a MIME message with the stdlib ``email`` package."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, parseaddr

from outagecomms.channels.base import OutboundMessage
from outagecomms.errors import ConfigError

_CTRL = re.compile(r"[\x00-\x1f\x7f]+")


def header_safe(value: str) -> str:
    """Collapse CR, LF and other control characters: a header value can never start a new
    header, whatever user data went into it."""
    return _CTRL.sub(" ", value).strip()


def sender_domain(from_addr: str) -> str:
    _, addr = parseaddr(from_addr)
    return addr.rpartition("@")[2] or "localhost"


def check_from(from_addr: str) -> str | None:
    _name, addr = parseaddr(from_addr)
    if "@" not in addr or _CTRL.search(from_addr):
        return f"'from' must be an address like 'Support <support@example.com>', got {from_addr!r}"
    return None


def build_email(msg: OutboundMessage, *, from_addr: str, reply_to: str = "") -> bytes:
    """Multipart text+HTML with Message-ID, Date, From, To and the headers of an automated
    notice. Returns the wire bytes (CRLF line endings)."""
    em = EmailMessage(policy=SMTP)
    problem = check_from(from_addr)  # parseaddr() turns "A\r\nB: c@d <x@y>" into "c@d"
    if problem:
        raise ConfigError(problem)
    from_name, from_email = parseaddr(from_addr)
    if not from_email:
        raise ConfigError(f"'from' address {from_addr!r} is not valid")
    em["From"] = formataddr((header_safe(from_name), from_email))
    em["To"] = Address(display_name=header_safe(msg.to_name), addr_spec=msg.to)
    em["Subject"] = header_safe(msg.subject)
    em["Date"] = formatdate(usegmt=True)
    em["Message-ID"] = msg.message_id
    if reply_to:
        em["Reply-To"] = header_safe(reply_to)
    em["Auto-Submitted"] = "auto-generated"
    em["X-Auto-Response-Suppress"] = "All"
    for key, value in msg.headers.items():
        em[key] = header_safe(value)
    em.set_content(msg.text, cte="quoted-printable")
    if msg.html is not None:
        em.add_alternative(msg.html, subtype="html", cte="quoted-printable")
    return em.as_bytes()
