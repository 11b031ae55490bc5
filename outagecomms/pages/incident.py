"""Each customer's own incident page (``GET /i/<token>``): what is affected *for them*, what
they were sent and when, when they will hear next, what they are owed, the survey once it is
over, and a box whose text enters the replies pipeline as a reply on channel ``web``.

Everything shown is read from the store for the one customer the signed link names
(``pages.tokens``); nothing of any other customer is ever read for a page. Times are in the
customer's zone and locale, like their messages.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from outagecomms.app import App
from outagecomms.errors import ConfigError, InputError, NotFound
from outagecomms.models import Customer, Incident
from outagecomms.pages.tokens import (
    PageToken,
    PageTokenError,
    make_form_token,
    make_page_token,
    page_url,
    read_page_token,
)
from outagecomms.rendering.i18n import noop_pgettext as pgettext
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import pages as pages_db

#: the longest text the page's box takes (the replies pipeline keeps as much)
MAX_REPLY = 4000

#: what the timeline calls each round (msgids, gettext context "timeline": customers read
#: them in their language)
KIND_LABELS = {
    "acknowledgement": pgettext("timeline", "We told you about the problem"),
    "update": pgettext("timeline", "Update"),
    "holding": pgettext("timeline", "Progress update"),
    "resolution": pgettext("timeline", "Resolved"),
    "credit": pgettext("timeline", "Your service credit"),
    "follow_up": pgettext("timeline", "How did we do?"),
    "void": pgettext("timeline", "Please disregard"),
    "reopened": pgettext("timeline", "The problem came back"),
}

#: a delivery's state as the timeline says it (context "delivery")
CHANNEL_STATES = {
    "sent": pgettext("delivery", "sent"),
    "pending": pgettext("delivery", "on its way"),
    "sending": pgettext("delivery", "on its way"),
    "failed": pgettext("delivery", "could not be delivered"),
    "dead": pgettext("delivery", "could not be delivered"),
    "superseded": pgettext("delivery", "replaced by a newer message"),
}


def page_secret(app: App) -> bytes | None:
    """The daemon secret (``[daemon] secret_env``), or None when it is not set."""
    from outagecomms.recovery.feedback import feedback_secret

    try:
        return feedback_secret(app)
    except ConfigError:
        return None


def links_enabled(app: App) -> bool:
    """Whether messages carry the customer's page link: ``[incident_page] enabled``, a
    ``[daemon] public_url`` and the daemon secret."""
    cfg = app.config
    return bool(cfg.incident_page.enabled and cfg.daemon.public_url and page_secret(app))


def link_for(
    app: App, secret: bytes, incident_id: int, customer_id: str, now: datetime | None = None
) -> str:
    """The customer's link to their page of ``incident_id``, valid for
    ``[incident_page] link_lifetime`` from ``now``."""
    now = now or app.clock()
    token = make_page_token(
        secret,
        incident_id,
        customer_id,
        issued_at=now,
        expires_at=now + app.config.incident_page.link_lifetime,
    )
    return page_url(app.config.daemon.public_url, token)


def customer_link(app: App, incident_id: int, customer_id: str) -> str:
    """``page link``: a fresh link for a customer of an incident (support staff pass it on).
    Raises ``ConfigError`` without a public URL or the secret, ``NotFound`` when the customer
    was not affected."""
    if not app.config.daemon.public_url:
        raise ConfigError(
            "is not set; incident page links need the daemon's public address, e.g. "
            "https://status.example.com",
            key="daemon.public_url",
        )
    from outagecomms.recovery.feedback import feedback_secret

    secret = feedback_secret(app)  # a ConfigError naming daemon.secret_env when it is not set
    with app.store.read() as conn:
        incidents_db.get_incident(conn, incident_id)
        if not incidents_db.in_audience(conn, incident_id, customer_id):
            raise NotFound(
                f"customer {customer_id!r} was not among those affected by INC-{incident_id}"
            )
    return link_for(app, secret, incident_id, customer_id)


def revoke_links(app: App, customer_id: str, *, by: str = "", reason: str = "") -> datetime:
    """Refuse every page link of the customer issued until now (a forwarded message, a
    leaked link); the next message they are sent carries a fresh one. Returns the cut-off."""
    now = app.clock()
    with app.store.write() as conn:
        if not customers_db.get_customers(conn, [customer_id]):
            raise NotFound(f"customer {customer_id!r} is not in the directory")
        pages_db.revoke(conn, customer_id, now, by, reason)
    return now


def open_token(app: App, secret: bytes, token: str) -> PageToken:
    """What a link names, once its signature, expiry and revocation are checked. Raises
    :class:`PageTokenError`; ``NotFound`` when the incident or customer is gone."""
    tok = read_page_token(secret, token, app.clock())
    with app.store.read() as conn:
        _check(conn, tok)
    return tok


def _check(conn: Any, tok: PageToken) -> None:
    cutoff = pages_db.revoked_before(conn, tok.customer_id)
    # links carry whole seconds: one issued in the second of the revocation is refused too
    if cutoff is not None and tok.issued_at <= cutoff.replace(microsecond=0):
        raise PageTokenError("revoked")
    if not incidents_db.in_audience(conn, tok.incident_id, tok.customer_id):
        raise NotFound("this incident page no longer exists")


def open_page(app: App, secret: bytes, token: str) -> tuple[PageToken, dict[str, Any]]:
    """:func:`open_token` and :func:`page_context` in one read transaction (a page view)."""
    tok = read_page_token(secret, token, app.clock())
    with app.store.read() as conn:
        _check(conn, tok)
        return tok, page_context(app, secret, token, tok, conn=conn)


def fingerprint(app: App, tok: PageToken) -> tuple[Any, ...]:
    """Changes whenever the page's content would (the page's live updates poll this)."""
    with app.store.read() as conn:
        return pages_db.fingerprint(conn, tok.incident_id, tok.customer_id)


# --- what the page shows ----------------------------------------------------------------------


def _html_lang(locale: str, language: str) -> str:
    """``<html lang>``: the customer's locale when they read its language (``fr-CA``), else
    the language they read (a ``pt_BR`` customer without a Portuguese catalog reads ``en``)."""
    if language.split("_")[0] == locale.split("_")[0]:
        return locale.replace("_", "-")
    return language.replace("_", "-") or "en"


@dataclass
class _Clock:
    tz: str
    locale: str
    cadence: timedelta
    words: Any = None  # the customer's catalog (gettext.NullTranslations)

    def say(self, context: str, msgid: str) -> str:
        return msgid if self.words is None else str(self.words.pgettext(context, msgid))

    def at(self, dt: datetime | None) -> str | None:
        from outagecomms.rendering.templates import customer_time

        if dt is None:
            return None
        return customer_time(dt, self.cadence, self.tz, self.locale, with_date=True)


def _timeline(rows: list[dict[str, Any]], clock: _Clock) -> list[dict[str, Any]]:
    """One entry per round they were sent, its channels and what was said (the text of the
    first message that went out, email first)."""
    by_round: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = by_round.get(row["seq"])
        if entry is None:
            entry = by_round[row["seq"]] = {
                "seq": row["seq"],
                "kind": row["kind"],
                "label": clock.say("timeline", KIND_LABELS[row["kind"]])
                if row["kind"] in KIND_LABELS
                else row["kind"].replace("_", " ").title(),
                "at": clock.at(row["created_at"]),
                "at_utc": row["created_at"].isoformat(),
                "message": row["message"],
                "channels": [],
                "subject": "",
                "text": "",
                "_text_from": "",
            }
        entry["channels"].append(
            {
                "name": row["channel"],
                "status": row["status"],
                "state": clock.say("delivery", CHANNEL_STATES.get(row["status"], row["status"])),
                "sent_at": clock.at(row["sent_at"]),
            }
        )
        wanted = not entry["text"] or row["channel"] == "email"
        if row["text"] and wanted and entry["_text_from"] != "email":
            entry["subject"], entry["text"] = row["subject"], row["text"]
            entry["_text_from"] = row["channel"]
    out = [by_round[k] for k in sorted(by_round)]
    for entry in out:
        entry.pop("_text_from")
    return out


def _credit(
    app: App, conn: Any, incident: Incident, customer: Customer, clock: _Clock
) -> dict[str, Any] | None:
    """The credit as the resolution notice states it: the amount once approved, "being
    applied, its amount by ..." while it is held for approval (``[credits]``)."""
    from outagecomms.recovery import ledger
    from outagecomms.store import credits as credits_db

    row = credits_db.customer_credit(conn, incident.id, customer.id)
    if row is None:
        return None
    credit, goodwill = ledger.notice_context(row, customer.locale)
    if credit is not None:
        return {"state": "approved", **credit, "goodwill": goodwill}
    if ledger.held(row):
        resolved = incident.resolved_at or app.clock()
        by = clock.at(resolved + ledger.approval_within(app))
        return {"state": "held", "by": by, "goodwill": goodwill}
    if goodwill:
        return {"state": "none", "goodwill": goodwill}
    return None


