"""French for France (``fr``) and for Québec (``fr_CA``, a catalog of its own): a sample
customer of each reads the acknowledgement, holding update, resolution with a credit and SMS in
their French (phrases read from the catalog), with the plural forms of the number of affected
components; every SMS fits two segments as Twilio sends it, and the catalogs' SMS words never
force UCS-2; France and Québec keep their own typography and terms."""

from __future__ import annotations

from dataclasses import replace

import pytest
from babel.numbers import format_currency

from outagecomms.channels.twilio import _SPACES, TwilioChannel, sms_segments
from outagecomms.models import RoundKind
from outagecomms.rendering.i18n import Catalogs
from outagecomms.rendering.templates import STATUS_LABELS
from tests.support import builders
from tests.test_twilio import PAGE_URL

pytestmark = pytest.mark.catalogs

#: language -> (zone, locale, currency) of a sample customer
SAMPLE = {"fr": ("Europe/Paris", "fr_FR", "EUR"), "fr_CA": ("America/Toronto", "fr_CA", "CAD")}
LANGS = sorted(SAMPLE)
NBSP, NNBSP = "\u00a0", "\u202f"


def words(lang: str):  # type: ignore[no-untyped-def]
    return Catalogs().translations(lang)


def tr(lang: str, msgid: str, **values: str) -> str:
    """What catalog ``lang`` says for ``msgid`` (with ``values`` put in)."""
    out = words(lang).gettext(msgid)
    assert out != msgid, f"not in the {lang} catalog: {msgid!r}"
    return out % values if values else out


def sample(lang: str, **kw: object):  # type: ignore[no-untyped-def]
    tz, locale, _ = SAMPLE[lang]
    return builders.customer(tz, locale, **kw)


def render(lang: str, kind: RoundKind, channel: str = "email", **extras: object):  # type: ignore[no-untyped-def]
    r = builders.renderer(builders.FULL_COMPANY)
    c = sample(lang)
    assert r.catalogs.resolve(c.locale) == lang
    return r.render(kind, channel, builders.context(kind, c, r=r, **extras))


def where(lang: str, ctx: dict[str, object]) -> str:
    inc = ctx["incident"]
    assert isinstance(inc, dict)
    components = ", ".join(inc["components"])
    if not inc["regions"]:
        return str(components)
    return tr(lang, "%(components)s in %(regions)s", components=components,
              regions=", ".join(inc["regions"]))  # fmt: skip


def test_fr_ca_is_its_own_catalog() -> None:
    cats = Catalogs()
    assert cats.resolve("fr_CA") == "fr_CA"
    assert cats.resolve("fr_FR") == cats.resolve("fr_BE") == "fr"
    assert cats.resolve("fr_CH") == "fr"  # no catalog of its own: France's French


@pytest.mark.parametrize("lang", LANGS)
def test_the_acknowledgement_in_french(lang: str) -> None:
    out = render(lang, RoundKind.ACKNOWLEDGEMENT)
    ctx = builders.context(RoundKind.ACKNOWLEDGEMENT, sample(lang))
    inc, by = ctx["incident"], ctx["promised_next_by"]
    assert isinstance(inc, dict) and isinstance(by, str)
    assert out.text.startswith(tr(lang, "Hello %(name)s,", name="Acme Logistics") + "\n\n")
    since = words(lang).ngettext(
        "Since %(started)s, %(where)s is not working as it should for you: %(title)s.",
        "Since %(started)s, %(where)s are not working as it should for you: %(title)s.", 1,
    ) % {"started": inc["started_at"], "where": where(lang, ctx), "title": "Sign-in failures"}  # fmt: skip
    assert since in out.text
    sorry = "We are sorry. This is our problem to fix, and our engineers are working on it now."
    assert tr(lang, sorry) in out.text
    assert f"{tr(lang, 'What we know so far:')} {builders.UPDATE}" in out.text
    assert (
        tr(lang, "You will hear from us again by %(by)s, sooner if it is fixed.", by=by) in out.text
    )
    assert tr(lang, "Reference: %(ref)s", ref="INC-42") in out.text
    assert out.html is not None and '<html lang="fr">' in out.html
    assert tr(lang, "Hello %(name)s,", name="Acme Logistics") in out.html
    for english in ("Hello", "We are sorry", "You will hear", "To reach a person", "Reference:"):
        assert english not in out.text and english not in out.html


