"""The status page's feeds: the Atom feed validates against RFC 4287's own RELAX NG schema
(Appendix B, ``tests/data/atom/atom.rnc``, converted with rnc2rng), keeps stable ids and the
newest 50 updates; the JSON summary has Statuspage's shape; and the real daemon server
(``serve_http``) answers every route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from outagecomms import App
from tests.fakes.clock import FakeClock
from tests.support.atom import A, assert_valid_atom, atom_schema
from tests.support.status_page import SECRETS, STATUS_SECRET, AsgiClient, status_app
from tests.support.web import serve_web


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", STATUS_SECRET)


@pytest.fixture
def app(tmp_path: Path, store_url: str, clock: FakeClock) -> Iterator[App]:
    with status_app(tmp_path, store_url, clock) as a:
        yield a


def client(app: App) -> AsgiClient:
    from outagecomms.web.server import make_web_app

    return AsgiClient(make_web_app(app))


def test_the_schema_refuses_what_is_not_atom() -> None:
    """The proof proves something: a feed without an id or with a bad date is refused."""
    schema = atom_schema()
    ok = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x</id><title>t</title>'
        b"<updated>2026-01-01T00:00:00Z</updated><author><name>a</name></author></feed>"
    )
    assert schema.validate(etree.fromstring(ok))
    assert not schema.validate(etree.fromstring(ok.replace(b"<id>urn:x</id>", b"")))
    assert not schema.validate(etree.fromstring(ok.replace(b"2026-01-01T00:00:00Z", b"today")))


def test_the_feed_validates_as_atom_newest_first_with_stable_ids(
    app: App, clock: FakeClock
) -> None:
    inc = app.declare('Database <errors> & "timeouts"', severity="sev2",
                      components=["database"], send=False)  # fmt: skip
    clock.advance(minutes=5)
    app.update(inc.incident, "Cause found: a <full> disk & more.", status="identified", send=False)
    res = client(app).get("/status/feed.atom")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert res.headers["cache-control"] == "public, max-age=5"
    doc = assert_valid_atom(res.content)
    assert doc.findtext(f"{A}title") == "S1 Technology status"
    assert doc.findtext(f"{A}author/{A}name") == "S1 Technology"
    entries = doc.findall(f"{A}entry")
    ref = inc.incident.ref
    assert [e.findtext(f"{A}title") for e in entries] == [
        f'{ref} Database <errors> & "timeouts": Identified',
        f'{ref} Database <errors> & "timeouts": Investigating',
    ]
    content = entries[0].find(f"{A}content")
    assert content is not None and content.get("type") == "text"
    assert content.text == "Cause found: a <full> disk & more."
    link = entries[0].find(f"{A}link")
    assert link is not None and link.get("rel") == "alternate"
    assert link.get("href") == f"https://status.s1.example/status#{ref}"
    ids = [e.findtext(f"{A}id") for e in entries]
    assert all(i and i.startswith("tag:status.s1.example,2026-11-25:") for i in ids)
    assert len(set(ids)) == 2
    # the same ids after the cache has moved on and more was said
    clock.advance(minutes=5)
    app.resolve(inc.incident, "Fixed.", send=False)
    later = assert_valid_atom(client(app).get("/status/feed.atom").content)
    later_ids = [e.findtext(f"{A}id") for e in later.findall(f"{A}entry")]
    assert later_ids[1:] == ids and later_ids[0] not in ids
    assert later.findtext(f"{A}updated") == later.find(f"{A}entry").findtext(f"{A}updated")
    parsed = feedparser.parse(res.content)
    assert not parsed.bozo and parsed.version == "atom10"
    assert parsed.entries[0].title.endswith(": Identified")


def test_the_feed_keeps_the_newest_fifty(app: App, clock: FakeClock) -> None:
    inc = app.declare("API errors", severity="sev3", components=["api"], send=False)
    for n in range(55):
        clock.advance(minutes=1)
        app.update(inc.incident, f"Update number {n}.", send=False)
    doc = assert_valid_atom(client(app).get("/status/feed.atom").content)
    contents = [e.findtext(f"{A}content") for e in doc.findall(f"{A}entry")]
    assert len(contents) == 50
    assert contents[0] == "Update number 54." and contents[-1] == "Update number 5."


def test_without_a_public_url_ids_are_uuids_and_links_the_requests_own(
    tmp_path: Path, store_url: str, clock: FakeClock
) -> None:
    with status_app(tmp_path, store_url, clock) as a:
        path = a.config.path
    assert path is not None
    path.write_text(path.read_text().replace('public_url = "https://status.s1.example"', ""))
    with App.open(path, clock=clock) as app:
        assert app.config.company.status_page_url == ""
        app.declare("API errors", severity="sev3", components=["api"], send=False)
        doc = assert_valid_atom(client(app).get("/status/feed.atom").content)
        entry_id = doc.findtext(f"{A}entry/{A}id")
        assert entry_id and entry_id.startswith("urn:uuid:")
        assert doc.find(f"{A}link[@rel='self']").get("href") == "http://testserver/status/feed.atom"
        again = assert_valid_atom(client(app).get("/status/feed.atom").content)
        assert again.findtext(f"{A}entry/{A}id") == entry_id


# --- the JSON summary ---------------------------------------------------------------------------

COMPONENT_STATES = {"operational", "degraded_performance", "partial_outage", "major_outage",
                    "under_maintenance"}  # fmt: skip


def test_summary_json_has_statuspages_shape(app: App, clock: FakeClock) -> None:
    inc = app.declare("Database down", severity="sev1", components=["database", "api"],
                      message="We are investigating.", send=False)  # fmt: skip
    clock.advance(minutes=3)
    app.update(inc.incident, "Fix deployed.", status="monitoring", send=False)
    c = client(app)
    res = c.get("/status/summary.json")
    assert res.headers["access-control-allow-origin"] == "*"
    body = json.loads(res.text)
    assert json.loads(c.get("/api/v2/summary.json").text) == body
    assert set(body) == {"page", "status", "components", "incidents", "scheduled_maintenances"}
    assert set(body["page"]) >= {"id", "name", "url", "updated_at", "time_zone"}
    assert body["page"]["url"] == "https://status.s1.example/status"
    assert body["page"]["name"] == "S1 Technology status"
    # monitoring: degraded at most, so the indicator is minor
    assert body["status"] == {"indicator": "minor", "description": "Minor Service Outage"}
    comps = {x["id"]: x for x in body["components"]}
    assert comps["database"]["name"] == "Managed Database"
    assert comps["database"]["status"] == "degraded_performance"
    assert {x["status"] for x in body["components"]} <= COMPONENT_STATES
    for x in body["components"]:
        assert set(x) >= {"id", "name", "status", "created_at", "updated_at", "position",
                          "description", "page_id", "group", "only_show_if_degraded"}  # fmt: skip
        assert x["page_id"] == body["page"]["id"]
    [incident] = body["incidents"]
    assert incident["name"] == "Database down" and incident["status"] == "monitoring"
    assert incident["impact"] == "critical" and incident["resolved_at"] is None
    assert incident["monitoring_at"] == incident["incident_updates"][0]["created_at"]
    assert [u["body"] for u in incident["incident_updates"]] == [
        "Fix deployed.",
        "We are investigating.",
    ]
    assert [u["status"] for u in incident["incident_updates"]] == ["monitoring", "investigating"]
    for u in incident["incident_updates"]:
        assert set(u) >= {"id", "status", "body", "incident_id", "created_at", "updated_at",
                          "display_at"}  # fmt: skip
        assert u["created_at"].endswith("Z")
    assert body["scheduled_maintenances"] == []
    status = json.loads(c.get("/api/v2/status.json").text)
    assert status == {"page": body["page"], "status": body["status"]}
    for secret in SECRETS:
        assert secret not in res.text


def test_indicator_follows_the_worst_component(app: App) -> None:
    c = client(app)
    assert json.loads(c.get("/api/v2/status.json").text)["status"] == {
        "indicator": "none", "description": "All Systems Operational"
    }  # fmt: skip


# --- through the real daemon server --------------------------------------------------------------


def test_the_daemon_serves_every_route(tmp_path: Path, store_url: str, clock: FakeClock) -> None:
    (tmp_path / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    with status_app(tmp_path, store_url, clock, extra='logo = "logo.svg"') as app:
        inc = app.declare("Database down", severity="sev1", components=["database"], send=False)
        clock.advance(timedelta(minutes=2))
        with serve_web(app) as http:
            page = http.get("/status")
            assert page.status_code == 200 and "Database down" in page.text
            assert "Major System Outage" in page.text
            assert page.headers["content-security-policy"].startswith("default-src 'none'")
            head = http.head("/status")
            assert head.status_code == 200 and head.content == b""
            feed = http.get("/status/feed.atom")
            assert_valid_atom(feed.content)
            assert inc.incident.ref in feed.text
            summary = http.get("/status/summary.json").json()
            assert http.get("/api/v2/summary.json").json() == summary
            assert summary["status"]["indicator"] == "critical"
            assert http.get("/api/v2/status.json").json()["status"]["indicator"] == "critical"
            logo = http.get("/status/logo")
            assert logo.headers["content-type"] == "image/svg+xml"
            assert http.get("/status/nothing").status_code == 404
