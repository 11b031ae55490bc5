"""Scheduled maintenance notices in the customer's language (issues 14 and 15): an English
reader's notices are byte for byte what they were before the templates moved to
``{% trans %}`` (tests/support/maintenance_golden.py wrote the golden files first), a German
and a Japanese reader read theirs in their language, with the components' names in it, and
every maintenance SMS stays within two segments in every shipped language."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from outagecomms.channels.twilio import sms_segments
from outagecomms.maintenance import render
from outagecomms.models import Customer, NoticeKind
from outagecomms.rendering.templates import Rendered
from tests.support.builders import FULL_COMPANY, customer
from tests.support.maintenance_golden import (
    CASES,
    GOLDEN,
    NAMES,
    notices,
    renderer,
    renders,
    window,
)

pytestmark = pytest.mark.catalogs

GOLDEN_CASES = dict(renders())

#: a reader per shipped language, in a zone of theirs, with one of the windows' regions
READERS = {
    "de": customer("Europe/Berlin", "de_DE", id="d1", name="Müller & Söhne GmbH"),
    "fr": customer("Europe/Paris", "fr_FR", id="f1", name="Dupont SA"),
    "fr_CA": customer("America/Toronto", "fr_CA", id="q1", name="Tremblay inc."),
    "es": customer("Europe/Madrid", "es_ES", id="e1", name="García y Asociados"),
    "pt_BR": customer("America/Sao_Paulo", "pt_BR", id="p1", name="Silva Ltda"),
    "ja": customer("Asia/Tokyo", "ja_JP", id="j1", name="東京物流株式会社"),
}
ANNOUNCE = "We will carry out planned maintenance on %(where)s: %(title)s."


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_english_output_is_unchanged(name: str) -> None:
    assert GOLDEN_CASES[name] == (GOLDEN / name).read_text(encoding="utf-8")


def test_every_golden_file_is_still_rendered() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.txt")) == sorted(GOLDEN_CASES)


def _announcement(reader: Customer, tset: str) -> tuple[Rendered, dict[str, Any]]:
    case = CASES[0]  # two components (one with per-language names) in a region
    notice = dict(notices(case))["announcement"]
    r = renderer(case.company)
    ctx = render.context(r, window(case), notice, reader)
    return render.render(r, tset, ctx), ctx


@pytest.mark.parametrize("lang", ["de", "ja"])
def test_an_announcement_reads_in_the_customers_language(lang: str) -> None:
    reader = READERS[lang]
    r = renderer(CASES[0].company)
    assert r.catalogs.resolve(reader.locale) == lang
    words = r.catalogs.translations(lang)
    comps = ", ".join(NAMES.component(c, lang) for c in CASES[0].components)
    regions = ", ".join(NAMES.region(g, lang) for g in CASES[0].regions)
    # the display names in their language where the config gives one (database, in both)
    assert NAMES.component("database", lang) in comps
    assert NAMES.component("database", lang) != NAMES.component("database")
    where = words.gettext("%(components)s in %(regions)s") % {
        "components": comps,
        "regions": regions,
    }
    title = "Database upgrade"

    email, ctx = _announcement(reader, "email")
    assert ctx["language"] == lang
    headline = words.gettext(ANNOUNCE) % {"where": where, "title": title}
    assert headline != ANNOUNCE % {"where": where, "title": title}
    assert headline in email.text
    assert words.gettext("Hello %(name)s,") % {"name": reader.name} in email.text
    label = words.gettext("Planned maintenance")
    subject = words.gettext("%(label)s: %(title)s (%(starts)s) [%(ref)s]") % {
        "label": label,
        "title": title,
        "starts": ctx["maintenance"]["starts_at"],
        "ref": "MNT-7",
    }
    assert email.subject == " ".join(subject.split())
    assert email.html is not None and f'<html lang="{lang}">' in email.html
    assert words.gettext("The invitation in this email puts the window in your calendar.") in (
        email.html
    )
    for english in ("Hello", "planned maintenance", "What you will notice", "Reference:"):
        assert english not in email.text, english

    sms, _ = _announcement(reader, "sms")
    short = words.pgettext("sms", ANNOUNCE) % {"where": where, "title": title}
    assert short in sms.text
    assert "planned maintenance" not in sms.text
    assert sms_segments(_as_sent(sms.text))[1] <= 2


def _as_sent(text: str) -> str:
    """What the SMS channel sends: no-break spaces as plain ones."""
    return text.strip().replace("\u00a0", " ").replace("\u202f", " ")


@pytest.mark.parametrize("lang", sorted(READERS))
def test_every_maintenance_sms_fits_two_segments(lang: str) -> None:
    reader = READERS[lang]
    everywhere = customer(reader.timezone, reader.locale, components=(), regions=())
    seen = set()
    for who in (reader, everywhere):
        # every case as sent by a company with all its contacts and a status page (the longest)
        for case in [*CASES, *(replace(c, company=FULL_COMPANY) for c in CASES)]:
            r = renderer(case.company)
            assert r.catalogs.resolve(who.locale) == lang
            for kind, notice in notices(case):
                text = _as_sent(
                    render.render(r, "sms", render.context(r, window(case), notice, who)).text
                )
                encoding, segments = sms_segments(text)
                assert segments <= 2, (lang, case.name, kind, encoding, len(text), text)
                seen.add(kind)
    assert {k.value.removeprefix("maintenance_") for k in NoticeKind} <= seen


@pytest.mark.parametrize("lang", ["de", "ja", "en"])
def test_the_invitations_description_names_what_it_touches_in_their_language(lang: str) -> None:
    reader = READERS.get(lang) or customer("America/New_York", "en_US", id="c3")
    case = CASES[0]
    r = renderer(case.company)
    notice = dict(notices(case))["announcement"]
    text = render.describe(r, window(case), notice, reader)
    words = r.catalogs.translations(r.catalogs.resolve(reader.locale))
    touched = [NAMES.component(c, lang) for c in case.components]
    touched += [NAMES.region(g, lang) for g in case.regions]
    line = words.gettext("Affects: %(what)s") % {"what": ", ".join(touched)}
    assert line in text.splitlines()
    assert line.startswith("Affects: ") == (lang == "en")
