"""The customer's incident page as people use it: Debian's Chromium, headless, driven by
Playwright (issue 13, "Tested as people use it").

Every test opens the link a customer was really sent (the text part of the email the aiosmtpd
server recorded) on the page the daemon's own HTTP server serves. What the tests read is what
a person sees: auto-waiting locators and ``expect``, never a sleep; time in the browser is
Playwright's clock where a test needs it to pass (the countdown), the server's is the test's
``FakeClock``.

Chromium: ``/usr/bin/chromium`` (Debian: ``apt-get install -y --no-install-recommends
chromium``; ``.ci/run`` does). Nothing here downloads a browser (never ``playwright install``).
Without it these tests are skipped, except under CI (``CI`` or ``OUTAGECOMMS_CI`` set), where
they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import feedparser
import pytest

from outagecomms import App
from outagecomms.store import incidents as incidents_db
from tests.fakes.asgi import free_port
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.atom import assert_valid_atom
from tests.support.data import sample_csv, sample_rows
from tests.support.processes import CliResult
from tests.support.web import serve_web

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
_CI = bool(os.environ.get("CI") or os.environ.get("OUTAGECOMMS_CI"))

pytestmark = pytest.mark.skipif(
    (CHROMIUM is None or sync_playwright is None) and not _CI,
    reason="needs Debian's Chromium (apt-get install -y --no-install-recommends chromium) "
    "and Playwright for Python (the test extra)",
)

SECRET = "page-secret-for-tests-0123456789abcdef"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LINK = re.compile(r"https?://[^\s<>\"]+/i/[A-Za-z0-9_-]+")
T = TypeVar("T")
WAIT = 15_000  # ms: what an action or expectation may wait on a machine shared by several runs
if sync_playwright is not None:
    expect.set_options(timeout=WAIT)


# --- the browser: one per module, a fresh context per test --------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None or sync_playwright is None:
        pytest.fail("CI: Chromium or Playwright is missing (.ci/run installs chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """``contexts(**options)``: a fresh browser context (cookies, storage, clock of its own),
    closed after the test."""
    made: list[BrowserContext] = []

    def new(**options: Any) -> BrowserContext:
        ctx = browser.new_context(**options)
        ctx.set_default_timeout(WAIT)
        made.append(ctx)
        return ctx

    yield new
    for ctx in made:
        ctx.close()


@pytest.fixture
def tab(contexts: Callable[..., BrowserContext]) -> Page:
    """A page in a fresh desktop context."""
    return contexts(viewport={"width": 1280, "height": 900}).new_page()


# --- a world: a directory, an incident sent over real SMTP, the page served over HTTP ----------


@dataclass
class World:
    app: App
    clock: FakeClock
    smtp: SmtpServer
    config: Path
    base: str
    incident_id: int

    @property
    def ref(self) -> str:
        return f"INC-{self.incident_id}"

    def audience(self) -> list[str]:
        with self.app.store.read() as conn:
            return sorted(incidents_db.audience_customer_ids(conn, self.incident_id))

    def link(self, customer: str) -> str:
        """The page link in the newest email the customer was sent (its text part)."""
        mine = [m for m in self.smtp.handler.snapshot() if m.customer == customer]
        text = mine[-1].text()
        found = LINK.search(text)
        assert found, text
        return found.group(0)


@pytest.fixture
def world(
    smtp_server: SmtpServer,
    make_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    port = free_port()
    cfg = make_config(
        smtp_server,
        extra=f'public_url = "http://127.0.0.1:{port}"\n'
        '\n[components]\ndatabase = "Managed Database"\napi = "Public API"\n'
        '\n[regions]\n"eu-west" = "EU West (Dublin)"\n'
        '\n[incident_page]\nrefresh = "1s"\n'
        '\n[status_page]\nenabled = true\ncache = "0s"\n',
    )
    clock = FakeClock(T0)
    app = App.open(cfg, clock=clock)
    off_loop(app.import_customers, sample_csv())
    declared = off_loop(
        app.declare,
        "Database errors",
        severity="sev2",
        components=["database"],
        message="Writes fail for some customers; we are failing over.",
        started_at=T0 - timedelta(minutes=20),
    )
    incident_id = int(str(declared.incident.ref).split("-")[1])
    with serve_web(app, port=port):
        yield World(app, clock, smtp_server, cfg, f"http://127.0.0.1:{port}", incident_id)
    app.close()


def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a thread of its own: Playwright's sync API keeps an event
    loop running in this one, so the library's ``asyncio.run`` (a send) cannot run here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def names() -> dict[str, str]:
    return {r["id"]: r["name"] for r in sample_rows()}


def countdown_now(page: Page) -> str:
    """What the countdown should read at the page's current time, computed in the page with
    the browser's own Intl.RelativeTimeFormat (so no English, or rounding, is assumed here)."""
    return str(
        page.evaluate(
            """() => {
              const el = document.getElementById("countdown");
              const rel = new Intl.RelativeTimeFormat(document.documentElement.lang, {numeric: "auto"});
              const left = Math.round((Date.parse(el.dataset.deadline) - Date.now()) / 1000);
              if (left <= 0) { return rel.format(0, "second"); }
              return left < 120 ? rel.format(left, "second") : rel.format(Math.ceil(left / 60), "minute");
            }"""
        )
    )


