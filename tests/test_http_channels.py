"""The HTTP channels (slack, teams, webhook) against a real local HTTP server.

One Starlette app on uvicorn (:class:`tests.fakes.providers.FakeProviders`, loopback, free
port) plays all three providers by path and checks every request the way the provider
documents it. What every channel must do (a delivered message arrives, failures are retried
or failed, connections bounded, ...) is asserted once for all kinds in
``test_channel_contract.py``; this module holds what is particular to these three.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest

from outagecomms.channels import registry
from outagecomms.channels.base import DeliveryResult, OutboundMessage, Outcome
from outagecomms.channels.http_base import HttpChannel, parse_retry_after
from outagecomms.channels.slack import SECTION_MAX, SlackChannel, escape, sections
from outagecomms.channels.teams import TeamsChannel
from outagecomms.channels.webhook import WebhookChannel
from outagecomms.config.loader import parse_config
from outagecomms.config.model import ChannelConfig, CompanyConfig
from outagecomms.errors import ConfigError
from outagecomms.models import RoundKind
from outagecomms.rendering.templates import PARTS
from tests.fakes.asgi import Reply
from tests.fakes.providers import FakeProviders
from tests.fakes.slack import PATH as SLACK_PATH
from tests.fakes.teams import PATH as TEAMS_PATH
from tests.fakes.teams import QUERY as TEAMS_QUERY
from tests.fakes.teams import RUN_ID
from tests.fakes.webhook import PATH as HOOK_PATH
from tests.support.builders import (
    CREDIT,
    FEEDBACK_LINKS,
    GOODWILL,
    WINTER,
    context,
    customer,
    done,
    extras,
    renderer,
    round_data,
)
from tests.support.channels import deliver_at_once, deliver_each, deliver_one, refused_at_open
from tests.support.localised import local_time, plain

SLACK_ERRORS = [
    (400, "invalid_payload"),
    (400, "user_not_found"),
    (404, "channel_not_found"),
    (410, "channel_is_archived"),
    (403, "action_prohibited"),
    (403, "posting_to_general_channel_denied"),
    (400, "too_many_attachments"),
    (404, "no_service"),
    (400, "no_service_id"),
    (404, "no_team"),
    (404, "team_disabled"),
    (403, "invalid_token"),
    (404, "no_active_hooks"),
]


def make(cls: type[HttpChannel], *, timeout: float = 5, rate: float = 0, **settings: Any) -> Any:
    values = {k: default for k, (_t, default) in cls.config_keys.items()}
    values.update(timeout=timeout, **settings)
    if cls is WebhookChannel and not values["secret_env"]:
        values["secret_env"] = "TEST_WEBHOOK_SECRET"
    cfg = ChannelConfig(
        name=cls.kind, kind=cls.kind, max_connections=4, rate_per_second=rate, settings=values
    )
    return cls(cfg, CompanyConfig(name="S1 Technology", support_email="support@example.com"))


def message(to: str, i: int = 7, *, subject: str | None = None, text: str | None = None) -> Any:
    return OutboundMessage(
        delivery_id=i,
        to=to,
        to_name="Acme Logistics",
        subject=subject or f"[Investigating] Sign-in failures: we are on it (INC-42) #{i}",
        text=text or "Hello Acme Logistics: auth in eu-west is not working.\n\nWe are sorry.\n",
        html=None,
        message_id=f"<oc.{i}.inc-42.r1@example.com>",
        data=round_data(),
    )


def send_one(channel: HttpChannel, msg: OutboundMessage) -> DeliveryResult:
    """One ``send()`` (the provider's answer mapped, without the retry bookkeeping)."""
    return deliver_one(channel, msg, send=True)


def http_date(seconds_from_now: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


def assert_gave_up_on_a_held_answer(providers: FakeProviders, result: DeliveryResult) -> None:
    """The channel's timeout, not the server's late answer, ended the request: the answer is
    still held when the result is back."""
    assert result.outcome == Outcome.RETRY
    assert result.error is not None and "timeout" in result.error
    assert providers.release.waiting == 1
    providers.release.set()


# --- registry, config, Retry-After ----------------------------------------------------------


def test_registered_with_their_template_sets() -> None:
    for kind, cls, field_name in [
        ("slack", SlackChannel, "slack_webhook"),
        ("teams", TeamsChannel, "teams_webhook"),
        ("webhook", WebhookChannel, "webhook_url"),
    ]:
        assert registry.get(kind) is cls
        assert cls.template_channel == kind
        assert cls.contact_field == field_name
        assert PARTS[kind] == ("subject", "txt")
    assert SlackChannel.rate_per_second == 1.0


def test_config_file_sections() -> None:
    cfg = parse_config(
        {
            "channels": {
                "chat": {"kind": "slack"},
                "teams": {"kind": "teams", "timeout": 3},
                "hooks": {"kind": "webhook", "secret_env": "HOOK_SECRET"},
            }
        },
        None,
    )
    assert cfg.channels["chat"].rate_per_second == 1.0  # Slack's limit, per webhook URL
    assert cfg.channels["teams"].settings["timeout"] == 3
    hooks = cfg.channels["hooks"].settings
    assert hooks["signature_header"] == "X-Outagecomms-Signature"
    assert hooks["timestamp_header"] == "X-Outagecomms-Timestamp"
    with pytest.raises(ConfigError, match="secret_env"):
        parse_config({"channels": {"hooks": {"kind": "webhook"}}}, None)
    with pytest.raises(ConfigError, match="signature_header"):
        parse_config(
            {
                "channels": {
                    "hooks": {"kind": "webhook", "secret_env": "X", "signature_header": "Bad Name"}
                }
            },
            None,
        )
    with pytest.raises(ConfigError, match=r"channels\.hooks\.sign"):
        parse_config({"channels": {"hooks": {"kind": "webhook", "sign": "x"}}}, None)


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 15, 13, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("30", now=now) == 30.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after("Thu, 15 Jan 2026 13:02:00 GMT", now=now) == 120.0
    assert parse_retry_after("Thu, 15 Jan 2026 12:59:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("-5", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None, now=now) is None


# --- Slack ------------------------------------------------------------------------------------


def test_slack_posts_the_documented_payload(providers: FakeProviders) -> None:
    url = providers.base + SLACK_PATH
    msg = message(
        url,
        subject="[Investigating] Q&A <portal> down (INC-42)",
        text="Hello R&D <!channel> team: <https://evil.example|click> > now.\n\nWe are sorry.\n",
    )
    result = send_one(make(SlackChannel), msg)
    assert result.outcome == Outcome.SENT, result
    assert result.provider_id == "req-1"
    assert providers.problems == []
    (req,) = providers.recorded(SLACK_PATH)
    assert req.method == "POST"
    assert req.headers["content-type"].startswith("application/json")
    assert req.headers["user-agent"].startswith("outagecomms/")
    doc = req.json()
    assert set(doc) == {"text", "blocks"}
    assert doc["text"] == "[Investigating] Q&amp;A &lt;portal&gt; down (INC-42)"
    header, section = doc["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[Investigating] Q&A <portal> down (INC-42)"},
    }
    assert section["type"] == "section"
    assert section["text"] == {
        "type": "mrkdwn",
        "text": "Hello R&amp;D &lt;!channel&gt; team: &lt;https://evil.example|click&gt; &gt; "
        "now.\n\nWe are sorry.",
    }


def test_slack_long_text_is_split_into_valid_sections(providers: FakeProviders) -> None:
    paragraph = "The failover & the <replay> are ongoing. " * 40  # ~1,700 characters
    text = "\n\n".join([paragraph] * 5)
    result = send_one(make(SlackChannel), message(providers.base + SLACK_PATH, text=text))
    assert result.outcome == Outcome.SENT, result
    assert providers.problems == []
    blocks = providers.recorded(SLACK_PATH)[0].json()["blocks"]
    parts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(parts) >= 3
    assert all(len(p) <= SECTION_MAX for p in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == escape(text).replace(
        "\n", ""
    ).replace(" ", "")


def test_sections_never_cut_an_entity() -> None:
    text = escape("&" * 5000)  # one long "word" of entities
    parts = sections(text, limit=100)
    assert "".join(parts) == text
    for p in parts:
        assert len(p) <= 100
        assert re.fullmatch(r"(&amp;)+", p), p[:20]


@pytest.mark.parametrize(("status", "body"), SLACK_ERRORS, ids=[b for _s, b in SLACK_ERRORS])
def test_slack_error_bodies_are_permanent(providers: FakeProviders, status: int, body: str) -> None:
    providers.script(SLACK_PATH, Reply(status, body))
    result = send_one(make(SlackChannel), message(providers.base + SLACK_PATH))
    assert result.outcome == Outcome.FAILED
    assert result.error is not None
    assert body in result.error
    assert str(status) in result.error
    assert len(providers.recorded(SLACK_PATH)) == 1


def test_slack_429_retry_after_http_date(providers: FakeProviders) -> None:
    providers.script(SLACK_PATH, Reply(429, "rate_limited", {"Retry-After": http_date(120)}))
    result = send_one(make(SlackChannel), message(providers.base + SLACK_PATH))
    assert result.outcome == Outcome.RETRY
    assert result.retry_after is not None and 110 <= result.retry_after <= 121


@pytest.mark.parametrize(
    ("status", "body"), [(500, "rollup_error"), (500, ""), (502, "bad gateway"), (503, "")]
)
def test_slack_server_errors_retry(providers: FakeProviders, status: int, body: str) -> None:
    providers.script(SLACK_PATH, Reply(status, body))
    result = send_one(make(SlackChannel), message(providers.base + SLACK_PATH))
    assert result.outcome == Outcome.RETRY
    assert result.retry_after is None
    assert result.error is not None and str(status) in result.error


def test_slack_200_without_ok_is_not_a_success(providers: FakeProviders) -> None:
    providers.script(SLACK_PATH, Reply(200, "<html>captive portal</html>"))
    result = send_one(make(SlackChannel), message(providers.base + SLACK_PATH))
    assert result.outcome == Outcome.FAILED
    assert result.error is not None and "without 'ok'" in result.error


def test_slack_slow_answer_is_a_timeout_to_retry(providers: FakeProviders) -> None:
    providers.script(SLACK_PATH, Reply(200, "ok", slow=True))
    result = send_one(make(SlackChannel, timeout=0.3), message(providers.base + SLACK_PATH))
    assert_gave_up_on_a_held_answer(providers, result)


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "not a url", "https://"])
def test_unusable_url_fails_without_a_request(providers: FakeProviders, url: str) -> None:
    result = send_one(make(SlackChannel), message(url))
    assert result.outcome == Outcome.FAILED
    assert providers.recorded() == []


def test_rate_limit_is_per_webhook_url(providers: FakeProviders) -> None:
    """At 10/s per URL, the limiter grants three messages to one URL 0.1 s apart, while another
    URL's messages do not queue behind them (asserted on the limiters' own schedule: gaps
    measured at the server or around the call jitter on a loaded machine)."""
    url_a = providers.base + SLACK_PATH
    url_b = providers.base + "/services/T0001/B0003/YYYYYYYYYYYYYYYYYYYYYYYY"
    ch = make(SlackChannel, rate=10)
    msgs = [message(url_a, i) for i in range(3)] + [message(url_b, 10 + i) for i in range(3)]
    results = deliver_at_once(ch, *msgs)
    assert [r.outcome for r in results] == [Outcome.SENT] * 6
    assert len(providers.recorded(SLACK_PATH)) == 3
    assert set(ch.limiters) == {url_a, url_b}
    a, b = list(ch.limiters[url_a].granted), list(ch.limiters[url_b].granted)
    assert len(a) == len(b) == 3
    for granted in (a, b):
        assert min(y - x for x, y in pairwise(granted)) >= 0.1 - 1e-9, granted
    assert b[0] < a[-1]  # URL B did not wait for URL A's turn


# --- Teams --------------------------------------------------------------------------------------


def teams_url(providers: FakeProviders) -> str:
    return f"{providers.base}{TEAMS_PATH}?{TEAMS_QUERY}"


def test_teams_posts_an_adaptive_card(providers: FakeProviders) -> None:
    msg = message(teams_url(providers), text="First paragraph.\n\nSecond <b>paragraph</b>.\n")
    result = send_one(make(TeamsChannel), msg)
    assert result.outcome == Outcome.SENT, result
    assert result.provider_id == RUN_ID
    assert providers.problems == []
    (req,) = providers.recorded(TEAMS_PATH)
    assert req.query == TEAMS_QUERY
    doc = req.json()
    assert set(doc) == {"type", "attachments"}
    card = doc["attachments"][0]["content"]
    assert [b["text"] for b in card["body"]] == [
        msg.subject,
        "First paragraph.",
        "Second <b>paragraph</b>.",
    ]
    assert card["body"][0]["weight"] == "Bolder"


def test_teams_200_is_sent_too(providers: FakeProviders) -> None:
    providers.script(TEAMS_PATH, Reply(200, ""))
    result = send_one(make(TeamsChannel), message(teams_url(providers)))
    assert result.outcome == Outcome.SENT


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "InvalidRequestContent"),
        (401, "DirectApiAuthorizationRequired"),
        (404, "WorkflowNotFound"),
    ],
)
def test_teams_client_errors_are_permanent(
    providers: FakeProviders, status: int, code: str
) -> None:
    body = json.dumps({"error": {"code": code, "message": "The workflow could not be run."}})
    providers.script(TEAMS_PATH, Reply(status, body, {"content-type": "application/json"}))
    result = send_one(make(TeamsChannel), message(teams_url(providers)))
    assert result.outcome == Outcome.FAILED
    assert result.error is not None
    assert result.error.startswith(f"Teams {code} (HTTP {status})")


