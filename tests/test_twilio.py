"""The Twilio SMS channel against a real local HTTP server (:class:`tests.fakes.twilio.FakeTwilio`)
that checks every request against Twilio's published OpenAPI description of the Messages
operation, and answers with each documented outcome: 201, 429 with Retry-After, errors
20429 / 21211 / 21610, 5xx and a slow response. What every channel must do is asserted once
for all kinds in ``test_channel_contract.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from outagecomms.channels import registry
from outagecomms.channels.base import DeliveryResult, OutboundMessage, Outcome
from outagecomms.channels.twilio import (
    INVALID_TO,
    OPTED_OUT,
    VALIDITY_MAX,
    TwilioChannel,
    error_code,
    sms_segments,
    validity_period,
)
from outagecomms.config.model import ChannelConfig, CompanyConfig
from outagecomms.models import RoundKind
from tests.fakes.asgi import Reply
from tests.fakes.twilio import FROM, MESSAGES_PATH, SERVICE, FakeTwilio, twilio_error
from tests.support import builders
from tests.support.builders import round_data
from tests.support.channels import deliver_at_once

TO = "+15550100123"
NOW = builders.WINTER


# --- helpers ------------------------------------------------------------------------------------


def settings(**over: Any) -> dict[str, Any]:
    values = {k: default for k, (_t, default) in TwilioChannel.config_keys.items()}
    values.update(
        account_sid_env="TEST_TWILIO_SID",
        auth_token_env="TEST_TWILIO_TOKEN",
        timeout=5,
    )
    values["from"] = FROM
    values.update(over)
    return values


def make(base: str, **over: Any) -> TwilioChannel:
    cfg = ChannelConfig(
        name="sms",
        kind="twilio",
        max_connections=4,
        rate_per_second=0,
        settings=settings(base_url=base, **over),
    )
    return TwilioChannel(cfg, CompanyConfig(name="S1 Technology"), clock=lambda: NOW.timestamp())


def message(
    to: str = TO, *, promised: datetime | None = NOW + timedelta(minutes=30), i: int = 7
) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=i,
        to=to,
        to_name="Acme Logistics",
        subject="",
        text="S1 Technology INC-42: Sign-in failures - auth in eu-west. Next update by 14:30 CET.\n",
        html=None,
        message_id=f"<oc.{i}.inc-42.r1@example.com>",
        data=round_data(promised_next_by=promised.isoformat() if promised else None),
    )


def send_one(channel: TwilioChannel, msg: OutboundMessage) -> DeliveryResult:
    (result,) = deliver_at_once(channel, msg)
    return result  # type: ignore[no-any-return]


# --- requests and outcomes ----------------------------------------------------------------------


def test_registered() -> None:
    assert registry.get("twilio") is TwilioChannel
    assert TwilioChannel.contact_field == "phone"
    assert TwilioChannel.template_channel == "sms"


def test_sent_with_the_message_sid_and_a_valid_request(twilio: FakeTwilio) -> None:
    result = send_one(make(twilio.base, status_callback="https://oc.example.com/twilio"), message())
    assert twilio.problems == []
    assert result.outcome == Outcome.SENT
    assert result.provider_id is not None and result.provider_id.startswith("SM")
    (req,) = twilio.requests
    assert req.path == MESSAGES_PATH
    assert req.form["To"] == TO and req.form["From"] == FROM
    assert "MessagingServiceSid" not in req.form
    assert req.form["Body"].startswith("S1 Technology INC-42") and not req.form["Body"].endswith(
        "\n"
    )
    assert req.form["StatusCallback"] == "https://oc.example.com/twilio"
    assert req.form["ValidityPeriod"] == "1800"


def test_messaging_service_instead_of_from(twilio: FakeTwilio) -> None:
    channel = make(twilio.base, messaging_service_sid=SERVICE, **{"from": ""})
    result = send_one(channel, message(promised=None))
    assert twilio.problems == []
    assert result.outcome == Outcome.SENT
    (req,) = twilio.requests
    assert req.form["MessagingServiceSid"] == SERVICE and "From" not in req.form
    assert "ValidityPeriod" not in req.form and "StatusCallback" not in req.form


@pytest.mark.parametrize(
    ("promised", "expected"),
    [
        (NOW + timedelta(minutes=30), "1800"),
        (NOW + timedelta(seconds=90, milliseconds=700), "90"),
        (NOW + timedelta(hours=20), str(VALIDITY_MAX)),  # Twilio's maximum
        (NOW + timedelta(milliseconds=300), "1"),  # Twilio's minimum
        (NOW - timedelta(minutes=5), "1"),  # promise already due: as short as allowed
        (None, None),
    ],
)
def test_validity_period_never_outlives_the_next_promise(
    twilio: FakeTwilio, promised: datetime | None, expected: str | None
) -> None:
    result = send_one(make(twilio.base), message(promised=promised))
    assert twilio.problems == []
    assert result.outcome == Outcome.SENT
    assert twilio.requests[0].form.get("ValidityPeriod") == expected


def test_validity_period_helper() -> None:
    now = NOW.timestamp()
    assert validity_period(None, now) is None
    assert validity_period("", now) is None
    assert validity_period("not a time", now) is None
    assert validity_period(NOW + timedelta(minutes=1), now) == 60
    assert validity_period((NOW + timedelta(minutes=1)).isoformat(), now) == 60


def test_429_retries_honouring_retry_after(twilio: FakeTwilio) -> None:
    twilio.script(Reply(429, twilio_error(20429, 429, "Too Many Requests"), {"Retry-After": "7"}))
    result = send_one(make(twilio.base), message())
    assert twilio.problems == []
    assert result.outcome == Outcome.RETRY and result.retry_after == 7
    assert error_code(result.error) == 20429


def test_bare_429_retries(twilio: FakeTwilio) -> None:
    twilio.script(Reply(429, None, {"Retry-After": "3"}))
    result = send_one(make(twilio.base), message())
    assert result.outcome == Outcome.RETRY and result.retry_after == 3


def test_error_20429_retries_whatever_the_status(twilio: FakeTwilio) -> None:
    twilio.script(Reply(400, twilio_error(20429, 400, "Too Many Requests"), {"Retry-After": "2"}))
    result = send_one(make(twilio.base), message())
    assert result.outcome == Outcome.RETRY and result.retry_after == 2


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (INVALID_TO, "The 'To' number +15550100123 is not a valid phone number."),
        (OPTED_OUT, "Attempt to send to unsubscribed recipient"),
    ],
)
def test_contact_errors_fail_with_the_code(twilio: FakeTwilio, code: int, text: str) -> None:
    twilio.script(Reply(400, twilio_error(code, 400, text)))
    result = send_one(make(twilio.base), message())
    assert twilio.problems == []
    assert result.outcome == Outcome.FAILED
    assert result.error is not None and result.error.startswith(f"twilio {code}:")
    assert text in result.error
    assert error_code(result.error) == code


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        (401, 20003, "Authenticate"),  # the SID and token do not authenticate
        (404, 20404, "The requested resource was not found"),  # no such account (a bad SID)
    ],
)
def test_credential_errors_are_permanent(
    twilio: FakeTwilio, status: int, code: int, text: str
) -> None:
    """Bad credentials stay bad until someone changes them: failed, not retried."""
    twilio.script(Reply(status, twilio_error(code, status, text)))
    result = send_one(make(twilio.base), message())
    assert result.outcome == Outcome.FAILED and error_code(result.error) == code


def test_5xx_retries(twilio: FakeTwilio) -> None:
    twilio.script(Reply(500, twilio_error(20500, 500, "Internal Server Error")))
    result = send_one(make(twilio.base), message())
    assert result.outcome == Outcome.RETRY


def test_bare_503_retries_with_retry_after(twilio: FakeTwilio) -> None:
    twilio.script(Reply(503, None, {"Retry-After": "11"}))
    result = send_one(make(twilio.base), message())
    assert result.outcome == Outcome.RETRY and result.retry_after == 11


def test_slow_answer_times_out_and_retries(twilio: FakeTwilio) -> None:
    twilio.script(Reply(slow=True))
    result = send_one(make(twilio.base, timeout=1), message())
    twilio.release.set()
    assert result.outcome == Outcome.RETRY
    assert result.error is not None and "timeout" in result.error


def test_non_e164_contact_fails_without_a_request(twilio: FakeTwilio) -> None:
    result = send_one(make(twilio.base), message(to="0049 30 1234567"))
    assert result.outcome == Outcome.FAILED and error_code(result.error) == INVALID_TO
    assert twilio.requests == []


def test_concurrent_sends_each_get_their_sid(twilio: FakeTwilio) -> None:
    results = deliver_at_once(make(twilio.base), *(message(i=i) for i in range(20)))
    assert twilio.problems == []
    assert all(r.outcome == Outcome.SENT for r in results)
    assert len({r.provider_id for r in results}) == 20


def test_check_config() -> None:
    assert TwilioChannel.check_config(settings()) is None
    assert (
        TwilioChannel.check_config(settings(messaging_service_sid=SERVICE, **{"from": ""})) is None
    )
    assert "exactly one" in (
        TwilioChannel.check_config(settings(messaging_service_sid=SERVICE)) or ""
    )
    assert "exactly one" in (TwilioChannel.check_config(settings(**{"from": ""})) or "")
    assert TwilioChannel.check_config(settings(**{"from": "12345"})) is not None
    assert TwilioChannel.check_config(settings(**{"from": "S1Tech"})) is None  # alphanumeric ID
    assert TwilioChannel.check_config(settings(base_url="ftp://x")) is not None
    assert TwilioChannel.check_config(settings(status_callback="nope")) is not None
    assert TwilioChannel.check_config(settings(account_sid_env="")) is not None
    assert TwilioChannel.check_config(settings(timeout=0)) is not None


def test_missing_credentials_stop_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    from outagecomms.errors import ConfigError

    monkeypatch.delenv("TEST_TWILIO_SID", raising=False)
    with pytest.raises(ConfigError):
        send_one(make("http://127.0.0.1:9"), message())


# --- segments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 1)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("€" * 80, ("GSM-7", 1)),  # 160 septets
        ("€" * 81, ("GSM-7", 2)),
        ("a" * 159 + "{", ("GSM-7", 2)),  # the extension character counts double
        ("{}[]~^\\|€" + "a" * 142, ("GSM-7", 1)),  # 18 + 142 = 160
        ("{}[]~^\\|€" + "a" * 143, ("GSM-7", 2)),
        ("a" * 152 + "[" + "a" * 153, ("GSM-7", 3)),  # an escape pair never straddles parts
        ("Grüße aus Köln, Ça va? 14:30 CET", ("GSM-7", 1)),  # Latin-1 letters of GSM-7
        ("ł" * 70, ("UCS-2", 1)),
        ("ł" * 71, ("UCS-2", 2)),
        ("ł" * 134, ("UCS-2", 2)),
        ("ł" * 135, ("UCS-2", 3)),
        ("a" * 69 + "ç", ("UCS-2", 1)),  # ç is not GSM-7 (only Ç is)
        ("😀" * 35, ("UCS-2", 1)),  # 70 UTF-16 units
        ("😀" * 36, ("UCS-2", 2)),
        ("·", ("UCS-2", 1)),
    ],
)
def test_sms_segments(text: str, expected: tuple[str, int]) -> None:
    assert sms_segments(text) == expected


# --- templates ----------------------------------------------------------------------------------


#: a customer's incident page link as messages carry it (``pages.tokens``: a 48-character token
#: for a 9-character customer id)
PAGE_URL = "https://status.example.com/i/" + "AQAAAAAAKmm5Ey2AaeGtXmFjbWUtY29ycCr7n0o1kXbL1rQZ"


@pytest.mark.parametrize("with_page", [False, True], ids=["no-page", "page-link"])
@pytest.mark.parametrize("with_extras", [False, True], ids=["plain", "with-extras"])
@pytest.mark.parametrize(
    ("tz", "locale"), [("Europe/Berlin", "de_DE"), ("America/New_York", "en_US")]
)
def test_sms_templates_fit_two_segments(
    with_extras: bool, tz: str, locale: str, with_page: bool
) -> None:
    r = builders.renderer()
    c = builders.customer(tz, locale, name="Acme Logistics GmbH & Co. KG")
    credit = {"amount": "€1,250.00", "reason": "10 % of the monthly fee"}
    title = "Sign-in failures and slow API responses for some customers"
    update = (
        "A database failover is in progress; sign-ins are recovering but some API "
        "calls still time out. We are moving the remaining traffic to the standby."
    )
    for kind in RoundKind:
        more = builders.extras(kind, credit=credit) if with_extras else {}
        if with_page:
            more["page_url"] = PAGE_URL
        ctx = builders.context(kind, c, r=r, title=title, message=update, **more)
        out = r.render(kind, TwilioChannel.template_channel, ctx)
        text = out.text.strip()
        encoding, segments = sms_segments(text)
        assert segments <= 2, f"{kind}: {segments} {encoding} segments: {text!r}"
        assert "{{" not in text and "{%" not in text and "\n" not in text
        assert "INC-42" in text
        if not builders.done(kind):
            assert "Next update by" in text
        if kind != RoundKind.FOLLOW_UP or not with_extras:
            assert "https://status.example.com" in text
            # the customer's own page takes the status page's place
            assert (PAGE_URL in text) == with_page
        assert (credit["amount"] in text) == (
            with_extras and kind in (RoundKind.RESOLUTION, RoundKind.CREDIT)
        )
        assert (builders.FEEDBACK_LINKS[10] in text) == (
            with_extras and kind == RoundKind.FOLLOW_UP
        )


@pytest.mark.catalogs
@pytest.mark.parametrize("with_page", [False, True], ids=["no-page", "page-link"])
@pytest.mark.parametrize("with_extras", [False, True], ids=["plain", "with-extras"])
def test_german_sms_templates_fit_two_segments(with_extras: bool, with_page: bool) -> None:
    """In German (the shipped catalog: longer words than English) too."""
    r = builders.renderer()
    assert r.catalogs.resolve("de_DE") == "de"
    words = r.catalogs.translations("de")
    c = builders.customer("Europe/Berlin", "de_DE", name="Acme Logistics GmbH & Co. KG")
    credit = {"amount": "1.250,00 €", "reason": "10 % der Monatsgebühr"}
    title = "Anmeldefehler und langsame API-Antworten für einige Kunden"
    update = (
        "Ein Datenbank-Failover läuft; Anmeldungen funktionieren wieder, aber einige "
        "API-Aufrufe laufen noch in Timeouts. Wir verlagern den restlichen Verkehr."
    )
    next_update = words.gettext("Next update by %(by)s.").split("%(by)s")[0]
    assert next_update and next_update != "Next update by "
    for kind in RoundKind:
        more = builders.extras(kind, credit=credit) if with_extras else {}
        if with_page:
            more["page_url"] = PAGE_URL
        ctx = builders.context(kind, c, r=r, title=title, message=update, **more)
        text = r.render(kind, TwilioChannel.template_channel, ctx).text.strip()
        encoding, segments = sms_segments(text)
        assert segments <= 2, f"{kind}: {segments} {encoding} segments: {text!r}"
        assert "INC-42" in text and "\n" not in text
        if not builders.done(kind):
            assert next_update in text, text
        assert (credit["amount"] in text) == (
            with_extras and kind in (RoundKind.RESOLUTION, RoundKind.CREDIT)
        )
