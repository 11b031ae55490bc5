"""``init``, ``doctor`` and ``preview``: getting set up and checking templates."""

from __future__ import annotations

import shutil
from datetime import timedelta
from importlib import resources
from pathlib import Path

from outagecomms.app import App
from outagecomms.errors import InputError, NotFound
from outagecomms.incidents import preflight, promise_after
from outagecomms.models import (
    Customer,
    Incident,
    IncidentStatus,
    Round,
    RoundKind,
    Selector,
    incident_id_from_ref,
)
from outagecomms.rendering import Rendered, default_templates_dir
from outagecomms.store import repository as repo

TEMPLATES_README = """\
Template overrides for outagecomms.

A file here replaces the packaged default of the same path, e.g.

    acknowledgement/email.subject.j2
    acknowledgement/email.txt.j2
    acknowledgement/email.html.j2
    update/email.txt.j2      holding/email.txt.j2      resolution/email.txt.j2

Templates are Jinja2 (sandboxed, StrictUndefined; *.html.j2 is autoescaped). The context:
company, incident, round, customer, promised_next_by (in the customer's timezone and locale),
credit, feedback_url, status_page_url. Copy a default from
{defaults}
and edit it; `outagecomms doctor` renders every template to check it.
"""


def packaged_file(name: str) -> Path:
    """A file shipped in the wheel (force-included), or in the repository checkout."""
    p = resources.files("outagecomms") / name
    if p.is_file():
        return Path(str(p))
    return Path(__file__).resolve().parent.parent / name


def sample_customers_file() -> Path:
    return Path(__file__).resolve().parent / "samples" / "customers.csv"


def init_project(directory: Path, *, force: bool = False) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "outagecomms.toml"
    if cfg.exists() and not force:
        raise InputError(f"{cfg} already exists; pass --force to overwrite it")
    written = []
    shutil.copyfile(packaged_file("config.example.toml"), cfg)
    written.append(cfg)
    tdir = directory / "templates"
    tdir.mkdir(exist_ok=True)
    readme = tdir / "README.txt"
    readme.write_text(TEMPLATES_README.format(defaults=default_templates_dir()))
    written.append(readme)
    customers = directory / "customers.csv"
    if not customers.exists() or force:
        shutil.copyfile(sample_customers_file(), customers)
        written.append(customers)
    return written


def _sample_incident(app: App) -> tuple[Incident, dict[RoundKind, Round]]:
    now = app.clock()
    every = app.config.policy("sev2").update_every
    inc = Incident(
        id=0,
        title="Elevated error rates on the API",
        severity="sev2",
        status=IncidentStatus.IDENTIFIED,
        components=("api",),
        regions=("eu-west",),
        selector=Selector(components=("api",)),
        started_at=now - timedelta(minutes=20),
        declared_at=now - timedelta(minutes=18),
        resolved_at=now,
        commander="",
        update_every=every,
        next_update_due=promise_after(now, every),
        ack_due=now,
        audience_size=1,
    )
    rounds = {
        kind: Round(
            id=0,
            incident_id=0,
            seq=i + 1,
            kind=kind,
            message="A database failover is in progress.",
            status=IncidentStatus.RESOLVED
            if kind == RoundKind.RESOLUTION
            else IncidentStatus.IDENTIFIED,
            created_at=now,
            due_by=now,
            promised_next_by=None
            if kind in (RoundKind.RESOLUTION, RoundKind.FOLLOW_UP)
            else promise_after(now, every),
        )
        for i, kind in enumerate(
            (
                RoundKind.ACKNOWLEDGEMENT,
                RoundKind.UPDATE,
                RoundKind.HOLDING,
                RoundKind.RESOLUTION,
                RoundKind.FOLLOW_UP,
            )
        )
    }
    return inc, rounds


def doctor(app: App) -> list[str]:
    """Check the config (already validated on load), the store and every template."""
    lines = [f"config: {app.config.path or 'built-in defaults'} ok", f"store: {app.store.url} ok"]
    with app.store.read() as conn:
        customers = repo.all_customers(conn)
    lines.append(f"customers: {len(customers)}")
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
    for name, ch in app.config.channels.items():
        lines.append(f"channel {name}: kind {ch.kind}")
    lines.extend(_hooks_lines(app, customers))
    lines.extend(_lease_lines(app))
    return lines


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
    state = "on" if hooks.token() else f"off (${hooks.token_env} is not set)"
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


def preview(
    app: App,
    kind: str,
    *,
    customer_id: str,
    channel: str = "email",
    incident: str | None = None,
    message: str = "",
) -> Rendered:
    try:
        rk = RoundKind(kind)
    except ValueError:
        raise InputError(
            "unknown kind; use acknowledgement, update, holding, resolution or follow_up",
            field="KIND",
            value=kind,
        ) from None
    with app.store.read() as conn:
        found = repo.get_customers(conn, [customer_id])
        if customer_id not in found:
            raise NotFound(f"customer {customer_id!r} is not in the directory")
        inc, rounds = _sample_incident(app)
        if incident is not None:
            inc = repo.get_incident(conn, incident_id_from_ref(incident)).incident
    rnd = rounds.get(rk) or rounds[RoundKind.UPDATE]
    from dataclasses import replace

    rnd = replace(rnd, message=message)
    return app.renderer.render(
        rk, channel, app.renderer.context(incident=inc, round=rnd, customer=found[customer_id])
    )
