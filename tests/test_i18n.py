"""Messages in the customer's own language (issue 14): a de_DE customer reads German from the
shipped catalog (acknowledgement, holding, resolution with a credit, SMS; plural forms), a
customer whose language has no catalog reads the company's default language, and rendering
once per shape still gives exactly the full render with ``{% trans %}`` templates."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from outagecomms.config.model import CompanyConfig
from outagecomms.models import RoundKind
from outagecomms.rendering.i18n import Catalogs, candidates, count_fallbacks, language_of
from outagecomms.rendering.templates import STATUS_LABELS, Renderer
from tests.support import builders
from tests.support.i18n_golden import PEOPLE, SNAPSHOTS, renders, snapshots

pytestmark = pytest.mark.catalogs
DE = Catalogs().translations("de")


def de(msgid: str, **values: str) -> str:
    """What the German catalog says for ``msgid`` (with ``values`` put in)."""
    out = DE.gettext(msgid)
    assert out != msgid, f"not in the German catalog: {msgid!r}"
    return out % values if values else out


def de_n(singular: str, plural: str, n: int, **values: str) -> str:
    return DE.ngettext(singular, plural, n) % values


def german(kind: RoundKind, channel: str = "email", **extras: object):  # type: ignore[no-untyped-def]
    r = builders.renderer(builders.FULL_COMPANY)
    c = builders.customer()  # Europe/Berlin, de_DE, affected: auth in eu-west
    assert r.catalogs.resolve(c.locale) == "de"
    return r.render(kind, channel, builders.context(kind, c, r=r, **extras))


def test_locales_try_their_region_then_their_language() -> None:
    assert candidates("fr_CA") == ["fr_CA", "fr"]
    assert candidates("de-at") == ["de_AT", "de"]
    assert candidates("ja") == ["ja"]
    assert candidates("") == []
    assert language_of("pt_BR") == "pt"


def test_the_acknowledgement_in_german() -> None:
    out = german(RoundKind.ACKNOWLEDGEMENT)
    ctx = builders.context(RoundKind.ACKNOWLEDGEMENT, builders.customer())
    started, by = ctx["incident"], ctx["promised_next_by"]
    assert out.text.startswith(de("Hello %(name)s,", name="Acme Logistics") + "\n\n")
    since = de_n(
        "Since %(started)s, %(where)s is not working as it should for you: %(title)s.",
        "Since %(started)s, %(where)s are not working as it should for you: %(title)s.",
        1, started=started["started_at"], where="auth in eu-west", title="Sign-in failures",
    )  # fmt: skip
    assert since in out.text
    assert (
        de("We are sorry. This is our problem to fix, and our engineers are working on it now.")
        in out.text
    )
    assert f"{de('What we know so far:')} {builders.UPDATE}" in out.text  # their words as they are
    assert de("You will hear from us again by %(by)s, sooner if it is fixed.", by=by) in out.text
    assert de("Reference: %(ref)s", ref="INC-42") in out.text
    assert out.html is not None and '<html lang="de">' in out.html
    assert de("Hello %(name)s,", name="Acme Logistics") in out.html
    for english in ("Hello", "We are sorry", "You will hear", "To reach a person", "Reference:"):
        assert english not in out.text and english not in out.html


def test_the_holding_update_in_german_restates_the_status_in_german() -> None:
    r = builders.renderer(builders.FULL_COMPANY)
    c = builders.customer()
    inc, rnd = builders.incident(), builders.round_(RoundKind.HOLDING)
    latest = replace(builders.round_(RoundKind.UPDATE, message="Found it."), seq=2)
    ctx = r.context(incident=inc, round=rnd, customer=c, latest=latest)
    out = r.render(RoundKind.HOLDING, "email", ctx)
    label = DE.pgettext("status", STATUS_LABELS["identified"])
    assert label != STATUS_LABELS["identified"]
    assert ctx["latest"]["status_label"] == label
    assert (
        de("Latest (%(status)s, posted at %(at)s):", status=label, at=ctx["latest"]["posted_at"])
        in out.text
    )
    assert de("There is nothing new since then, and the team is on it.") in out.text
    slack = r.render(RoundKind.HOLDING, "slack", ctx)
    subject = de("[%(status)s] %(title)s: still working on it (%(ref)s)",
                 status=ctx["incident"]["status_label"], title="Sign-in failures", ref="INC-42")  # fmt: skip
    assert slack.subject == subject


def test_the_resolution_with_a_credit_in_german() -> None:
    out = german(RoundKind.RESOLUTION, **builders.extras(RoundKind.RESOLUTION))
    credit = builders.CREDIT
    assert de(
        "For the disruption we are crediting your account %(amount)s: %(reason)s. You will see "
        "it on your next invoice; there is nothing you need to do.",
        amount=credit["amount"], reason=credit["reason"],
    ) in out.text  # fmt: skip
    assert (
        de(
            "And because this should not have happened to you: %(goodwill)s.",
            goodwill=builders.GOODWILL,
        )
        in out.text
    )
    assert out.html is not None
    assert de("<strong>For the disruption we are crediting your account %(amount)s</strong>: %(reason)s. You will see it on your next invoice; there is nothing you need to do.",
              amount=credit["amount"], reason=credit["reason"]) in out.html  # fmt: skip
    # the duration in German words too (Babel's units, in the customer's locale)
    ctx = builders.context(RoundKind.RESOLUTION, builders.customer())
    assert ctx["incident"]["duration"] in out.text


def test_the_sms_in_german() -> None:
    out = german(RoundKind.ACKNOWLEDGEMENT, "sms")
    by = builders.context(RoundKind.ACKNOWLEDGEMENT, builders.customer())["promised_next_by"]
    want = de(
        "%(company)s %(ref)s: %(title)s - %(components)s in %(regions)s. We are sorry and on it.",
        company="S1 Technology", ref="INC-42", title="Sign-in failures", components="auth",
        regions="eu-west",
    )  # fmt: skip
    assert out.text.startswith(want + " " + de("Next update by %(by)s.", by=by))


def test_plural_forms_follow_the_number_of_components() -> None:
    r = builders.renderer()
    inc, rnd = builders.incident(), builders.round_(RoundKind.ACKNOWLEDGEMENT)
    one = builders.customer(components=("auth",), regions=())
    two = builders.customer(components=("api", "auth"), regions=())
    singular = "Since %(started)s, %(where)s is not working as it should for you: %(title)s."
    plural = "Since %(started)s, %(where)s are not working as it should for you: %(title)s."
    texts = {}
    for c, n in ((one, 1), (two, 2)):
        ctx = r.context(incident=inc, round=rnd, customer=c)
        texts[n] = r.render(RoundKind.ACKNOWLEDGEMENT, "email", ctx).text
        where = ", ".join(ctx["incident"]["components"])
        where = DE.gettext("%(components)s in %(regions)s") % {
            "components": where, "regions": ", ".join(ctx["incident"]["regions"])}  # fmt: skip
        values = {"started": ctx["incident"]["started_at"], "where": where, "title": inc.title}
        assert DE.ngettext(singular, plural, n) % values in texts[n]
    # German, like English, has a singular and a plural here ("funktioniert"/"funktionieren")
    assert DE.ngettext(singular, plural, 1) != DE.ngettext(singular, plural, 2)


def test_a_language_without_a_catalog_reads_the_company_default() -> None:
    inc, rnd = builders.incident(), builders.round_(RoundKind.ACKNOWLEDGEMENT)
    brussels = builders.customer("Europe/Brussels", "nl_BE")  # Dutch: no catalog
    english = Renderer(company=builders.COMPANY)  # [company] language = "en", the default
    assert english.catalogs.resolve("nl_BE") == "en"
    out = english.render_customer(RoundKind.ACKNOWLEDGEMENT, "email", incident=inc, round=rnd,
                                  customer=brussels)  # fmt: skip
    assert out.text.startswith("Hello Acme Logistics,\n")
    german_default = Renderer(company=replace(builders.COMPANY, language="de"))
    assert german_default.catalogs.resolve("nl_BE") == "de"
    assert german_default.catalogs.resolve("en_US") == "en"  # English readers keep English
    out = german_default.render_customer(RoundKind.ACKNOWLEDGEMENT, "email", incident=inc,
                                         round=rnd, customer=brussels)  # fmt: skip
    assert out.text.startswith(de("Hello %(name)s,", name="Acme Logistics"))
    assert count_fallbacks(german_default.catalogs, ["nl_BE", "de_DE", "en_GB", "sv_SE"]) == {
        "nl_BE": 1, "sv_SE": 1}  # fmt: skip


def test_a_regional_catalog_falls_back_to_its_language(tmp_path: Path) -> None:
    for name in ("fr", "de_CH"):
        (tmp_path / name / "LC_MESSAGES").mkdir(parents=True)
        (tmp_path / name / "LC_MESSAGES" / "outagecomms.po").write_text(
            f'msgid ""\nmsgstr ""\n"Language: {name}\\n"\n\nmsgid "Why:"\nmsgstr "{name}:"\n'
        )
    cats = Catalogs.with_user_dir(tmp_path)
    assert cats.resolve("fr_BE") == "fr"
    assert cats.resolve("de_CH") == "de_CH"
    assert cats.resolve("de_AT") == "de"
    assert cats.translations("fr").gettext("Why:") == "fr:"


def test_every_template_renders_in_german_with_no_english_sentence_left() -> None:
    """The whole golden population in German: nothing fails, and no English sentence of the
    catalog (one without placeholders, long enough to be a sentence) is left in a German
    customer's message."""
    sentences = [k for k in Catalogs().translations("de")._catalog if isinstance(k, str)]  # type: ignore[attr-defined]
    sentences = [s for s in sentences if len(s) > 25 and "%(" not in s]
    assert len(sentences) > 20
    german_ids = {c.id for c in PEOPLE if c.locale.startswith("de")}
    checked = 0
    for name, text in renders(lambda company: Renderer(company=company)):
        if "account_manager" in name or "escalation" in name:
            continue  # the company's own people read those in its language (below)
        for chunk in text.split("=== ")[1:]:
            who = chunk.split("\n", 1)[0].rsplit("customer ", 1)[1]
            if who in german_ids:
                checked += 1
                left = [s for s in sentences if s in chunk]
                assert not left, (name, left)
    assert checked > 100


