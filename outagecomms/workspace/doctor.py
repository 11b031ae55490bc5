"""``doctor``: check the config, the store, the templates and the directory before an incident
needs them, and say what is wrong in lines a person can act on."""

from __future__ import annotations

from outagecomms.app import App
from outagecomms.incidents.preflight import preflight
from outagecomms.models import (
    Customer,
)
from outagecomms.rendering.preview import _sample_incident
from outagecomms.store import customers as customers_db
from outagecomms.values import shown_env


def doctor(app: App) -> list[str]:
    """Check the config (already validated on load), the store and every template."""
    lines = [f"config: {app.config.path or 'built-in defaults'} ok", *_secret_lines(app)]
    with app.store.read() as conn:
        customers = customers_db.all_customers(conn)
    lines.append(f"customers: {len(customers)}")
    lines.append(_language_line(app, customers))
    sample = customers[:1]
    if not sample:
        sample = [Customer(id="sample", name="Sample Customer", email="ops@example.com")]
    # one customer per locale/timezone in the directory is enough to render every variant
    by_zone: dict[tuple[str, str], Customer] = {}
    for c in customers:
        by_zone.setdefault((c.locale, c.timezone), c)
    reps = list(by_zone.values()) or sample
    inc, rounds = _sample_incident(app)
    names = sorted(app.config.channels)
    for kind, rnd in rounds.items():
        preflight(app, inc, rnd, reps, names)
        lines.append(f"templates {kind.value}: ok for {len(reps)} locale/timezone combinations")
    from outagecomms.maintenance.checks import doctor_lines as maintenance_lines

    lines.extend(maintenance_lines(app, reps))
    for name, ch in app.config.channels.items():
        lines.append(f"channel {name}: kind {ch.kind}")
    from outagecomms.inbound.checks import inbound_lines

    lines.extend(inbound_lines(app, inc, reps[0]))
    from outagecomms.pages.incident import doctor_lines as page_lines

    lines.extend(page_lines(app))
    lines.extend(_hooks_lines(app, customers))
    lines.extend(_lease_lines(app))
    return lines


def _language_line(app: App, customers: list[Customer]) -> str:
    """Which languages customers read, and how many read the company default because theirs
    has no catalog (docs/languages.md)."""
    from outagecomms.rendering.i18n import count_fallbacks

    catalogs = app.renderer.catalogs
    read: dict[str, int] = {}
    for c in customers:
        lang = catalogs.resolve(c.locale)
        read[lang] = read.get(lang, 0) + 1
    shown = ", ".join(f"{lang} {n}" for lang, n in sorted(read.items())) or "none yet"
    line = f"languages: {shown} (catalogs: {', '.join(catalogs.languages())})"
    missing = count_fallbacks(catalogs, [c.locale for c in customers])
    if missing:
        total = sum(missing.values())
        which = ", ".join(f"{loc} {n}" for loc, n in sorted(missing.items()))
        default = catalogs.resolve(app.config.company.language)
        line += (
            f"; {total} customer{'s' if total != 1 else ''} read the company default ({default})"
            f" because their language has no catalog: {which}"
        )
    return line


def _secret_lines(app: App) -> list[str]:
    """The store (its URL's password masked) and every secret a round needs: a channel whose
    variable is not set stops here (``ConfigError``, exit 2), not at the first delivery. The
    config's warnings (a ``*_env`` holding what looks like a secret, never shown) are
    ``app.config.warnings``: the CLI prints them when it loads the config, doctor's run too."""
    from outagecomms.incidents.preflight import check_secrets
    from outagecomms.workspace.channel_checks import channel_secrets

    # a variable that is not set is one of the channel checks' findings (each named, with the
    # rest still checked); what is set must also be of the right form (a Twilio Account SID)
    ready = [n for n in sorted(app.config.channels) if all(s.set for s in channel_secrets(app, n))]
    check_secrets(app, ready)
    return [f"store: {app.store.display_url} ok"]


def _lease_lines(app: App) -> list[str]:
    """A sender that dies mid-fan-out holds its deliveries until its lease runs out; the
    holding round starts a margin before the promise (at least ``min_margin``, at most half the
    cadence). A lease longer than that margin can make a promise late after a crash."""
    cfg = app.config
    lease = cfg.dispatch.lease
    out = []
    if lease >= cfg.daemon.min_margin:
        out.append(
            f"warning: dispatch.lease ({lease.total_seconds():g}s) is not below daemon.min_margin"
            f" ({cfg.daemon.min_margin.total_seconds():g}s): after a sender crash, deliveries it"
            " held may go out after the promise"
        )
    default = cfg.policies["default"].update_every
    for sev in sorted(cfg.policies):
        every = cfg.policies[sev].update_every
        if sev != "default" and every == default:
            continue  # inherited: said once, for policy.default
        if lease >= every / 2:
            out.append(
                f"warning: policy.{sev}.update_every ({every.total_seconds():g}s) leaves a holding"
                f" margin of at most {every.total_seconds() / 2:g}s, not above dispatch.lease"
                f" ({lease.total_seconds():g}s)"
            )
    return out


def _hooks_lines(app: App, customers: list[Customer]) -> list[str]:
    """The alert hooks: on or off, and fixed components/regions no customer has."""
    hooks = app.config.hooks
    state = "on" if hooks.token() else f"off ({shown_env(hooks.token_env)} is not set)"
    rules = f"{len(hooks.rules)} rules" if hooks.rules else "the built-in rule"
    lines = [f"hooks: {state}; {rules}"]
    if not customers:
        return lines
    known = {
        "component": {x for c in customers for x in c.components},
        "region": {x for c in customers for x in c.regions},
    }
    for i, r in enumerate(hooks.rules):
        for what, values in (("component", r.components), ("region", r.regions)):
            for v in values:
                if v not in known[what]:
                    lines.append(
                        f"warning: hooks.rules[{i}] ({r.name}): no customer has the {what} {v!r}"
                    )
    return lines