def test_teams_429_and_5xx_retry(providers: FakeProviders) -> None:
    providers.script(
        TEAMS_PATH,
        Reply(429, '{"error":{"code":"WorkflowTriggerIsThrottled"}}', {"Retry-After": "17"}),
        Reply(502, "Bad Gateway"),
        Reply(503, "", {"Retry-After": http_date(60)}),
    )
    url = teams_url(providers)
    msgs = [message(url, i) for i in range(3)]
    throttled, bad_gateway, unavailable = deliver_each(make(TeamsChannel), *msgs, send=True)
    assert throttled.outcome == Outcome.RETRY and throttled.retry_after == 17.0
    assert throttled.error is not None and "WorkflowTriggerIsThrottled" in throttled.error
    assert bad_gateway.outcome == Outcome.RETRY and bad_gateway.retry_after is None
    assert unavailable.outcome == Outcome.RETRY
    assert unavailable.retry_after is not None and 50 <= unavailable.retry_after <= 61


def test_teams_slow_answer_retries(providers: FakeProviders) -> None:
    providers.script(TEAMS_PATH, Reply(202, "", slow=True))
    result = send_one(make(TeamsChannel, timeout=0.3), message(teams_url(providers)))
    assert_gave_up_on_a_held_answer(providers, result)


# --- generic webhook --------------------------------------------------------------------------