# -- the shape cache with {% trans %} templates ----------------------------------------------

POPULATION = [
    builders.customer(tz, loc, id=f"c{i}", name=name, components=comps)
    for i, ((tz, loc), name, comps) in enumerate([
        (("Europe/Berlin", "de_DE"), 'Tom & Jerry <"Cartoons"> GmbH', ("auth",)),
        (("Europe/Berlin", "de_DE"), "Müller AG", ("auth",)),
        (("Europe/Vienna", "de_AT"), "Wien & Co", ("api", "auth")),
        (("America/Toronto", "fr_CA"), "Café <Montréal>", ()),
        (("America/New_York", "en_US"), "Acme", ()),
    ])
]  # fmt: skip
COMBOS = [(k, ch) for k in builders.KINDS for ch in ("email", "sms", "slack", "apprise")]


@pytest.mark.parametrize(("kind", "channel"), COMBOS, ids=[f"{k}-{c}" for k, c in COMBOS])
def test_shapes_give_the_full_render_in_every_language(kind: RoundKind, channel: str) -> None:
    r = Renderer(company=replace(builders.FULL_COMPANY, language="de"))
    inc = builders.incident(resolved=kind == RoundKind.RESOLUTION)
    rnd = builders.round_(kind)
    for n, c in enumerate(POPULATION):
        page = f"https://status.example.com/i/T{n}-<x>&" if n > 1 and n % 2 == 0 else ""
        full = r.render(
            kind, channel, r.context(incident=inc, round=rnd, customer=c, page_url=page)
        )
        fast = r.render_customer(kind, channel, incident=inc, round=rnd, customer=c, page_url=page)
        assert fast == full, c
    assert r._substitutable(kind, channel)
    assert 0 < len(r._shapes) < len(POPULATION)


