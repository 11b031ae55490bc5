"""What every default template renders for a population of customers and rounds, written
as golden files before the templates moved to ``{% trans %}`` (issue 14): the English
output must stay byte for byte what it was.

``python -m tests.support.i18n_golden`` (re)writes ``tests/data/i18n/golden/``; only ever
run it against templates whose English output is known good (it was first run on main's
templates before their conversion). ``tests/test_i18n_golden.py`` compares. With
``--snapshots`` it writes ``tests/data/i18n/snapshots/<lang>.txt`` instead: what a sample
customer reads in each shipped language, for review by a fluent reader (tests/test_i18n.py
compares)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from outagecomms.config.model import CompanyConfig
from outagecomms.models import Customer, RoundKind
from outagecomms.rendering.templates import PARTS, Rendered, Renderer, default_templates_dir
from tests.support.builders import COMPANY, FULL_COMPANY, customer, incident, round_

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "i18n" / "golden"
NO_CONTACT = CompanyConfig(name="Quiet Co")
PHONE_ONLY = replace(NO_CONTACT, name="Phone Co", support_phone="+15550100100")
COMPANIES = {"full": FULL_COMPANY, "email": COMPANY, "phone": PHONE_ONLY, "none": NO_CONTACT}

#: who reads it: zones and locales (their dates and numbers), names that need escaping,
#: one or several affected components, with and without regions
PEOPLE = [
    customer("Europe/Berlin", "de_DE", id="c1", name='Tom & Jerry <"Cartoons"> Ltd',
             tier="enterprise", components=("auth",), regions=("eu-west",)),
    customer("Asia/Tokyo", "ja_JP", id="c2&<x>", name="Zoë Müller – 東京", tier="standard",
             components=(), regions=()),
    customer("America/New_York", "en_US", id="c3", name="Acme Logistics", tier="standard",
             components=("api", "auth"), regions=("eu-west",)),
    customer("Europe/Paris", "fr_FR", id="c4", name="O'Reilly\tMedia", tier="enterprise",
             components=("api",), regions=()),
]  # fmt: skip
PAGE = "https://status.example.com/i/Tok-<x>&_"
CREDIT = {"amount": "12,00 €", "reason": "10 % of the monthly fee"}
NOTICE = {"amount": "$2.00", "reason": "a sample credit",
          "reasons": ["a sample credit", "a second sample line"]}  # fmt: skip
ALL_KINDS = [k for k in RoundKind if (default_templates_dir() / k.value).is_dir()]
INBOUND = ["acknowledgement", "acknowledgement_sms", "escalation"]


def combos() -> list[tuple[RoundKind, str]]:
    return [
        (kind, channel)
        for kind in ALL_KINDS
        for channel in sorted(PARTS)
        if (default_templates_dir() / kind.value / f"{channel}.txt.j2").exists()
    ]


def _variants(kind: RoundKind) -> list[dict[str, object]]:
    """The rounds a kind is rendered with: with and without the commander's message, a
    promise, a page link, the latest news; a credit, a held one, a correction, goodwill."""
    base: list[dict[str, object]] = [
        {"message": "A database failover is in progress.", "page": PAGE, "company": "full"},
        {"message": "", "page": "", "company": "email", "no_promise": True},
        {"message": "Rolled back.", "page": "", "company": "phone"},
        {"message": "Fixed <b>it</b> & more", "page": PAGE, "company": "none"},
    ]
    if kind == RoundKind.HOLDING:
        base[0]["latest"] = "Found it."
        base[2]["latest"] = ""
        base[3]["latest_yesterday"] = True
    if kind == RoundKind.RESOLUTION:
        base[0].update(credit=CREDIT, goodwill="a month of premium support")
        base[2]["credit_held"] = True
    if kind == RoundKind.CREDIT:
        for i, v in enumerate(base):
            v["credit"] = {**NOTICE, "correction": i % 2 == 1, "previous": "$1.00"}
        base[0]["goodwill"] = "a month of premium support"
    if kind == RoundKind.FOLLOW_UP:
        base[0]["feedback"] = [f"https://oc.example.com/f/abc/{n}" for n in range(11)]
    return base


def _render(kind: RoundKind, channel: str, c: Customer, v: dict[str, object],
            make: Callable[[CompanyConfig], Renderer]) -> Rendered:  # fmt: skip
    r = make(COMPANIES[str(v["company"])])
    resolved = kind in (RoundKind.RESOLUTION, RoundKind.FOLLOW_UP, RoundKind.CREDIT)
    inc = incident(resolved=resolved)
    rnd = round_(kind, message=str(v["message"]))
    if v.get("no_promise"):
        rnd = replace(rnd, promised_next_by=None)
    latest = None
    if "latest" in v or v.get("latest_yesterday"):
        at = rnd.created_at - (
            timedelta(days=1) if v.get("latest_yesterday") else timedelta(minutes=25)
        )
        latest = replace(round_(RoundKind.UPDATE, at=at, message=str(v.get("latest", "Found it."))), seq=2)  # fmt: skip
    held = rnd.created_at + timedelta(days=2) if v.get("credit_held") else None
    ctx = r.context(
        incident=inc, round=rnd, customer=c, latest=latest, page_url=str(v["page"]),
        credit=v.get("credit"), goodwill=v.get("goodwill"),  # type: ignore[arg-type]
        feedback_links=v.get("feedback", ()), credit_held_until=held,  # type: ignore[arg-type]
    )  # fmt: skip
    return r.render(kind, channel, ctx)


def _inbound(name: str, c: Customer, i: int, make: Callable[[CompanyConfig], Renderer]) -> Rendered:
    company = list(COMPANIES.values())[i % len(COMPANIES)]
    ctx: dict[str, object] = {
        "company": company, "incident": incident(), "customer": c,
        "escalated": i % 2 == 0, "account_manager": "Jane Doe" if i % 3 == 0 else "",
        "subject": "Re: [INC-42] Sign-in failures",
        # what the escalation to the commander shows (inbound.pipeline)
        "text": "This is the third outage this month.\nFix it.", "label": ("negative", "")[i % 2],
        "score": (-0.6, None, 0.25)[i % 3], "language": ("", "de")[i % 2], "rule": "words",
        "why": "words 'third time'", "channel": "email",
        "received_at": ("", "15.01.2026, 14:02 CET")[i % 2], "incidents_this_quarter": i % 3,
        "credit": ("", "12,00 €")[i % 2],
    }  # fmt: skip
    return make(company).render_inbound(name, ctx)


def _show(label: str, out: Rendered) -> str:
    html = "" if out.html is None else f"--- html\n{out.html}\n"
    return f"=== {label}\n--- subject\n{out.subject}\n--- text\n{out.text}{html}"


def renders(make: Callable[[CompanyConfig], Renderer]) -> Iterator[tuple[str, str]]:
    """(golden file name, its text) for every default template set and inbound message."""
    for kind, channel in combos():
        chunks = []
        for n, v in enumerate(_variants(kind)):
            for c in PEOPLE:
                out = _render(kind, channel, c, v, make)
                chunks.append(_show(f"variant {n} customer {c.id}", out))
        yield f"{kind.value}-{channel}.txt", "".join(chunks)
    for name in INBOUND:
        chunks = []
        for i, c in enumerate(PEOPLE * 3):
            chunks.append(_show(f"case {i} customer {c.id}", _inbound(name, c, i, make)))
        yield f"inbound-{name}.txt", "".join(chunks)


def english(company: CompanyConfig) -> Renderer:
    """Every customer in English whatever their locale (no catalogs)."""
    from outagecomms.rendering.i18n import Catalogs

    return Renderer(company=company, catalogs=Catalogs([]))


#: per shipped language: what a sample customer reads, for a fluent reader to review
SNAPSHOTS = GOLDEN.parent / "snapshots"
SAMPLES = {
    "de": customer("Europe/Berlin", "de_DE", name="Müller & Söhne GmbH"),
    "es": customer("America/Mexico_City", "es_MX", name="Logística Peña & Hijos S.A. de C.V."),
    "ja": customer("Asia/Tokyo", "ja_JP", name="株式会社サンプル商事"),
    "fr": customer("Europe/Paris", "fr_FR", name="Dupont & Fils SARL"),
    "fr_CA": customer("America/Toronto", "fr_CA", name="Boulangerie Tremblay inc."),
    "pt_BR": customer("America/Sao_Paulo", "pt_BR", name="Transportes Ação & Cia. Ltda."),
}


def snapshots() -> Iterator[tuple[str, str]]:
    """(file name, text): the acknowledgement, holding update, resolution with a credit and
    their SMS, in each shipped language (the shipped catalogs: ``Renderer`` as sent)."""
    for lang, c in SAMPLES.items():
        r = Renderer(company=FULL_COMPANY)
        chunks = []
        for kind, extras in (
            (RoundKind.ACKNOWLEDGEMENT, {}),
            (RoundKind.HOLDING, {"latest": True}),
            (RoundKind.RESOLUTION, {"credit": CREDIT, "goodwill": "a month of premium support"}),
        ):
            inc = incident(resolved=kind == RoundKind.RESOLUTION)
            rnd = round_(kind)
            latest = None
            if extras.pop("latest", False):
                latest = replace(round_(RoundKind.UPDATE, at=rnd.created_at - timedelta(minutes=25),
                                        message="A failed disk on the primary; failing over."), seq=2)  # fmt: skip
            for channel in ("email", "sms"):
                ctx = r.context(incident=inc, round=rnd, customer=c, latest=latest, page_url=PAGE,
                                **extras)  # type: ignore[arg-type]  # fmt: skip
                chunks.append(_show(f"{kind.value} {channel}", r.render(kind, channel, ctx)))
        yield f"{lang}.txt", "".join(chunks)


if __name__ == "__main__":
    GOLDEN.mkdir(parents=True, exist_ok=True)
    if "--snapshots" in sys.argv:  # after a catalog changed: review the diff, then commit
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        for name, text in snapshots():
            (SNAPSHOTS / name).write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {SNAPSHOTS}\n")
    else:  # only ever from templates whose English output is known good
        for name, text in renders(english):
            (GOLDEN / name).write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {GOLDEN}\n")
