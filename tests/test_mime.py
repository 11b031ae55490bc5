"""The MIME message of an email notice: structure, headers, and no header injection."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from outagecomms.channels.base import OutboundMessage
from outagecomms.errors import ConfigError
from outagecomms.rendering.mime import build_email, header_safe

FROM = "S1 Support <support@example.com>"
INJECT = "\r\nBcc: evil@example.net"


def outbound(**kw: object) -> OutboundMessage:
    base: dict[str, object] = {
        "delivery_id": 7,
        "to": "ops@acme.example.com",
        "to_name": "Acme Logistics",
        "subject": "[Investigating] Sign-in failures: we are on it (INC-3)",
        "text": "Hello Acme Logistics,\n\nWe are on it.\n",
        "html": "<!DOCTYPE html><html><body><p>Hello Acme Logistics,</p></body></html>",
        "message_id": "<oc.7.inc-3.r1@example.com>",
        "headers": {
            "X-Outagecomms-Customer": "c0000001",
            "X-Outagecomms-Round": "1 acknowledgement",
        },
    }
    base.update(kw)
    return OutboundMessage(**base)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def content(part: EmailMessage | None) -> str:
    """A body part's text with the wire's CRLF line ends back to LF."""
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def header_names(data: bytes) -> list[str]:
    """Header field names exactly as on the wire (top-level header block only)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [ln.split(":", 1)[0] for ln in head.split("\r\n") if ln and not ln[0].isspace()]


def test_multipart_alternative_with_text_and_html() -> None:
    data = build_email(outbound(), from_addr=FROM, reply_to="help@example.com")
    msg = parse(data)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert content(text) == "Hello Acme Logistics,\n\nWe are on it.\n"
    assert "<p>Hello Acme Logistics,</p>" in html.get_content()
    assert text.get_content_charset() == "utf-8"
    assert msg.defects == []


def test_headers() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    data = build_email(outbound(), from_addr=FROM, reply_to="help@example.com")
    after = datetime.now(UTC)
    msg = parse(data)
    assert msg["Message-ID"] == "<oc.7.inc-3.r1@example.com>"
    assert msg["From"].addresses[0].display_name == "S1 Support"
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    (to,) = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Acme Logistics", "ops@acme.example.com")
    assert msg["Subject"] == "[Investigating] Sign-in failures: we are on it (INC-3)"
    assert msg["Reply-To"].addresses[0].addr_spec == "help@example.com"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Outagecomms-Customer"] == "c0000001"
    assert msg["X-Outagecomms-Round"] == "1 acknowledgement"
    assert msg["MIME-Version"] == "1.0"
    date = parsedate_to_datetime(str(msg["Date"]))
    assert date.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= date <= after + timedelta(seconds=1)
    # every header exactly once
    names = [n.lower() for n in header_names(data)]
    assert len(names) == len(set(names))
    assert "bcc" not in names and "cc" not in names


def test_no_reply_to_when_not_given() -> None:
    msg = parse(build_email(outbound(), from_addr=FROM))
    assert msg["Reply-To"] is None


def test_text_only_when_no_html() -> None:
    msg = parse(build_email(outbound(html=None), from_addr=FROM))
    assert msg.get_content_type() == "text/plain"
    assert content(msg) == "Hello Acme Logistics,\n\nWe are on it.\n"


def test_wire_format_crlf_and_short_lines() -> None:
    long_text = "word " * 1000 + "\n" + "x" * 5000 + "\n"
    data = build_email(outbound(text=long_text, html="<p>" + "y" * 5000 + "</p>"), from_addr=FROM)
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in data.split(b"\r\n")) <= 998  # RFC 5322 limit
    msg = parse(data)
    body = msg.get_body(("plain",))
    assert body is not None
    assert content(body) == long_text


def test_non_ascii_round_trips() -> None:
    data = build_email(
        outbound(
            to_name="Zoë Müller – 東京",
            subject="Störung: Anmeldung – 東京 (INC-3)",
            text="Grüße aus Köln — «ça marche» 東京\n",
        ),
        from_addr="Ünïcode Support <support@example.com>",
    )
    data.decode("ascii")  # 7-bit clean on the wire
    msg = parse(data)
    assert msg["Subject"] == "Störung: Anmeldung – 東京 (INC-3)"
    assert msg["To"].addresses[0].display_name == "Zoë Müller – 東京"
    assert msg["From"].addresses[0].display_name == "Ünïcode Support"
    body = msg.get_body(("plain",))
    assert content(body) == "Grüße aus Köln — «ça marche» 東京\n"


def test_display_name_with_specials_is_one_address() -> None:
    msg = parse(build_email(outbound(to_name='Acme, Inc. "HQ" <ops>'), from_addr=FROM))
    (to,) = msg["To"].addresses
    assert to.addr_spec == "ops@acme.example.com"
    assert to.display_name == 'Acme, Inc. "HQ" <ops>'