TRANS_SAFE = [
    "{% trans name=customer.name %}Hello {{ name }}{% endtrans %}",
    "{% trans name=customer.name, id=customer.id %}{{ name }} ({{ id }}){% endtrans %}",
    '{{ gettext("Hello %(name)s", name=customer.name) }}',
    "{% trans count=2, n=customer.tier %}{{ n }} one{% pluralize %}{{ n }} many{% endtrans %}",
]
TRANS_UNSAFE = [
    "{% trans name=customer.name | upper %}Hello {{ name }}{% endtrans %}",
    '{{ gettext("Hello %(name)s", name=customer.name) | upper }}',
    "{% set gettext = cycler %}{% trans name=customer.name %}Hello {{ name }}{% endtrans %}",
    '{{ ngettext("%(name)s", "%(name)s", customer.name | length, name=customer.name) }}',
    '{{ "%(name)s" | format(name=customer.name) }}',
]


@pytest.mark.parametrize(("template", "safe"), [(t, True) for t in TRANS_SAFE]
                         + [(t, False) for t in TRANS_UNSAFE])  # fmt: skip
def test_trans_nodes_keep_the_fast_path_only_when_the_name_is_printed_as_it_is(
    tmp_path: Path, template: str, safe: bool
) -> None:
    (tmp_path / "update").mkdir()
    (tmp_path / "update" / "sms.txt.j2").write_text(template)
    r = Renderer(company=CompanyConfig(), user_dir=tmp_path)
    assert r._substitutable(RoundKind.UPDATE, "sms") is safe
    inc, rnd = builders.incident(), builders.round_(RoundKind.UPDATE)
    for name in ("Acme & Co", "Globex"):
        c = replace(builders.customer(), name=name)
        ctx = r.context(incident=inc, round=rnd, customer=c)
        if "cycler" in template:
            continue  # renders a cycler object, whatever the path
        fast = r.render_customer(RoundKind.UPDATE, "sms", incident=inc, round=rnd, customer=c)
        assert fast == r.render(RoundKind.UPDATE, "sms", ctx)
        assert not re.search("[\ue000\ue001]", fast.text)


