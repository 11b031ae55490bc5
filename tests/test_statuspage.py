"""The statuspage channel against a fake Statuspage API on loopback.

A Starlette app on uvicorn plays ``https://api.statuspage.io/v1`` for one page: it checks every
request the way Statuspage documents it (method and path, ``Authorization: OAuth <key>``, JSON
``{"incident": {...}}`` with the documented field names, types, realtime statuses, component
statuses, impact values and metadata shape), keeps page incidents in memory (with their incident
updates and the page's component statuses), lists unresolved ones and searches by text, and
answers whatever a test scripted: 420/429 with Retry-After, 5xx, 401, 404, 422, or a change that
is applied but answered only after the client gave up (a lost answer).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import pytest
from conftest import free_port, serve_asgi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from outagecomms.channels import registry
from outagecomms.channels.base import DeliveryResult, OutboundMessage, Outcome
from outagecomms.channels.statuspage import StatuspageChannel
from outagecomms.config.loader import parse_config
from outagecomms.config.model import CompanyConfig
from outagecomms.errors import ConfigError
from outagecomms.models import RoundKind
from outagecomms.rendering.templates import PARTS

PAGE = "qfn30z5r6s5h"
COMPONENTS = {"api": "8kbf7d35c070", "auth": "vtnh60py4yd7", "db": "3kvnqjd2pjb3"}
INCIDENT_FIELDS = {  # POST/PATCH /pages/{page_id}/incidents: the documented incident fields
    "name", "status", "impact_override", "scheduled_for", "scheduled_until",
    "scheduled_remind_prior", "auto_transition_to_maintenance_state",
    "auto_transition_to_operational_state", "scheduled_auto_in_progress",
    "scheduled_auto_completed", "auto_transition_deliver_notifications_at_start",
    "auto_transition_deliver_notifications_at_end", "metadata", "deliver_notifications",
    "auto_tweet_at_beginning", "auto_tweet_on_completion", "auto_tweet_on_creation",
    "auto_tweet_one_hour_before", "backfill_date", "backfilled", "body", "components",
    "component_ids", "scheduled_auto_transition",
}  # fmt: skip
REALTIME = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
IMPACTS = ("none", "minor", "major", "critical")
STARTED = "2026-01-15T12:48:00+00:00"


# --- the fake Statuspage ------------------------------------------------------------------------


@dataclass
class Reply:
    status: int | None = None  # None: the normal answer (after applying the change)
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    slow: bool = False  # hold the answer until the test releases it


@dataclass
class Recorded:
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    query: dict[str, str]
    authorization: str
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def incident_problems(doc: Any, *, create: bool) -> list[str]:
    """What Statuspage would refuse in a create/update body (its documented shape)."""
    if (
        not isinstance(doc, dict)
        or set(doc) != {"incident"}
        or not isinstance(doc["incident"], dict)
    ):
        return ['body must be {"incident": {...}}']
    inc = doc["incident"]
    p = [f"unknown incident field {k!r}" for k in inc if k not in INCIDENT_FIELDS]
    name = inc.get("name")
    if (create or "name" in inc) and not (isinstance(name, str) and 1 <= len(name) <= 255):
        p.append("name must be a string of 1..255 characters")
    if "status" in inc and inc["status"] not in REALTIME:
        p.append(f"status {inc['status']!r} is not a realtime incident status")
    if "body" in inc and (not isinstance(inc["body"], str) or len(inc["body"]) > 25000):
        p.append("body must be a string of at most 25000 characters")
    if "impact_override" in inc and inc["impact_override"] not in IMPACTS:
        p.append(f"impact_override {inc['impact_override']!r} not one of {IMPACTS}")
    if "deliver_notifications" in inc and not isinstance(inc["deliver_notifications"], bool):
        p.append("deliver_notifications must be a boolean")
    meta = inc.get("metadata", {})
    if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
        p.append("metadata: all top-level values must be objects")
    comps = inc.get("components", {})
    if not isinstance(comps, dict):
        p.append("components must be an object of component id: status")
    else:
        for cid, status in comps.items():
            if cid not in COMPONENTS.values():
                p.append(f"component {cid!r} is not on the page")
            if status not in COMPONENT_STATUSES:
                p.append(f"component status {status!r} not one of {COMPONENT_STATUSES}")
    ids = inc.get("component_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        p.append("component_ids must be a list of strings")
    elif any(i not in COMPONENTS.values() for i in ids):
        p.append(f"component_ids {ids} name a component not on the page")
    return p


class FakeStatuspage:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: set[str] = set()
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.scripts: dict[str, deque[Reply]] = {}
        self.release = threading.Event()
        self.incidents: dict[str, dict[str, Any]] = {}
        self.components: dict[str, str] = {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.app = Starlette(
            routes=[
                Route("/health", self.health, methods=["GET"]),
                Route("/{path:path}", self.handle, methods=["GET", "POST", "PATCH", "PUT"]),
            ]
        )
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.keys.clear()
            self.requests.clear()
            self.problems.clear()
            self.scripts.clear()
            self.incidents.clear()
            self.components = dict.fromkeys(COMPONENTS.values(), "operational")
        self.release.clear()

    def script(self, method: str, *replies: Reply) -> None:
        """Answer the next requests of ``method`` (GET, POST, PATCH) with ``replies``."""
        with self.lock:
            self.scripts.setdefault(method, deque()).extend(replies)

    def recorded(self, method: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if method is None or r.method == method]

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("up")

    async def handle(self, request: Request) -> Response:
        rec = Recorded(
            at=time.monotonic(),
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            authorization=request.headers.get("authorization", ""),
            content_type=request.headers.get("content-type", ""),
            body=await request.body(),
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        with self.lock:
            self.requests.append(rec)
            queue = self.scripts.get(rec.method)
            reply = queue.popleft() if queue else Reply()
        if reply.status is not None:
            return Response(reply.body, status_code=reply.status, headers=reply.headers)
        if rec.authorization not in {f"OAuth {k}" for k in self.keys}:
            return JSONResponse({"error": "Could not authenticate"}, status_code=401)
        answer = self.apply(rec)
        if reply.slow:  # the change is made; the answer comes too late for the client
            await asyncio.to_thread(self.release.wait, 10)
        return answer

    def _problem(self, rec: Recorded, problems: list[str], status: int = 422) -> Response:
        with self.lock:
            self.problems.extend(f"{rec.method} {rec.path}: {x}" for x in problems)
        return JSONResponse({"error": problems}, status_code=status)

    def apply(self, rec: Recorded) -> Response:
        m = re.fullmatch(r"/v1/pages/([^/]+)/incidents(?:/([^/]+))?", rec.path)
        if not m or m.group(1) != PAGE:
            return self._problem(rec, [f"no such page or path: {rec.path}"], 404)
        sub = m.group(2)
        if rec.method == "GET":
            if rec.body:
                return self._problem(rec, ["a GET carries no body"], 400)
            if sub == "unresolved":
                return self.list_unresolved(rec)
            if sub is None:
                return self.search(rec)
            return self._problem(rec, [f"unexpected GET {rec.path}"], 404)
        if rec.content_type.split(";")[0].strip() != "application/json":
            return self._problem(rec, [f"Content-Type {rec.content_type!r}"], 415)
        try:
            doc = rec.json()
        except ValueError:
            return self._problem(rec, ["body is not JSON"], 400)
        if rec.method == "POST" and sub is None:
            problems = incident_problems(doc, create=True)
            return self._problem(rec, problems) if problems else self.create(doc["incident"])
        if rec.method == "PATCH" and sub is not None:
            if sub not in self.incidents:
                return JSONResponse({"error": "The requested resource could not be found."}, 404)
            problems = incident_problems(doc, create=False)
            return self._problem(rec, problems) if problems else self.update(sub, doc["incident"])
        return self._problem(rec, [f"unexpected {rec.method} {rec.path}"], 405)

    def _page(self, items: list[dict[str, Any]], rec: Recorded, size_key: str) -> Response:
        try:
            page = int(rec.query.get("page", "1"))
            size = int(rec.query.get(size_key, "100"))
        except ValueError:
            return self._problem(rec, ["page and page size must be integers"], 400)
        if page < 1 or not 1 <= size <= 100:
            return self._problem(rec, ["page >= 1, page size 1..100"], 400)
        return JSONResponse(items[(page - 1) * size : page * size])

    def _newest_first(self) -> list[dict[str, Any]]:
        with self.lock:
            return sorted(self.incidents.values(), key=lambda i: i["created_at"], reverse=True)

    def list_unresolved(self, rec: Recorded) -> Response:
        items = [i for i in self._newest_first() if i["status"] not in ("resolved", "postmortem")]
        return self._page(items, rec, "per_page")

    def search(self, rec: Recorded) -> Response:
        """``q`` searches name, status, postmortem body and incident updates (not metadata)."""
        q = rec.query.get("q", "").lower()

        def hit(i: dict[str, Any]) -> bool:
            texts = [i["name"], i["status"], *(u["body"] for u in i["incident_updates"])]
            return q in " ".join(texts).lower()

        return self._page([i for i in self._newest_first() if hit(i)], rec, "limit")

    def _set_components(self, inc: dict[str, Any], fields: dict[str, Any]) -> None:
        for cid, status in fields.get("components", {}).items():
            self.components[cid] = status
        ids = list(dict.fromkeys([*inc["component_ids"], *fields.get("component_ids", [])]))
        inc["component_ids"] = ids
        name_of = {v: k for k, v in COMPONENTS.items()}
        inc["components"] = [
            {"id": c, "name": name_of[c], "status": self.components[c], "page_id": PAGE}
            for c in ids
        ]

    def _add_update(self, inc: dict[str, Any], fields: dict[str, Any]) -> None:
        inc["incident_updates"].insert(
            0,
            {
                "id": secrets.token_hex(6),
                "incident_id": inc["id"],
                "body": fields.get("body", ""),
                "status": inc["status"],
                "deliver_notifications": fields.get("deliver_notifications", True),
                "affected_components": dict(fields.get("components", {})),
                "created_at": time.time(),
            },
        )

    def create(self, fields: dict[str, Any]) -> Response:
        with self.lock:
            iid = secrets.token_hex(6)
            inc: dict[str, Any] = {
                "id": iid,
                "page_id": PAGE,
                "name": fields["name"],
                "status": fields.get("status", "investigating"),
                "impact_override": fields.get("impact_override"),
                "metadata": dict(fields.get("metadata", {})),
                "component_ids": [],
                "components": [],
                "incident_updates": [],
                "created_at": time.time(),
                "resolved_at": None,
                "shortlink": f"https://stspg.io/{iid[:5]}",
            }
            self._set_components(inc, fields)
            self._add_update(inc, fields)
            self.incidents[iid] = inc
            return JSONResponse(inc, status_code=201)

    def update(self, iid: str, fields: dict[str, Any]) -> Response:
        with self.lock:
            inc = self.incidents[iid]
            for k in ("name", "status", "impact_override"):
                if k in fields:
                    inc[k] = fields[k]
            inc["metadata"].update(fields.get("metadata", {}))
            if inc["status"] == "resolved":
                inc["resolved_at"] = time.time()
            self._set_components(inc, fields)
            self._add_update(inc, fields)
            return JSONResponse(inc)


@pytest.fixture(scope="module")
def _fake() -> Iterator[FakeStatuspage]:
    fake = FakeStatuspage()
    with serve_asgi(fake.app, fake.port, name="fake-statuspage"):
        try:
            yield fake
        finally:
            fake.release.set()


@pytest.fixture
def page(_fake: FakeStatuspage, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStatuspage]:
    """The fake page, emptied, with a fresh API key in $TEST_STATUSPAGE_KEY (a fresh key per test
    also means a fresh rate limiter: limits are per key)."""
    _fake.reset()
    key = secrets.token_hex(32)
    _fake.keys.add(key)
    monkeypatch.setenv("TEST_STATUSPAGE_KEY", key)
    yield _fake
    _fake.release.set()  # let any held answer finish


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
        data={
            "incident": ref,
            "title": title,
            "severity": severity,
            "status": status or KIND_STATUS[kind],
            "kind": kind,
            "round": rnd,
            "message": "A database failover is in progress.",
            "customer": "*",
            "components": ["api", "auth", "search"],  # search is not on the page
            "regions": ["eu-west"],
            "started_at": started_at,
            "promised_next_by": None if kind == "resolution" else "2026-01-15T13:30:00+00:00",
        },
    )


def deliver_all(ch: StatuspageChannel, *messages: OutboundMessage) -> list[DeliveryResult]:
    """Open, deliver each message in turn, close."""

    async def go() -> list[DeliveryResult]:
        await ch.open()
        try:
            return [await ch.deliver(m) for m in messages]
        finally:
            await ch.close()

    return asyncio.run(go())


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
    ch = make(page)
    with pytest.raises(ConfigError) as err:
        asyncio.run(ch.open())
    assert err.value.key == "channels.status.api_key_env"
    assert "TEST_STATUSPAGE_KEY" in str(err.value)
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
    results = deliver_all(make(page), bad_status, no_round)
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    assert results[0].error is not None and "'on fire'" in results[0].error
    assert page.recorded() == []


# --- the lifecycle ------------------------------------------------------------------------------


def test_create_update_resolve(page: FakeStatuspage) -> None:
    ch = make(page)
    results = deliver_all(
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
    results = deliver_all(make(page), message(1, severity="sev1"))
    assert results[0].outcome == Outcome.SENT
    assert page.components == {
        COMPONENTS["api"]: "major_outage",
        COMPONENTS["auth"]: "major_outage",
        COMPONENTS["db"]: "operational",  # not affected
    }


def test_two_incidents_two_page_incidents(page: FakeStatuspage) -> None:
    ch = make(page)
    a, b, a2 = deliver_all(
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
    (first,) = deliver_all(make(page), message(1))
    assert first.outcome == Outcome.SENT
    page.requests.clear()
    again, update = deliver_all(make(page), message(1), message(2, "update"))
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

    async def go() -> list[DeliveryResult]:
        await ch.open()
        try:
            lost = await ch.deliver(message(1))
            page.release.set()
            return [lost, await ch.deliver(message(1)), await ch.deliver(message(2, "update"))]
        finally:
            await ch.close()

    lost, retried, update = asyncio.run(go())
    assert lost.outcome == Outcome.RETRY and lost.error is not None and "timeout" in lost.error
    assert retried.outcome == update.outcome == Outcome.SENT
    assert len(page.incidents) == 1
    assert [r.method for r in page.recorded()] == ["GET", "POST", "GET", "PATCH"]
    assert page.problems == []


def test_resolution_retry_after_a_crash_finds_the_resolved_incident(page: FakeStatuspage) -> None:
    """The resolution reached Statuspage before a crash: the page incident is no longer among
    the unresolved ones, so the search finds it; it is not resolved (or created) again."""
    deliver_all(make(page), message(1), message(2, "resolution"))
    page.requests.clear()
    (again,) = deliver_all(make(page), message(2, "resolution"))
    assert again.outcome == Outcome.SENT
    assert len(page.incidents) == 1
    (inc,) = page.incidents.values()
    assert again.provider_id == inc["id"]
    assert len(inc["incident_updates"]) == 2
    gets = page.recorded("GET")
    assert [r.path.rsplit("/", 1)[-1] for r in gets] == ["unresolved", "incidents"]
    assert gets[1].query["q"] == "INC-12"
    assert [r.method for r in page.recorded()] == ["GET", "GET"]


def test_another_incident_with_the_same_reference_is_not_adopted(page: FakeStatuspage) -> None:
    """A page incident from before the store was reset (its INC-12 started another time) is
    another incident: a new INC-12's rounds neither skip because of it nor change it."""
    old = "2025-06-01T08:00:00+00:00"
    deliver_all(make(page), message(1, started_at=old), message(5, "resolution", started_at=old))
    (old_id,) = page.incidents
    (ack,) = deliver_all(make(page), message(1))
    (resolved,) = deliver_all(make(page), message(2, "resolution"))  # after a restart
    assert ack.outcome == resolved.outcome == Outcome.SENT
    assert ack.provider_id == resolved.provider_id != old_id
    assert len(page.incidents) == 2
    assert page.incidents[old_id]["metadata"]["outagecomms"]["round"] == 5
    assert page.incidents[ack.provider_id]["status"] == "resolved"
    # the resolution again after a crash: the search finds both; ours is the one resolved
    page.requests.clear()
    (again,) = deliver_all(make(page), message(2, "resolution"))
    assert again.provider_id == ack.provider_id
    assert [r.method for r in page.recorded()] == ["GET", "GET"]