# --- a) the link from the email: title, components, countdown, timeline ------------------------


def test_the_link_from_the_email_shows_the_incident_and_a_countdown_that_moves(
    world: World, contexts: Callable[..., BrowserContext]
) -> None:
    who = world.audience()[0]
    url = world.link(who)
    assert url.startswith(world.base + "/i/")
    ctx = contexts()
    ctx.clock.install(time=world.clock.now)  # the browser's now is the server's
    page = ctx.new_page()
    response = page.goto(url)
    assert response is not None and response.status == 200
    expect(page).to_have_title(re.compile(r"Database errors"))
    live = page.locator("#live")
    expect(live.get_by_role("heading", level=1)).to_have_text("Database errors")
    expect(live).to_contain_text("Managed Database")  # the display name, not "database"
    expect(page.locator("footer")).to_contain_text(names()[who])
    # the timeline: the acknowledgement, its words, on email
    entries = page.locator("ol.timeline").first.locator(":scope > li")
    expect(entries).to_have_count(1)
    expect(entries.first.locator("blockquote")).to_have_text(
        "Writes fail for some customers; we are failing over."
    )
    expect(entries.first.locator("ul.channels")).to_contain_text("email")
    # the countdown: the script's text at load, then again once browser time has moved on
    countdown = page.locator("#countdown")
    page.clock.pause_at(world.clock.now + timedelta(minutes=5))
    first = countdown.inner_text()
    assert first == countdown_now(page)
    page.clock.run_for("24:00")  # now inside the last two minutes: seconds
    page.wait_for_function(
        "first => document.getElementById('countdown').textContent !== first", arg=first
    )
    later = countdown.inner_text()
    assert later == countdown_now(page)
    assert later != first


# --- b) the page updates by itself ------------------------------------------------------------


def test_the_page_shows_a_commander_update_without_a_reload(world: World, tab: Page) -> None:
    url = world.link(world.audience()[0])
    tab.goto(url)
    expect(tab.locator("#countdown")).to_be_visible()
    tab.evaluate("window.__notReloaded = true")
    assert tab.locator("body").get_attribute("data-updates") is None
    world.clock.advance(timedelta(minutes=10))
    off_loop(world.app.update, world.ref, "Failover done; replaying writes.", status="identified")
    live = tab.locator("#live")
    expect(live).to_contain_text("Failover done; replaying writes.")
    expect(live.locator("ol.timeline").first.locator(":scope > li")).to_have_count(2)
    assert tab.evaluate("window.__notReloaded") is True  # swapped in, not reloaded
    assert int(tab.locator("body").get_attribute("data-updates") or 0) >= 1


# --- c) the box: typed, sent, thanked, and in `replies INC --json` -------------------------


def test_what_is_typed_in_the_box_arrives_as_a_scored_web_reply(
    world: World, tab: Page, cli: Callable[..., CliResult]
) -> None:
    who = world.audience()[0]
    tab.goto(world.link(who))
    words = "Our checkout is down because of this; we are losing orders every minute!"
    tab.get_by_label("Your message").fill(words)
    tab.get_by_role("button", name="Send").click()
    expect(tab.locator("#told [role=status]")).to_be_visible()
    expect(tab.locator("#told")).to_contain_text(words)  # what they told us, on the page
    assert "sent=1" in tab.url
    res = off_loop(cli, "--config", str(world.config), "replies", world.ref, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    mine = [r for r in doc["replies"] if r["customer_id"] == who]
    assert len(mine) == 1
    assert mine[0]["channel"] == "web"
    assert mine[0]["text"] == words
    assert mine[0]["label"] is not None and mine[0]["sentiment"] is not None  # scored


# --- d) a tampered link; no CSP violations on the good page --------------------------------


def test_a_tampered_link_gets_a_clear_403_page_with_nothing_of_the_incident(
    world: World, tab: Page
) -> None:
    who = world.audience()[0]
    url = world.link(who)
    token = url.rsplit("/", 1)[1]
    i = len(token) - 3  # inside the signature: always "tampered", never "malformed"
    changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
    response = tab.goto(url.replace(token, changed))
    assert response is not None and response.status == 403
    expect(tab.get_by_role("heading", level=1)).to_contain_text("not valid")
    text = tab.locator("body").inner_text()
    assert "Database errors" not in text and "Managed Database" not in text
    assert not any(n in text for n in names().values())
    assert world.ref not in text


def test_the_good_page_runs_with_no_content_security_policy_violation(
    world: World, tab: Page
) -> None:
    said: list[str] = []
    tab.on("console", lambda m: said.append(f"{m.type}: {m.text}"))
    tab.on("pageerror", lambda e: said.append(f"pageerror: {e}"))
    tab.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__violations.push(e.violatedDirective));"
    )
    # the inline script ran: it opened the event stream and computed the countdown
    with tab.expect_request(lambda r: r.url.endswith("/events")):
        tab.goto(world.link(world.audience()[0]))
    assert tab.locator("#countdown").inner_text() == countdown_now(tab)
    # its style applied: the card has the stylesheet's rounded corners, not the UA default
    assert (
        tab.locator("section.card").first.evaluate("e => getComputedStyle(e).borderRadius")
        == "10px"
    )
    assert tab.evaluate("window.__violations") == []
    assert not [s for s in said if "Content Security Policy" in s], said
    # the watchers do see a violation: an image from elsewhere is refused by img-src 'self'
    tab.evaluate(
        "() => { const i = document.createElement('img');"
        " i.src = 'http://192.0.2.1/x.png'; document.body.append(i); }"
    )
    tab.wait_for_function("() => window.__violations.length > 0")
    assert "img-src" in tab.evaluate("window.__violations")[0]


