"""Templates: the defaults render for every kind, zone and locale; the promise is shown in the
customer's local time; HTML is escaped; overrides, errors with template and line, sandbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from outagecomms.errors import TemplateError
from outagecomms.models import Customer, RoundKind
from outagecomms.rendering.templates import Rendered, Renderer
from tests.support.builders import (
    FULL_COMPANY,
    KINDS,
    SUMMER,
    WINTER,
    ZONES,
    customer,
    incident,
    round_,
)
from tests.support.localised import (
    clock_time,
    local_datetime,
    local_time,
    medium_date,
    minute_datetime,
    spoken_duration,
)
from tests.support.localised import plain as norm

COMPANY = FULL_COMPANY


def render(
    kind: RoundKind,
    c: Customer,
    *,
    renderer: Renderer | None = None,
    at: datetime = WINTER,
    promise: datetime | None = None,
    title: str = "Sign-in failures",
    message: str = "A database failover is in progress.",
) -> Rendered:
    r = renderer or Renderer(company=COMPANY)
    inc = incident(at, title=title, resolved=kind == RoundKind.RESOLUTION)
    rnd = round_(kind, at, promise=promise, message=message)
    # a holding update restates the latest news: here an update posted 10 minutes before it
    latest = round_(RoundKind.UPDATE, at - timedelta(minutes=10), message=message)
    ctx = r.context(
        incident=inc, round=rnd, customer=c, latest=latest if kind == RoundKind.HOLDING else None
    )
    return r.render(kind, "email", ctx)


# --- the defaults -----------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "locale"), ZONES)
@pytest.mark.parametrize("kind", KINDS, ids=[k.value for k in KINDS])
def test_default_templates_render(kind: RoundKind, tz: str, locale: str) -> None:
    c = customer(tz, locale)
    out = render(kind, c)
    assert out.subject and "\n" not in out.subject
    assert "Sign-in failures" in out.subject
    assert "INC-42" in out.subject
    assert out.html is not None
    for body in (out.text, out.html):
        assert "Acme Logistics" in body
        assert "S1 Technology" in body
        assert "INC-42" in body
        assert "support@example.com" in body
        assert "https://status.example.com" in body
        # what is affected for *this* customer: auth in eu-west, not the others' api/us-east
        assert "auth" in body.lower()
        assert "us-east" not in body
        assert "{{" not in body and "{%" not in body
    assert out.html.lstrip().startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale[:2]}">' in out.html
    if kind == RoundKind.UPDATE:
        assert "A database failover is in progress." in out.text
    if kind == RoundKind.RESOLUTION:
        assert "resolved" in out.text.lower()
    else:
        assert "by " in out.text


def test_resolution_duration_and_no_promise() -> None:
    out = render(RoundKind.RESOLUTION, customer())
    # started 12 minutes before declaration, resolved 50 minutes after: 62 minutes, in words
    assert f"after {spoken_duration('de_DE', hours=1, minutes=2)}." in out.text
    assert "hear from us again" not in out.text
    assert "next update" not in out.text.lower()


def test_apology_where_it_belongs() -> None:
    """Sorry in the acknowledgement and the resolution, not in every holding update."""
    c = customer()
    assert "sorry" in render(RoundKind.ACKNOWLEDGEMENT, c).text.lower()
    assert "sorry" in render(RoundKind.RESOLUTION, c).text.lower()
    assert "sorry" not in render(RoundKind.HOLDING, c).text.lower()


# (timezone, locale, the promise of 13:30 UTC as that customer's wall clock and zone show it;
# how the locale writes that time is Babel's to say)
WINTER_PROMISES = [
    ("Europe/Berlin", "de_DE", time(14, 30), "CET"),
    ("Europe/Paris", "fr_FR", time(14, 30), "CET"),
    ("Asia/Tokyo", "ja_JP", time(22, 30), "JST"),
    ("America/New_York", "en_US", time(8, 30), "EST"),
    ("America/Los_Angeles", "en_US", time(5, 30), "PST"),
    ("Europe/London", "en_GB", time(13, 30), "GMT"),
    ("Asia/Kolkata", "en_IN", time(19, 0), "IST"),
    ("Australia/Sydney", "en_AU", time(0, 30), "AEDT"),
]
SUMMER_PROMISES = [
    ("Europe/Berlin", "de_DE", time(15, 30), "CEST"),
    ("Europe/London", "en_GB", time(14, 30), "BST"),
    ("America/New_York", "en_US", time(9, 30), "EDT"),
    ("Asia/Tokyo", "ja_JP", time(22, 30), "JST"),
    ("Australia/Sydney", "en_AU", time(23, 30), "AEST"),
]


@pytest.mark.parametrize(("tz", "locale", "wall", "zone"), WINTER_PROMISES)
@pytest.mark.parametrize(
    "kind",
    [RoundKind.ACKNOWLEDGEMENT, RoundKind.UPDATE, RoundKind.HOLDING],
    ids=["acknowledgement", "update", "holding"],
)
def test_promise_in_customer_zone_winter(
    kind: RoundKind, tz: str, locale: str, wall: time, zone: str
) -> None:
    shown = norm(clock_time(wall, locale, zone))
    out = render(kind, customer(tz, locale), at=WINTER, promise=WINTER + timedelta(minutes=30))
    assert f"by {shown}" in norm(out.text)
    assert out.html is not None
    assert shown in norm(out.html)
    assert "13:30 UTC" not in out.text or tz == "UTC"


@pytest.mark.parametrize(("tz", "locale", "wall", "zone"), SUMMER_PROMISES)
def test_promise_in_customer_zone_summer(tz: str, locale: str, wall: time, zone: str) -> None:
    out = render(
        RoundKind.ACKNOWLEDGEMENT,
        customer(tz, locale),
        at=SUMMER,
        promise=SUMMER + timedelta(minutes=30),
    )
    assert f"by {norm(clock_time(wall, locale, zone))}" in norm(out.text)


def test_promise_on_another_local_day_shows_the_date() -> None:
    # 13:00 UTC is 22:00 in Tokyo; a promise at 15:30 UTC is 00:30 the next day there
    promise = WINTER + timedelta(hours=2, minutes=30)
    tokyo = norm(render(RoundKind.UPDATE, customer("Asia/Tokyo", "ja_JP"), promise=promise).text)
    assert norm(local_time(promise, "Asia/Tokyo", "ja_JP")) in tokyo
    assert norm(medium_date(date(2026, 1, 16), "ja_JP")) in tokyo
    berlin = norm(render(RoundKind.UPDATE, customer(), promise=promise).text)
    same_day = f"by {norm(local_time(promise, 'Europe/Berlin', 'de_DE'))}"  # 16:30 CET
    (line,) = [ln for ln in berlin.splitlines() if same_day in ln]  # same day: time only
    assert "2026" not in line and norm(medium_date(date(2026, 1, 16), "de_DE")) not in line


def test_a_promise_with_seconds_is_shown_to_the_minute_rounded_up() -> None:
    """No seconds in times customers read (a 30-minute cadence): a promise of 14:30:15 reads
    "by 14:31", never earlier than the time kept."""
    promise = WINTER + timedelta(minutes=30, seconds=15)
    out = render(RoundKind.HOLDING, customer(), promise=promise)
    shown = local_time(WINTER + timedelta(minutes=31), "Europe/Berlin", "de_DE")
    assert shown.startswith("14:31 ")  # short: no seconds
    assert f"by {shown}" in out.text
    assert "14:30:15" not in out.text


def test_under_a_one_minute_cadence_times_show_their_seconds() -> None:
    promise = WINTER + timedelta(seconds=30)
    r = Renderer(company=COMPANY)
    inc = replace(incident(WINTER), update_every=timedelta(seconds=30))
    rnd = round_(RoundKind.UPDATE, WINTER + timedelta(seconds=5), promise=promise)
    out = r.render(
        RoundKind.UPDATE, "email", r.context(incident=inc, round=rnd, customer=customer())
    )
    shown = local_time(promise, "Europe/Berlin", "de_DE")
    assert shown.startswith("14:00:30")  # medium: with the seconds
    assert f"by {shown}" in out.text


def test_started_at_in_customer_zone() -> None:
    out = render(RoundKind.ACKNOWLEDGEMENT, customer("America/New_York", "en_US"))
    started = WINTER - timedelta(minutes=12)  # 12:48 UTC = 7:48 AM EST, with its date
    assert norm(minute_datetime(started, "America/New_York", "en_US")) in norm(out.text)
    # to the minute: no seconds in a time customers read
    assert norm(local_datetime(started, "America/New_York", "en_US")) not in norm(out.text)


# --- escaping ---------------------------------------------------------------------------------

EVIL = "<script>alert('x')</script>"


@pytest.mark.parametrize("kind", KINDS, ids=[k.value for k in KINDS])
def test_html_escapes_text_keeps_literal(kind: RoundKind) -> None:
    c = customer(name="Bob <b>&</b> Co")
    out = render(kind, c, title=f"API {EVIL}", message=f"we found {EVIL} in logs")
    assert out.html is not None
    assert "<script>" not in out.html
    assert "&lt;script&gt;" in out.html
    assert "Bob &lt;b&gt;&amp;&lt;/b&gt; Co" in out.html
    assert f"API {EVIL}" in out.text
    assert "Bob <b>&</b> Co" in out.text
    assert "&lt;" not in out.text
    assert f"API {EVIL}" in out.subject
    if kind != RoundKind.ACKNOWLEDGEMENT:
        assert f"we found {EVIL} in logs" in out.text


# --- overrides --------------------------------------------------------------------------------


def write(root: Path, name: str, body: str) -> None:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(body)


def test_override_replaces_one_template(tmp_path: Path) -> None:
    write(
        tmp_path,
        "acknowledgement/email.subject.j2",
        "OVERRIDDEN {{ incident.ref }} for {{ customer.id }}",
    )
    r = Renderer(company=COMPANY, user_dir=tmp_path)
    out = render(RoundKind.ACKNOWLEDGEMENT, customer(), renderer=r)
    assert out.subject == "OVERRIDDEN INC-42 for c1"
    default = render(RoundKind.ACKNOWLEDGEMENT, customer())
    assert out.text == default.text  # the other parts are still the defaults
    assert out.html == default.html
    # other kinds are untouched
    assert render(RoundKind.UPDATE, customer(), renderer=r).subject.startswith("Re: [INC-42]")


def test_override_of_a_partial_applies_to_defaults(tmp_path: Path) -> None:
    write(
        tmp_path, "_partials/contact.txt.j2", "Call the hotline: 0800-OUTAGE ({{ incident.ref }})"
    )
    r = Renderer(company=COMPANY, user_dir=tmp_path)
    for kind in KINDS:
        text = render(kind, customer(), renderer=r).text
        assert "Call the hotline: 0800-OUTAGE (INC-42)" in text
        assert "To reach a person" not in text


# --- errors -----------------------------------------------------------------------------------


def render_override(tmp_path: Path, name: str, body: str, **files: str) -> Rendered:
    write(tmp_path, name, body)
    for n, b in files.items():
        write(tmp_path, n, b)
    r = Renderer(company=COMPANY, user_dir=tmp_path)
    return render(RoundKind.ACKNOWLEDGEMENT, customer(), renderer=r)


TXT, HTML, SUBJECT = (f"acknowledgement/email.{part}.j2" for part in ("txt", "html", "subject"))
PARTIAL = "_partials/extra.txt.j2"
INCLUDES_PARTIAL = f"Hello\n{{% include '{PARTIAL}' %}}\n"
EXTENDS_LAYOUT = '{% extends "_partials/layout.html.j2" %}\n{% block body %}\n<p>{{ customer.name }}</p>\n<p>{{ round.nope }}</p>\n{% endblock %}\n'


def _undefined_message(source: str) -> str:
    """Jinja's own words for an undefined name (computed, not copied from one release)."""
    from jinja2 import Environment, StrictUndefined, UndefinedError

    try:
        Environment(undefined=StrictUndefined).from_string(source).render()
    except UndefinedError as exc:
        return str(exc)
    raise AssertionError("expected an UndefinedError")