def page_context(
    app: App, secret: bytes, token: str, tok: PageToken, *, conn: Any = None
) -> dict[str, Any]:
    """Everything ``templates/pages/incident.html.j2`` is given, for the customer the link
    names (in ``conn``'s transaction, else a read of its own). Raises ``NotFound`` when the
    incident or the customer is gone."""
    if conn is None:
        with app.store.read() as own:
            return page_context(app, secret, token, tok, conn=own)
    from outagecomms.rendering.durations import human_duration
    from outagecomms.rendering.templates import STATUS_LABELS

    now = app.clock()
    incident = incidents_db.get_incident(conn, tok.incident_id).incident
    customer = customers_db.customers_for_incidents(conn, [tok.incident_id], [tok.customer_id]).get(
        tok.customer_id
    )
    if customer is None:
        raise NotFound("this customer is no longer in our directory")
    rows = pages_db.timeline(conn, incident.id, customer.id)
    replies = pages_db.replies(conn, incident.id, customer.id)
    score = pages_db.score(conn, incident.id, customer.id)
    catalogs = app.renderer.catalogs
    language = catalogs.resolve(customer.locale)
    words = catalogs.translations(language)
    clock = _Clock(customer.timezone, customer.locale, incident.update_every, words)
    credit = _credit(app, conn, incident, customer, clock)
    names = app.config.names
    comps = [c for c in incident.components if c in customer.components] or list(
        incident.components
    )
    regions = [r for r in incident.regions if r in customer.regions] or list(incident.regions)
    is_open = incident.is_open
    next_update = None
    if is_open and incident.next_update_due is not None:
        due = incident.next_update_due
        left = due - now
        next_update = {
            "by": clock.at(due),
            "by_utc": due.isoformat(),
            "in": human_duration(left, customer.locale, incident.update_every)
            if left > timedelta(0)
            else None,
        }
    survey = None
    if incident.status.value == "resolved" and app.config.daemon.public_url:
        from outagecomms.outbox.dispatch import FEEDBACK_LINK_LIFETIME
        from outagecomms.recovery.feedback import feedback_links

        links = feedback_links(
            app.config.daemon.public_url,
            secret,
            incident.id,
            customer.id,
            now + FEEDBACK_LINK_LIFETIME,
        )
        survey = {"links": links, "score": score}
    company = app.config.company
    return {
        "company": {
            "name": company.name,
            "support_email": company.support_email,
            "support_phone": company.support_phone,
            "status_page_url": company.status_page_url,
        },
        "lang": _html_lang(customer.locale, language),
        "language": language,
        **catalogs.callables(language),
        "customer": {"name": customer.name, "timezone": customer.timezone},
        "incident": {
            "ref": incident.ref,
            "title": incident.title,
            "severity": incident.severity,
            "status": incident.status.value,
            "status_label": clock.say(
                "status", STATUS_LABELS.get(incident.status.value, incident.status.value)
            ),
            "open": is_open,
            "components": [names.component(c, language) for c in comps],
            "regions": [names.region(r, language) for r in regions],
            "started_at": clock.at(incident.started_at),
            "resolved_at": clock.at(incident.resolved_at),
            "duration": human_duration(
                (incident.resolved_at or now) - incident.started_at,
                customer.locale,
                incident.update_every,
            ),
        },
        "next_update": next_update,
        "timeline": _timeline(rows, clock),
        "replies": [
            {
                "at": clock.at(r["received_at"]),
                "channel": r["channel"],
                "text": r["text"],
                "answered_at": clock.at(r["responded_at"]),
            }
            for r in replies
        ],
        "credit": credit,
        "survey": survey,
        "form": {
            "token": make_form_token(secret, token, now),
            "id": secrets.token_urlsafe(12),
            "max_length": MAX_REPLY,
        },
        "now": clock.at(now),
        "refresh_seconds": int(app.config.incident_page.refresh.total_seconds()),
    }


