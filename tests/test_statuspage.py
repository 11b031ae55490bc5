"""The statuspage channel against a fake Statuspage API on loopback
(:class:`tests.fakes.statuspage.FakeStatuspage`: it checks every request the way Statuspage
documents it and keeps the page's incidents in memory). What every channel must do is asserted
once for all kinds in ``test_channel_contract.py``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest

from outagecomms.channels import registry
from outagecomms.channels.base import DeliveryResult, OutboundMessage, Outcome
from outagecomms.channels.statuspage import StatuspageChannel, limiter_for_key
from outagecomms.config.loader import parse_config
from outagecomms.config.model import CompanyConfig
from outagecomms.errors import ConfigError
from outagecomms.models import Customer, RoundKind
from outagecomms.rendering.templates import PARTS
from tests.fakes.asgi import Reply
from tests.fakes.statuspage import COMPONENTS, PAGE, STARTED, FakeStatuspage, incident_problems
from tests.support.builders import CREDIT, WINTER, context, done, renderer, round_data
from tests.support.channels import deliver_each, refused_at_open, while_open
from tests.support.localised import local_time
from tests.support.toml import email_and_channel

# --- helpers ------------------------------------------------------------------------------------


def channel_table(page: FakeStatuspage, **overrides: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "kind": "statuspage",
        "page_id": PAGE,
        "api_key_env": "TEST_STATUSPAGE_KEY",
        "base_url": page.base,
        "components": {"api": COMPONENTS["api"], "auth": COMPONENTS["auth"]},
        "rate_per_second": 50,  # most tests are not about the limit
        "timeout": 5,
    }
    table.update(overrides)
    return table


def make(page: FakeStatuspage, **overrides: Any) -> StatuspageChannel:
    cfg = parse_config({"channels": {"status": channel_table(page, **overrides)}}, None)
    ch = registry.get("statuspage")(cfg.channels["status"], cfg.company)
    assert isinstance(ch, StatuspageChannel)
    return ch


KIND_STATUS = {
    "acknowledgement": "investigating",
    "update": "identified",
    "holding": "identified",
    "resolution": "resolved",
}


def message(
    rnd: int,
    kind: str = "acknowledgement",
    *,
    status: str | None = None,
    ref: str = "INC-12",
    severity: str = "sev2",
    title: str = "Sign-in failures",
    text: str | None = None,
    started_at: str = "2026-01-15T12:48:00+00:00",
) -> OutboundMessage:
    """A once-per-round message as dispatch builds it (customer "*", no contact)."""
    return OutboundMessage(
        delivery_id=1000 + rnd,
        to="",
        to_name="S1 Technology",
        subject="",
        text=text if text is not None else f"Round {rnd} ({kind}).\n\nReference: {ref}\n",
        html=None,
        message_id=f"<oc.{1000 + rnd}.{ref.lower()}.r{rnd}@example.com>",
        data=round_data(
            incident=ref,
            title=title,
            severity=severity,
            status=status or KIND_STATUS[kind],
            kind=kind,
            round=rnd,
            customer="*",
            components=["api", "auth", "search"],  # search is not on the page
            started_at=started_at,
            promised_next_by=None if kind == "resolution" else "2026-01-15T13:30:00+00:00",
        ),
    )


# --- registry and config ------------------------------------------------------------------------


def test_registered_once_per_round() -> None:
    cls = registry.get("statuspage")
    assert cls is StatuspageChannel
    assert cls.contact_field is None
    assert cls.template_channel == "statuspage"
    assert PARTS["statuspage"] == ("txt",)
    assert cls.rate_per_second == 1.0  # Statuspage's limit: 1 request per second per key
    assert cls.delivers("acknowledgement") and cls.delivers("resolution")
    assert not cls.delivers("follow_up")
    assert "statuspage" in registry.names()


def test_config_defaults() -> None:
    cfg = parse_config(
        {"channels": {"status": {"kind": "statuspage", "page_id": PAGE}}}, None
    ).channels["status"]
    assert cfg.rate_per_second == 1.0
    assert cfg.settings["api_key_env"] == "STATUSPAGE_API_KEY"
    assert cfg.settings["base_url"] == "https://api.statuspage.io/v1"
    assert cfg.settings["deliver_notifications"] is True
    ch = StatuspageChannel(cfg, CompanyConfig())
    assert ch.component_status == {
        "sev1": "major_outage",
        "sev2": "partial_outage",
        "sev3": "degraded_performance",
        "sev4": "degraded_performance",
    }


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({}, "channels.status", "page_id is required"),
        ({"page_id": "abc/../x"}, "channels.status", "page_id must be"),
        ({"page_id": PAGE, "api_key_env": ""}, "channels.status", "api_key_env must name"),
        ({"page_id": PAGE, "base_url": "ftp://x"}, "channels.status", "base_url must be"),
        ({"page_id": PAGE, "components": "api"}, "channels.status", "components must be a table"),
        ({"page_id": PAGE, "components": {"api": 12}}, "channels.status", "components.api"),
        (
            {"page_id": PAGE, "component_status": {"sev1": "down"}},
            "channels.status",
            "component_status.sev1 must be one of",
        ),
        (
            {"page_id": PAGE, "component_status": {"sev1": "operational"}},
            "channels.status",
            "component_status.sev1",
        ),
        ({"page_id": PAGE, "impact": {"sev9": "major"}}, "channels.status", "impact.sev9"),
        ({"page_id": PAGE, "impact": {"sev1": "huge"}}, "channels.status", "impact.sev1"),
        ({"page_id": PAGE, "timeout": 0}, "channels.status", "timeout"),
        ({"page_id": PAGE, "deliver_notifications": "yes"}, "channels.status.deliver", "true"),
        ({"page_id": PAGE, "api_key": "inline!"}, "channels.status.api_key", "unknown key"),
    ],
)
def test_config_errors_name_the_key(table: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"channels": {"status": {"kind": "statuspage", **table}}}, None)
    assert err.value.key is not None and err.value.key.startswith(key)
    assert words in str(err.value)


# That config.example.toml documents every key (and that its block is valid) is checked for
# every kind by test_channel_contract.py::test_every_config_key_is_documented_in_the_example.


def test_missing_api_key_stops_at_open(
    page: FakeStatuspage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_STATUSPAGE_KEY")
    err = refused_at_open(make(page))
    assert err.key == "channels.status.api_key_env"
    assert "TEST_STATUSPAGE_KEY" in str(err)
    assert page.recorded() == []


# --- the documents ------------------------------------------------------------------------------


def test_document_for_a_sev1_acknowledgement(page: FakeStatuspage) -> None:
    ch = make(page)
    doc = ch.document(message(1, severity="sev1", title="x" * 300, text="y" * 30_000))
    inc = doc["incident"]
    assert len(inc["name"]) == 255 and inc["name"].endswith("…")
    assert len(inc["body"]) == 25_000
    assert inc["status"] == "investigating"
    assert inc["impact_override"] == "critical"
    assert inc["components"] == {
        COMPONENTS["api"]: "major_outage",
        COMPONENTS["auth"]: "major_outage",
    }
    assert inc["component_ids"] == [COMPONENTS["api"], COMPONENTS["auth"]]
    assert inc["metadata"] == {
        "outagecomms": {"incident": "INC-12", "started_at": STARTED, "round": 1}
    }
    assert inc["deliver_notifications"] is True
    assert incident_problems(doc, create=True) == []


def test_document_mappings_from_config(page: FakeStatuspage) -> None:
    ch = make(
        page,
        component_status={"sev3": "partial_outage"},
        impact={"sev3": ""},
        deliver_notifications=False,
    )
    inc = ch.document(message(2, "update", severity="sev3"))["incident"]
    assert set(inc["components"].values()) == {"partial_outage"}
    assert "impact_override" not in inc  # "" lets Statuspage compute the impact
    assert inc["deliver_notifications"] is False
    resolved = ch.document(message(3, "resolution", severity="sev3", status="monitoring"))
    assert resolved["incident"]["status"] == "resolved"  # a resolution always resolves
    assert set(resolved["incident"]["components"].values()) == {"operational"}


def test_unusable_round_data_fails_without_a_request(page: FakeStatuspage) -> None:
    bad_status = message(1, status="on fire")
    no_round = replace(message(1), data={**message(1).data, "round": 0})
    results = deliver_each(make(page), bad_status, no_round)
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    assert results[0].error is not None and "'on fire'" in results[0].error
    assert page.recorded() == []


# --- the lifecycle ------------------------------------------------------------------------------


def test_create_update_resolve(page: FakeStatuspage) -> None:
    ch = make(page)
    results = deliver_each(
        ch,
        message(1, "acknowledgement"),
        message(2, "update"),
        message(3, "holding", status="monitoring"),
        message(4, "resolution"),
    )
    assert [r.outcome for r in results] == [Outcome.SENT] * 4, results
    assert page.problems == []
    (inc,) = page.incidents.values()
    assert {r.provider_id for r in results} == {inc["id"]}
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in page.recorded()] == [
        ("GET", "unresolved"),  # is there one already (a crash)? no:
        ("POST", "incidents"),
        ("PATCH", inc["id"]),  # the id is cached: no more lookups
        ("PATCH", inc["id"]),
        ("PATCH", inc["id"]),
    ]
    for r in page.recorded():
        assert r.authorization == f"OAuth {next(iter(page.keys))}"
    assert inc["name"] == "Sign-in failures"
    assert inc["status"] == "resolved" and inc["resolved_at"] is not None
    assert inc["impact_override"] == "major"
    assert inc["metadata"] == {
        "outagecomms": {"incident": "INC-12", "started_at": STARTED, "round": 4}
    }
    updates = list(reversed(inc["incident_updates"]))
    assert [u["status"] for u in updates] == [
        "investigating",
        "identified",
        "monitoring",
        "resolved",
    ]
    assert updates[0]["body"] == "Round 1 (acknowledgement).\n\nReference: INC-12"
    assert [u["affected_components"] for u in updates] == [
        {COMPONENTS["api"]: "partial_outage", COMPONENTS["auth"]: "partial_outage"}
    ] * 3 + [{COMPONENTS["api"]: "operational", COMPONENTS["auth"]: "operational"}]
    assert page.components == dict.fromkeys(COMPONENTS.values(), "operational")
    assert inc["component_ids"] == [COMPONENTS["api"], COMPONENTS["auth"]]


def test_components_show_the_outage_while_it_lasts(page: FakeStatuspage) -> None:
    results = deliver_each(make(page), message(1, severity="sev1"))
    assert results[0].outcome == Outcome.SENT
    assert page.components == {
        COMPONENTS["api"]: "major_outage",
        COMPONENTS["auth"]: "major_outage",
        COMPONENTS["db"]: "operational",  # not affected
    }


def test_two_incidents_two_page_incidents(page: FakeStatuspage) -> None:
    ch = make(page)
    a, b, a2 = deliver_each(
        ch, message(1, ref="INC-12"), message(1, ref="INC-13"), message(2, "update", ref="INC-12")
    )
    assert len(page.incidents) == 2
    assert a.provider_id == a2.provider_id != b.provider_id
    assert page.problems == []


# --- crash safety -------------------------------------------------------------------------------


def test_retry_after_a_crash_adopts_the_page_incident(page: FakeStatuspage) -> None:
    """The acknowledgement reached Statuspage, then we died before recording it: a fresh channel
    (empty cache) retrying it finds the page incident by its metadata and does not create a
    second; the next round updates that one."""
    (first,) = deliver_each(make(page), message(1))
    assert first.outcome == Outcome.SENT
    page.requests.clear()
    again, update = deliver_each(make(page), message(1), message(2, "update"))
    assert again.outcome == update.outcome == Outcome.SENT
    assert again.provider_id == update.provider_id == first.provider_id
    assert len(page.incidents) == 1
    assert [r.method for r in page.recorded()] == ["GET", "PATCH"]  # no second POST
    (inc,) = page.incidents.values()
    assert len(inc["incident_updates"]) == 2  # the acknowledgement was not posted twice


def test_lost_answer_to_the_create_is_not_created_twice(page: FakeStatuspage) -> None:
    """Statuspage made the incident but the answer came after our timeout: ``retry``; the retry
    finds the incident instead of creating another."""
    page.script("POST", Reply(slow=True))
    ch = make(page, timeout=1)

    async def steps() -> list[DeliveryResult]:
        lost = await ch.deliver(message(1))
        page.release.set()
        return [lost, await ch.deliver(message(1)), await ch.deliver(message(2, "update"))]

    lost, retried, update = while_open(ch, steps)
    assert lost.outcome == Outcome.RETRY and lost.error is not None and "timeout" in lost.error
    assert retried.outcome == update.outcome == Outcome.SENT
    assert len(page.incidents) == 1
    assert [r.method for r in page.recorded()] == ["GET", "POST", "GET", "PATCH"]
    assert page.problems == []


def test_resolution_retry_after_a_crash_finds_the_resolved_incident(page: FakeStatuspage) -> None:
    """The resolution reached Statuspage before a crash: the page incident is no longer among
    the unresolved ones, so the search finds it; it is not resolved (or created) again."""
    deliver_each(make(page), message(1), message(2, "resolution"))
    page.requests.clear()
    (again,) = deliver_each(make(page), message(2, "resolution"))
    assert again.outcome == Outcome.SENT
    assert len(page.incidents) == 1
    (inc,) = page.incidents.values()
    assert again.provider_id == inc["id"]
    assert len(inc["incident_updates"]) == 2
    gets = page.recorded("GET")
    assert [r.path.rsplit("/", 1)[-1] for r in gets] == ["unresolved", "incidents"]
    assert gets[1].params["q"] == "INC-12"
    assert [r.method for r in page.recorded()] == ["GET", "GET"]


def test_another_incident_with_the_same_reference_is_not_adopted(page: FakeStatuspage) -> None:
    """A page incident from before the store was reset (its INC-12 started another time) is
    another incident: a new INC-12's rounds neither skip because of it nor change it."""
    old = "2025-06-01T08:00:00+00:00"
    deliver_each(make(page), message(1, started_at=old), message(5, "resolution", started_at=old))
    (old_id,) = page.incidents
    (ack,) = deliver_each(make(page), message(1))
    (resolved,) = deliver_each(make(page), message(2, "resolution"))  # after a restart
    assert ack.outcome == resolved.outcome == Outcome.SENT
    assert ack.provider_id == resolved.provider_id != old_id
    assert len(page.incidents) == 2
    assert page.incidents[old_id]["metadata"]["outagecomms"]["round"] == 5
    assert page.incidents[ack.provider_id]["status"] == "resolved"
    # the resolution again after a crash: the search finds both; ours is the one resolved
    page.requests.clear()
    (again,) = deliver_each(make(page), message(2, "resolution"))
    assert again.provider_id == ack.provider_id
    assert [r.method for r in page.recorded()] == ["GET", "GET"]