def test_restart_between_rounds_updates_the_same_incident(page: FakeStatuspage) -> None:
    (ack,) = deliver_all(make(page), message(1))
    page.requests.clear()
    (update,) = deliver_all(make(page), message(2, "update"))  # e.g. the next `outagecomms update`
    assert update.provider_id == ack.provider_id
    assert [r.method for r in page.recorded()] == ["GET", "PATCH"]


def test_stale_round_does_not_move_the_page_backwards(page: FakeStatuspage) -> None:
    ch = make(page)
    _, _, stale = deliver_all(ch, message(1), message(3, "update"), message(2, "update"))
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
    (result,) = deliver_all(make(page), message(1))
    assert result.outcome == outcome, result
    assert result.retry_after == retry_after
    assert result.error is not None and words in result.error
    assert page.incidents == {}


def test_429_then_success(page: FakeStatuspage) -> None:
    page.script("POST", Reply(429, "", {"Retry-After": "1"}))
    throttled, ok = deliver_all(make(page), message(1), message(1))
    assert throttled.outcome == Outcome.RETRY and throttled.retry_after == 1.0
    assert ok.outcome == Outcome.SENT
    assert len(page.incidents) == 1


def test_lookup_failure_is_the_result(page: FakeStatuspage) -> None:
    page.script("GET", Reply(429, "", {"Retry-After": "2"}), Reply(401, "bad key"))
    throttled, refused = deliver_all(make(page), message(1), message(1))
    assert throttled.outcome == Outcome.RETRY and throttled.retry_after == 2.0
    assert refused.outcome == Outcome.FAILED and refused.error == "Statuspage HTTP 401: bad key"
    assert page.recorded("POST") == []  # never create blind


