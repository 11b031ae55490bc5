"""Each customer's own incident page, ``GET /i/<token>`` (issue 13): the signed link every message
carries, what the page shows for exactly that customer, its box feeding the replies pipeline,
its live updates, and the refusals (tampered, expired, revoked) with nothing else shown."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from outagecomms import App
from outagecomms.errors import ConfigError, NotFound
from outagecomms.pages.incident import customer_link, revoke_links
from outagecomms.pages.tokens import (
    PageTokenError,
    check_form_token,
    make_form_token,
    make_page_token,
    read_page_token,
)
from outagecomms.rendering.templates import customer_time
from outagecomms.store import incidents as incidents_db
from tests.fakes.asgi import free_port
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import Received, SmtpServer
from tests.support.data import sample_csv, sample_rows
from tests.support.web import serve_web

SECRET = "page-secret-for-tests-0123456789abcdef"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LINK = re.compile(r"https?://[^\s<>\"]+/i/([A-Za-z0-9_-]+)")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --- tokens -----------------------------------------------------------------------------------


def test_page_token_round_trip_is_short_and_url_safe() -> None:
    key = SECRET.encode()
    token = make_page_token(key, 42, "c0000007", issued_at=T0, expires_at=T0 + timedelta(days=30))
    tok = read_page_token(key, token, T0 + timedelta(days=29))
    assert (tok.incident_id, tok.customer_id, tok.issued_at) == (42, "c0000007", T0)
    assert set(token) <= set(ALPHABET)
    assert len(token) <= 48  # an SMS carries it within its two segments
    with pytest.raises(PageTokenError) as err:
        read_page_token(key, token, T0 + timedelta(days=30))
    assert err.value.reason == "expired"
    with pytest.raises(PageTokenError) as err:
        read_page_token(b"another-secret", token, T0)
    assert err.value.reason == "tampered"


def test_every_single_character_change_of_a_page_token_is_refused() -> None:
    key = SECRET.encode()
    token = make_page_token(key, 42, "c0000007", issued_at=T0, expires_at=T0 + timedelta(days=1))
    for i, ch in enumerate(token):
        changed = token[:i] + ALPHABET[(ALPHABET.index(ch) + 1) % 64] + token[i + 1 :]
        with pytest.raises(PageTokenError) as err:
            read_page_token(key, changed, T0)
        assert err.value.reason in ("tampered", "malformed"), i
    for bad in ("", "abc", "x" * 2000, "a/b", "é" * 30, token[:-8]):
        with pytest.raises(PageTokenError) as err:
            read_page_token(key, bad, T0)
        assert err.value.reason in ("tampered", "malformed")


def test_the_form_token_is_bound_to_its_page_and_its_age() -> None:
    key = SECRET.encode()
    form = make_form_token(key, "page-a", T0)
    assert check_form_token(key, "page-a", form, T0 + timedelta(minutes=5), 3600)
    assert not check_form_token(key, "page-b", form, T0, 3600)  # another customer's page
    assert not check_form_token(key, "page-a", form, T0 + timedelta(hours=2), 3600)
    assert not check_form_token(b"other", "page-a", form, T0, 3600)
    assert not check_form_token(key, "page-a", "", T0, 3600)
    assert not check_form_token(key, "page-a", form[:-2] + "AA", T0, 3600)


# --- a world: a directory, an incident sent over real SMTP, the page served over HTTP ---------


@dataclass
class World:
    app: App
    clock: FakeClock
    smtp: SmtpServer
    base: str
    client: httpx.Client
    incident_id: int

    def emails(self, customer: str) -> list[Received]:
        return [m for m in self.smtp.handler.snapshot() if m.customer == customer]

    def link(self, customer: str) -> str:
        """The page link from the newest email the customer was sent (its text part)."""
        text = self.emails(customer)[-1].text()
        found = LINK.search(text)
        assert found, text
        return urlsplit(found.group(0)).path


@contextmanager
def make_world(
    smtp_server: SmtpServer,
    make_config: Callable[..., Path],
    extra: str = "",
    message: str = "Writes fail for some customers; we are failing over.",
    **config: Any,
) -> Iterator[World]:
    port = free_port()
    cfg = make_config(
        smtp_server,
        **config,
        extra=f'public_url = "http://127.0.0.1:{port}"\n'
        '\n[components]\ndatabase = "Managed Database"\n'
        '\n[regions]\n"eu-west" = "EU West (Dublin)"\n'
        '\n[incident_page]\nrefresh = "1s"\n' + extra,
    )
    clock = FakeClock(T0)
    app = App.open(cfg, clock=clock)
    app.import_customers(sample_csv())
    declared = app.declare(
        "Database errors",
        severity="sev2",
        components=["database"],
        message=message,
        started_at=T0 - timedelta(minutes=20),
        commander="ic@example.com",
    )
    incident_id = int(str(declared.incident.ref).split("-")[1])
    try:
        with serve_web(app, port=port) as client:
            yield World(app, clock, smtp_server, f"http://127.0.0.1:{port}", client, incident_id)
    finally:
        app.close()


@pytest.fixture
def world(
    smtp_server: SmtpServer,
    make_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    with make_world(smtp_server, make_config) as w:
        yield w


def audience(world: World) -> list[str]:
    with world.app.store.read() as conn:
        return sorted(incidents_db.audience_customer_ids(conn, world.incident_id))


def test_every_email_carries_the_customers_own_link_and_the_page_shows_their_incident(
    world: World,
) -> None:
    who = audience(world)
    assert len(who) >= 3
    rows = {r["id"]: r for r in sample_rows()}
    paths = {c: world.link(c) for c in who}
    assert len(set(paths.values())) == len(who)  # one link per customer
    first = who[0]
    page = world.client.get(paths[first])
    assert page.status_code == 200, page.text
    body = page.text
    assert "Database errors" in body
    assert "Managed Database" in body  # display names, not directory keys
    assert "Writes fail for some customers" in body  # the commander's words
    assert rows[first]["name"] in body
    for other in who[1:]:  # nothing of anyone else
        assert rows[other]["name"] not in body
        assert rows[other]["email"] not in body
    # the promise, in the customer's zone and locale, as their email stated it
    with world.app.store.read() as conn:
        inc = incidents_db.get_incident(conn, world.incident_id).incident
    assert inc.next_update_due is not None
    shown = customer_time(
        inc.next_update_due,
        inc.update_every,
        rows[first]["timezone"],
        rows[first]["locale"],
        with_date=True,
    )
    assert shown in body
    assert f'data-deadline="{inc.next_update_due.isoformat()}"' in body
    # the timeline: the acknowledgement, on email, with the text they were sent
    assert "We told you about the problem" in body
    assert "email: sent" in body
    sent_text = world.emails(first)[-1].text()
    first_line = sent_text.strip().splitlines()[0]
    assert first_line.replace("<", "&lt;") in body
    # headers
    h = page.headers
    assert h["cache-control"] == "private, no-store"
    assert h["referrer-policy"] == "no-referrer"
    csp = h["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in body
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert f'lang="{rows[first]["locale"].replace("_", "-")}"' in body


def test_tampered_expired_and_revoked_links_get_a_clear_page_and_nothing_else(
    world: World,
) -> None:
    who = audience(world)
    path = world.link(who[0])
    token = path.rsplit("/", 1)[1]
    changed = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    names = [r["name"] for r in sample_rows()]

    def refused(p: str, status: int, words: str) -> None:
        r = world.client.get(p)
        assert r.status_code == status, (p, r.status_code)
        assert words in r.text
        assert "Database errors" not in r.text
        assert not any(n in r.text for n in names)
        assert r.headers["cache-control"] == "private, no-store"
        post = world.client.post(p, data={"text": "hello", "form_token": "x", "form_id": "y"})
        assert post.status_code == status

    refused(f"/i/{changed}", 403, "not valid")
    refused(f"/i/{token[:20]}", 403, "not valid")
    refused("/i/" + "A" * 60, 403, "not valid")
    # revoked: this link stops working, a new one (issued later) works
    world.clock.advance(timedelta(seconds=2))
    revoke_links(world.app, who[0], by="test", reason="forwarded")
    refused(path, 410, "withdrawn")
    world.clock.advance(timedelta(seconds=2))
    fresh = urlsplit(customer_link(world.app, world.incident_id, who[0])).path
    assert world.client.get(fresh).status_code == 200
    assert world.client.get(world.link(who[1])).status_code == 200  # others unaffected
    # expired: after [incident_page] link_lifetime (30 days)
    world.clock.advance(timedelta(days=31))
    refused(fresh, 410, "expired")


def test_customer_link_needs_an_affected_customer_and_the_config(world: World) -> None:
    outsider = next(r["id"] for r in sample_rows() if r["id"] not in audience(world))
    with pytest.raises(NotFound):
        customer_link(world.app, world.incident_id, outsider)
    with pytest.raises(NotFound):
        revoke_links(world.app, "nobody-at-all")


def test_the_box_enters_the_replies_pipeline_as_a_web_reply(world: World) -> None:
    who = audience(world)[0]
    path = world.link(who)
    page = world.client.get(path)
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
    assert set(form) == {"form_token", "form_id"}
    text = "Our checkout is down because of this; we are losing orders. We will cancel!"
    r = world.client.post(path, data={**form, "text": text}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"{path}?sent=1#told"
    again = world.client.post(path, data={**form, "text": text}, follow_redirects=False)
    assert again.status_code == 303  # a double click: stored once
    replies = world.app.replies(f"INC-{world.incident_id}")
    mine = [x for x in replies if x["customer_id"] == who]
    assert len(mine) == 1
    assert mine[0]["channel"] == "web"
    assert mine[0]["text"] == text
    assert mine[0]["kind"] == "reply"
    assert mine[0]["label"] is not None  # scored like any reply
    # escalated like any reply ("cancel" is one of the default words): the commander hears
    assert mine[0]["escalated_at"] is not None
    assert world.app.send_inbound() >= 1
    to_ic = world.smtp.handler.wait_for(lambda ms: any("ic@example.com" in m.rcpt_tos for m in ms))
    told = next(m for m in to_ic if "ic@example.com" in m.rcpt_tos)
    assert "we are losing orders" in told.text()
    after = world.client.get(f"{path}?sent=1")
    assert "We have your message" in after.text
    assert "we are losing orders. We will cancel!" in after.text


def test_the_form_is_refused_without_its_token_or_from_another_site(world: World) -> None:
    who = audience(world)
    path = world.link(who[0])
    page = world.client.get(path)
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
    # another customer's form token does not work on this page
    other = world.client.get(world.link(who[1]))
    theirs = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', other.text))
    r = world.client.post(path, data={**theirs, "text": "hi there"})
    assert r.status_code == 403
    assert "hi there" in r.text  # what they wrote is kept in the box
    r = world.client.post(
        path, data={**form, "text": "hi"}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    r = world.client.post(path, data={**form, "text": "   "})
    assert r.status_code == 400
    r = world.client.post(path, data={**form, "text": "x" * 5000})
    assert r.status_code == 400
    replies = world.app.replies(f"INC-{world.incident_id}")
    assert not [x for x in replies if x["channel"] == "web"]


def test_a_browsers_own_form_is_taken_though_its_origin_is_null(world: World) -> None:
    """Under the page's ``Referrer-Policy: no-referrer`` Chromium posts its form with ``Origin:
    null``; ``Sec-Fetch-Site: same-origin``, which only the browser sets, tells it is ours."""
    path = world.link(audience(world)[0])
    page = world.client.get(path)
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
    null = {"Origin": "null"}
    r = world.client.post(path, data={**form, "text": "From a page elsewhere"}, headers=null)
    assert r.status_code == 403
    r = world.client.post(
        path,
        data={**form, "text": "From another site"},
        headers={**null, "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403
    r = world.client.post(
        path,
        data={**form, "text": "From the page itself"},
        headers={**null, "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    replies = world.app.replies(f"INC-{world.incident_id}")
    assert [x["text"] for x in replies if x["channel"] == "web"] == ["From the page itself"]


def test_the_page_follows_the_incident_to_its_credit_and_survey(world: World) -> None:
    who = audience(world)[0]
    path = world.link(who)
    world.clock.advance(timedelta(minutes=10))
    world.app.update(
        f"INC-{world.incident_id}", "Failover done; replaying writes.", status="identified"
    )
    page = world.client.get(path).text
    assert "Failover done; replaying writes." in page
    assert page.count("<li>\n<h3>") == 2  # acknowledgement and update
    world.clock.advance(timedelta(minutes=30))
    world.app.resolve(f"INC-{world.incident_id}", "Fixed: writes succeed again.")
    page = world.client.get(path).text
    assert "Resolved" in page
    assert "Next update by" not in page
    assert "How did we handle this?" in page
    links = re.findall(r'href="(http[^"]+/feedback/[^"]+)"', page)
    assert len(links) == 11
    assert links[7].endswith("score=7")


def test_events_say_changed_when_the_page_would(world: World) -> None:
    """The stream's first event is the retry hint; a commander update makes it say changed."""
    who = audience(world)[0]
    path = world.link(who)
    with world.client.stream("GET", f"{path}/events", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "private, no-store"
        lines = stream.iter_lines()
        assert next(lines).startswith("retry: ")
        world.app.update(f"INC-{world.incident_id}", "Still failing over.", status="identified")
        for line in lines:
            if line == "event: changed":
                break
        else:  # pragma: no cover - the stream ended without saying so
            pytest.fail("no changed event")


def test_the_link_is_absent_without_a_public_url(
    smtp_server: SmtpServer, make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    app = App.open(make_config(smtp_server), clock=FakeClock(T0))
    app.import_customers(sample_csv())
    app.declare("Database errors", severity="sev2", components=["database"])
    msgs = smtp_server.handler.snapshot()
    assert msgs and not any("/i/" in m.text() for m in msgs)
    with pytest.raises(ConfigError) as err:
        customer_link(app, 1, msgs[0].customer)
    assert err.value.key == "daemon.public_url"
    app.close()


def test_page_link_and_page_revoke_from_the_cli(world: World, cli: Callable[..., Any]) -> None:
    import json

    cfg = str(world.app.config.path)
    who = audience(world)[0]
    r = cli(
        "--config", cfg, "page", "link", f"INC-{world.incident_id}", "--customer", who, "--json"
    )
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["incident"] == f"INC-{world.incident_id}" and data["customer"] == who
    path = urlsplit(data["url"]).path
    assert world.client.get(path).status_code == 200
    r = cli("--config", cfg, "page", "link", f"INC-{world.incident_id}", "--customer", "nobody")
    assert r.exit_code != 0 and "nobody" in r.stderr
    r = cli("--config", cfg, "page", "revoke", who, "--reason", "forwarded", "--yes", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["customer"] == who
    assert world.client.get(path).status_code == 410
    r = cli("--config", cfg, "page", "revoke", "nobody", "--yes")
    assert r.exit_code != 0 and "nobody" in r.stderr


def test_a_users_template_replaces_the_page_and_a_hostile_one_cannot_hang_it(
    smtp_server: SmtpServer,
    make_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    pages = tmp_path / "tpl" / "pages"
    pages.mkdir(parents=True)
    mine = pages / "incident.html.j2"
    mine.write_text(
        '<!DOCTYPE html><title>{{ incident.ref }}</title><style nonce="{{ csp_nonce }}">'
        "p{color:#000}</style><p>Our own page for {{ customer.name }}: {{ incident.title }}"
        "{% for item in timeline %} [{{ item.label }}]{% endfor %}</p>"
    )
    extra = f'\n[templates]\ndir = "{tmp_path / "tpl"}"\nrender_timeout = "1s"\n'
    with make_world(smtp_server, make_config, extra) as w:
        who = audience(w)[0]
        path = w.link(who)
        page = w.client.get(path)
        assert page.status_code == 200
        assert "Our own page for" in page.text and "Database errors" in page.text
        assert "[We told you about the problem]" in page.text
        assert "<script" not in page.text.lower()  # escaped where it came from the store
    # a template that would run forever is stopped by the sandbox: a 500 page, no hang
    hostile = tmp_path / "hostile" / "pages"
    hostile.mkdir(parents=True)
    (hostile / "incident.html.j2").write_text("{% for i in range(10**9) %}{{ i }}{% endfor %}")
    extra = f'\n[templates]\ndir = "{tmp_path / "hostile"}"\nrender_timeout = "1s"\n'
    store = f"sqlite:///{tmp_path / 'hostile.db'}"
    with make_world(smtp_server, make_config, extra, name="h.toml", store_url=store) as w:
        broken = w.client.get(w.link(audience(w)[0]))
        assert broken.status_code == 500
        assert "Something went wrong" in broken.text
        assert "Database errors" not in broken.text


def test_preflight_renders_the_branch_with_the_page_link(
    smtp_server: SmtpServer,
    make_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A template that breaks only where the link is shown stops the declare before anything
    is queued (pre-flight renders as the messages will be), not at send time."""
    from outagecomms.errors import TemplateError

    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    partials = tmp_path / "tpl" / "_partials"
    partials.mkdir(parents=True)
    (partials / "contact.txt.j2").write_text(
        "{% if incident_page %}{{ customer.page_url.no_such.thing }}{% endif %}\n"
    )
    cfg = make_config(
        smtp_server,
        extra=f'public_url = "https://status.example.com"\n\n[templates]\ndir = "{tmp_path / "tpl"}"\n',
    )
    app = App.open(cfg, clock=FakeClock(T0))
    app.import_customers(sample_csv())
    with pytest.raises(TemplateError) as err:
        app.declare("Database errors", severity="sev2", components=["database"])
    assert "contact.txt.j2" in str(err.value)
    assert app.incidents() == []
    assert smtp_server.handler.snapshot() == []
    app.close()


def test_doctor_says_whether_messages_link_to_the_page_and_checks_its_template(
    world: World,
) -> None:
    from outagecomms.workspace.doctor import doctor

    lines = doctor(world.app)
    assert "template pages/incident.html.j2: ok" in lines
    assert any(
        line.startswith("incident pages: every message links to http://127.0.0.1:")
        for line in lines
    ), lines


def test_open_event_streams_end_cleanly_when_the_server_stops(
    smtp_server: SmtpServer, make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon stopping ends every open page's stream itself (the browser reconnects), so
    its shutdown does not wait for them to be cut off (``serve_http``'s stop event)."""
    import threading

    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    result: dict[str, str] = {}
    started = threading.Event()

    def read(url: str) -> None:
        try:
            with httpx.stream("GET", url, timeout=30) as stream:
                for _ in stream.iter_lines():
                    started.set()
            result["ended"] = "cleanly"
        except httpx.HTTPError as exc:  # cut off: the last chunk never came
            result["ended"] = type(exc).__name__

    with make_world(smtp_server, make_config) as w:
        reader = threading.Thread(target=read, args=(w.base + w.link(audience(w)[0]) + "/events",))
        reader.start()
        assert started.wait(10)
    reader.join(10)
    assert result == {"ended": "cleanly"}


@pytest.mark.catalogs
def test_a_customer_reads_their_page_in_their_language(world: World) -> None:
    """c0000008 is de_DE: the page's words come from the German catalog, its times in their
    locale, ``<html lang>`` says so; an en_GB customer's page stays English."""
    words = world.app.renderer.catalogs.translations("de")
    german = world.client.get(world.link("c0000008")).text
    assert 'lang="de-DE"' in german
    for msgid in ("What we sent you", "Tell us how this affects you", "Send"):
        assert words.gettext(msgid) != msgid  # translated in the catalog
        assert words.gettext(msgid) in german
    assert words.pgettext("timeline", "We told you about the problem") in german
    assert words.pgettext("delivery", "sent") in german
    english = world.client.get(world.link("c0000010")).text
    assert 'lang="en-GB"' in english
    assert "What we sent you" in english and words.gettext("What we sent you") not in english


def test_two_stores_in_one_process_show_each_their_own_messages(
    smtp_server: SmtpServer,
    make_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Same incident number, customer, delivery id and send time in two stores: each page
    shows what its own store says was sent (the decoded texts are shared by the process)."""
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    with make_world(smtp_server, make_config, message="First store's words.") as one:
        who = audience(one)[0]
        assert "First store" in one.client.get(one.link(who)).text
    store = f"sqlite:///{tmp_path / 'second.db'}"
    with make_world(
        smtp_server, make_config, message="Second store's words.", name="2.toml", store_url=store
    ) as two:
        page = two.client.get(two.link(who)).text
        assert "Second store" in page and "First store" not in page


@pytest.mark.catalogs
def test_a_text_that_the_link_would_push_past_two_segments_goes_without_it(
    twilio: Any, make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Japanese SMS is UCS-2 (67 characters a segment): with the 77-character page link it
    would take three, so it is sent without it; an English one keeps its link."""
    from outagecomms.channels.twilio import sms_segments

    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    directory = tmp_path / "sms.csv"
    directory.write_text(
        "id,name,email,phone,tier,monthly_fee,currency,components,regions,timezone,locale,channels\n"
        "jp1,株式会社サンプル商事,ops@jp1.example,+81312345678,standard,100,JPY,database,ap-northeast,"
        "Asia/Tokyo,ja_JP,sms\n"
        "us1,Acme Logistics,ops@us1.example,+15555550101,standard,100,USD,database,us-east,"
        "America/New_York,en_US,sms\n"
    )
    cfg = make_config(
        None,
        extra='public_url = "https://status.example.com"\n\n[channels.sms]\nkind = "twilio"\n'
        'from = "+15550100999"\naccount_sid_env = "TEST_TWILIO_SID"\n'
        f'auth_token_env = "TEST_TWILIO_TOKEN"\nbase_url = "{twilio.base}"\n',
    )
    with App.open(cfg, clock=FakeClock(T0)) as app:
        app.import_customers(directory)
        app.declare("Database errors", severity="sev2", components=["database"])
        bodies = {m.form["To"]: m.form["Body"] for m in twilio.messages()}
        japanese, english = bodies["+81312345678"], bodies["+15555550101"]
        assert "/i/" not in japanese and sms_segments(japanese)[1] <= 2
        assert "/i/" in english and sms_segments(english)[1] <= 2
        # an update whose words would take a Japanese text past two segments goes without
        # them (the email and the page have them), keeping when they hear next
        words = "The failover to the standby is done and writes succeed; reads recover next."
        app.update("INC-1", words, status="identified")
        later = [m.form for m in twilio.messages()][len(bodies) :]
        sent = {f["To"]: f["Body"] for f in later}
        assert words not in sent["+81312345678"] and sms_segments(sent["+81312345678"])[1] <= 2
        assert "INC-1" in sent["+81312345678"]
        assert words in sent["+15555550101"] and sms_segments(sent["+15555550101"])[1] <= 2