def test_display_names_per_language(tmp_path: Path) -> None:
    from outagecomms.config.loader import load_config
    from outagecomms.errors import ConfigError

    cfg = tmp_path / "outagecomms.toml"
    cfg.write_text(
        '[components]\napi = "Public API"\n'
        '[components.auth]\nname = "Sign-in"\nnames = { de = "Anmeldung", fr_CA = "Connexion" }\n'
        '[regions.eu-west]\nnames = { de = "Europa (Irland)" }\n'
    )
    names = load_config(cfg).names
    assert names.component("auth") == "Sign-in"
    assert names.component("auth", "de") == names.component("auth", "de_CH") == "Anmeldung"
    assert names.component("auth", "fr_CA") == "Connexion"
    assert names.component("auth", "fr") == "Sign-in"
    assert names.component("api", "de") == "Public API"
    assert names.region("eu-west", "de") == "Europa (Irland)"
    assert names.region("eu-west", "en") == "eu-west"
    r = Renderer(company=builders.COMPANY, names=names)
    inc, rnd = builders.incident(), builders.round_(RoundKind.ACKNOWLEDGEMENT)
    berlin, ny = builders.customer(), builders.customer("America/New_York", "en_US")
    ctx = r.context(incident=inc, round=rnd, customer=berlin)
    assert ctx["incident"]["components"] == ["Anmeldung"]
    assert ctx["incident"]["regions"] == ["Europa (Irland)"]
    de_sms = r.render_customer(
        RoundKind.ACKNOWLEDGEMENT, "sms", incident=inc, round=rnd, customer=berlin
    )
    en_sms = r.render_customer(
        RoundKind.ACKNOWLEDGEMENT, "sms", incident=inc, round=rnd, customer=ny
    )
    assert "Anmeldung in Europa (Irland)" in de_sms.text
    assert "Sign-in in eu-west" in en_sms.text
    for bad, where in [
        ('[components.auth]\nnames = { klingon-ish = "x" }\n', "components.auth.names.klingon-ish"),
        ('[components.auth]\nnames = { de = "" }\n', "components.auth.names.de"),
        ('[components.auth]\nnome = "x"\n', "components.auth.nome"),
        ('[components.auth]\nnames = "Anmeldung"\n', "components.auth.names"),
    ]:
        cfg.write_text(bad)
        with pytest.raises(ConfigError, match=re.escape(where)):
            load_config(cfg)