def test_webhook_signed_payload(providers: FakeProviders, secret: str) -> None:
    msg = message(providers.base + HOOK_PATH, 1234)
    result = send_one(make(WebhookChannel), msg)
    assert result.outcome == Outcome.SENT, result
    assert providers.problems == []  # signature verified with the secret, independently
    (req,) = providers.recorded(HOOK_PATH)
    assert req.headers["idempotency-key"] == "oc.1234.inc-42.r1@example.com"
    assert req.headers["x-outagecomms-signature"].startswith("v1=")
    doc = req.json()
    assert doc == {
        **msg.data,
        "subject": msg.subject,
        "text": msg.text,
        "delivery_id": 1234,
    }


def test_webhook_wrong_secret_does_not_verify(
    providers: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver's check is real: a channel signing with another secret is refused."""
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "not-the-shared-secret")
    result = send_one(make(WebhookChannel), message(providers.base + HOOK_PATH))
    assert result.outcome == Outcome.FAILED
    assert any("signature does not verify" in p for p in providers.problems)


def test_webhook_custom_header_names(providers: FakeProviders, secret: str) -> None:
    providers.webhook_headers = ("X-Signature", "X-Signature-Timestamp")
    ch = make(
        WebhookChannel, signature_header="X-Signature", timestamp_header="X-Signature-Timestamp"
    )
    result = send_one(ch, message(providers.base + HOOK_PATH))
    assert result.outcome == Outcome.SENT, result
    assert providers.problems == []
    (req,) = providers.recorded(HOOK_PATH)
    assert "x-outagecomms-signature" not in req.headers