# --- e) phone width ---------------------------------------------------------------------------


def test_at_phone_width_nothing_scrolls_sideways_and_the_box_works(
    world: World, contexts: Callable[..., BrowserContext]
) -> None:
    ctx = contexts(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = ctx.new_page()
    phone.goto(world.link(world.audience()[0]))
    expect(phone.locator("#countdown")).to_be_visible()
    phone.locator("details summary").first.click()  # the sent message, with its long link
    expect(phone.locator("pre.sent").first).to_be_visible()
    width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    box = phone.get_by_label("Your message")
    area = box.bounding_box()
    assert area is not None and area["x"] >= 0 and area["x"] + area["width"] <= 390
    box.tap()
    box.fill("Phones here cannot sync.")
    phone.get_by_role("button", name="Send").tap()
    expect(phone.locator("#told [role=status]")).to_be_visible()
    expect(phone.locator("#told")).to_contain_text("Phones here cannot sync.")


# --- f) without JavaScript --------------------------------------------------------------------


def test_without_javascript_the_page_still_says_everything_and_the_form_posts(
    world: World, contexts: Callable[..., BrowserContext]
) -> None:
    page = contexts(java_script_enabled=False).new_page()
    response = page.goto(world.link(world.audience()[0]))
    assert response is not None and response.status == 200
    live = page.locator("#live")
    expect(live.locator(".badge")).to_be_visible()  # the status
    expect(live.locator("p.next time")).to_be_visible()  # the promise, in words
    expect(page.locator("#countdown")).to_have_text(re.compile(r"\S"))  # the server's wording
    expect(live.locator("ol.timeline").first.locator(":scope > li")).to_have_count(1)
    page.get_by_label("Your message").fill("Written without any script.")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"sent=1"))
    expect(page.locator("#told [role=status]")).to_be_visible()
    replies = off_loop(world.app.replies, world.ref)
    assert [r["text"] for r in replies if r["channel"] == "web"] == ["Written without any script."]


# --- g) accessibility: labels and contrast ----------------------------------------------------

CONTRAST = """() => {
  function rgba(s) {
    const m = s.match(/rgba?\\(([^)]+)\\)/);
    if (!m) { return [0, 0, 0, 0]; }
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  function over(top, bottom) {  // top composited over an opaque bottom
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  }
  function background(el) {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) { break; } }
    }
    let bg = [255, 255, 255, 1];  // the canvas
    for (let i = layers.length - 1; i >= 0; i--) { bg = over(layers[i], bg); }
    return bg;
  }
  function lum(c) {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) { continue; }
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    if (r.width <= 1 || r.height <= 1 || st.visibility === "hidden" || !el.checkVisibility()) { continue; }
    const bg = background(el);
    const fg = over(rgba(st.color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    out.push({kind: el.tagName.toLowerCase() + (el.className ? "." + el.className : ""),
              text: el.textContent.trim().slice(0, 40),
              ratio: (a + 0.05) / (b + 0.05), needed: large ? 3 : 4.5});
  }
  return out;
}"""


def assert_contrast(page: Page, *, at_least: int) -> set[str]:
    """Every visible text element meets WCAG 2.1 AA against its effective background; the
    kinds of element checked (so a test can say which it covered)."""
    found = page.evaluate(CONTRAST)
    assert len(found) >= at_least, found
    assert all(1 <= f["ratio"] <= 21 for f in found), found  # a ratio, not NaN
    poor = [f for f in found if f["ratio"] < f["needed"]]
    assert not poor, poor
    return {f["kind"] for f in found}


