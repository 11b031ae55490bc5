"""The inbound pipeline through the library (``App``): texts matched by number (STOP / START),
``[[escalation]]`` rules (tier, repeat hurt, credit, words in other scripts, webhook targets),
a message stored but not processed before a crash, and the escalation rules' evaluation."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from outagecomms import App, InputError
from outagecomms.config.model import DEFAULT_ESCALATION, EscalationRule
from outagecomms.inbound import escalation, pipeline
from outagecomms.inbound.sentiment import label, load_scorer
from outagecomms.models import Customer
from outagecomms.store import customers as customers_db
from outagecomms.store import inbound as inbound_db
from tests.fakes.providers import FakeProviders
from tests.fakes.smtp import SmtpServer
from tests.fakes.twilio import FakeTwilio
from tests.support.toml import email_and_channel

HEADER = "id,name,email,phone,tier,components,regions,timezone,locale,account_manager\n"
ROWS = [
    "a,Alpha Ltd,ops@alpha.example,+15550100001,enterprise,api,eu,UTC,en_US,am@s1.example",
    "b,Beta KK,ops@beta.example,+15550100002,standard,api,eu,Asia/Tokyo,ja_JP,",
]


@pytest.fixture
def app(
    tmp_path: Path,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    twilio: FakeTwilio,
    providers: FakeProviders,
    monkeypatch: pytest.MonkeyPatch,
    cli: Any,
) -> Iterator[App]:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "s" * 32)
    sms = {
        "kind": "twilio",
        "account_sid_env": "TEST_TWILIO_SID",
        "auth_token_env": "TEST_TWILIO_TOKEN",
        "from": "+15550100999",
        "base_url": twilio.base,
    }
    extra = email_and_channel("sev2", "sms", sms) + "\n[inbound]\n"
    cfg = make_config(smtp_server, extra=extra)
    csv = tmp_path / "customers.csv"
    csv.write_text(HEADER + "\n".join(ROWS) + "\n")
    assert cli("--config", str(cfg), "customers", "import", str(csv)).exit_code == 0
    res = cli("--config", str(cfg), "declare", "API down", "--severity", "sev2",
              "--component", "api", "--commander", "ic@s1.example", "--yes")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    with App.open(cfg) as a:
        yield a


def test_a_text_is_matched_by_number_and_answered_by_sms(app: App, twilio: FakeTwilio) -> None:
    twilio.requests.clear()
    got = app.ingest_sms(sender="+1 555-010-0001", to="+15550100999",
                         body="This is unacceptable, third time this month", message_sid="SM1")  # fmt: skip
    assert got.customer_id == "a" and got.incident_ref == "INC-1" and got.escalated
    again = app.ingest_sms(sender="+15550100001", to="+15550100999", body="x", message_sid="SM1")
    assert again.duplicate and again.id == got.id
    app.send_inbound()
    to = sorted(r.form["To"] for r in twilio.requests)
    assert to == ["+15550100001"]  # the thank-you, by SMS, once
    rows = app.replies("INC-1")
    assert rows[0]["channel"] == "sms" and rows[0]["source"] == "twilio"
    assert rows[0]["escalation"]["rule"] == "words"


def test_stop_flags_the_number_and_start_clears_it(app: App, twilio: FakeTwilio) -> None:
    got = app.ingest_sms(sender="+15550100002", to="+15550100999", body="STOP", message_sid="SM2")
    assert got.escalated is False and got.sends == 0
    with app.store.read() as conn:
        flags = customers_db.contact_flags(conn, ["b"])
    assert [(f["channel"], f["reason"]) for f in flags] == [("sms", pipeline.OPT_OUT_REASON)]
    twilio.requests.clear()
    app.update("INC-1", "Still on it.")
    assert "+15550100002" not in [r.form["To"] for r in twilio.requests]
    app.ingest_sms(sender="+15550100002", to="+15550100999", body="start", message_sid="SM3")
    with app.store.read() as conn:
        assert customers_db.contact_flags(conn, ["b"]) == []


def test_an_unknown_number_is_unmatched(app: App) -> None:
    got = app.ingest_sms(sender="+15559999999", to="+15550100999", body="refund!", message_sid="S")
    assert got.customer_id is None and not got.escalated
    assert [r["id"] for r in app.replies(unmatched=True)] == [got.id]


def test_a_webhook_and_an_extra_address_are_told(
    tmp_path: Path,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    providers: FakeProviders,
    monkeypatch: pytest.MonkeyPatch,
    cli: Any,
) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "s" * 32)
    hook = f"{providers.base}/webhook/escalations"
    rules = (
        '[[escalation]]\nname = "big accounts"\ntier = ["enterprise"]\n'
        f'notify = ["cs@s1.example", "{hook}"]\n'
        '[[escalation]]\nname = "the rest"\nlabel = ["negative"]\nnotify = ["commander"]\n'
    )
    cfg = make_config(smtp_server, extra=rules)
    csv = tmp_path / "customers.csv"
    csv.write_text(HEADER + "\n".join(ROWS) + "\n")
    assert cli("--config", str(cfg), "customers", "import", str(csv)).exit_code == 0
    assert cli("--config", str(cfg), "declare", "API down", "--severity", "sev2", "--component",
               "api", "--commander", "ic@s1.example", "--yes").exit_code == 0  # fmt: skip
    with App.open(cfg) as app, app.store.read() as conn:
        deliveries = {
            r["customer_id"]: r["id"]
            for r in conn.execute(text("select id, customer_id from deliveries")).mappings()
        }
    with App.open(cfg) as app:
        raw = (
            "From: ops@alpha.example\r\nTo: support@example.com\r\nSubject: Re: API down\r\n"
            f"Message-ID: <r1@alpha.example>\r\nIn-Reply-To: <oc.{deliveries['a']}.inc-1.r1@example.com>\r\n"
            "\r\nThanks, looks fine now.\r\n"
        ).encode()
        got = app.ingest(raw)
        assert (
            got.escalated and got.label == "positive"
        )  # the enterprise rule holds whatever the mood
        before = len(smtp_server.handler.snapshot())
        app.send_inbound()
        posted = [r for r in providers.recorded() if r.path.endswith("/escalations")]
        assert len(posted) == 1
        body = json.loads(posted[0].body)
        assert body["event"] == "reply_escalation" and body["customer"] == "a"
        assert "Thanks, looks fine now." in body["text"]
        new = smtp_server.handler.snapshot()[before:]
        assert sorted(t for m in new for t in m.rcpt_tos) == ["cs@s1.example", "ops@alpha.example"]
        raw_b = (
            raw.replace(b"ops@alpha.example", b"ops@beta.example")
            .replace(f"oc.{deliveries['a']}.".encode(), f"oc.{deliveries['b']}.".encode())
            .replace(b"<r1@", b"<r2@")
            .replace(b"Thanks, looks fine now.", b"This is awful and broken.")
        )
        got_b = app.ingest(raw_b)
        assert _vader_label("This is awful and broken.") == "negative"
        assert got_b.customer_id == "b" and got_b.escalated
        row = app.replies("INC-1", label="negative")[0]
        assert row["escalation"]["rule"] == "the rest" and row["escalation"]["to"] == [
            "ic@s1.example"
        ]


def test_a_message_stored_before_a_crash_is_processed_later(app: App) -> None:
    stored = pipeline.store_message(
        app, b"From: x@y.example\r\nMessage-ID: <c@y>\r\n\r\nhello\r\n", source="smtp"
    )
    with app.store.read() as conn:
        assert inbound_db.pending_ids(conn) == [stored.id]
    assert pipeline.process_pending(app) == 1
    with app.store.read() as conn:
        assert inbound_db.pending_ids(conn) == []
    assert pipeline.process_pending(app) == 0


def _vader_label(text: str) -> str | None:
    return label(load_scorer("vader").score(text, "en"))


def _facts(text: str, **kw: Any) -> escalation.Facts:
    base: dict[str, Any] = {
        "text": text,
        "label": "neutral",
        "score": 0.0,
        "customer": Customer(id="c", name="C", tier="standard", currency="EUR"),
        "incidents_in": {},
        "credit": None,
    }
    base.update(kw)
    return escalation.Facts(**base)


def test_default_rules_catch_words_in_every_language_and_negative_replies() -> None:
    assert escalation.decide(DEFAULT_ESCALATION, _facts("Wir werden kündigen."))
    assert escalation.decide(DEFAULT_ESCALATION, _facts("また障害ですか。解約を検討します。"))
    assert escalation.decide(DEFAULT_ESCALATION, _facts("THIRD   TIME this month"))
    assert escalation.decide(DEFAULT_ESCALATION, _facts("ok", label="negative"))
    assert escalation.decide(DEFAULT_ESCALATION, _facts("Is it fixed? thanks")) is None
    unscored = escalation.decide(
        DEFAULT_ESCALATION, _facts("Est-ce réparé ?", score=None, label=None)
    )
    assert unscored is not None and unscored.rule == "not scored"
    assert escalation.decide(DEFAULT_ESCALATION, _facts("against all odds")) is None  # not "again"


def test_repeat_hurt_and_credit_conditions() -> None:
    rule = EscalationRule(
        name="hurt", incidents_at_least=3, incidents_within=timedelta(days=30),
        credit_at_least=Decimal("50"), notify=("commander",),
    )  # fmt: skip
    assert escalation.decide([rule], _facts("x", incidents_in={30: 2}, credit=Decimal(60))) is None
    assert escalation.decide([rule], _facts("x", incidents_in={30: 3}, credit=Decimal(40))) is None
    hit = escalation.decide([rule], _facts("x", incidents_in={30: 3}, credit=Decimal(50)))
    assert hit is not None and "3 incidents in 30d" in hit.why and hit.notify == ("commander",)


def test_the_pipeline_on_each_store(
    store_url: str,
    tmp_path: Path,
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    cli: Any,
) -> None:
    """Store, process, queue and send on SQLite and PostgreSQL alike (claims, savepoints on
    a duplicate acknowledgement, JSON columns)."""
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "s" * 32)
    cfg = make_config(smtp_server, store_url=store_url, extra="[inbound]\n")
    csv = tmp_path / "customers.csv"
    csv.write_text(HEADER + "\n".join(ROWS) + "\n")
    assert cli("--config", str(cfg), "customers", "import", str(csv)).exit_code == 0
    assert cli("--config", str(cfg), "declare", "API down", "--severity", "sev2", "--component",
               "api", "--commander", "ic@s1.example", "--yes").exit_code == 0  # fmt: skip
    with App.open(cfg) as app:
        with app.store.read() as conn:
            delivery = conn.execute(
                text("select id from deliveries where customer_id = 'a'")
            ).scalar_one()
        for n in (1, 2):
            raw = (
                f"From: ops@alpha.example\r\nSubject: Re: API down\r\nMessage-ID: <p{n}@alpha>\r\n"
                f"In-Reply-To: <oc.{delivery}.inc-1.r1@example.com>\r\n\r\n"
                "We want a refund for this.\r\n"
            ).encode()
            got = app.ingest(raw)
            assert got.customer_id == "a" and got.escalated
            assert got.sends == (3 if n == 1 else 2)  # thanked once per round
            assert app.ingest(raw).duplicate
        before = len(smtp_server.handler.snapshot())
        assert app.send_inbound() == 5
        new = smtp_server.handler.wait_for(lambda ms: len(ms) >= before + 5)[before:]
        to = sorted(t for m in new for t in m.rcpt_tos)
        assert to == ["am@s1.example"] * 2 + ["ic@s1.example"] * 2 + ["ops@alpha.example"]
        assert app.send_inbound() == 0
        # a group commit: a message twice in one write, one stored before, one too large
        new = b"From: x@y.example\r\nMessage-ID: <g1@y>\r\n\r\nhello\r\n"
        old = raw  # the second reply above, stored already
        huge = b"From: x@y.example\r\n\r\n" + b"x" * (app.config.inbound.max_size + 1)
        got = pipeline.store_many(app, [(new, []), (new, []), (old, []), (huge, [])], source="smtp")
        assert isinstance(got[0], pipeline.Stored) and not got[0].duplicate
        assert isinstance(got[1], pipeline.Stored) and got[1].duplicate and got[1].id == got[0].id
        assert isinstance(got[2], pipeline.Stored) and got[2].duplicate
        assert isinstance(got[3], InputError)
        with app.store.read() as conn:
            assert inbound_db.pending_ids(conn) == [got[0].id]


def test_attachments_are_not_kept_unless_configured(app: App) -> None:
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"] = "ops@alpha.example"
    m["Subject"] = "Re: API down"
    m["Message-ID"] = "<att@alpha>"
    m.set_content("Screenshot attached.")
    blob = bytes(range(256)) * 400
    m.add_attachment(blob, maintype="image", subtype="png", filename="error.png")
    raw = bytes(m)
    got = app.ingest(raw)
    with app.store.read() as conn:
        row = inbound_db.get_message(conn, got.id)
    assert row is not None
    assert blob not in row["raw"] and len(row["raw"]) < len(raw) // 10
    assert b"attachment not kept: image/png; 102400 bytes; error.png" in row["raw"]
    assert "1 attachment(s) not kept" in row["parse_note"]
    assert b"Screenshot attached." in row["raw"]  # the person's words stay


def test_malformed_mime_is_kept_with_a_note(app: App) -> None:
    raw = (
        b"From: ops@alpha.example\nSubject: =?x-unknown?q?caf=E9?=\nMessage-ID: <bad@a>\n"
        b'Content-Type: multipart/mixed; boundary="never-closed"\n\n--never-closed\n'
        b"Content-Type: text/plain; charset=x-nonsense\n\nCaf\xe9 still down?\n"
    )
    got = app.ingest(raw)
    with app.store.read() as conn:
        row = inbound_db.get_message(conn, got.id)
    assert row is not None and row["raw"] == raw  # as received, byte for byte
    assert row["parse_note"]  # bare LF, the unknown charsets: noted
    assert row["customer_id"] is None and "still down" in row["text"]
