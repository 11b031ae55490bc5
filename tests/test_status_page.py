"""The public status page (issue 13): component states from open incidents, the public
updates only, the uptime bars over an injected clock, the cache, the config, the page's
headers, accessibility (contrast, labels) and a user's template override."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from outagecomms import App
from outagecomms.config.loader import load_config
from outagecomms.errors import ConfigError
from outagecomms.pages.status import StatusCache, compute_status
from outagecomms.store import tables as t
from outagecomms.web.server import make_web_app
from tests.fakes.clock import FakeClock
from tests.support.status_page import (
    SECRETS,
    STATUS_SECRET,
    AsgiClient,
    at,
    status_app,
    write_config,
)

D = datetime(2026, 11, 20, tzinfo=UTC)  # a Friday; the bars' day under test


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", STATUS_SECRET)  # make_web_app needs one


@pytest.fixture
def app(tmp_path: Path, store_url: str, clock: FakeClock) -> Iterator[App]:
    with status_app(tmp_path, store_url, clock) as a:
        yield a


def client(app: App) -> AsgiClient:
    return AsgiClient(make_web_app(app))


def states(app: App) -> dict[str, str]:
    return {c.key: c.state for c in compute_status(app).components}


# --- states -----------------------------------------------------------------------------------


def test_component_states_follow_the_worst_open_incident(app: App, clock: FakeClock) -> None:
    assert states(app) == dict.fromkeys(("api", "auth", "database", "billing"), "operational")
    db = app.declare("Database down", severity="sev1", components=["database"], send=False)
    api = app.declare("API errors", severity="sev2", components=["api"], send=False)
    app.declare("Slow sign-in", severity="sev3", components=["auth"], send=False)
    app.declare("Billing lag", severity="sev4", components=["billing"], send=False)
    assert states(app) == {
        "api": "partial_outage",
        "auth": "degraded_performance",
        "database": "major_outage",
        "billing": "degraded_performance",
    }
    # a sev3 on the database too: the worst (sev1) still wins
    app.declare("DB slow", severity="sev3", components=["database"], new=True, send=False)
    assert states(app)["database"] == "major_outage"
    # monitoring counts at most as degraded
    clock.advance(minutes=5)
    app.update(db.incident, "Fix deployed; watching.", status="monitoring", send=False)
    assert states(app)["database"] == "degraded_performance"
    app.resolve(api.incident, "Fixed.", send=False)
    assert states(app)["api"] == "operational"
    summary = json.loads(client(app).get("/status/summary.json").text)
    assert summary["status"] == {"indicator": "minor", "description": "Minor Service Outage"}


def test_voided_and_private_incidents_and_per_customer_rounds_are_not_shown(
    app: App, clock: FakeClock
) -> None:
    voided = app.declare("False alarm on billing", severity="sev1", components=["billing"],
                         send=False)  # fmt: skip
    app.void(voided.incident, "Monitoring glitch, sorry.", send=False)
    # selected by customer only: it touches no public component
    app.declare("One customer's export stuck", severity="sev2", customers=["cust-zebra-7731"],
                send=False)  # fmt: skip
    shown = app.declare("Database errors", severity="sev2", components=["database"],
                        message="We are investigating database errors.", send=False)  # fmt: skip
    clock.advance(minutes=10)
    app.update(shown.incident, "Cause identified: a full disk.", status="identified", send=False)
    with app.store.write() as conn:  # what the scheduler and the credit engine write
        for seq, kind, text in (
            (90, "holding", "HOLDING-TEXT no news since"),
            (91, "credit", "CREDIT-TEXT 50 EUR credited"),
            (92, "follow_up", "FOLLOWUP-TEXT how did we do"),
        ):
            conn.execute(insert(t.rounds).values(
                incident_id=shown.incident.id, seq=seq, kind=kind, message=text,
                status="identified", created_at=clock(),
            ))  # fmt: skip
    c = client(app)
    html, feed, summary = (
        c.get(p).text for p in ("/status", "/status/feed.atom", "/status/summary.json")
    )
    for body in (html, feed, summary):
        assert "Database errors" in body and "Cause identified: a full disk." in body
        assert "We are investigating database errors." in body
        for absent in ("False alarm", "Monitoring glitch", "export stuck", "HOLDING-TEXT",
                       "CREDIT-TEXT", "FOLLOWUP-TEXT", *SECRETS):  # fmt: skip
            assert absent not in body, absent
    data = compute_status(app)
    assert [i.title for i in data.incidents] == ["Database errors"]
    assert [u.kind for u in data.incidents[0].updates] == ["acknowledgement", "update"]
    assert states(app)["billing"] == "operational"


def test_resolved_incidents_stay_listed_for_seven_days(app: App, clock: FakeClock) -> None:
    inc = app.declare("API errors", severity="sev2", components=["api"], send=False)
    clock.advance(hours=1)
    app.resolve(inc.incident, "Fixed.", send=False)
    assert [i.ref for i in compute_status(app).incidents] == [inc.incident.ref]
    clock.advance(days=7, seconds=-1)
    assert [i.ref for i in compute_status(app).incidents] == [inc.incident.ref]
    clock.advance(seconds=2)
    data = compute_status(app)
    assert data.incidents == () and [i.ref for i in data.history] == [inc.incident.ref]
    # the summary lists unresolved incidents only, as Statuspage's does
    assert json.loads(client(app).get("/api/v2/summary.json").text)["incidents"] == []


# --- uptime -----------------------------------------------------------------------------------


def test_a_72_minute_sev1_is_72_minutes_of_major_outage_that_day(
    app: App, clock: FakeClock
) -> None:
    at(clock, D + timedelta(hours=12))
    inc = app.declare("Database down", severity="sev1", components=["database"],
                      started_at=D + timedelta(hours=10), send=False)  # fmt: skip
    app.resolve(inc.incident, "Fixed.", resolved_at=D + timedelta(hours=11, minutes=12), send=False)
    now = at(clock, D + timedelta(days=2, hours=6))
    data = compute_status(app)
    db = {c.key: c for c in data.components}["database"]
    assert len(db.days) == 90 and db.days[-1].date == now.date()
    day = {d.date: d for d in db.days}[D.date()]
    assert day.state == "major_outage" and day.label == "1 h 12 min major outage"
    assert day.seconds == {"major_outage": 72 * 60}
    assert all(d.label == "No downtime recorded" for d in db.days if d.date != D.date())
    window = (now - data.window_start).total_seconds()
    assert data.window_start == datetime(2026, 8, 25, tzinfo=UTC)  # 89 days before today
    assert db.uptime == round(100 * (1 - 72 * 60 / window), 2)
    assert {c.key: c.uptime for c in data.components}["api"] == 100.0


def test_overlapping_incidents_are_merged_at_the_worse_state(app: App, clock: FakeClock) -> None:
    at(clock, D + timedelta(hours=13))
    h = lambda hours, minutes=0: D + timedelta(hours=hours, minutes=minutes)  # noqa: E731
    a = app.declare("DB down", severity="sev1", components=["database"], started_at=h(10),
                    send=False)  # fmt: skip
    b = app.declare("DB errors", severity="sev2", components=["database"], started_at=h(10, 30),
                    new=True, send=False)  # fmt: skip
    app.resolve(a.incident, "Up.", resolved_at=h(11, 12), send=False)
    app.resolve(b.incident, "Clean.", resolved_at=h(12), send=False)
    # two sev1s on the API, overlapping by half an hour: 1 h 30 min, not 2 h
    c = app.declare("API down", severity="sev1", components=["api"], started_at=h(10), send=False)
    d = app.declare("API down again", severity="sev1", components=["api"], started_at=h(10, 30),
                    new=True, send=False)  # fmt: skip
    app.resolve(c.incident, "Up.", resolved_at=h(11), send=False)
    app.resolve(d.incident, "Up.", resolved_at=h(11, 30), send=False)
    now = at(clock, D + timedelta(days=1))
    data = compute_status(app)
    comps = {c.key: c for c in data.components}
    window = (now - data.window_start).total_seconds()
    db_day = comps["database"].days[-2]
    assert db_day.date == D.date()
    assert db_day.seconds == {"major_outage": 72 * 60, "partial_outage": 48 * 60}
    assert db_day.label == "1 h 12 min major outage, 48 min partial outage"
    assert comps["database"].uptime == round(100 * (1 - (72 * 60 + 0.3 * 48 * 60) / window), 2)
    api_day = comps["api"].days[-2]
    assert (
        api_day.seconds == {"major_outage": 90 * 60} and api_day.label == "1 h 30 min major outage"
    )
    assert comps["api"].uptime == round(100 * (1 - 90 * 60 / window), 2)
    # a degraded day is coloured but costs no uptime
    e = app.declare("Sign-in slow", severity="sev3", components=["auth"], send=False)
    clock.advance(minutes=40)
    app.resolve(e.incident, "Fast again.", send=False)
    auth = {c.key: c for c in compute_status(app).components}["auth"]
    assert auth.days[-1].state == "degraded_performance" and auth.uptime == 100.0
    assert auth.days[-1].label == "40 min degraded performance"


def test_an_open_incident_counts_until_now_and_days_follow_the_page_zone(
    tmp_path: Path, store_url: str, clock: FakeClock
) -> None:
    with status_app(tmp_path, store_url, clock, extra='timezone = "Asia/Tokyo"') as app:
        # 23:00 UTC on the 19th is 08:00 on the 20th in Tokyo
        at(clock, datetime(2026, 11, 19, 23, 0, tzinfo=UTC))
        app.declare("DB down", severity="sev1", components=["database"], send=False)
        clock.advance(minutes=30)
        db = {c.key: c for c in compute_status(app).components}["database"]
        assert str(db.days[-1].date) == "2026-11-20"
        assert db.days[-1].seconds == {"major_outage": 30 * 60}
        assert db.state == "major_outage"


# --- the cache --------------------------------------------------------------------------------


def test_the_cache_never_serves_data_older_than_its_time(
    tmp_path: Path, store_url: str, clock: FakeClock
) -> None:
    with status_app(tmp_path, store_url, clock, extra='cache = "30s"') as app:
        cache = StatusCache(app)
        first = cache.get()
        assert {c.state for c in first.components} == {"operational"}
        app.declare("DB down", severity="sev1", components=["database"], send=False)
        clock.advance(seconds=29)
        assert cache.get() is first  # within 30 s: the same computation
        clock.advance(seconds=1)
        fresh = cache.get()
        assert fresh is not first and fresh.now == clock.now
        assert {c.key: c.state for c in fresh.components}["database"] == "major_outage"


def test_every_view_is_rebuilt_when_the_cache_moves_on(app: App, clock: FakeClock) -> None:
    c = client(app)  # one web app: one cache, each view built once per computation
    views = ("/status", "/status/feed.atom", "/status/summary.json", "/api/v2/status.json")
    before = {p: c.get(p).text for p in views}
    assert "All Systems Operational" in before["/status"]
    app.declare("API down", severity="sev1", components=["api"], send=False)
    clock.advance(seconds=4.9)  # [status_page] cache: 5s by default
    assert c.get("/api/v2/status.json").text == before["/api/v2/status.json"]
    assert c.get("/status/feed.atom").text == before["/status/feed.atom"]
    assert "All Systems Operational" in c.get("/status").text
    clock.advance(seconds=0.1)
    after = {p: c.get(p).text for p in views}
    assert "Major System Outage" in after["/status"] and "API down" in after["/status"]
    assert "API down" in after["/status/feed.atom"]
    assert json.loads(after["/api/v2/status.json"])["status"]["indicator"] == "critical"


# --- config -----------------------------------------------------------------------------------


def test_status_page_url_defaults_to_the_served_page(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    cfg = load_config(write_config(tmp_path, url))
    assert cfg.company.status_page_url == "https://status.s1.example/status"
    assert cfg.status_page.title == "S1 Technology status"
    assert cfg.status_page.history_days == 90 and cfg.status_page.timezone == "UTC"
    assert cfg.status_page.cache == timedelta(seconds=5)
    off = load_config(write_config(tmp_path, url, status_page="enabled = false"))
    assert off.company.status_page_url == ""
    path = write_config(tmp_path, url)
    path.write_text(path.read_text().replace(
        'name = "S1 Technology"', 'name = "S1 Technology"\nstatus_page_url = "https://x.example"'
    ))  # fmt: skip
    assert load_config(path).company.status_page_url == "https://x.example"


def test_notices_link_to_the_served_page(app: App) -> None:
    assert app.renderer.company.status_page_url == "https://status.s1.example/status"


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('logo = "missing.png"', "status_page.logo"),
        ('logo = "logo.gif"', "status_page.logo"),
        ('logo = "fake.png"', "status_page.logo"),
        ('timezone = "Mars/Olympus"', "status_page.timezone"),
        ("history_days = 0", "status_page.history_days"),
        ('cache = "soon"', "status_page.cache"),
        ('components = "api"', "status_page.components"),
        ("", "status_page.enabled"),
        ("colour = 1", "status_page.colour"),
    ],
)
def test_a_wrong_status_page_key_is_a_config_error_naming_it(
    tmp_path: Path, line: str, key: str
) -> None:
    (tmp_path / "logo.gif").write_bytes(b"GIF89a")
    (tmp_path / "fake.png").write_text("not a png")
    page = "enabled = 1" if not line else "enabled = true"
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 's.db'}", status_page=page, extra=line)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == key and "\n" not in str(err.value)


def test_the_logo_is_served_by_us_with_its_type(
    tmp_path: Path, store_url: str, clock: FakeClock
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    (tmp_path / "brand").mkdir()
    (tmp_path / "brand" / "logo.png").write_bytes(png)
    with status_app(tmp_path, store_url, clock, extra='logo = "brand/logo.png"') as app:
        c = client(app)
        res = c.get("/status/logo")
        assert res.status_code == 200 and res.content == png
        assert res.headers["content-type"] == "image/png"
        assert res.headers["x-content-type-options"] == "nosniff"
        assert '<img src="/status/logo" alt="S1 Technology">' in c.get("/status").text
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'
    (tmp_path / "logo.svg").write_bytes(svg)
    with status_app(tmp_path, store_url, clock, extra='logo = "logo.svg"') as app:
        res = client(app).get("/status/logo")
        assert res.headers["content-type"] == "image/svg+xml"
        assert "sandbox" in res.headers["content-security-policy"]


def test_without_a_logo_there_is_no_logo_route(app: App) -> None:
    c = client(app)
    assert c.get("/status/logo").status_code == 404
    assert "<img" not in c.get("/status").text


def test_public_components_default_and_configured(
    tmp_path: Path, store_url: str, clock: FakeClock
) -> None:
    with status_app(tmp_path, store_url, clock) as app:  # the [components] table's keys
        assert [c.key for c in compute_status(app).components] == [
            "api", "auth", "database", "billing"
        ]  # fmt: skip
        assert compute_status(app).components[0].name == "Public API"
    with status_app(tmp_path, store_url, clock, extra='components = ["database", "api"]') as app:
        app.declare("Sign-in down", severity="sev1", components=["auth"], send=False)
        data = compute_status(app)
        assert [c.key for c in data.components] == ["database", "api"]
        assert data.incidents == ()  # auth is not public


def test_without_display_names_every_directory_component_is_public(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 's.db'}")
    text = path.read_text()
    start = text.index("[components]")
    path.write_text(text[:start] + text[text.index("[status_page]") :])
    with App.open(path, clock=clock) as app:
        app.import_customers(tmp_path / "customers.csv")
        assert [c.key for c in compute_status(app).components] == [
            "api", "auth", "billing", "database"
        ]  # fmt: skip


def test_disabled_every_route_is_404(tmp_path: Path, store_url: str, clock: FakeClock) -> None:
    with status_app(tmp_path, store_url, clock, status_page="enabled = false") as app:
        c = client(app)
        for p in ("/status", "/status/feed.atom", "/status/summary.json",
                  "/api/v2/summary.json", "/api/v2/status.json", "/status/logo"):  # fmt: skip
            assert c.get(p).status_code == 404, p


# --- the HTML page ----------------------------------------------------------------------------


def relative_luminance(hex_colour: str) -> float:
    """WCAG 2.1's relative luminance of an sRGB colour (``#rgb`` or ``#rrggbb``)."""
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(ch * 2 for ch in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_contrast_function_matches_wcag_reference_values() -> None:
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the famous miss
    assert contrast("#fff", "#fff") == 1.0


def css_rules(html: str) -> dict[str, dict[str, str]]:
    style = re.search(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert style
    rules: dict[str, dict[str, str]] = {}
    for selector, body in re.findall(r"([^{}@]+)\{([^{}]*)\}", style.group(1)):
        props = dict(
            (k.strip(), v.strip()) for k, _, v in (d.partition(":") for d in body.split(";")) if v
        )
        rules[selector.strip()] = props
    return rules


def test_text_colours_meet_wcag_aa(app: App) -> None:
    app.declare("DB down", severity="sev1", components=["database"], send=False)
    html = client(app).get("/status").text
    rules = css_rules(html)
    page_bg, card_bg, text = (
        rules["body"]["background"],
        rules[".card"]["background"],
        rules["body"]["color"],
    )
    pairs = [(text, page_bg), (text, card_bg), (rules[".muted"]["color"], page_bg),
             (rules[".muted"]["color"], card_bg), (rules["a"]["color"], page_bg),
             (rules["a"]["color"], card_bg)]  # fmt: skip
    states = {k: v for k, v in rules.items() if k.startswith(".s-")}
    assert set(states) == {".s-operational", ".s-degraded_performance", ".s-partial_outage",
                           ".s-major_outage", ".s-under_maintenance"}  # fmt: skip
    pairs += [(v["color"], v["background"]) for v in states.values()]
    tip = rules["ol.bar li:hover .vh"]  # a day's text, shown on hover
    pairs.append((tip["color"], tip["background"]))
    for fg, bg in pairs:
        assert contrast(fg, bg) >= 4.5, (fg, bg, contrast(fg, bg))
    # the bars are graphics: WCAG 1.4.11 asks 3:1 against what is around them
    for v in states.values():
        assert contrast(v["background"], card_bg) >= 3.0


def test_the_page_headers_and_its_nonce(app: App) -> None:
    c = client(app)
    first, second = c.get("/status"), c.get("/status")
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    csp = first.headers["content-security-policy"]
    nonce = re.fullmatch(
        r"default-src 'none'; style-src 'nonce-([A-Za-z0-9_-]{16,})'; img-src 'self'; "
        r"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp,
    )
    assert nonce, csp
    assert f'<style nonce="{nonce.group(1)}">' in first.text
    other = re.search(r"'nonce-([^']+)'", second.headers["content-security-policy"])
    assert other and other.group(1) != nonce.group(1)  # one nonce per response...
    assert second.text == first.text.replace(nonce.group(1), other.group(1))  # ...and only that
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert first.headers["cache-control"] == "public, max-age=5"
    html = first.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<meta http-equiv="refresh" content="60">' in html
    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert 'href="/status/feed.atom"' in html
    assert "<script" not in html and " style=" not in html  # the CSP would block both
    assert re.search(r"(src|href)=\"https?://", html) is None  # nothing loaded from elsewhere


def test_landmarks_are_labelled_and_every_day_has_text(app: App, clock: FakeClock) -> None:
    at(clock, D + timedelta(hours=12))
    inc = app.declare("Database down", severity="sev1", components=["database"],
                      started_at=D + timedelta(hours=10), send=False)  # fmt: skip
    app.resolve(inc.incident, "Fixed.", resolved_at=D + timedelta(hours=11, minutes=12), send=False)
    at(clock, D + timedelta(days=1, hours=1))
    html = client(app).get("/status").text
    for landmark in ("header", "main", "footer"):
        assert re.search(rf"<{landmark}\b[^>]*aria-label", html), landmark
    for section in re.findall(r"<section\b[^>]*>", html):
        assert "aria-labelledby" in section
    bars = re.findall(r'<ol class="bar" aria-label="([^"]+)">(.*?)</ol>', html, re.S)
    assert bars[0][0] == "Public API: the last 90 days"
    for _, days in bars:
        items = re.findall(r'<li class="s-[a-z_]+"><span class="vh">([^<]+)</span></li>', days)
        assert len(items) == 90
    db_days = dict(bars)["Managed Database: the last 90 days"]
    assert (
        '<li class="s-major_outage"><span class="vh">20 Nov 2026: 1 h 12 min major outage<'
        in db_days
    )
    assert "21 Nov 2026: No downtime recorded" in db_days
    db = {c.key: c for c in compute_status(app).components}["database"]
    window = (clock.now - datetime(2026, 8, 24, tzinfo=UTC)).total_seconds()
    assert db.uptime == round(100 * (1 - 72 * 60 / window), 2)
    assert f"<span>{db.uptime:.2f}% uptime</span>" in html


def test_a_users_template_overrides_the_page(
    tmp_path: Path, store_url: str, clock: FakeClock
) -> None:
    (tmp_path / "tpl" / "pages").mkdir(parents=True)
    (tmp_path / "tpl" / "pages" / "status.html.j2").write_text(
        '<!DOCTYPE html><title>{{ title }}</title><style nonce="{{ nonce }}"></style>'
        "{% for c in components %}<p>{{ c.name }}={{ c.state }} {{ c.uptime }}</p>{% endfor %}"
        "<p>{{ '<b>' }}</p>\n"
    )
    extra = f'\n[templates]\ndir = "{tmp_path / "tpl"}"\n'
    with status_app(tmp_path, store_url, clock, extra=extra) as app:
        app.declare("DB down", severity="sev2", components=["database"], send=False)
        html = client(app).get("/status").text
        assert "<p>Managed Database=partial_outage 100.00</p>" in html
        assert "<p>&lt;b&gt;</p>" in html  # autoescaped, as every .html.j2


def test_a_broken_override_is_a_503_not_a_crash(
    tmp_path: Path, store_url: str, clock: FakeClock
) -> None:
    (tmp_path / "tpl" / "pages").mkdir(parents=True)
    (tmp_path / "tpl" / "pages" / "status.html.j2").write_text("{{ nope.attr }}")
    with status_app(tmp_path, store_url, clock,
                    extra=f'\n[templates]\ndir = "{tmp_path / "tpl"}"\n') as app:  # fmt: skip
        res = client(app).get("/status")
        assert res.status_code == 503 and res.headers["cache-control"] == "no-store"
        assert client(app).get("/status/summary.json").status_code == 200


def test_a_reopened_incidents_gap_is_not_downtime_and_a_voided_one_has_none(
    app: App, clock: FakeClock
) -> None:
    h = lambda hours, minutes=0: D + timedelta(hours=hours, minutes=minutes)  # noqa: E731
    at(clock, h(12))
    inc = app.declare("DB down", severity="sev1", components=["database"], started_at=h(10),
                      send=False)  # fmt: skip
    app.resolve(inc.incident, "Up.", resolved_at=h(10, 30), send=False)
    app.reopen(inc.incident, "It is down again.", back_at=h(11), send=False)
    app.resolve(inc.incident, "Up for good.", resolved_at=h(11, 20), send=False)
    voided = app.declare("Billing down?", severity="sev1", components=["billing"],
                         started_at=h(9), send=False)  # fmt: skip
    app.void(voided.incident, "A probe's mistake.", send=False)
    at(clock, h(13))
    data = compute_status(app)
    comps = {c.key: c for c in data.components}
    assert comps["database"].days[-1].seconds == {"major_outage": 50 * 60}
    assert comps["database"].days[-1].label == "50 min major outage"
    assert comps["billing"].days[-1].label == "No downtime recorded"
    assert comps["billing"].uptime == 100.0
    [shown] = data.incidents
    assert [u.kind for u in shown.updates] == [
        "acknowledgement", "resolution", "reopened", "resolution"
    ]  # fmt: skip
    assert shown.updates[2].message == "It is down again."


def test_an_unreadable_store_is_a_503_never_a_stale_or_half_page(
    tmp_path: Path, clock: FakeClock
) -> None:
    with status_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", clock) as app:
        c = client(app)
        assert c.get("/status").status_code == 200
        with app.store.write() as conn:  # the store loses its incidents table
            conn.execute(t.rounds.delete())
            conn.exec_driver_sql("DROP TABLE incidents")
        clock.advance(seconds=5)  # the cache has moved on
        for path in ("/status", "/status/feed.atom", "/api/v2/summary.json"):
            res = c.get(path)
            assert res.status_code == 503, path
            assert res.headers["cache-control"] == "no-store" and res.headers["retry-after"] == "30"


def test_sixty_public_components_fit_within_the_pages_limits(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A page is bounded like every template, with room for a real catalogue of services
    (``Renderer.render_page``: the notices' limits scaled by ``PAGE_SCALE``)."""
    keys = [f"svc{n:02d}" for n in range(60)]
    listed = ", ".join(f'"{k}"' for k in keys)
    path = write_config(
        tmp_path, f"sqlite:///{tmp_path / 's.db'}", extra=f"components = [{listed}]"
    )
    (tmp_path / "many.csv").write_text(
        "id,name,email,tier,monthly_fee,currency,components,regions\n"
        f"c1,Some Customer,ops@c1.example,standard,10,USD,{';'.join(keys[:30])},eu-west\n"
        f"c2,Another One,ops@c2.example,standard,10,USD,{';'.join(keys[30:])},eu-west\n"
    )
    with App.open(path, clock=clock) as app:
        app.import_customers(tmp_path / "many.csv")
        app.declare("svc07 down", severity="sev1", components=["svc07"], send=False)
        page = client(app).get("/status")
        assert page.status_code == 200, page.text[:300]
        assert all(k in page.text for k in keys)
        assert app.config.template_limits.max_body < len(page.text)  # larger than a message