def test_every_control_is_labelled_and_every_text_has_aa_contrast(world: World, tab: Page) -> None:
    who = world.audience()[0]
    tab.goto(world.link(who))
    controls = tab.locator("textarea, select, input:not([type=hidden]), button")
    assert controls.count() >= 2
    unlabelled = tab.evaluate(
        """() => [...document.querySelectorAll("textarea, select, input:not([type=hidden]), button")]
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                          && !e.getAttribute("aria-labelledby") && !e.textContent.trim())
             .map(e => e.outerHTML)"""
    )
    assert unlabelled == []
    expect(tab.get_by_role("textbox", name="Your message")).to_be_editable()  # via the tree
    expect(tab.get_by_role("button", name="Send")).to_be_enabled()
    kinds = assert_contrast(tab, at_least=15)
    assert {"h1", "button", "span.badge s-investigating", "p.muted"} <= kinds, kinds
    tab.locator("details summary").first.click()  # the message as sent
    assert "pre.sent" in assert_contrast(tab, at_least=15)
    # the thank-you, then a refused form (its error), then the resolved page with its survey
    tab.get_by_label("Your message").fill("It hurts.")
    tab.get_by_role("button", name="Send").click()
    expect(tab.locator("p.ok")).to_be_visible()
    assert "p.ok" in assert_contrast(tab, at_least=15)
    tab.get_by_label("Your message").fill(" ")
    tab.get_by_role("button", name="Send").click()
    expect(tab.locator("p.err")).to_be_visible()
    assert "p.err" in assert_contrast(tab, at_least=15)
    world.clock.advance(timedelta(minutes=30))
    off_loop(world.app.resolve, world.ref, "Fixed: writes succeed again.")
    tab.goto(world.link(who))
    expect(tab.locator("#survey")).to_be_visible()
    kinds = assert_contrast(tab, at_least=15)
    assert {"span.badge s-resolved", "a"} <= kinds, kinds
    # the refusal page too
    tab.goto(world.base + "/i/" + "A" * 40)
    assert_contrast(tab, at_least=2)


# --- h) the public status page ----------------------------------------------------------------


def test_the_status_page_shows_states_the_public_update_and_uptime_and_no_customer(
    world: World, tab: Page, contexts: Callable[..., BrowserContext]
) -> None:
    world.clock.advance(timedelta(minutes=10))
    off_loop(world.app.update, world.ref, "Failover done; replaying writes.", status="identified")
    response = tab.goto(world.base + "/status")
    assert response is not None and response.status == 200
    expect(tab.locator("#overall")).to_have_class(re.compile(r"\bs-partial_outage\b"))

    def component(name: str) -> Any:
        return tab.locator(".card").filter(has=tab.get_by_role("heading", name=name, exact=True))

    db, api = component("Managed Database"), component("Public API")
    expect(db.locator(".badge")).to_have_class(re.compile(r"\bs-partial_outage\b"))  # sev2
    expect(api.locator(".badge")).to_have_class(re.compile(r"\bs-operational\b"))
    # the uptime bars: a mark a day; today's is the incident's, the API's all operational
    days = db.locator("ol.bar > li")
    expect(days).to_have_count(90)
    expect(days.last).to_have_class(re.compile(r"\bs-partial_outage\b"))
    expect(api.locator("ol.bar > li.s-operational")).to_have_count(90)
    # the open incident with its public updates, newest first
    incident = tab.locator(f"article#{world.ref}")
    expect(incident.get_by_role("heading", level=3)).to_contain_text("Database errors")
    updates = incident.locator(".update")
    expect(updates).to_have_count(2)
    expect(updates.first).to_contain_text("Failover done; replaying writes.")
    expect(updates.last).to_contain_text("Writes fail for some customers; we are failing over.")
    # nothing of any customer, in what is shown or in the markup
    html = tab.content()
    for row in sample_rows():
        for value in (row["name"], row["email"], row["id"]):
            assert value not in html, value
    assert_contrast(tab, at_least=10)
    # the feed, fetched with the browser context's cookies and headers, is Atom
    feed = tab.context.request.get(world.base + "/status/feed.atom")
    assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml")
    assert_valid_atom(feed.body())
    parsed = feedparser.parse(feed.body())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.entries[0].title.startswith(world.ref)
    assert "Failover done; replaying writes." in parsed.entries[0].summary
    # at phone width nothing scrolls sideways
    phone = contexts(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    phone.goto(world.base + "/status")
    expect(phone.locator("#overall")).to_be_visible()
    width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
