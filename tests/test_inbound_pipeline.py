"""Replies come back into the incident: matched by the Reply-To token (or the thread), classified,
scored, escalated to the account manager and the commander, acknowledged once per round, answered
with ``respond``; a bounce flags the address and resends the round on the customer's next
channel; a changed token is never attributed. Through the CLI (``inbound ingest``), against a
real SMTP server (aiosmtpd) and the fake Twilio API."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from outagecomms.inbound.sentiment import load_scorer
from outagecomms.inbound.tokens import make_token, read_token, reply_address, token_of
from tests.fakes.smtp import Received, SmtpServer
from tests.fakes.twilio import FakeTwilio
from tests.support.toml import email_and_channel

SECRET = "inbound-test-secret-0123456789abcdef"
HEADER = "id,name,email,phone,tier,components,regions,timezone,locale,account_manager\n"
ROWS = [
    "a,Alpha Ltd,ops@alpha.example,+15550100001,enterprise,api,eu,Europe/London,en_GB,"
    "jane.doe@s1.example",
    "b,Beta GmbH,ops@beta.example,+15550100002,standard,api,eu,Europe/Berlin,de_DE,",
]
INBOUND = """
[inbound]
reply_to = "replies@status.example.com"
"""


@pytest.fixture
def setup(
    tmp_path: Path,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
    cli: Any,
) -> tuple[Path, str]:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    sms = {
        "kind": "twilio",
        "account_sid_env": "TEST_TWILIO_SID",
        "auth_token_env": "TEST_TWILIO_TOKEN",
        "from": "+15550100999",
        "base_url": twilio.base,
    }
    # the sms channel is configured (sev4 uses it) but sev2 sends email only: a bounce must
    # fall back to SMS (the default fallback order)
    extra = INBOUND + email_and_channel("sev4", "sms", sms)
    cfg = make_config(smtp_server, extra=extra)
    csv = tmp_path / "customers.csv"
    csv.write_text(HEADER + "\n".join(ROWS) + "\n")
    assert cli("--config", str(cfg), "customers", "import", str(csv)).exit_code == 0
    res = cli(
        "--config", str(cfg), "declare", "API down", "--severity", "sev2", "--component", "api",
        "--commander", "ic@s1.example", "--yes", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    return cfg, json.loads(res.stdout)["incident"]


def _ack_to(smtp: SmtpServer, address: str) -> Received:
    msgs = smtp.handler.wait_for(lambda ms: any(address in m.rcpt_tos for m in ms))
    return next(m for m in msgs if address in m.rcpt_tos)


def _reply(to_msg: Received, text: str, *, sender: str, to: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to if to is not None else str(to_msg.message["Reply-To"])
    m["Subject"] = "Re: " + str(to_msg.message["Subject"])
    m["Message-ID"] = make_msgid(domain="alpha.example")
    m["In-Reply-To"] = to_msg.message_id
    m["References"] = to_msg.message_id
    m.set_content(text + "\n\nOn Mon, 7 Dec 2026 at 10:00, S1 Support wrote:\n> We are sorry.\n")
    return bytes(m)


def _ingest(cli: Any, cfg: Path, tmp_path: Path, raw: bytes, *args: str) -> dict[str, Any]:
    path = tmp_path / f"msg{len(list(tmp_path.glob('msg*.eml')))}.eml"
    path.write_bytes(raw)
    res = cli("--config", str(cfg), "inbound", "ingest", str(path), "--json", *args)
    assert res.exit_code == 0, res.stderr
    return dict(json.loads(res.stdout))


def test_tokens_sign_the_delivery_and_refuse_changes() -> None:
    secret = b"s"
    token = make_token(secret, 259)
    assert read_token(secret, token) == 259 and read_token(secret, token.upper()) == 259
    assert read_token(b"other", token) is None
    changed = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert read_token(secret, changed) is None
    assert read_token(secret, "8-" + token.split("-")[1]) is None  # another delivery's id
    addr = reply_address("replies@status.example.com", secret, 259)
    assert token_of("replies@status.example.com", addr.upper()) == token
    assert token_of("replies@status.example.com", "replies@status.example.com") is None
    assert token_of("replies@status.example.com", f"other+{token}@status.example.com") is None


def test_an_angry_reply_is_escalated_acknowledged_and_answered(
    setup: tuple[Path, str], smtp_server: SmtpServer, tmp_path: Path, cli: Any
) -> None:
    cfg, ref = setup
    ack = _ack_to(smtp_server, "ops@alpha.example")
    reply_to = str(ack.message["Reply-To"])
    assert reply_to.startswith("replies+") and reply_to.endswith("@status.example.com")
    before = len(smtp_server.handler.snapshot())
    words = "This is the third outage this month. We are considering cancelling our contract."
    raw = _reply(ack, words, sender="Ops <ops@alpha.example>")
    got = _ingest(cli, cfg, tmp_path, raw)
    assert got["kind"] == "reply" and got["customer_id"] == "a" and got["incident"] == ref
    assert got["escalated"] is True and got["queued"] == 3  # account manager, commander, thank-you
    msgs = smtp_server.handler.wait_for(lambda ms: len(ms) >= before + 3)[before:]
    by_to = {m.rcpt_tos[0]: m for m in msgs}
    assert set(by_to) == {"jane.doe@s1.example", "ic@s1.example", "ops@alpha.example"}
    escalation = by_to["jane.doe@s1.example"].text()
    assert words in " ".join(escalation.split())
    assert "tier enterprise" in escalation and f"show {ref} --customer a" in escalation
    thanks = by_to["ops@alpha.example"]
    assert thanks.message["In-Reply-To"] == email_message_id(raw)
    assert "Jane Doe will call you" in " ".join(thanks.text().split())

    # the same message again: stored once, nothing sent again
    again = _ingest(cli, cfg, tmp_path, raw)
    assert again["duplicate"] is True and again["id"] == got["id"]
    # a second reply in the same round: escalated again, but thanked only once per round
    raw2 = _reply(ack, "Also: we want a refund.", sender="ops@alpha.example")
    second = _ingest(cli, cfg, tmp_path, raw2)
    assert second["escalated"] is True and second["queued"] == 2

    shown = json.loads(cli("--config", str(cfg), "replies", ref, "--json").stdout)
    assert shown["incident"] == ref and len(shown["replies"]) == 2
    first = shown["replies"][0]
    for key in ("id", "customer_id", "channel", "kind", "received_at", "text", "sentiment",
                "label", "escalated", "responded_at"):  # fmt: skip
        assert key in first
    assert first["channel"] == "email" and first["text"] == words  # the quote is gone
    expected = load_scorer("vader").score(words, "en")
    assert first["sentiment"] == pytest.approx(expected)
    assert first["responded_at"] is None

    before = len(smtp_server.handler.snapshot())
    res = cli("--config", str(cfg), "respond", ref, "--customer", "a", "We hear you; Jane will call today.",
              "--by", "Sam", "--yes", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "sent"
    answer = smtp_server.handler.wait_for(lambda ms: len(ms) > before)[before]
    assert answer.rcpt_tos == ["ops@alpha.example"]
    assert answer.message["In-Reply-To"] == email_message_id(raw2)
    assert "We hear you; Jane will call today." in answer.text() and "Sam" in answer.text()
    shown = json.loads(cli("--config", str(cfg), "replies", ref, "--json").stdout)
    assert all(r["responded_at"] for r in shown["replies"])


def email_message_id(raw: bytes) -> str:
    from email import message_from_bytes

    return str(message_from_bytes(raw)["Message-ID"])


def test_a_changed_token_is_never_attributed(
    setup: tuple[Path, str], smtp_server: SmtpServer, tmp_path: Path, cli: Any
) -> None:
    cfg, _ref = setup
    ack = _ack_to(smtp_server, "ops@alpha.example")
    token = str(ack.message["Reply-To"]).split("+")[1].split("@")[0]
    other = token.split("-")[0] + "-" + "a" * 10
    raw = _reply(ack, "Cancel everything.", sender="ops@alpha.example",
                 to=f"replies+{other}@status.example.com")  # fmt: skip
    got = _ingest(cli, cfg, tmp_path, raw)
    assert got["customer_id"] is None and got["escalated"] is False and got["queued"] == 0
    unmatched = json.loads(cli("--config", str(cfg), "replies", "--unmatched", "--json").stdout)
    assert [r["id"] for r in unmatched["replies"]] == [got["id"]]
    assert "not one of ours" in unmatched["replies"][0]["unmatched_reason"]


def test_thread_fallback_needs_the_customers_own_address(
    setup: tuple[Path, str], smtp_server: SmtpServer, tmp_path: Path, cli: Any
) -> None:
    cfg, ref = setup
    ack = _ack_to(smtp_server, "ops@beta.example")
    # the plus part dropped by a mail system: threaded by In-Reply-To
    ok = _ingest(cli, cfg, tmp_path, _reply(ack, "Danke, wann geht es wieder?",
                 sender="ops@beta.example", to="replies@status.example.com"))  # fmt: skip
    assert ok["customer_id"] == "b" and ok["incident"] == ref
    forged = _ingest(cli, cfg, tmp_path, _reply(ack, "Please refund me",
                     sender="mallory@evil.example", to="replies@status.example.com"))  # fmt: skip
    assert forged["customer_id"] is None
    rows = json.loads(cli("--config", str(cfg), "replies", ref, "--json").stdout)["replies"]
    assert rows[0]["language"] == "de" and rows[0]["sentiment"] is None  # not scored in English
    assert rows[0]["needs_person"] is True


def _dsn(ack: Received, recipient: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.alpha.example (Mail Delivery System)\r\n"
        "To: support@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.alpha.example')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.alpha.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {ack.message_id}\r\nX-Outagecomms-Incident: {ack.message['X-Outagecomms-Incident']}\r\n"
        f"Subject: {ack.message['Subject']}\r\n\r\n--B--\r\n"
    ).encode()


def test_a_permanent_bounce_flags_the_address_and_resends_by_sms(
    setup: tuple[Path, str], smtp_server: SmtpServer, twilio: FakeTwilio, tmp_path: Path, cli: Any
) -> None:
    cfg, ref = setup
    ack = _ack_to(smtp_server, "ops@alpha.example")
    assert not twilio.requests  # sev2 sends email only
    got = _ingest(cli, cfg, tmp_path, _dsn(ack, "ops@alpha.example"))
    assert got["kind"] == "bounce" and got["customer_id"] == "a" and got["resent_on"] == "sms"
    assert got["queued"] == 0  # never answered
    res = cli("--config", str(cfg), "tick")
    assert res.exit_code == 0, res.stderr
    assert [r.form["To"] for r in twilio.requests] == ["+15550100001"]
    shown = json.loads(cli("--config", str(cfg), "show", ref, "--json").stdout)
    flagged = {(f["customer"], f["channel"]): f for f in shown["flagged_contacts"]}
    assert flagged[("a", "email")]["reason"].startswith("bounced 5.1.1")
    listed = json.loads(cli("--config", str(cfg), "customers", "list", "--json").stdout)
    alpha = next(c for c in listed["customers"] if c["id"] == "a")
    assert len(alpha["flagged"]) == 1 and alpha["flagged"][0].startswith(
        "email (ops@alpha.example)"
    )
    human = cli("--config", str(cfg), "customers", "list")
    assert "a: skipped from now on: email (ops@alpha.example): bounced 5.1.1" in human.stderr
    # the next round reaches them by SMS, not the dead address
    before = len(smtp_server.handler.snapshot())
    twilio.requests.clear()
    assert cli("--config", str(cfg), "update", "--yes", ref, "Rolled back.").exit_code == 0
    msgs = smtp_server.handler.wait_for(lambda ms: len(ms) > before)[before:]
    assert "ops@alpha.example" not in [t for m in msgs for t in m.rcpt_tos]
    assert [r.form["To"] for r in twilio.requests] == ["+15550100001"]


def test_an_auto_reply_is_recorded_never_answered(
    setup: tuple[Path, str], smtp_server: SmtpServer, tmp_path: Path, cli: Any
) -> None:
    cfg, ref = setup
    ack = _ack_to(smtp_server, "ops@alpha.example")
    m = EmailMessage()
    m["From"] = "ops@alpha.example"
    m["To"] = str(ack.message["Reply-To"])
    m["Subject"] = "Automatic reply: " + str(ack.message["Subject"])
    m["Auto-Submitted"] = "auto-replied"
    m["Message-ID"] = make_msgid()
    m.set_content("I am out of the office until Monday; this is terrible timing.")
    before = len(smtp_server.handler.snapshot())
    got = _ingest(cli, cfg, tmp_path, bytes(m))
    assert got["kind"] == "auto_reply" and got["customer_id"] == "a"
    assert got["escalated"] is False and got["queued"] == 0
    assert len(smtp_server.handler.snapshot()) == before
    rows = json.loads(
        cli("--config", str(cfg), "replies", ref, "--kind", "auto_reply", "--json").stdout
    )
    assert len(rows["replies"]) == 1 and rows["replies"][0]["label"] is None


def test_ingest_exits_75_when_the_store_is_down(
    make_config: Callable[..., Path], tmp_path: Path, cli: Any
) -> None:
    from tests.fakes.asgi import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2"
    cfg = make_config(None, store_url=url)
    path = tmp_path / "m.eml"
    path.write_bytes(b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n")
    res = cli("--config", str(cfg), "inbound", "ingest", str(path))
    assert res.exit_code == 75, res.stderr
    assert "not stored, try again later" in res.stderr