def test_restart_between_rounds_updates_the_same_incident(page: FakeStatuspage) -> None:
    (ack,) = deliver_each(make(page), message(1))
    page.requests.clear()
    (update,) = deliver_each(make(page), message(2, "update"))  # e.g. the next `outagecomms update`
    assert update.provider_id == ack.provider_id
    assert [r.method for r in page.recorded()] == ["GET", "PATCH"]


def test_stale_round_does_not_move_the_page_backwards(page: FakeStatuspage) -> None:
    ch = make(page)
    _, _, stale = deliver_each(ch, message(1), message(3, "update"), message(2, "update"))
    assert stale.outcome == Outcome.SENT
    (inc,) = page.incidents.values()
    assert inc["metadata"]["outagecomms"]["round"] == 3
    assert len(page.recorded("PATCH")) == 1


# --- outcomes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "outcome", "retry_after", "words"),
    [
        (Reply(429, '{"error":"Rate limited"}', {"Retry-After": "7"}), Outcome.RETRY, 7.0, "429"),
        (Reply(420, "Enhance your calm", {"Retry-After": "3"}), Outcome.RETRY, 3.0, "420"),
        (Reply(500, "oops"), Outcome.RETRY, None, "HTTP 500: oops"),
        (Reply(503, "", {"Retry-After": "30"}), Outcome.RETRY, 30.0, "503"),
        (Reply(401, '{"error":"Could not authenticate"}'), Outcome.FAILED, None, "authenticate"),
        (Reply(403, '{"error":"Forbidden"}'), Outcome.FAILED, None, "Forbidden"),
        (Reply(404, '{"error":"Page not found"}'), Outcome.FAILED, None, "Page not found"),
        (
            Reply(422, '{"error":["Name can\'t be blank"]}'),
            Outcome.FAILED,
            None,
            "Name can't be blank",
        ),
        (Reply(201, "<html>proxy</html>"), Outcome.FAILED, None, "without an incident id"),
    ],
    ids=["429", "420", "500", "503", "401", "403", "404", "422", "no-id"],
)
def test_outcomes_of_the_create(
    page: FakeStatuspage,
    reply: Reply,
    outcome: Outcome,
    retry_after: float | None,
    words: str,
) -> None:
    page.script("POST", reply)
    (result,) = deliver_each(make(page), message(1))
    assert result.outcome == outcome, result
    assert result.retry_after == retry_after
    assert result.error is not None and words in result.error
    assert page.incidents == {}