TEMPLATE_ERRORS = {
    # case: (template overridden, its text, other templates written, (the template the error
    #        names, its line; None: some line), fragments of the message)
    "syntax error": (TXT, "Hello\n\n{% if %}oops{% endif %}\n", {}, (TXT, 3), [f"{TXT}, line 3"]),
    "unclosed block": (HTML, "<p>\n{% for x in incident.components %}\n", {}, (HTML, None), []),
    "undefined variable": (
        TXT, "Hello {{ customer.name }},\n\n{{ customer.nickname }}\n", {}, (TXT, 3), ["nickname"]
    ),
    "undefined top-level name": (
        SUBJECT, "{{ incident.ref }} {{ eta }}", {}, (SUBJECT, 1), [_undefined_message("{{ eta }}")]
    ),
    "undefined in a for": (TXT, "a\nb\n{% for x in nope %}{{ x }}{% endfor %}", {}, (TXT, 3), []),
    # the partial is named, and which template included it
    "error in an included partial": (
        TXT, INCLUDES_PARTIAL, {PARTIAL: "one\ntwo\n{{ customer.vip_level }}\n"}, (PARTIAL, 3), [TXT]
    ),
    "syntax error in an included partial": (
        TXT, INCLUDES_PARTIAL, {PARTIAL: "one\n{{ broken ( }}\n"}, (PARTIAL, 2), []
    ),
    "error in an html block of an extending template": (HTML, EXTENDS_LAYOUT, {}, (HTML, 4), []),
    "exception raised by template code": (TXT, "x\n{{ 1 // 0 }}", {}, (TXT, 2), ["ZeroDivisionError"]),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "body", "files", "where", "fragments"),
    TEMPLATE_ERRORS.values(),
    ids=TEMPLATE_ERRORS.keys(),
)
def test_template_error_names_template_and_line(
    tmp_path: Path,
    name: str,
    body: str,
    files: dict[str, str],
    where: tuple[str, int | None],
    fragments: list[str],
) -> None:
    with pytest.raises(TemplateError) as info:
        render_override(tmp_path, name, body, **files)
    err = info.value
    template, line = where
    assert err.template == template
    if line is None:
        assert err.line is not None
    else:
        assert err.line == line
    for fragment in fragments:
        assert fragment in str(err)
    assert err.exit_code == 2