def test_webhook_missing_secret_stops_at_open(
    providers: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_WEBHOOK_SECRET", raising=False)
    err = refused_at_open(make(WebhookChannel))
    assert err.key == "channels.webhook.secret_env"
    assert "TEST_WEBHOOK_SECRET" in str(err)
    assert providers.recorded() == []


@pytest.mark.parametrize(
    ("reply", "outcome", "retry_after"),
    [
        (Reply(201, ""), Outcome.SENT, None),
        (Reply(204, ""), Outcome.SENT, None),
        (Reply(429, "", {"Retry-After": "5"}), Outcome.RETRY, 5.0),
        (Reply(500, "oops"), Outcome.RETRY, None),
        (Reply(504, ""), Outcome.RETRY, None),
        (Reply(400, "bad"), Outcome.FAILED, None),
        (Reply(404, "no such hook"), Outcome.FAILED, None),
        (Reply(410, "gone"), Outcome.FAILED, None),
        (Reply(301, "", {"Location": "https://elsewhere.example/hook"}), Outcome.FAILED, None),
    ],
    ids=["201", "204", "429", "500", "504", "400", "404", "410", "301"],
)
def test_webhook_outcomes_by_status(
    providers: FakeProviders,
    secret: str,
    reply: Reply,
    outcome: Outcome,
    retry_after: float | None,
) -> None:
    providers.script(HOOK_PATH, reply)
    result = send_one(make(WebhookChannel), message(providers.base + HOOK_PATH))
    assert result.outcome == outcome, result
    assert result.retry_after == retry_after
    if outcome != Outcome.SENT:
        assert result.error is not None and str(reply.status) in result.error
    assert len(providers.recorded(HOOK_PATH)) == 1  # a redirect is not followed


def test_webhook_slow_answer_retries(providers: FakeProviders, secret: str) -> None:
    providers.script(HOOK_PATH, Reply(200, "{}", slow=True))
    result = send_one(make(WebhookChannel, timeout=0.3), message(providers.base + HOOK_PATH))
    assert_gave_up_on_a_held_answer(providers, result)


def test_injected_client_is_used_and_left_open(providers: FakeProviders) -> None:
    async def go() -> tuple[DeliveryResult, bool]:
        async with httpx.AsyncClient(headers={"X-Test": "injected"}) as client:
            cfg_ch = make(SlackChannel)
            ch = SlackChannel(cfg_ch.config, cfg_ch.company, client=client)
            await ch.open()
            result = await ch.send(message(providers.base + SLACK_PATH))
            await ch.close()
            return result, client.is_closed

    result, closed = asyncio.run(go())
    assert result.outcome == Outcome.SENT
    assert closed is False
    assert providers.recorded(SLACK_PATH)[0].headers["x-test"] == "injected"


def test_connections_are_bounded_and_kept_alive(providers: FakeProviders, secret: str) -> None:
    """max_connections (4) bounds the connections; a second burst reuses them."""
    ch = make(WebhookChannel)
    msgs = [message(providers.base + HOOK_PATH, i) for i in range(12)]

    async def go() -> list[DeliveryResult]:
        await ch.open()
        try:
            first = await asyncio.gather(*(ch.send(m) for m in msgs))
            second = await asyncio.gather(*(ch.send(m) for m in msgs))
        finally:
            await ch.close()
        return [*first, *second]

    results = asyncio.run(go())
    assert [r.outcome for r in results] == [Outcome.SENT] * 24
    peers = [r.peer for r in providers.recorded(HOOK_PATH)]
    assert len(peers) == 24
    assert 1 <= len(set(peers[:12])) <= 4
    assert set(peers[12:]) <= set(peers[:12])


def test_a_request_reuses_a_connection_to_its_own_origin(
    providers: FakeProviders, secret: str
) -> None:
    """Alternating between two receivers keeps one connection to each, rather than spreading
    over all four or replacing a connection on every switch."""
    other = providers.base.replace("127.0.0.1", "localhost")  # another origin, same server
    ch = make(WebhookChannel)
    msgs = [message((providers.base, other)[i % 2] + HOOK_PATH, i) for i in range(8)]

    async def go() -> list[DeliveryResult]:
        await ch.open()
        try:
            return [await ch.send(m) for m in msgs]
        finally:
            await ch.close()

    assert [r.outcome for r in asyncio.run(go())] == [Outcome.SENT] * 8
    peers = [r.peer for r in providers.recorded(HOOK_PATH)]
    assert len(set(peers[0::2])) == len(set(peers[1::2])) == 1
    assert peers[0] != peers[1]


# --- templates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("with_extras", [False, True], ids=["plain", "with-extras"])
@pytest.mark.parametrize("channel", ["slack", "teams", "webhook"])
def test_templates_render_every_kind(channel: str, with_extras: bool) -> None:
    r = renderer()
    promise = plain(local_time(WINTER + timedelta(minutes=30), "Europe/Berlin", "de_DE"))
    for kind in RoundKind:
        more = extras(kind) if with_extras else {}
        out = r.render(kind, channel, context(kind, customer(), r=r, **more))  # StrictUndefined
        assert out.html is None
        assert out.subject and "\n" not in out.subject and "INC-42" in out.subject
        text = out.text
        assert "{{" not in text and "{%" not in text and "\n\n\n" not in text
        assert "Acme Logistics" in text and "INC-42" in text
        assert "support@example.com" in text and "https://status.example.com" in text
        assert "auth in eu-west" in text and "us-east" not in text
        assert ("sorry" in text.lower()) == (kind != RoundKind.HOLDING and kind != RoundKind.UPDATE)
        if not done(kind):
            assert f"by {promise}" in plain(text)  # the promise, in the customer's time
        money = (RoundKind.RESOLUTION, RoundKind.CREDIT)  # a credit notice states its credit
        assert (CREDIT["amount"] in text) == (with_extras and kind in money)
        assert (GOODWILL in text) == (with_extras and kind in money)
        assert (FEEDBACK_LINKS[10] in text) == (with_extras and kind == RoundKind.FOLLOW_UP)
        assert len(text) < 1500  # chat-length, not an email


# --- through the outbox -------------------------------------------------------------------------


def test_declare_fans_out_over_email_webhook_and_slack(
    providers: FakeProviders,
    secret: str,
    smtp_server: Any,
    make_config: Any,
    cli: Any,
    tmp_path: Any,
) -> None:
    """The whole path: each customer's channels from the policy, one delivery per channel,
    every request as the provider documents it, the webhook signed and keyed per delivery."""
    extra = """
[channels.hooks]
kind = "webhook"
secret_env = "TEST_WEBHOOK_SECRET"

[channels.chat]
kind = "slack"
rate_per_second = 0
"""
    cfg = make_config(smtp_server, extra=extra)
    cfg.write_text(
        cfg.read_text().replace(
            'channels = { default = ["email"] }',
            'channels = { default = ["email", "hooks", "chat"] }',
        )
    )
    rows = ["id,name,email,webhook_url,slack_webhook,tier,components,regions,timezone,locale"]
    for i in range(6):
        hook = f"{providers.base}/hooks/c{i}" if i % 2 == 0 else ""  # odd ones have no webhook
        rows.append(
            f"c{i},Customer {i},c{i}@example.com,{hook},{providers.base}/services/T{i}/B{i}/x,standard,api,eu-west,Europe/Berlin,de_DE"
        )
    directory = tmp_path / "dir.csv"
    directory.write_text("\n".join(rows) + "\n")
    assert cli("--config", str(cfg), "customers", "import", str(directory)).exit_code == 0
    res = cli(
        "--config", str(cfg), "declare", "API down", "-s", "sev2", "-c", "api", "--yes", "--json"
    )
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["channels"] == {"email": 6, "hooks": 3, "chat": 6}
    assert out["skipped"] == {"hooks: no webhook_url": 3}
    assert out["sent"] == 15 and out["failed"] == out["retry"] == 0
    assert providers.problems == []
    hooks = providers.recorded()
    assert len([r for r in hooks if r.path.startswith("/hooks/")]) == 3
    assert len([r for r in hooks if r.path.startswith("/services/")]) == 6
    keys = {r.headers["idempotency-key"] for r in hooks if r.path.startswith("/hooks/")}
    assert len(keys) == 3
    body = json.loads(next(r for r in hooks if r.path == "/hooks/c0").body)
    assert (
        body["incident"] == "INC-1"
        and body["kind"] == "acknowledgement"
        and body["customer"] == "c0"
    )
    smtp_server.handler.wait_for(lambda ms: len(ms) == 6)
