"""Pre-flight: render every template a round will use, per channel and locale, before anything is
queued, so a broken template stops the command instead of half a fan-out; and check that every
secret those channels send with is in the environment (:func:`check_secrets`), so a missing
password stops ``declare`` instead of failing every delivery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.directory import audience as aud
from outagecomms.errors import ConfigError, TemplateError
from outagecomms.models import (
    Customer,
    Incident,
    IncidentStatus,
    Round,
    RoundKind,
)
from outagecomms.rendering.templates import ACCOUNT_MANAGER_TEMPLATES, Rendered
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.values import shown_env


def template_channels(app: App, channel_names: Sequence[str]) -> dict[str, str]:
    """channel name -> template set (e.g. ``email``); an account manager's copy uses the
    internal ``account_manager`` set."""
    out = {}
    for n in channel_names:
        base, copy = aud.split_channel(n)
        if base in app.config.channels:
            out[n] = (
                ACCOUNT_MANAGER_TEMPLATES
                if copy
                else registry.get(app.config.channels[base].kind).template_channel
            )
    return out


def preflight(
    app: App,
    incident: Incident,
    rnd: Round,
    customers: Sequence[Customer],
    channel_names: Sequence[str],
) -> dict[tuple[str, str, str], Rendered]:
    """Render every template the round needs once per (locale, template set) in the audience.
    Raises TemplateError (naming template and line) before anything is queued."""
    out: dict[tuple[str, str, str], Rendered] = {}
    # a once-per-round channel (status page) sends no follow-up: it needs no template for one
    sets = sorted(
        {
            tc
            for n, tc in template_channels(app, channel_names).items()
            if registry.get(app.config.channels[aud.split_channel(n)[0]].kind).delivers(rnd.kind)
        }
    )
    seen: set[str] = set()
    page = _sample_page_url(app)
    # and whom a round-wide message (a status page) is rendered for: the company's language
    for c in [*customers, app.renderer.neutral_customer()]:
        if c.locale in seen:
            continue
        seen.add(c.locale)
        for tc in sets:
            out[(c.locale, c.timezone, tc)] = app.renderer.render(
                rnd.kind,
                tc,
                app.renderer.context(
                    incident=incident,
                    round=rnd,
                    customer=c,
                    page_url=page,
                    **_sample_extras(rnd),
                ),
            )
            if rnd.kind == RoundKind.RESOLUTION:  # and as it reads when the credit is held
                app.renderer.render(
                    rnd.kind,
                    tc,
                    app.renderer.context(
                        incident=incident,
                        round=rnd,
                        customer=c,
                        goodwill="a sample offer",
                        credit_held_until=rnd.created_at,
                    ),
                )
    return out


def _sample_page_url(app: App) -> str:
    """A customer's page link as messages will carry it (``pages.incident``), or "" when they
    will carry none: the templates are checked in the branch the messages take."""
    from outagecomms.pages.incident import links_enabled

    if not links_enabled(app):
        return ""
    return app.config.daemon.public_url.rstrip("/") + "/i/" + "A" * 48


#: the credit a pre-flight renders a credit notice with (a correction: every branch shows)
SAMPLE_CREDIT_NOTICE = {
    "amount": "$2.00",
    "reason": "a sample credit",
    "reasons": ["a sample credit", "a second sample line"],
    "correction": True,
    "previous": "$1.00",
}


#: The round kinds an incident still sends after its resolution (the follow-up; a credit notice
#: from ``credits --approve`` or ``edit --send-corrections``), each pre-flighted at ``resolve``:
#: a broken follow-up template stops the resolution (nothing written), not the follow-up a day
#: later in a ``tick``. A kind with no template installed at all is skipped.
AFTER_RESOLUTION: tuple[RoundKind, ...] = (RoundKind.FOLLOW_UP, RoundKind.CREDIT)


def preflight_after_resolution(app: App, incident: Incident, resolved_at: datetime) -> None:
    """Render every template of the kinds in :data:`AFTER_RESOLUTION` for ``incident``'s
    audience (its locales and customer channels) as it will be once resolved. Raises
    ``TemplateError`` naming the template, the line and the round that needs it."""
    with app.store.read() as conn:
        reps = customers_db.locale_representatives(conn, incident.id)
        channels = sorted(incidents_db.audience_channels(conn, incident.id, customers_only=True))
    resolved = replace(
        incident, status=IncidentStatus.RESOLVED, resolved_at=resolved_at, next_update_due=None
    )
    for kind in AFTER_RESOLUTION:
        if not app.renderer.has_templates(kind):
            continue
        rnd = Round(
            id=0, incident_id=incident.id, seq=0, kind=kind, message="",
            status=IncidentStatus.RESOLVED, created_at=app.clock(), due_by=None,
            promised_next_by=None,
        )  # fmt: skip
        try:
            preflight(app, resolved, rnd, reps, channels)
        except TemplateError as exc:
            raise TemplateError(
                f"{exc.reason} (the {kind.value} round this resolution leads to needs it;"
                f" {incident.ref} stays open, nothing was sent)",
                template=exc.template,
                line=exc.line,
            ) from None


def _sample_extras(rnd: Round) -> dict[str, Any]:
    """Pre-flight renders the optional parts too: a credit and an offer in the resolution, the
    score links in the follow-up, the news a holding update restates."""
    kind = rnd.kind
    if kind == RoundKind.HOLDING:
        return {"latest": replace(rnd, kind=RoundKind.UPDATE, message="A sample update.")}
    if kind == RoundKind.RESOLUTION:
        return {
            "credit": {"amount": "$1.00", "reason": "a sample credit"},
            "goodwill": "a sample offer",
        }
    if kind == RoundKind.CREDIT:
        return {"credit": SAMPLE_CREDIT_NOTICE, "goodwill": "a sample offer"}
    if kind == RoundKind.FOLLOW_UP:
        return {
            "feedback_links": [f"https://example.invalid/feedback/x?score={i}" for i in range(11)]
        }
    return {}


def check_secrets(app: App, channel_names: Sequence[str]) -> None:
    """Every secret the channels ``channel_names`` (an audience's, account-manager copies
    included) need to send is set and of the right form; else ``ConfigError`` naming the key
    and the variable (never its value). Run before a round is written: nothing is queued."""
    for name in sorted({aud.split_channel(n)[0] for n in channel_names}):
        ch = app.config.channels.get(name)
        if ch is None:
            continue
        cls = registry.get(ch.kind)
        for key in cls.required_secrets(ch.settings):
            var = str(ch.settings.get(f"{key}_env") or "")
            where = f"channels.{name}.{key}_env"
            value = ch.secret(key)
            if value is None:
                raise ConfigError(
                    f"environment variable {shown_env(var)} is not set, and channel {name!r} "
                    "sends with it; set it where this command runs (nothing was queued)",
                    path=app.config.path,
                    key=where,
                )
            problem = cls.secret_problem(key, value)
            if problem:
                raise ConfigError(
                    f"environment variable {shown_env(var)} {problem} (nothing was queued)",
                    path=app.config.path,
                    key=where,
                )