def test_429_then_success(page: FakeStatuspage) -> None:
    page.script("POST", Reply(429, "", {"Retry-After": "1"}))
    throttled, ok = deliver_each(make(page), message(1), message(1))
    assert throttled.outcome == Outcome.RETRY and throttled.retry_after == 1.0
    assert ok.outcome == Outcome.SENT
    assert len(page.incidents) == 1


def test_lookup_failure_is_the_result(page: FakeStatuspage) -> None:
    page.script("GET", Reply(429, "", {"Retry-After": "2"}), Reply(401, "bad key"))
    throttled, refused = deliver_each(make(page), message(1), message(1))
    assert throttled.outcome == Outcome.RETRY and throttled.retry_after == 2.0
    assert refused.outcome == Outcome.FAILED and refused.error == "Statuspage HTTP 401: bad key"
    assert page.recorded("POST") == []  # never create blind


def test_wrong_key_is_refused_by_the_server(
    page: FakeStatuspage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_STATUSPAGE_KEY", "not-the-key")
    (result,) = deliver_each(make(page), message(1))
    assert result.outcome == Outcome.FAILED
    assert result.error == 'Statuspage HTTP 401: {"error":"Could not authenticate"}'


def test_page_incident_deleted_on_statuspage(page: FakeStatuspage) -> None:
    ch = make(page)

    async def steps() -> list[DeliveryResult]:
        await ch.deliver(message(1))
        page.incidents.clear()  # someone deleted it in the Statuspage UI
        gone = await ch.deliver(message(2, "update"))
        fresh = await ch.deliver(message(3, "update"))
        return [gone, fresh]

    gone, fresh = while_open(ch, steps)
    assert gone.outcome == Outcome.FAILED and gone.error is not None and "404" in gone.error
    assert fresh.outcome == Outcome.SENT  # forgotten, looked up again, created anew
    assert len(page.incidents) == 1


def test_slow_answer_to_an_update_retries_and_is_not_posted_twice(page: FakeStatuspage) -> None:
    page.script("PATCH", Reply(slow=True))
    ch = make(page, timeout=1)

    async def steps() -> list[DeliveryResult]:
        ack = await ch.deliver(message(1))
        lost = await ch.deliver(message(2, "update"))
        page.release.set()
        return [ack, lost, await ch.deliver(message(2, "update"))]

    _, lost, again = while_open(ch, steps)
    assert lost.outcome == Outcome.RETRY
    assert again.outcome == Outcome.SENT
    (inc,) = page.incidents.values()
    assert len(inc["incident_updates"]) == 2


# --- rate limit ---------------------------------------------------------------------------------


def _gaps(granted: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(granted)]


def test_one_request_per_second_by_default(
    page: FakeStatuspage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh channel's acknowledgement is two requests (look up, create): the key's limiter
    grants them a second apart (its own schedule: measured gaps jitter on a loaded machine)."""
    (result,) = deliver_each(make(page, rate_per_second=1), message(1))
    assert result.outcome == Outcome.SENT
    assert len(page.recorded()) == 2
    granted = list(limiter_for_key(next(iter(page.keys)), 1).granted)
    assert len(granted) == 2
    assert _gaps(granted)[0] >= 1 - 1e-9


def test_rate_limit_is_per_key_and_shared_by_channels(
    page: FakeStatuspage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two channels with one key share its limiter; a channel with another key has its own,
    and is not held up by them."""
    key = next(iter(page.keys))
    other = secrets.token_hex(32)
    page.keys.add(other)
    monkeypatch.setenv("TEST_STATUSPAGE_KEY2", other)
    rate = 5.0
    a, b = make(page, rate_per_second=rate), make(page, rate_per_second=rate)
    c = make(page, rate_per_second=rate, api_key_env="TEST_STATUSPAGE_KEY2")

    async def go() -> list[DeliveryResult]:
        for ch in (a, b, c):
            await ch.open()
        try:
            return list(
                await asyncio.gather(
                    a.deliver(message(1, ref="INC-1")),
                    a.deliver(message(1, ref="INC-2")),
                    b.deliver(message(1, ref="INC-3")),
                    c.deliver(message(1, ref="INC-4")),
                )
            )
        finally:
            for ch in (a, b, c):
                await ch.close()

    results = asyncio.run(go())
    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    shared = [r for r in page.recorded() if r.authorization == f"OAuth {key}"]
    apart = [r for r in page.recorded() if r.authorization == f"OAuth {other}"]
    assert len(shared) == 6 and len(apart) == 2
    shared_granted = list(limiter_for_key(key, rate).granted)
    apart_granted = list(limiter_for_key(other, rate).granted)
    assert len(shared_granted) == 6 and len(apart_granted) == 2
    assert min(_gaps(shared_granted)) >= 1 / rate - 1e-9, _gaps(shared_granted)
    # the other key's two requests did not wait behind the first key's six
    assert apart_granted[-1] < shared_granted[-1]


# --- templates and the whole path ----------------------------------------------------------------


def test_doctor_with_a_status_page_channel(
    make_config: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pre-flight renders every template a configured channel needs; a status page has no
    follow-up (once per round), so none is needed for it. (Its API key must be set: doctor
    checks the secrets every channel sends with.)"""
    monkeypatch.setenv("STATUSPAGE_API_KEY", "k" * 32)
    cfg = make_config(extra='\n[channels.status]\nkind = "statuspage"\npage_id = "qfn30z5r6s5h"\n')
    monkeypatch.setenv("STATUSPAGE_API_KEY", "k")  # the default api_key_env: doctor checks it
    res = cli("--config", str(cfg), "doctor", "--no-probe")
    assert res.exit_code == 0, res.stderr
    assert "templates follow_up: ok" in res.stderr
    assert "channel status: kind statuspage" in res.stderr


# once per round: no follow-up, no credit notice (each customer's own)
@pytest.mark.parametrize(
    "kind", [k for k in RoundKind if k not in (RoundKind.FOLLOW_UP, RoundKind.CREDIT)]
)
def test_templates_speak_publicly(kind: RoundKind) -> None:
    r = renderer(CompanyConfig(name="S1 Technology", status_page_url="https://status.example.com"))
    more = {"credit": CREDIT} if kind == RoundKind.RESOLUTION else {}
    out = r.render(
        kind, "statuspage", context(kind, Customer(id="*", name="Acme Logistics"), r=r, **more)
    )
    text = out.text
    assert out.subject == "" and out.html is None
    assert "{{" not in text and "\n\n\n" not in text
    assert "Acme" not in text and "12,00" not in text  # public: no customer, no credit
    assert "INC-42" in text  # the reference lets a search find the page incident again
    assert "api, auth in eu-west, us-east" in text or kind == RoundKind.HOLDING
    assert ("sorry" in text.lower()) == (kind in (RoundKind.ACKNOWLEDGEMENT, RoundKind.RESOLUTION))
    # a page speaks to everyone: the promise in UTC, in the default locale
    promise = local_time(WINTER + timedelta(minutes=30), "UTC", "en_US")
    assert (f"Next update by {promise}" in text) == (not done(kind))
    assert len(text) < 800


def test_injected_client_is_used_and_left_open(page: FakeStatuspage) -> None:
    async def go() -> tuple[DeliveryResult, bool]:
        async with httpx.AsyncClient(headers={"X-Test": "injected"}) as client:
            cfg = make(page).config
            ch = StatuspageChannel(cfg, CompanyConfig(), client=client)
            await ch.open()
            result = await ch.deliver(message(1))
            await ch.close()
            return result, client.is_closed

    result, closed = asyncio.run(go())
    assert result.outcome == Outcome.SENT
    assert closed is False
    assert [r.headers["x-test"] for r in page.recorded()] == ["injected", "injected"]


def test_the_outbox_keeps_one_page_incident_in_step_end_to_end(
    page: FakeStatuspage, make_config: Any, smtp_server: Any, cli: Any, tmp_path: Any
) -> None:
    """declare / update / resolve through the real outbox: one delivery per round on the
    status page (not one per customer), one page incident, created then updated then
    resolved, while every customer gets their email."""
    status = channel_table(page, components={"api": COMPONENTS["api"]})
    extra = email_and_channel("sev1", "status", status)
    cfg = make_config(smtp_server, extra=extra)
    csv = tmp_path / "c.csv"
    csv.write_text(
        "id,name,email,components,regions\n"
        + "".join(f"c{i},Customer {i},ops{i}@example.com,api,eu-west\n" for i in range(5))
    )
    assert cli("--config", str(cfg), "customers", "import", str(csv)).exit_code == 0
    res = cli("--config", str(cfg), "declare", "API down", "--severity", "sev1",
              "--component", "api", "--yes", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    ref = json.loads(res.stdout)["incident"]
    assert json.loads(res.stdout)["sent"] == 6  # five emails and the page
    assert (
        cli("--config", str(cfg), "update", "--yes", ref, "Rolled back.", "--json").exit_code == 0
    )
    assert cli("--config", str(cfg), "resolve", "--yes", ref, "Fixed.", "--json").exit_code == 0
    assert page.problems == []
    assert len(page.incidents) == 1
    [inc] = page.incidents.values()
    assert inc["status"] == "resolved"
    writes = [r for r in page.requests if r.method in ("POST", "PATCH")]
    assert [r.method for r in writes] == ["POST", "PATCH", "PATCH"]
    assert page.components[COMPONENTS["api"]] == "operational"
    smtp_server.handler.wait_for(lambda m: len(m) == 15)
