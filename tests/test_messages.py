"""Messages with substance: a holding update restates the latest news; customers read display
names, times to the minute and durations in words; every email of an incident is one thread per
customer (a stable ``[INC-n]`` subject, ``In-Reply-To``/``References`` to their acknowledgement,
``Auto-Submitted`` on what the scheduler sends), through the real SMTP server and a Maildir."""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.errors import ConfigError
from outagecomms.incidents.lifecycle import declare, post_update, resolve
from outagecomms.incidents.preflight import SAMPLE_CREDIT_NOTICE
from outagecomms.incidents.promises import holding_start
from outagecomms.models import RoundKind, Selector
from outagecomms.outbox.senders import dispatch_due
from outagecomms.rendering.templates import PARTS, Renderer
from outagecomms.scheduler.due import run_due
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.builders import COMPANY, customer, incident, round_
from tests.support.data import REPO, sample_csv
from tests.support.localised import local_time, plain, spoken_duration

NAMES = """
[components]
database = "Managed Database"

[regions]
eu-west = "Europe (Ireland)"
"""
TEMPLATES = REPO / "templates"
IDENTIFIED = "The cause is a failed disk on the primary; we are failing over to a replica."


@pytest.fixture
def app(
    smtp_server: SmtpServer, make_config: Callable[..., Path], clock: FakeClock
) -> Iterator[App]:
    a = App.open(make_config(smtp_server, extra=NAMES), clock=clock)
    import_file(a, sample_csv())
    yield a
    a.close()


def _declare(app: App, message: str = "") -> int:
    created = declare(
        app, title="Database unavailable", severity="sev2", every=timedelta(minutes=30),
        message=message, selector=Selector(components=("database",), regions=("eu-west",)),
    )  # fmt: skip
    asyncio.run(dispatch_due(app, incident_id=created.incident.id))
    return created.incident.id


def _holding(app: App, clock: FakeClock, incident_id: int) -> None:
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, incident_id).incident
    start = holding_start(inc, app.config)
    assert start is not None
    clock.now = start
    assert run_due(app).holding
    asyncio.run(dispatch_due(app, incident_id=incident_id))


def _by_kind(server: SmtpServer, kind: str) -> list[EmailMessage]:
    return [r.message for r in server.handler.snapshot() if r.kind == kind]


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return plain(str(part.get_content())).replace("\r\n", "\n")


# --- holding updates restate the latest news --------------------------------------------------


