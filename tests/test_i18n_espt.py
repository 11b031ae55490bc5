"""Spanish (``es``) and Brazilian Portuguese (``pt_BR``) from the shipped catalogs (issue 14):
a customer in Mexico City and one in São Paulo read the acknowledgement, the holding update, the
resolution with a credit and the SMS in their language, with the plural forms of their
language, and every SMS stays within two segments: the catalogs' SMS sentences are written
within GSM-7 (no á/ã/ç...), since one such letter makes the whole text UCS-2 (67 characters a
part instead of 153) and a 60-character title no longer fits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from babel.support import Translations

from outagecomms.channels.twilio import sms_segments
from outagecomms.models import Customer, RoundKind
from outagecomms.rendering.i18n import Catalogs
from outagecomms.rendering.templates import STATUS_LABELS, Rendered
from tests.support import builders

pytestmark = pytest.mark.catalogs
LANGS = ["es", "pt_BR"]
#: a sample customer of each locale: its zone, its locale, a name that needs escaping in HTML
SAMPLE = {
    "es": ("America/Mexico_City", "es_MX", "Logística Peña & Hijos S.A. de C.V."),
    "pt_BR": ("America/Sao_Paulo", "pt_BR", "Transportes Ação & Cia. Ltda."),
}
#: the inputs of tests/test_twilio.py's two-segment check, as a commander of that country
#: writes them (a title within GSM-7, as most are), and an amount as billing writes it
SMS_INPUTS = {
    "es": ("Fallos de acceso y respuestas lentas de la API para algunos clientes",
           "1.250,00 €", "10 % de la cuota mensual"),
    "pt_BR": ("Falhas de login e respostas lentas da API para alguns clientes",
              "R$ 1.250,00", "10 % da mensalidade"),
}  # fmt: skip
PAGE_URL = "https://status.example.com/i/" + "AQAAAAAAKmm5Ey2AaeGtXmFjbWUtY29ycCr7n0o1kXbL1rQZ"
UPDATE = "A database failover is in progress; sign-ins are recovering."


def words(lang: str) -> Translations:
    return Catalogs().translations(lang)


def tr(lang: str, msgid: str, **values: object) -> str:
    """What the ``lang`` catalog says for ``msgid`` (with ``values`` put in)."""
    out = words(lang).gettext(msgid)
    assert out != msgid, f"not in the {lang} catalog: {msgid!r}"
    return out % values if values else out


def sample(lang: str, **kw: object) -> Customer:
    tz, locale, name = SAMPLE[lang]
    return builders.customer(tz, locale, **{"name": name, **kw})


def render(lang: str, kind: RoundKind, channel: str = "email", **extras: object) -> Rendered:
    r = builders.renderer(builders.FULL_COMPANY)
    c = sample(lang)
    assert r.catalogs.resolve(c.locale) == lang
    return r.render(kind, channel, builders.context(kind, c, r=r, **extras))


@pytest.mark.parametrize("lang", LANGS)
def test_the_acknowledgement(lang: str) -> None:
    out = render(lang, RoundKind.ACKNOWLEDGEMENT)
    ctx = builders.context(RoundKind.ACKNOWLEDGEMENT, sample(lang))
    name = SAMPLE[lang][2]
    assert out.text.startswith(tr(lang, "Hello %(name)s,", name=name) + "\n\n")
    since = words(lang).ngettext(
        "Since %(started)s, %(where)s is not working as it should for you: %(title)s.",
        "Since %(started)s, %(where)s are not working as it should for you: %(title)s.", 1,
    ) % {"started": ctx["incident"]["started_at"],  # type: ignore[index]
         "where": tr(lang, "%(components)s in %(regions)s", components="auth", regions="eu-west"),
         "title": "Sign-in failures"}  # fmt: skip
    assert since in out.text
    own_it = "We are sorry. This is our problem to fix, and our engineers are working on it now."
    assert tr(lang, own_it) in out.text
    assert f"{tr(lang, 'What we know so far:')} {builders.UPDATE}" in out.text
    by = ctx["promised_next_by"]
    assert tr(lang, "You will hear from us again by %(by)s, sooner if it is fixed.", by=by) in (
        out.text
    )
    assert tr(lang, "Reference: %(ref)s", ref="INC-42") in out.text
    assert out.html is not None and f'<html lang="{lang.split("_")[0]}' in out.html
    assert tr(lang, "Hello %(name)s,", name=name.replace("&", "&amp;")) in out.html
    for english in ("Hello", "We are sorry", "You will hear", "To reach a person", "Reference:"):
        assert english not in out.text and english not in out.html


@pytest.mark.parametrize("lang", LANGS)
def test_the_holding_update_restates_the_status_in_their_language(lang: str) -> None:
    r = builders.renderer(builders.FULL_COMPANY)
    inc, rnd = builders.incident(), builders.round_(RoundKind.HOLDING)
    latest = replace(builders.round_(RoundKind.UPDATE, message="Found it."), seq=2)
    ctx = r.context(incident=inc, round=rnd, customer=sample(lang), latest=latest)
    out = r.render(RoundKind.HOLDING, "email", ctx)
    label = words(lang).pgettext("status", STATUS_LABELS["identified"])
    assert label != STATUS_LABELS["identified"]
    assert ctx["latest"]["status_label"] == label
    latest_line = tr(lang, "Latest (%(status)s, posted at %(at)s):", status=label,
                     at=ctx["latest"]["posted_at"])  # fmt: skip
    assert f"{latest_line}\nFound it." in out.text
    assert tr(lang, "There is nothing new since then, and the team is on it.") in out.text
    promise = ("We promised to keep you informed: your next update will come by %(by)s, "
               "sooner if anything changes.")  # fmt: skip
    assert tr(lang, promise, by=ctx["promised_next_by"]) in out.text
    slack = r.render(RoundKind.HOLDING, "slack", ctx)
    assert slack.subject == tr(lang, "[%(status)s] %(title)s: still working on it (%(ref)s)",
                               status=ctx["incident"]["status_label"], title="Sign-in failures",
                               ref="INC-42")  # fmt: skip


@pytest.mark.parametrize("lang", LANGS)
def test_the_resolution_with_a_credit(lang: str) -> None:
    out = render(lang, RoundKind.RESOLUTION, **builders.extras(RoundKind.RESOLUTION))
    credit = builders.CREDIT
    crediting = ("For the disruption we are crediting your account %(amount)s: %(reason)s. You "
                 "will see it on your next invoice; there is nothing you need to do.")  # fmt: skip
    assert tr(lang, crediting, amount=credit["amount"], reason=credit["reason"]) in out.text
    goodwill = "And because this should not have happened to you: %(goodwill)s."
    assert tr(lang, goodwill, goodwill=builders.GOODWILL) in out.text
    assert out.html is not None
    html = ("<strong>For the disruption we are crediting your account %(amount)s</strong>: "
            "%(reason)s. You will see it on your next invoice; there is nothing you need to do.")  # fmt: skip
    assert tr(lang, html, amount=credit["amount"], reason=credit["reason"]) in out.html
    ctx = builders.context(RoundKind.RESOLUTION, sample(lang))
    assert ctx["incident"]["duration"] in out.text  # type: ignore[index]  # Babel's words
    assert "We are sorry" not in out.text and "invoice" not in out.text


@pytest.mark.parametrize("lang", LANGS)
def test_the_sms(lang: str) -> None:
    out = render(lang, RoundKind.ACKNOWLEDGEMENT, "sms")
    by = builders.context(RoundKind.ACKNOWLEDGEMENT, sample(lang))["promised_next_by"]
    by = str(by).replace("\u202f", " ").replace("\u00a0", " ")  # as the SMS template does
    want = tr(lang,
        "%(company)s %(ref)s: %(title)s - %(components)s in %(regions)s. We are sorry and on it.",
        company="S1 Technology", ref="INC-42", title="Sign-in failures", components="auth",
        regions="eu-west",
    )  # fmt: skip
    assert out.text.startswith(want + " " + tr(lang, "Next update by %(by)s.", by=by))
    assert sms_segments(out.text.strip()) == ("GSM-7", 1)


@pytest.mark.parametrize("lang", LANGS)
def test_plural_forms_follow_the_number_of_components(lang: str) -> None:
    r = builders.renderer()
    inc, rnd = builders.incident(), builders.round_(RoundKind.ACKNOWLEDGEMENT)
    singular = "Since %(started)s, %(where)s is not working as it should for you: %(title)s."
    plural = "Since %(started)s, %(where)s are not working as it should for you: %(title)s."
    cat = words(lang)
    for components, n in ((("auth",), 1), (("api", "auth"), 2)):
        c = sample(lang, components=components, regions=())
        ctx = r.context(incident=inc, round=rnd, customer=c)
        text = r.render(RoundKind.ACKNOWLEDGEMENT, "email", ctx).text
        where = cat.gettext("%(components)s in %(regions)s") % {
            "components": ", ".join(ctx["incident"]["components"]),
            "regions": ", ".join(ctx["incident"]["regions"]),
        }
        values = {"started": ctx["incident"]["started_at"], "where": where, "title": inc.title}
        assert cat.ngettext(singular, plural, n) % values in text
    # one component "no funciona" / "não está funcionando", two "no funcionan" / "não estão"
    assert cat.ngettext(singular, plural, 1) != cat.ngettext(singular, plural, 2)
    # the Plural-Forms of the language (CLDR: a third form for millions) reads the plural there
    assert cat.ngettext(singular, plural, 1_000_000) == cat.ngettext(singular, plural, 2)


@pytest.mark.parametrize("lang", LANGS)
def test_the_account_managers_count_of_incidents_is_plural_in_their_language(lang: str) -> None:
    msgids = (
        "Who they are: tier %(tier)s, %(fee)s %(currency)s a month, %(count)s incident this "
        "quarter, credit for this incident: none.",
        "Who they are: tier %(tier)s, %(fee)s %(currency)s a month, %(count)s incidents this "
        "quarter, credit for this incident: none.",
    )
    values = {"tier": "enterprise", "fee": "100", "currency": "EUR"}
    one = words(lang).ngettext(*msgids, 1) % {**values, "count": 1}
    two = words(lang).ngettext(*msgids, 2) % {**values, "count": 2}
    assert "1 incidente " in one and "2 incidentes " in two


def _sms_texts(lang: str, with_extras: bool, with_page: bool) -> list[tuple[str, str]]:
    r = builders.renderer()
    c = sample(lang, name="Acme Logistics GmbH & Co. KG")
    title, amount, reason = SMS_INPUTS[lang]
    credit = {"amount": amount, "reason": reason}
    texts = []
    for kind in RoundKind:
        more: dict[str, Any] = builders.extras(kind, credit=credit) if with_extras else {}
        if with_page:
            more["page_url"] = PAGE_URL
        ctx = builders.context(kind, c, r=r, title=title, message=UPDATE, **more)
        texts.append((kind.value, r.render(kind, "sms", ctx).text.strip()))
    inc = builders.incident(title=title)
    for am in ("", "María Fernanda Gonçalves"):  # the thank-you for a reply, by SMS
        ctx = {"company": builders.COMPANY, "incident": inc, "customer": c, "escalated": False,
               "account_manager": am}  # fmt: skip
        out = r.render_inbound("acknowledgement_sms", ctx)
        texts.append(("reply-am" if am else "reply", out.text.strip()))
    return texts


@pytest.mark.parametrize("with_page", [False, True], ids=["no-page", "page-link"])
@pytest.mark.parametrize("with_extras", [False, True], ids=["plain", "with-extras"])
@pytest.mark.parametrize("lang", LANGS)
def test_sms_templates_fit_two_segments(lang: str, with_extras: bool, with_page: bool) -> None:
    """As tests/test_twilio.py checks English and German: every kind, with and without the
    extras and the page link, in two segments; the catalog's words keep the text GSM-7."""
    title, amount, _ = SMS_INPUTS[lang]
    next_update = tr(lang, "Next update by %(by)s.").split("%(by)s")[0]
    for kind, text in _sms_texts(lang, with_extras, with_page):
        encoding, segments = sms_segments(text)
        assert segments <= 2, f"{kind}: {segments} {encoding} segments: {text!r}"
        assert "\n" not in text and "{{" not in text
        assert "INC-42" in text
        if kind == "reply-am":  # an account manager's name with í or ç: UCS-2, still two
            continue
        if kind == "reply":
            assert encoding == "GSM-7", text
            continue
        if not builders.done(RoundKind(kind)):
            assert next_update in text, text
        assert (amount in text) == (with_extras and kind in ("resolution", "credit"))
        # a name with ç (the account manager's) may make it UCS-2; our own words never do
        assert encoding == "GSM-7", f"{kind}: {text!r}"
        if kind == "acknowledgement":  # the title as far as the template's truncate keeps it
            assert title[:40] in text


@pytest.mark.parametrize("lang", LANGS)
def test_the_sms_words_are_their_language(lang: str) -> None:
    texts = dict(_sms_texts(lang, with_extras=True, with_page=False))
    assert tr(lang, "Credit of %(amount)s on your next invoice.",
              amount=SMS_INPUTS[lang][1]) in texts["resolution"]  # fmt: skip
    assert tr(lang, "How did we do?") in texts["follow_up"]
    for english in ("We are sorry", "Next update", "still working", "please disregard"):
        assert all(english not in t for t in texts.values()), english