def test_the_status_page_speaks_the_company_default_language() -> None:
    inc, rnd = builders.incident(), builders.round_(RoundKind.UPDATE)
    for language, want in (
        ("en", "Reference: INC-42"),
        ("de", de("Reference: %(ref)s", ref="INC-42")),
    ):
        r = Renderer(company=replace(builders.COMPANY, language=language))
        who = r.neutral_customer()
        assert who.locale == ("en_US" if language == "en" else language)  # English: as before
        out = r.render(
            RoundKind.UPDATE, "statuspage", r.context(incident=inc, round=rnd, customer=who)
        )
        assert out.text.rstrip().endswith(want)


def test_internal_copies_are_in_the_company_language_and_count_in_plural() -> None:
    """The account manager's copy and the escalation to the commander are for the company's
    own people: its default language, whatever the customer's."""
    inc, rnd = builders.incident(), builders.round_(RoundKind.ACKNOWLEDGEMENT)
    berlin = builders.customer()
    english = Renderer(company=builders.COMPANY)
    out = english.render_customer(RoundKind.ACKNOWLEDGEMENT, "account_manager", incident=inc,
                                  round=rnd, customer=berlin)  # fmt: skip
    assert out.text.rstrip().endswith("This is an internal copy: do not forward it.")
    assert english.render_customer(RoundKind.ACKNOWLEDGEMENT, "email", incident=inc, round=rnd,
                                   customer=berlin).text.startswith("Guten Tag")  # fmt: skip
    german = Renderer(company=replace(builders.COMPANY, language="de"))
    ny = builders.customer("America/New_York", "en_US")
    out = german.render_customer(RoundKind.UPDATE, "account_manager", incident=inc,
                                 round=builders.round_(RoundKind.UPDATE), customer=ny)  # fmt: skip
    label = DE.pgettext("status", STATUS_LABELS["identified"])
    assert de("This is an internal copy: do not forward it.") in out.text
    assert f"({label})" in out.text  # the status label in the company's language too
    ctx = {
        "company": builders.COMPANY, "incident": inc, "customer": ny, "text": "Down again.",
        "label": "negative", "score": -0.5, "language": "", "rule": "words", "why": "w",
        "channel": "email", "received_at": "", "credit": "",
    }  # fmt: skip
    for n in (1, 2):
        text = german.render_inbound("escalation", {**ctx, "incidents_this_quarter": n}).text
        who = DE.ngettext(
            "Who they are: tier %(tier)s, %(fee)s %(currency)s a month, %(count)s incident this quarter, credit for this incident: none.",
            "Who they are: tier %(tier)s, %(fee)s %(currency)s a month, %(count)s incidents this quarter, credit for this incident: none.",
            n,
        ) % {"tier": ny.tier, "fee": ny.monthly_fee, "currency": ny.currency, "count": n}
        assert who in text
        assert ("1 Störung " in text) == (n == 1) and ("2 Störungen " in text) == (n == 2)
        english_text = english.render_inbound(
            "escalation", {**ctx, "incidents_this_quarter": n}
        ).text
        assert f"{n} incident{'s' if n != 1 else ''} this quarter" in english_text


@pytest.mark.parametrize(("name", "text"), list(snapshots()), ids=lambda v: v[:8])
def test_the_reviewed_snapshots_are_what_customers_read(name: str, text: str) -> None:
    """tests/data/i18n/snapshots/<lang>.txt: the sample customer's messages in each shipped
    language, as a fluent reader reviews them (``python -m tests.support.i18n_golden
    --snapshots`` rewrites them after a catalog changed; review the diff)."""
    assert (SNAPSHOTS / name).read_text(encoding="utf-8") == text
