"""What ``doctor`` checks of ``[inbound]``: the reply token can be signed, the templates of what
we send because of a reply render, the sentiment scorer loads, the mailbox URL is set."""

from __future__ import annotations

import os

from outagecomms.app import App
from outagecomms.errors import ConfigError
from outagecomms.models import Customer, Incident
from outagecomms.values import shown_env

INBOUND_TEMPLATES = ("acknowledgement", "acknowledgement_sms", "escalation", "response")


def inbound_lines(app: App, incident: Incident, customer: Customer) -> list[str]:
    cfg = app.config.inbound
    lines: list[str] = []
    if cfg.reply_to:
        var = app.config.daemon.secret_env
        if var and os.environ.get(var):
            lines.append(f"inbound reply_to: {cfg.reply_to} with signed reply tokens")
        else:
            lines.append(
                f"inbound reply_to: {shown_env(var) if var else 'daemon.secret_env'} is not set, "
                "so emails carry the plain address and replies match only by In-Reply-To"
            )
    for name in ("smtp", "lmtp"):
        bind = getattr(cfg, name)
        if bind:
            lines.append(f"inbound {name}: the daemon listens on {bind}")
    if cfg.imap_url_env:
        if not os.environ.get(cfg.imap_url_env):
            raise ConfigError(
                f"{shown_env(cfg.imap_url_env)} (the mailbox URL) is not set",
                path=app.config.path,
                key="inbound.imap_url_env",
            )
        lines.append(f"inbound imap: the daemon reads the mailbox in {shown_env(cfg.imap_url_env)}")
    ctx = {
        "company": app.config.company,
        "incident": incident,
        "customer": customer,
        "escalated": True,
        "account_manager": "Account Manager",
        "subject": f"Re: [{incident.ref}] {incident.title}",
        "text": "This is the third outage this month.",
        "label": "negative",
        "score": -0.6,
        "language": "en",
        "rule": "words",
        "why": "words 'third time'",
        "channel": "email",
        "received_at": "",
        "incidents_this_quarter": 3,
        "credit": "",
        "message": "We hear you.",
        "by_name": "",
    }
    for name in INBOUND_TEMPLATES:
        app.renderer.render_inbound(name, ctx)  # TemplateError names the file and line
    lines.append(f"templates inbound: ok ({', '.join(INBOUND_TEMPLATES)})")
    from outagecomms.inbound.pipeline import scorer_for

    scorer_for(cfg.scorer)
    lines.append(f"inbound scorer: {cfg.scorer}")
    return lines