def test_a_holding_update_restates_the_commanders_last_update_and_when(
    app: App, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    iid = _declare(app)
    clock.advance(minutes=5, seconds=34)
    posted = clock()
    post_update(app, f"INC-{iid}", IDENTIFIED, status="identified")
    asyncio.run(dispatch_due(app, incident_id=iid))
    _holding(app, clock, iid)
    holding = _by_kind(smtp_server, "holding")
    assert holding
    with app.store.read() as conn:
        who = customers_db.get_customers(conn, [str(m["X-Outagecomms-Customer"]) for m in holding])
        promise = incidents_db.list_rounds(conn, iid)[-1].promised_next_by
    assert promise is not None
    for msg in holding:
        c = who[str(msg["X-Outagecomms-Customer"])]
        text = _text(msg)
        # posted at 13:05:41 UTC: read to the minute, in the customer's zone and locale
        at = plain(local_time(posted.replace(second=0), c.timezone, c.locale))
        assert f"Latest (Identified, posted at {at}):\n{IDENTIFIED}" in text
        assert "There is nothing new since then" in text
        assert f"by {plain(local_time(promise, c.timezone, c.locale))}" in text
        assert text.index(IDENTIFIED) < text.index("nothing new since") < text.index("next update")
        assert "nothing new to report yet" not in text


def test_a_holding_update_after_the_acknowledgement_restates_the_declare_message(
    app: App, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    declared = clock()
    iid = _declare(app, message="Writes to the primary database fail; reads still work.")
    _holding(app, clock, iid)
    (msg, *_) = _by_kind(smtp_server, "holding")
    with app.store.read() as conn:
        c = customers_db.get_customers(conn, [str(msg["X-Outagecomms-Customer"])])
    (cust,) = c.values()
    at = plain(local_time(declared.replace(second=0), cust.timezone, cust.locale))
    text = _text(msg)
    assert f"Latest (Investigating, posted at {at}):" in text
    assert "Writes to the primary database fail; reads still work." in text
    assert "nothing new since then" in text


@pytest.mark.parametrize("channel", sorted(PARTS))
def test_every_holding_template_restates_the_latest_news(channel: str) -> None:
    r = Renderer(company=COMPANY)
    c = customer("America/New_York", "en_US")
    inc = incident()
    rnd = round_(RoundKind.HOLDING, message="")
    latest = round_(RoundKind.UPDATE, rnd.created_at - timedelta(minutes=9), message=IDENTIFIED)
    ctx = r.context(incident=inc, round=rnd, customer=c, latest=latest)
    out = r.render(RoundKind.HOLDING, channel, ctx)
    posted = plain(local_time(latest.created_at, c.timezone, c.locale))
    assert posted in plain(out.text)  # when it was said, in the customer's zone
    if channel != "sms":  # an SMS says when, not what: 160 characters
        assert IDENTIFIED in out.text
    assert "nothing new since" in out.text.lower()


# --- names, times, durations ------------------------------------------------------------------


def test_customers_read_display_names_in_every_message(
    app: App, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    iid = _declare(app)
    clock.advance(minutes=10)
    post_update(app, f"INC-{iid}", IDENTIFIED, status="identified")
    asyncio.run(dispatch_due(app, incident_id=iid))
    _holding(app, clock, iid)
    resolve(app, f"INC-{iid}", "Fixed.")
    asyncio.run(dispatch_due(app, incident_id=iid))
    got = smtp_server.handler.snapshot()
    assert {r.kind for r in got} == {"acknowledgement", "update", "holding", "resolution"}
    for r in got:
        text = r.text()
        assert "Managed Database" in text and "Europe (Ireland)" in text, r.kind
        assert "eu-west" not in text, (r.kind, text)


def test_display_names_default_to_the_key_and_bad_ones_name_the_key(
    make_config: Callable[..., Path], cli: Callable[..., object]
) -> None:
    from outagecomms.config.loader import load_config

    assert load_config(make_config()).names.component("api") == "api"
    with pytest.raises(ConfigError, match=r"components\.database"):
        load_config(make_config(extra="[components]\ndatabase = 3\n"))
    with pytest.raises(ConfigError, match=r"regions\.eu-west"):
        load_config(make_config(extra='[regions]\n"eu-west" = ""\n'))


def test_a_duration_reads_as_people_say_it() -> None:
    """10 min 41 s is "11 minutes" (to the nearest minute, not "10 min" rounded down); 1 h
    10 min is "1 hour, 10 minutes", in the customer's locale (CLDR's words via Babel)."""
    r = Renderer(company=COMPANY)
    for locale in ("en_US", "de_DE", "fr_FR", "ja_JP", "en_IN", "pt_BR"):
        c = customer("Europe/Berlin", locale)
        for spent, words in (
            (timedelta(minutes=10, seconds=41), spoken_duration(locale, minutes=11)),
            (timedelta(hours=1, minutes=10), spoken_duration(locale, hours=1, minutes=10)),
            (timedelta(days=1, hours=2), spoken_duration(locale, days=1, hours=2)),
            (
                timedelta(days=275, hours=1, minutes=30),
                spoken_duration(locale, days=275, hours=1, minutes=30),
            ),
        ):
            base = incident(resolved=True)
            inc = base.__class__(**{**base.__dict__, "resolved_at": base.started_at + spent})
            rnd = round_(RoundKind.RESOLUTION)
            out = r.render(
                RoundKind.RESOLUTION, "email", r.context(incident=inc, round=rnd, customer=c)
            )
            assert f"after {words}." in out.text, (locale, spent)


# --- one thread per incident and customer -----------------------------------------------------


def _threads(messages: list[EmailMessage]) -> None:
    """Every later message answers that customer's acknowledgement, under the same stem."""
    by_customer: dict[str, list[EmailMessage]] = defaultdict(list)
    for m in messages:
        by_customer[str(m["X-Outagecomms-Customer"])].append(m)
    assert by_customer
    for got in by_customer.values():
        got.sort(key=lambda m: int(str(m["X-Outagecomms-Round"]).split()[0]))
        ack, *later = got
        assert str(ack["X-Outagecomms-Round"]).endswith("acknowledgement")
        assert ack["In-Reply-To"] is None and ack["References"] is None
        stem = str(ack["Subject"])
        assert stem.startswith("[INC-") and "Database unavailable" in stem
        kinds = [str(m["X-Outagecomms-Round"]).split()[1] for m in later]
        assert kinds == ["update", "holding", "resolution"]
        for m in later:
            assert str(m["In-Reply-To"]) == str(ack["Message-ID"])
            assert str(m["References"]) == str(ack["Message-ID"])
            assert str(m["Subject"]) == f"Re: {stem}"
        for m in got:  # RFC 3834: nothing the tool sends is answered by an auto-responder
            assert str(m["Auto-Submitted"]) == "auto-generated"


def _story(app: App, clock: FakeClock) -> None:
    iid = _declare(app)
    clock.advance(minutes=3)
    post_update(app, f"INC-{iid}", IDENTIFIED, status="identified")
    asyncio.run(dispatch_due(app, incident_id=iid))
    _holding(app, clock, iid)  # the scheduler's round
    resolve(app, f"INC-{iid}", "Fixed.")
    asyncio.run(dispatch_due(app, incident_id=iid))


def test_one_thread_per_incident_and_customer_over_smtp(
    app: App, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    _story(app, clock)
    _threads([r.message for r in smtp_server.handler.snapshot()])


def test_one_thread_per_incident_and_customer_in_a_maildir(
    make_config: Callable[..., Path], clock: FakeClock, tmp_path: Path
) -> None:
    box = tmp_path / "mail"
    cfg = make_config(extra=NAMES)
    text = cfg.read_text()
    start = text.index("[channels.email]")
    end = text.index("[dispatch]")
    cfg.write_text(
        text[:start]
        + f'[channels.email]\nkind = "maildir"\npath = "{box}"\n'
        + 'from = "S1 Support <support@example.com>"\n\n'
        + text[end:]
    )
    with App.open(cfg, clock=clock) as a:
        import_file(a, sample_csv())
        _story(a, clock)
    msgs = [
        email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
        for m in mailbox.Maildir(box, create=False)
    ]
    _threads([m for m in msgs if isinstance(m, EmailMessage)])


#: every (kind, channel) the packaged templates cover (no status-page or Apprise follow-up)
SHIPPED = [
    (kind, channel)
    for kind in RoundKind
    for channel in sorted(PARTS)
    if (TEMPLATES / kind.value / f"{channel}.txt.j2").is_file()
]


@pytest.mark.parametrize(("kind", "channel"), SHIPPED, ids=[f"{k.value}-{c}" for k, c in SHIPPED])
def test_every_template_shows_display_names_not_keys(kind: RoundKind, channel: str) -> None:
    from dataclasses import replace

    from outagecomms.config.model import DisplayNames

    names = DisplayNames(components={"auth": "Identity & Sign-in"}, regions={"eu-west": "Dublin"})
    r = Renderer(company=COMPANY, names=names)
    done = kind in (RoundKind.RESOLUTION, RoundKind.FOLLOW_UP, RoundKind.CREDIT)
    inc = incident(resolved=done)
    rnd = round_(kind)
    latest = replace(rnd, kind=RoundKind.UPDATE) if kind == RoundKind.HOLDING else None
    # a credit notice always has its credit (the pre-flight's sample)
    extras = {"credit": SAMPLE_CREDIT_NOTICE} if kind == RoundKind.CREDIT else {}
    ctx = r.context(incident=inc, round=rnd, customer=customer(), latest=latest, **extras)
    out = r.render(kind, channel, ctx)
    shown = f"{out.subject}\n{out.text}\n{out.html or ''}"
    assert "eu-west" not in shown
    assert not re.search(r"\bauth\b", shown)
    if channel == "email":
        assert "Dublin" in shown
    if "Dublin" in shown:  # what a template says is affected, it says by name
        assert "Identity &" in shown