@pytest.mark.parametrize(
    "evil",
    [
        INJECT,
        "\nBcc: evil@example.net",
        "\rBcc: evil@example.net",
        "\r\n\r\n<html>body injection</html>",
        "\x00\x0b\x0c\x1b\x7fBcc: evil@example.net",
    ],
)
@pytest.mark.parametrize("where", ["subject", "to_name", "header"])
def test_no_header_injection(where: str, evil: str) -> None:
    kw: dict[str, object] = {}
    if where == "subject":
        kw["subject"] = "Outage" + evil
    elif where == "to_name":
        kw["to_name"] = "Acme" + evil
    else:
        kw["headers"] = {"X-Outagecomms-Customer": "c1" + evil}
    data = build_email(outbound(**kw), from_addr=FROM, reply_to="help@example.com")
    msg = parse(data)
    assert msg["Bcc"] is None
    assert "bcc" not in [n.lower() for n in header_names(data)]
    subject = str(msg["Subject"])
    assert "\n" not in subject and "\r" not in subject
    (to,) = msg["To"].addresses
    assert to.addr_spec == "ops@acme.example.com"
    assert len(msg.get_all("To") or []) == 1
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    assert content(text) == "Hello Acme Logistics,\n\nWe are on it.\n"


def test_injected_subject_keeps_the_words_on_one_line() -> None:
    msg = parse(build_email(outbound(subject="Outage" + INJECT), from_addr=FROM))
    assert msg["Subject"] == "Outage Bcc: evil@example.net"


def test_injection_in_reply_to_is_neutralised() -> None:
    data = build_email(outbound(), from_addr=FROM, reply_to="help@example.com" + INJECT)
    msg = parse(data)
    assert msg["Bcc"] is None
    assert "bcc" not in [n.lower() for n in header_names(data)]


def test_injection_in_from_is_refused() -> None:
    """parseaddr() would read "S1\\r\\nBcc: evil@x <support@...>" as the address evil@x."""
    with pytest.raises(ConfigError):
        build_email(outbound(), from_addr="S1 Support" + INJECT + " <support@example.com>")


def test_invalid_recipient_address_is_refused() -> None:
    with pytest.raises(ValueError):
        build_email(outbound(to="ops@acme.example.com" + INJECT), from_addr=FROM)


@pytest.mark.parametrize("from_addr", ["", "nobody", "Support <>"])
def test_invalid_from(from_addr: str) -> None:
    with pytest.raises(ConfigError):
        build_email(outbound(), from_addr=from_addr)


def test_header_safe() -> None:
    assert header_safe("a\r\nb\tc\x00d ") == "a b c d"
    assert header_safe("plain") == "plain"


BODIES = [
    "",
    "no line break at all",
    "trailing spaces   \nand tabs\t\n",
    ".a line starting with a dot\n..two\n.\n",
    "= signs = everywhere ==\n",
    "Grüße " * 40 + "\n" + "東京" * 100,
    "lone\rcarriage return and \r\n mixed endings\n",
    "From the start of a line\n",
]


@pytest.mark.parametrize("text", BODIES, ids=range(len(BODIES)))
def test_bodies_round_trip_through_a_standard_parser(text: str) -> None:
    data = build_email(outbound(text=text, html=f"<pre>{text}</pre>"), from_addr=FROM)
    msg = parse(data)
    assert msg.defects == []
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert content(msg.get_body(("plain",))) == expected  # type: ignore[arg-type]
    assert content(msg.get_body(("html",))) == f"<pre>{expected}</pre>"  # type: ignore[arg-type]
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78  # bodies soft-wrapped, headers folded
    assert all(line.isascii() for line in lines)  # 7-bit clean for any relay


def test_long_and_non_ascii_headers_are_encoded_and_folded() -> None:
    subject = "Störung " * 20 + "(INC-3)"
    name = "Zoë " * 30
    data = build_email(outbound(subject=subject, to_name=name), from_addr=FROM)
    msg = parse(data)
    assert msg["Subject"] == subject.strip()
    # RFC 2047 decoding (the stdlib's address parser keeps the folding whitespace between
    # encoded-words of a display name, which mail clients and RFC 2047 drop)
    unfolded = data.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ")
    raw_to = next(ln[4:] for ln in unfolded.split("\r\n") if ln.startswith("To: "))
    assert str(make_header(decode_header(raw_to))) == f"{name.strip()} <ops@acme.example.com>"
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78


def test_headers_do_not_depend_on_the_global_charset_registry() -> None:
    """Apprise's email plugin re-registers utf-8 (quoted-printable headers) process-wide."""
    from email import charset

    args = {"subject": "Störung " * 12, "to_name": "Zoë " * 25}
    before = build_email(outbound(**args), from_addr=FROM)
    saved = dict(charset.CHARSETS)
    try:
        charset.add_charset("utf-8", charset.QP, charset.QP, "utf-8")
        from outagecomms.rendering import mime

        mime._header.cache_clear()
        mime._address.cache_clear()
        after = build_email(outbound(**args), from_addr=FROM)
    finally:
        charset.CHARSETS.clear()
        charset.CHARSETS.update(saved)

    def head(data: bytes) -> list[bytes]:
        lines = data.split(b"\r\n\r\n")[0].split(b"\r\n")
        return [ln for ln in lines if not ln.startswith((b"Date", b" boundary"))]

    assert head(before) == head(after)