def test_missing_template_channel() -> None:
    r = Renderer(company=COMPANY)
    c = customer()
    rnd = round_(RoundKind.FOLLOW_UP)
    with pytest.raises(TemplateError) as info:
        r.render(RoundKind.FOLLOW_UP, "fax", r.context(incident=incident(), round=rnd, customer=c))
    assert info.value.template == "follow_up/fax.txt.j2"
    assert "not found" in str(info.value)


def test_follow_up_lists_one_click_scores() -> None:
    r = Renderer(company=COMPANY)
    links = [f"https://comms.example.com/feedback/tok?score={i}" for i in range(11)]
    ctx = r.context(
        incident=incident(),
        round=round_(RoundKind.FOLLOW_UP),
        customer=customer(),
        feedback_links=links,
    )
    out = r.render(RoundKind.FOLLOW_UP, "email", ctx)
    assert all(link in out.text for link in links)
    assert out.html is not None and all(f'href="{link}"' in out.html for link in links)


@pytest.mark.parametrize(
    ("payload", "attribute"),
    [
        ("{{ ''.__class__.__mro__ }}", "__class__"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "__class__"),
        ("{{ customer.__class__ }}", "__class__"),
        ("{{ cycler.__init__.__globals__ }}", "__init__"),
        ("{{ lipsum.__globals__['os'] }}", "__globals__"),
        ("{{ '{0.__class__}'.format(customer) }}", "__class__"),
        ("{{ customer.name.format.__globals__ }}", "__globals__"),
        ("{% set x = ''.__class__ %}{{ x }}", "__class__"),
    ],
)
def test_sandbox_blocks_internals(tmp_path: Path, payload: str, attribute: str) -> None:
    """Each payload is refused by the sandbox itself (not merely undefined), naming the first
    internal attribute it reached for."""
    with pytest.raises(TemplateError) as info:
        render_override(tmp_path, "acknowledgement/email.txt.j2", f"Hello\n{payload}\n")
    assert info.value.template == "acknowledgement/email.txt.j2"
    assert info.value.line == 2
    message = str(info.value)
    assert "unsafe" in message and "undefined" not in message, message
    assert f"'{attribute}'" in message, message