@pytest.mark.parametrize("lang", LANGS)
def test_the_holding_update_in_french_restates_the_status_in_french(lang: str) -> None:
    r = builders.renderer(builders.FULL_COMPANY)
    c = sample(lang)
    inc, rnd = builders.incident(), builders.round_(RoundKind.HOLDING)
    latest = replace(builders.round_(RoundKind.UPDATE, message="Found it."), seq=2)
    ctx = r.context(incident=inc, round=rnd, customer=c, latest=latest)
    out = r.render(RoundKind.HOLDING, "email", ctx)
    label = words(lang).pgettext("status", STATUS_LABELS["identified"])
    assert label != STATUS_LABELS["identified"]
    assert ctx["latest"]["status_label"] == label
    posted = ctx["latest"]["posted_at"]
    assert tr(lang, "Latest (%(status)s, posted at %(at)s):", status=label, at=posted) in out.text
    assert tr(lang, "There is nothing new since then, and the team is on it.") in out.text
    slack = r.render(RoundKind.HOLDING, "slack", ctx)
    subject = tr(
        lang, "[%(status)s] %(title)s: still working on it (%(ref)s)",
        status=ctx["incident"]["status_label"], title="Sign-in failures", ref="INC-42",
    )  # fmt: skip
    assert NBSP + ":" in subject
    assert slack.subject == " ".join(subject.split())  # a subject's spaces are folded to plain


@pytest.mark.parametrize("lang", LANGS)
def test_the_resolution_with_a_credit_in_french(lang: str) -> None:
    out = render(lang, RoundKind.RESOLUTION, **builders.extras(RoundKind.RESOLUTION))
    credit = builders.CREDIT
    assert tr(
        lang,
        "For the disruption we are crediting your account %(amount)s: %(reason)s. You will see "
        "it on your next invoice; there is nothing you need to do.",
        amount=credit["amount"], reason=credit["reason"],
    ) in out.text  # fmt: skip
    goodwill = "And because this should not have happened to you: %(goodwill)s."
    assert tr(lang, goodwill, goodwill=builders.GOODWILL) in out.text
    assert out.html is not None
    assert tr(lang, "<strong>For the disruption we are crediting your account %(amount)s</strong>: %(reason)s. You will see it on your next invoice; there is nothing you need to do.",
              amount=credit["amount"], reason=credit["reason"]) in out.html  # fmt: skip
    ctx = builders.context(RoundKind.RESOLUTION, sample(lang))
    assert ctx["incident"]["duration"] in out.text  # Babel's French units


@pytest.mark.parametrize("lang", LANGS)
def test_the_sms_in_french(lang: str) -> None:
    out = render(lang, RoundKind.ACKNOWLEDGEMENT, "sms")
    by = builders.context(RoundKind.ACKNOWLEDGEMENT, sample(lang))["promised_next_by"]
    assert isinstance(by, str)
    want = tr(
        lang,
        "%(company)s %(ref)s: %(title)s - %(components)s in %(regions)s. We are sorry and on it.",
        company="S1 Technology", ref="INC-42", title="Sign-in failures", components="auth",
        regions="eu-west",
    )  # fmt: skip
    by = by.replace(NNBSP, " ").replace(NBSP, " ")  # as the template passes it
    assert out.text.startswith(want + " " + tr(lang, "Next update by %(by)s.", by=by))


@pytest.mark.parametrize("lang", LANGS)
def test_plural_forms_follow_the_number_of_components(lang: str) -> None:
    r = builders.renderer()
    inc, rnd = builders.incident(), builders.round_(RoundKind.ACKNOWLEDGEMENT)
    singular = "Since %(started)s, %(where)s is not working as it should for you: %(title)s."
    plural = "Since %(started)s, %(where)s are not working as it should for you: %(title)s."
    cat = words(lang)
    for comps, n in ((("auth",), 1), (("api", "auth"), 2)):
        c = sample(lang, components=comps, regions=())
        ctx = r.context(incident=inc, round=rnd, customer=c)
        text = r.render(RoundKind.ACKNOWLEDGEMENT, "email", ctx).text
        values = {"started": ctx["incident"]["started_at"], "where": where(lang, ctx),
                  "title": inc.title}  # fmt: skip
        assert cat.ngettext(singular, plural, n) % values in text
    # "ne fonctionne pas" / "ne fonctionnent pas"
    assert cat.ngettext(singular, plural, 1) != cat.ngettext(singular, plural, 2)
    assert "fonctionnent" in cat.ngettext(singular, plural, 2)
    assert "fonctionnent" not in cat.ngettext(singular, plural, 1)


