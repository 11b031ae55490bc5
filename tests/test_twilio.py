"""The Twilio SMS channel against a real local HTTP server that checks every request against
Twilio's published OpenAPI description of the Messages operation (with ``openapi-core``), plus
the request details the description cannot express (Basic auth matching the account, form
encoding, E.164, one sender field, ValidityPeriod range), and answers with each documented
outcome: 201, 429 with Retry-After, errors 20429 / 21211 / 21610, 5xx and a slow response.

The description is read from ``../shared/data/twilio_messages_openapi.json``; this module's
tests are skipped when that directory is absent. :class:`FakeTwilio` itself stays importable
(the channel contract suite uses it) and checks the OpenAPI description only when it is there.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from conftest import free_port, serve_asgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from test_rendering import incident

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
from outagecomms.models import Customer, IncidentStatus, Round, RoundKind
from outagecomms.rendering.templates import Renderer

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "twilio_messages_openapi.json"
pytestmark = pytest.mark.skipif(
    not SPEC_PATH.exists(),
    reason=f"Twilio's OpenAPI description is not available at {SPEC_PATH} (../shared is absent)",
)

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "test-auth-token-0123456789"
SERVICE = "MG0123456789abcdef0123456789abcdef"
FROM = "+15550100999"
TO = "+15550100123"
MESSAGES_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
NOW = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)


# --- the fake Twilio ----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 201
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    slow: bool = False


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    form: dict[str, str]


def twilio_error(code: int, status: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilio:
    def __init__(self) -> None:
        self.api: Any = None
        if SPEC_PATH.exists():
            from openapi_core import OpenAPI  # only needed when the description is there

            self.api = OpenAPI.from_dict(json.loads(SPEC_PATH.read_text()))
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.replies: deque[Reply] = deque()
        self.by_to: dict[str, Reply] = {}  # a fixed answer for a number, whatever the order
        self.release = threading.Event()
        self.counter = 0
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.app = Starlette(
            routes=[
                Route("/health", self.health, methods=["GET"]),
                Route("/{path:path}", self.handle, methods=["GET", "POST"]),
            ]
        )

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.problems.clear()
            self.replies.clear()
            self.by_to.clear()
        self.release.clear()

    def script(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("up")

    def check(self, request: Request, body: bytes) -> tuple[list[str], dict[str, str]]:
        p: list[str] = []
        headers = {k.lower(): v for k, v in request.headers.items()}
        ctype = headers.get("content-type", "")
        if self.api is not None:
            from openapi_core.testing import MockRequest

            # openapi-core: path (and AccountSid pattern), method, security, body schema
            mock = MockRequest(
                "https://api.twilio.com",
                request.method.lower(),
                request.url.path,
                headers=dict(request.headers),
                data=body,
                content_type=ctype.split(";")[0].strip(),
            )
            try:
                self.api.validate_request(mock)
            except Exception as exc:  # every validation error: report it, answer 400
                cause = exc.__cause__
                detail = getattr(cause, "schema_errors", None) or cause or ""
                p.append(f"OpenAPI: {type(exc).__name__}: {exc} {detail}")
        # what the description cannot say
        if ctype.split(";")[0].strip() != "application/x-www-form-urlencoded":
            p.append(f"Content-Type {ctype!r}, expected application/x-www-form-urlencoded")
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if headers.get("authorization") != expected:
            p.append("Basic auth is not (Account SID, Auth Token)")
        try:
            raw = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            return [*p, f"body is not form-encoded ASCII: {exc}"], {}
        form: dict[str, str] = {}
        for key, values in raw.items():
            if len(values) != 1:
                p.append(f"{key} given {len(values)} times")
            form[key] = values[0]
        if not re.fullmatch(r"\+[1-9][0-9]{1,14}", form.get("To", "")):
            p.append(f"To {form.get('To')!r} is not E.164")
        if ("From" in form) == ("MessagingServiceSid" in form):
            p.append("exactly one of From and MessagingServiceSid is required")
        if not form.get("Body"):
            p.append("Body is required and non-empty")
        if "ValidityPeriod" in form:
            vp = form["ValidityPeriod"]
            if not vp.isdigit() or not 1 <= int(vp) <= 36_000:
                p.append(f"ValidityPeriod {vp!r} not an integer in 1..36000")
        return p, form

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        problems, form = self.check(request, body)
        rec = Recorded(
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            form=form,
        )
        with self.lock:
            self.requests.append(rec)
            self.problems.extend(problems)
            reply = self.by_to.get(form.get("To", ""))
            if reply is None and self.replies:
                reply = self.replies.popleft()
            self.counter += 1
            n = self.counter
        if problems:
            doc = twilio_error(21604 if "To" not in form else 20001, 400, "; ".join(problems))
            return Response(json.dumps(doc), status_code=400, media_type="application/json")
        if reply is None:
            reply = Reply(201, self.message_resource(form, n))
        if reply.slow:
            await asyncio.to_thread(self.release.wait, 10)
        return Response(
            json.dumps(reply.body) if reply.body is not None else "",
            status_code=reply.status,
            headers=reply.headers,
            media_type="application/json",
        )

    @staticmethod
    def message_resource(form: dict[str, str], n: int) -> dict[str, Any]:
        return {
            "sid": f"SM{n:032x}",
            "account_sid": SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "api_version": "2010-04-01",
        }


@pytest.fixture(scope="module")
def _twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with serve_asgi(fake.app, fake.port, name="fake-twilio"):
        try:
            yield fake
        finally:
            fake.release.set()


@pytest.fixture
def twilio(_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    monkeypatch.setenv("TEST_TWILIO_SID", SID)
    monkeypatch.setenv("TEST_TWILIO_TOKEN", TOKEN)
    _twilio.reset()
    yield _twilio
    _twilio.release.set()  # let any held (slow) answer finish


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
        data={
            "incident": "INC-42",
            "status": "investigating",
            "kind": "acknowledgement",
            "round": 1,
            "promised_next_by": promised.isoformat() if promised else None,
        },
    )


def send_all(channel: TwilioChannel, *messages: OutboundMessage) -> list[DeliveryResult]:
    async def go() -> list[DeliveryResult]:
        await channel.open()
        try:
            return list(await asyncio.gather(*(channel.deliver(m) for m in messages)))
        finally:
            await channel.close()

    return asyncio.run(go())


def send_one(channel: TwilioChannel, msg: OutboundMessage) -> DeliveryResult:
    return send_all(channel, msg)[0]


# --- requests and outcomes ----------------------------------------------------------------------


def test_registered() -> None:
    assert registry.get("twilio") is TwilioChannel
    assert "twilio" in registry.names()
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


def test_other_4xx_fails(twilio: FakeTwilio) -> None:
    twilio.script(Reply(401, twilio_error(20003, 401, "Authenticate")))
    result = send_one(make(twilio.base), message())
    assert result.outcome == Outcome.FAILED and error_code(result.error) == 20003


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


def test_unreachable_provider_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_TWILIO_SID", SID)
    monkeypatch.setenv("TEST_TWILIO_TOKEN", TOKEN)
    result = send_one(make(f"http://127.0.0.1:{free_port()}"), message())
    assert result.outcome == Outcome.RETRY


def test_concurrent_sends_each_get_their_sid(twilio: FakeTwilio) -> None:
    results = send_all(make(twilio.base), *(message(i=i) for i in range(20)))
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


def _round(kind: RoundKind, message: str) -> Round:
    at = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)
    done = kind in (RoundKind.RESOLUTION, RoundKind.FOLLOW_UP)
    return Round(
        id=1,
        incident_id=42,
        seq=list(RoundKind).index(kind) + 1,
        kind=kind,
        message=message,
        status=IncidentStatus.RESOLVED if done else IncidentStatus.IDENTIFIED,
        created_at=at,
        due_by=at,
        promised_next_by=None if done else at + timedelta(minutes=30),
    )


@pytest.mark.parametrize("extras", [False, True], ids=["plain", "with-extras"])
@pytest.mark.parametrize(
    ("tz", "locale"), [("Europe/Berlin", "de_DE"), ("America/New_York", "en_US")]
)
def test_sms_templates_fit_two_segments(extras: bool, tz: str, locale: str) -> None:
    renderer = Renderer(
        company=CompanyConfig(
            name="S1 Technology",
            status_page_url="https://status.example.com",
            support_email="support@example.com",
        )
    )
    customer = Customer(
        id="c1",
        name="Acme Logistics GmbH & Co. KG",
        components=("auth",),
        regions=("eu-west",),
        timezone=tz,
        locale=locale,
    )
    links = [f"https://oc.example.com/f/abcdef0123456789/{n}" for n in range(11)]
    title = "Sign-in failures and slow API responses for some customers"
    update = (
        "A database failover is in progress; sign-ins are recovering but some API "
        "calls still time out. We are moving the remaining traffic to the standby."
    )
    for kind in RoundKind:
        done = kind in (RoundKind.RESOLUTION, RoundKind.FOLLOW_UP)
        more: dict[str, Any] = {}
        if extras and kind == RoundKind.RESOLUTION:
            more = {
                "credit": {"amount": "€1,250.00", "reason": "10 % of the monthly fee"},
                "goodwill": "a month of premium support",
            }
        if extras and kind == RoundKind.FOLLOW_UP:
            more = {"feedback_links": links}
        ctx = renderer.context(
            incident=incident(resolved=done, title=title),
            round=_round(kind, update),
            customer=customer,
            **more,
        )
        out = renderer.render(kind, TwilioChannel.template_channel, ctx)
        text = out.text.strip()
        encoding, segments = sms_segments(text)
        assert segments <= 2, f"{kind}: {segments} {encoding} segments: {text!r}"
        assert "{{" not in text and "{%" not in text and "\n" not in text
        assert "INC-42" in text
        if not done:
            assert "Next update by" in text
        if kind != RoundKind.FOLLOW_UP or not extras:
            assert "https://status.example.com" in text
        assert ("€1,250.00" in text) == (extras and kind == RoundKind.RESOLUTION)
        assert (links[10] in text) == (extras and kind == RoundKind.FOLLOW_UP)