def test_context_is_plain_data() -> None:
    """Templates get dicts and strings, never live objects with methods into the store."""
    r = Renderer(company=COMPANY)
    ctx = r.context(incident=incident(), round=round_(RoundKind.UPDATE), customer=customer())
    for key in ("company", "incident", "round", "customer"):
        assert isinstance(ctx[key], dict)
    assert isinstance(ctx["promised_next_by"], str)


def test_rendered_subject_is_one_line_even_if_the_template_breaks_lines(tmp_path: Path) -> None:
    out = render_override(
        tmp_path,
        "acknowledgement/email.subject.j2",
        "{{ incident.ref }}\n\r\nBcc: evil@example.net\n",
    )
    assert out.subject == "INC-42 Bcc: evil@example.net"
    assert "\n" not in out.subject and "\r" not in out.subject


def test_renderer_reuses_compiled_templates(tmp_path: Path) -> None:
    write(tmp_path, "acknowledgement/email.subject.j2", "one")
    r = Renderer(company=COMPANY, user_dir=tmp_path)
    assert render(RoundKind.ACKNOWLEDGEMENT, customer(), renderer=r).subject == "one"
    c2 = replace(customer(), id="c2", timezone="Asia/Tokyo", locale="ja_JP")
    assert render(RoundKind.ACKNOWLEDGEMENT, c2, renderer=r).subject == "one"