@pytest.mark.parametrize("lang", LANGS)
def test_the_escalation_counts_incidents_in_french(lang: str) -> None:
    from outagecomms.rendering.templates import Renderer

    french = Renderer(company=replace(builders.COMPANY, language=lang))
    c = sample(lang)
    ctx = {
        "company": builders.COMPANY, "incident": builders.incident(), "customer": c,
        "text": "En panne encore.", "label": "negative", "score": -0.5, "language": "",
        "rule": "words", "why": "w", "channel": "email", "received_at": "", "credit": "",
    }  # fmt: skip
    for n in (1, 2):
        text = french.render_inbound("escalation", {**ctx, "incidents_this_quarter": n}).text
        assert (f"{n} incident ce trimestre" in text) == (n == 1)
        assert (f"{n} incidents ce trimestre" in text) == (n == 2)


@pytest.mark.parametrize("with_page", [False, True], ids=["no-page", "page-link"])
@pytest.mark.parametrize("with_extras", [False, True], ids=["plain", "with-extras"])
@pytest.mark.parametrize("lang", LANGS)
def test_french_sms_templates_fit_two_segments(
    lang: str, with_extras: bool, with_page: bool
) -> None:
    """test_twilio's inputs, in French: every SMS, as the channel sends it (no-break spaces
    become plain ones), fits two segments."""
    r = builders.renderer()
    c = sample(lang, name="Transports Dupont & Fils SARL")
    _, locale, currency = SAMPLE[lang]
    credit = {"amount": format_currency(1250, currency, locale=locale),
              "reason": "10 % de l'abonnement mensuel"}  # fmt: skip
    title = "Échecs de connexion et lenteur des réponses de l'API pour certains clients"
    update = (
        "Une bascule de la base de données est en cours ; les connexions reviennent, mais "
        "certains appels à l'API expirent encore. Nous déplaçons le reste du trafic."
    )
    next_update = words(lang).gettext("Next update by %(by)s.").split("%(by)s")[0]
    assert next_update and next_update != "Next update by "
    for kind in RoundKind:
        more = builders.extras(kind, credit=credit) if with_extras else {}
        if with_page:
            more["page_url"] = PAGE_URL
        ctx = builders.context(kind, c, r=r, title=title, message=update, **more)
        text = r.render(kind, TwilioChannel.template_channel, ctx).text.strip()
        sent = text.translate(_SPACES)  # what TwilioChannel.form puts in Body
        encoding, segments = sms_segments(sent)
        assert segments <= 2, f"{kind}: {segments} {encoding} segments: {sent!r}"
        assert "INC-42" in text and "\n" not in text
        if not builders.done(kind):
            assert next_update in text, text
        if kind != RoundKind.FOLLOW_UP or not with_extras:
            assert (PAGE_URL in text) == with_page
        assert (credit["amount"] in text) == (
            with_extras and kind in (RoundKind.RESOLUTION, RoundKind.CREDIT)
        )


@pytest.mark.parametrize("lang", LANGS)
def test_the_catalogs_sms_words_never_force_ucs2(lang: str) -> None:
    """With ASCII inputs every French SMS stays GSM-7 (the room for 306 characters, not 134):
    no narrow no-break space, guillemet or ê/ç in the SMS strings."""
    r = builders.renderer()
    c = sample(lang, name="Dupont SARL")
    for kind in RoundKind:
        more = builders.extras(kind, credit={"amount": "12.00", "reason": "ten percent"})
        ctx = builders.context(kind, c, r=r, message="Rolled back.", **more)
        text = r.render(kind, TwilioChannel.template_channel, ctx).text.strip()
        assert sms_segments(text.translate(_SPACES))[0] == "GSM-7", (kind, text)


def test_france_and_quebec_keep_their_own_typography_and_terms() -> None:
    """France: a narrow no-break space before ; ! ? and a no-break space before :; Québec: a
    no-break space before : and none before ; ! ?; "e-mail" in France, "courriel" in Québec."""
    fr = render("fr", RoundKind.RESOLUTION, **builders.extras(RoundKind.RESOLUTION)).text
    ca = render("fr_CA", RoundKind.RESOLUTION, **builders.extras(RoundKind.RESOLUTION)).text
    assert NNBSP + ";" in fr and NNBSP + "?" in fr and NBSP + ":" in fr
    assert NBSP + ":" in ca and "?" in ca and ";" in ca
    for p in ";?!":
        assert f" {p}" not in ca and NBSP + p not in ca and NNBSP + p not in ca
        assert f" {p}" not in fr
    assert "e-mail" in fr and "courriel" not in fr
    assert "courriel" in ca and "e-mail" not in ca