def submit_reply(app: App, tok: PageToken, text: str, form_id: str) -> Any:
    """The box's text, into the replies pipeline as a reply on channel ``web``. Raises
    ``InputError`` for an empty or too long text."""
    from outagecomms.inbound.pipeline import ingest_web

    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise InputError("is empty: please write what you would like us to know", field="text")
    if len(text) > MAX_REPLY:
        raise InputError(
            f"is {len(text):,} characters long; please keep it under {MAX_REPLY:,}", field="text"
        )
    return ingest_web(
        app,
        incident_id=tok.incident_id,
        customer_id=tok.customer_id,
        text=text,
        form_id=form_id[:64] or secrets.token_urlsafe(12),
    )


# --- doctor -----------------------------------------------------------------------------------


def sample_context(app: App) -> dict[str, Any]:
    """A page's context with sample values in every field (every branch of the default
    template shows): what ``doctor`` renders the page with, the store untouched."""
    company = app.config.company
    at = "10 Mar 2026, 12:00 UTC"
    return {
        "company": {
            "name": company.name,
            "support_email": company.support_email or "support@example.com",
            "support_phone": company.support_phone or "+1 555 0100",
            "status_page_url": company.status_page_url or "https://status.example.com",
        },
        "lang": "en-US",
        "customer": {"name": "Sample Customer", "timezone": "UTC"},
        "incident": {
            "ref": "INC-1",
            "title": "Sample incident",
            "severity": "sev2",
            "status": "identified",
            "status_label": "Identified",
            "open": True,
            "components": ["Sample component"],
            "regions": ["Sample region"],
            "started_at": at,
            "resolved_at": at,
            "duration": "20 minutes",
        },
        "next_update": {"by": at, "by_utc": "2026-03-10T12:30:00+00:00", "in": "30 minutes"},
        "timeline": [
            {
                "seq": 1,
                "kind": "acknowledgement",
                "label": KIND_LABELS["acknowledgement"],
                "at": at,
                "at_utc": "2026-03-10T12:00:00+00:00",
                "message": "We are looking into it.",
                "channels": [
                    {"name": "email", "status": "sent", "state": "sent", "sent_at": at},
                    {"name": "sms", "status": "failed", "state": "failed", "sent_at": None},
                ],
                "subject": "[INC-1] Sample incident",
                "text": "Hello,\n\nSample message.\n",
            }
        ],
        "replies": [{"at": at, "channel": "email", "text": "Sample reply", "answered_at": at}],
        "credit": {
            "state": "held",
            "amount": "$1.00",
            "reason": "a sample credit",
            "by": at,
            "goodwill": "a sample offer",
        },
        "survey": {
            "links": [f"https://example.com/feedback/x?score={n}" for n in range(11)],
            "score": 9,
        },
        "form": {"token": "sample", "id": "sample", "max_length": MAX_REPLY},
        "now": at,
        "refresh_seconds": 5,
        "csp_nonce": "sample",
        "page_path": "/i/sample",
        "events_path": "/i/sample/events",
        "sent": True,
        "form_error": "stale",
        "draft": "A sample draft.",
    }


def doctor_lines(app: App) -> list[str]:
    """Whether messages carry the page link (and why not), and the page's template rendered
    with a sample context (a broken override stops here, not at a customer's first visit).
    Raises ``TemplateError``."""
    cfg = app.config
    app.renderer.render_page("incident", sample_context(app))
    lines = ["template pages/incident.html.j2: ok"]
    if not cfg.incident_page.enabled:
        lines.append("incident pages: off ([incident_page] enabled = false)")
    elif not cfg.daemon.public_url:
        lines.append("incident pages: off: messages carry no page link without [daemon] public_url")
    elif page_secret(app) is None:
        lines.append(
            "incident pages: off: messages carry no page link until the daemon secret is set "
            "([daemon] secret_env)"
        )
    else:
        lines.append(
            f"incident pages: every message links to {cfg.daemon.public_url.rstrip('/')}/i/..."
            f" (links last {cfg.incident_page.link_lifetime.days or 1} days)"
        )
        if not cfg.daemon.http:
            lines.append(
                "warning: [daemon] http is not set: messages link to incident pages no daemon "
                "serves"
            )
    return lines