def test_wrong_key_is_refused_by_the_server(
    page: FakeStatuspage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_STATUSPAGE_KEY", "not-the-key")
    (result,) = deliver_all(make(page), message(1))
    assert result.outcome == Outcome.FAILED
    assert result.error == 'Statuspage HTTP 401: {"error":"Could not authenticate"}'


def test_page_incident_deleted_on_statuspage(page: FakeStatuspage) -> None:
    ch = make(page)

    async def go() -> list[DeliveryResult]:
        await ch.open()
        try:
            await ch.deliver(message(1))
            page.incidents.clear()  # someone deleted it in the Statuspage UI
            gone = await ch.deliver(message(2, "update"))
            fresh = await ch.deliver(message(3, "update"))
            return [gone, fresh]
        finally:
            await ch.close()

    gone, fresh = asyncio.run(go())
    assert gone.outcome == Outcome.FAILED and gone.error is not None and "404" in gone.error
    assert fresh.outcome == Outcome.SENT  # forgotten, looked up again, created anew
    assert len(page.incidents) == 1


def test_slow_answer_to_an_update_retries_and_is_not_posted_twice(page: FakeStatuspage) -> None:
    page.script("PATCH", Reply(slow=True))
    ch = make(page, timeout=1)

    async def go() -> list[DeliveryResult]:
        await ch.open()
        try:
            ack = await ch.deliver(message(1))
            lost = await ch.deliver(message(2, "update"))
            page.release.set()
            return [ack, lost, await ch.deliver(message(2, "update"))]
        finally:
            await ch.close()

    _, lost, again = asyncio.run(go())
    assert lost.outcome == Outcome.RETRY
    assert again.outcome == Outcome.SENT
    (inc,) = page.incidents.values()
    assert len(inc["incident_updates"]) == 2


# --- rate limit ---------------------------------------------------------------------------------


def _gaps(requests: list[Recorded]) -> list[float]:
    times = sorted(r.at for r in requests)
    return [b - a for a, b in pairwise(times)]


def test_one_request_per_second_by_default(page: FakeStatuspage) -> None:
    """A fresh channel's acknowledgement is two requests (look up, create): a second apart."""
    (result,) = deliver_all(make(page, rate_per_second=1), message(1))
    assert result.outcome == Outcome.SENT
    (gap,) = _gaps(page.recorded())
    assert gap >= 0.95


def test_rate_limit_is_per_key_and_shared_by_channels(
    page: FakeStatuspage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two channels with one key share its limit (measured where Statuspage measures it, on the
    server); a channel with another key is not held up by them."""
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
    shared = [r for r in page.recorded() if r.authorization != f"OAuth {other}"]
    apart = [r for r in page.recorded() if r.authorization == f"OAuth {other}"]
    assert len(shared) == 6 and len(apart) == 2
    assert min(_gaps(shared)) >= 1 / rate - 0.03, _gaps(shared)
    # the other key's two requests did not wait behind the first key's six
    assert max(r.at for r in apart) < max(r.at for r in shared)


# --- templates and the whole path ----------------------------------------------------------------


def test_doctor_with_a_status_page_channel(make_config: Any, cli: Any) -> None:
    """Pre-flight renders every template a configured channel needs; a status page has no
    follow-up (once per round), so none is needed for it."""
    cfg = make_config(extra='\n[channels.status]\nkind = "statuspage"\npage_id = "qfn30z5r6s5h"\n')
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 0, res.stderr
    assert "templates follow_up: ok" in res.stderr
    assert "channel status: kind statuspage" in res.stderr


@pytest.mark.parametrize("kind", [k for k in RoundKind if k != RoundKind.FOLLOW_UP])
def test_templates_speak_publicly(kind: RoundKind) -> None:
    from test_http_channels import _round
    from test_rendering import incident

    from outagecomms.models import Customer
    from outagecomms.rendering.templates import Renderer

    renderer = Renderer(
        company=CompanyConfig(name="S1 Technology", status_page_url="https://status.example.com")
    )
    done = kind == RoundKind.RESOLUTION
    ctx = renderer.context(
        incident=incident(resolved=done),
        round=_round(kind),
        customer=Customer(id="*", name="Acme Logistics"),
        credit={"amount": "12,00 €", "reason": "10 % of the monthly fee"} if done else None,
    )
    out = renderer.render(kind, "statuspage", ctx)
    text = out.text
    assert out.subject == "" and out.html is None
    assert "{{" not in text and "\n\n\n" not in text
    assert "Acme" not in text and "12,00" not in text  # public: no customer, no credit
    assert "INC-42" in text  # the reference lets a search find the page incident again
    assert "api, auth in eu-west, us-east" in text or kind == RoundKind.HOLDING
    assert ("sorry" in text.lower()) == (kind in (RoundKind.ACKNOWLEDGEMENT, RoundKind.RESOLUTION))
    assert ("Next update by 1:30\u202fPM UTC" in text) == (not done)
    assert len(text) < 800


def test_injected_client_is_used_and_left_open(page: FakeStatuspage) -> None:
    import httpx

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
    import json

    extra = f"""
[policy.sev1]
channels = {{ default = ["email", "status"] }}

[channels.status]
kind = "statuspage"
page_id = "{PAGE}"
api_key_env = "TEST_STATUSPAGE_KEY"
base_url = "{page.base}"
components = {{ api = "{COMPONENTS["api"]}" }}
rate_per_second = 50
"""
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
    assert cli("--config", str(cfg), "update", ref, "Rolled back.", "--json").exit_code == 0
    assert cli("--config", str(cfg), "resolve", ref, "Fixed.", "--json").exit_code == 0
    assert page.problems == []
    assert len(page.incidents) == 1
    [inc] = page.incidents.values()
    assert inc["status"] == "resolved"
    writes = [r for r in page.requests if r.method in ("POST", "PATCH")]
    assert [r.method for r in writes] == ["POST", "PATCH", "PATCH"]
    assert page.components[COMPONENTS["api"]] == "operational"
    smtp_server.handler.wait_for(lambda m: len(m) == 15)
