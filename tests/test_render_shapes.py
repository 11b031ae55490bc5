"""Rendering once per shape (``Renderer.render_customer``) gives exactly what rendering each
customer gives; templates that use the customer's name in any other way than printing it are
detected and rendered per customer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from outagecomms.models import RoundKind
from outagecomms.rendering.templates import PARTS, Renderer, default_templates_dir
from tests.support.builders import FULL_COMPANY as COMPANY
from tests.support.builders import KINDS, ZONES, customer, incident, round_

NAMES = [
    "Acme Logistics",
    'Tom & Jerry <"Cartoons"> Ltd',
    "  spaced   out  ",
    "Zoë Müller – 東京",
    "{{ customer.id }}",
    "\ue000customer.id\ue001 lookalike",
    "O'Reilly\tMedia",
]
SETS = sorted(PARTS)


def population() -> list:
    out = []
    for i, name in enumerate(NAMES):
        for j, (tz, loc) in enumerate(ZONES[:4]):
            out.append(
                customer(
                    tz, loc, id=f"c{i}-{j}&<x>", name=name,
                    tier=("enterprise", "standard")[j % 2],
                    components=(("auth",), ("api", "auth"), ())[i % 3],
                    regions=(("eu-west",), ())[j % 2],
                )
            )  # fmt: skip
    return out


# every (kind, template set) the defaults have: a status page gets no follow-up
COMBOS = [
    (kind, channel)
    for kind in [*KINDS, RoundKind.FOLLOW_UP]
    for channel in SETS
    if (default_templates_dir() / kind.value / f"{channel}.txt.j2").exists()
]


@pytest.mark.parametrize(("kind", "channel"), COMBOS, ids=[f"{k}-{c}" for k, c in COMBOS])
def test_render_customer_matches_a_full_render_for_every_customer(
    kind: RoundKind, channel: str
) -> None:
    r = Renderer(company=COMPANY)
    inc = incident(resolved=kind in (RoundKind.RESOLUTION, RoundKind.FOLLOW_UP))
    rnd = round_(kind)
    people = population()
    for n, c in enumerate(people):
        # every other customer with their own incident page link (``pages.tokens``), one
        # that looks like markup too: substituted (HTML-escaped in HTML) like the name
        page = f"https://status.example.com/i/Tok{n}-<x>&_" if n % 2 else ""
        ctx = r.context(incident=inc, round=rnd, customer=c, page_url=page)
        full = r.render(kind, channel, ctx)
        fast = r.render_customer(kind, channel, incident=inc, round=rnd, customer=c, page_url=page)
        assert fast == full, c
        if page and channel not in ("statuspage", "account_manager"):
            assert page in fast.text, (kind, channel)
    assert r._substitutable(kind, channel)  # the defaults take the fast path
    assert 0 < len(r._shapes) < len(people)  # and shapes are shared


def test_per_customer_extras_take_the_full_render() -> None:
    r = Renderer(company=COMPANY)
    inc, rnd = incident(resolved=True), round_(RoundKind.RESOLUTION)
    c = customer()
    credit = {"amount": "€12.00", "reason": "response SLA missed"}
    fast = r.render_customer(RoundKind.RESOLUTION, "email", incident=inc, round=rnd,
                             customer=c, credit=credit, goodwill="a month of support")  # fmt: skip
    ctx = r.context(incident=inc, round=rnd, customer=c, credit=credit,
                    goodwill="a month of support")  # fmt: skip
    assert fast == r.render(RoundKind.RESOLUTION, "email", ctx)
    assert "€12.00" in fast.text
    assert not r._shapes


UNSAFE = [
    "{{ customer.name | upper }}",
    "{{ customer.name ~ '!' }}",
    "{% if customer.name == 'Acme Logistics' %}VIP{% endif %} {{ customer.name }}",
    "{% filter upper %}{{ customer.name }}{% endfilter %}",
    "{% set who %}{{ customer.name }}{% endset %}{{ who | upper }}",
    "{% macro m() %}{{ customer.name }}{% endmacro %}{{ m() | upper }}",
    "{{ customer['name'] }}",
    "{% set c = customer %}{{ c.name }}",
    "{{ customer.name[:4] }}",
    "{{ customer }}",
    '{% include "_partials/evil.txt.j2" %}',
]


@pytest.mark.parametrize("template", UNSAFE, ids=range(len(UNSAFE)))
def test_templates_using_the_name_otherwise_are_rendered_per_customer(
    tmp_path: Path, template: str
) -> None:
    (tmp_path / "update").mkdir()
    (tmp_path / "_partials").mkdir()
    (tmp_path / "update" / "sms.txt.j2").write_text(template)
    (tmp_path / "_partials" / "evil.txt.j2").write_text("{{ customer.name | lower }}")
    r = Renderer(company=COMPANY, user_dir=tmp_path)
    assert not r._substitutable(RoundKind.UPDATE, "sms")
    inc, rnd = incident(), round_(RoundKind.UPDATE)
    for name in ("Acme Logistics", "Globex"):
        c = replace(customer(), name=name)
        fast = r.render_customer(RoundKind.UPDATE, "sms", incident=inc, round=rnd, customer=c)
        full = r.render(RoundKind.UPDATE, "sms", r.context(incident=inc, round=rnd, customer=c))
        assert fast == full
        assert "\ue000" not in fast.text


def test_plain_prints_in_an_override_and_its_include_stay_on_the_fast_path(
    tmp_path: Path,
) -> None:
    (tmp_path / "update").mkdir()
    (tmp_path / "_partials").mkdir()
    (tmp_path / "update" / "sms.txt.j2").write_text(
        "{% for x in incident.components %}{{ customer.name }}:{{ x }} {% endfor %}"
        '{{ incident.started_at }} {% include "_partials/hi.txt.j2" %}'
    )
    (tmp_path / "_partials" / "hi.txt.j2").write_text(
        "{% if customer.tier == 'enterprise' %}hi {{ customer.id }}{% endif %}"
    )
    r = Renderer(company=COMPANY, user_dir=tmp_path)
    assert r._substitutable(RoundKind.UPDATE, "sms")
    inc, rnd = incident(), round_(RoundKind.UPDATE)
    c = customer(tier="enterprise", name="A & B")
    fast = r.render_customer(RoundKind.UPDATE, "sms", incident=inc, round=rnd, customer=c)
    assert fast.text.startswith("A & B:auth ")
    assert fast.text.rstrip().endswith("hi c1")
