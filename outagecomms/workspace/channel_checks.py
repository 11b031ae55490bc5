"""``doctor``'s checks of the channels: the secrets the daemon needs are set, and each configured
channel answers a probe that sends nothing to anyone (``Channel.probe``: SMTP connect, EHLO,
STARTTLS/AUTH; Twilio's Account resource; the Statuspage page; a TLS connect to the hosts of
the customers' Slack, Teams and webhook URLs and of the Apprise URLs).

Each failure is one line a person can act on::

    error: channel email (smtp 127.0.0.1:2525): connection refused
    error: channel sms: environment variable TWILIO_AUTH_TOKEN is not set (channels.sms.auth_token_env)
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.channels.base import ProbeResult
from outagecomms.directory.audience import channels_for
from outagecomms.errors import OutageCommsError
from outagecomms.models import Customer
from outagecomms.store import customers as customers_db


@dataclass(frozen=True)
class SecretCheck:
    """One environment variable a ``*_env`` key names, and whether it holds something."""

    key: str  # the config key: channels.sms.auth_token_env, daemon.secret_env
    variable: str
    set: bool
    needed_for: str = ""  # why the daemon needs it, when that is not obvious from the key

    def error(self, owner: str) -> str:
        why = f"; {self.needed_for}" if self.needed_for else ""
        from outagecomms.values import shown_env

        shown = shown_env(self.variable).removeprefix("$")
        return f"{owner}: environment variable {shown} is not set ({self.key}{why})"

    def to_json(self) -> dict[str, Any]:
        from outagecomms.values import env_name_problem

        shown = self.variable if env_name_problem(self.variable) is None else None
        return {"key": self.key, "variable": shown, "set": self.set}


@dataclass
class ChannelCheck:
    """One configured channel: its secrets and, unless skipped, what its probe found."""

    name: str
    kind: str
    secrets: list[SecretCheck] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    #: why it was not probed (``--no-probe``, a missing secret, nothing to connect to)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return all(s.set for s in self.secrets) and all(p.ok for p in self.probes)

    def errors(self) -> list[str]:
        out = [s.error(f"channel {self.name}") for s in self.secrets if not s.set]
        out += [f"channel {self.name} ({p.target}): {p.detail}" for p in self.probes if not p.ok]
        return out

    def lines(self) -> list[str]:
        """What went well (the errors are said by :meth:`errors`)."""
        out = [f"channel {self.name} ({p.target}): {p.detail}" for p in self.probes if p.ok]
        if self.skipped:
            out.append(f"channel {self.name}: not probed ({self.skipped})")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "ok": self.ok,
            "secrets": [s.to_json() for s in self.secrets],
            "probed": not self.skipped,
            "skipped": self.skipped or None,
            "probes": [{"target": p.target, "ok": p.ok, "detail": p.detail} for p in self.probes],
        }


@dataclass
class ChannelsReport:
    channels: list[ChannelCheck]
    daemon: list[SecretCheck]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.channels) and all(s.set for s in self.daemon)

    def errors(self) -> list[str]:
        """One line per failure, without the ``error:`` the front end puts before it."""
        out = [e for c in self.channels for e in c.errors()]
        out += [s.error("daemon") for s in self.daemon if not s.set]
        return out

    def lines(self) -> list[str]:
        return [line for c in self.channels for line in c.lines()]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "channels": [c.to_json() for c in self.channels],
            "daemon_secrets": [s.to_json() for s in self.daemon],
            "errors": self.errors(),
        }


def _secret(key: str, variable: str, needed_for: str = "") -> SecretCheck:
    return SecretCheck(key, variable, bool(os.environ.get(variable)), needed_for)


def channel_secrets(app: App, name: str) -> list[SecretCheck]:
    """The variables channel ``name`` needs to send: each ``*_env`` key it names (the SMTP
    password only with a username)."""
    cfg = app.config.channels[name]
    try:
        keys = registry.get(cfg.kind).required_secrets(cfg.settings)
    except KeyError:  # pragma: no cover - the loader refuses unknown kinds
        return []
    return [
        _secret(f"channels.{name}.{k}_env", str(cfg.settings[f"{k}_env"]))
        for k in keys
        if cfg.settings.get(f"{k}_env")
    ]


def daemon_secrets(app: App) -> list[SecretCheck]:
    """The daemon's own: the feedback signing secret when it serves ``[daemon] http`` (it does
    not start without it), and the commander's room URL when that is how the commander hears."""
    d = app.config.daemon
    out = []
    if d.http and d.secret_env:
        out.append(
            _secret("daemon.secret_env", d.secret_env, "the daemon's http listener needs it")
        )
    commander = app.config.channels.get(d.commander_channel)
    chat = commander is not None and registry.get(commander.kind).template_channel != "email"
    if chat and d.commander_webhook_env:
        why = "the commander's notices go to that room"
        out.append(_secret("daemon.commander_webhook_env", d.commander_webhook_env, why))
    return out


def _contacts(app: App, name: str, customers: list[Customer]) -> list[str]:
    """The addresses channel ``name`` would send to: its customers' contacts (on any policy's
    channel list) and, for the commander's chat channel, the room's URL."""
    cfg = app.config.channels[name]
    cls = registry.get(cfg.kind)
    out: dict[str, None] = {}
    fld = cls.contact_field
    if fld is not None:
        policies = list(app.config.policies.values())
        for c in customers:
            value = c.contact(fld)
            if value and any(name in channels_for(c, p) for p in policies):
                out[value] = None
    d = app.config.daemon
    if name == d.commander_channel and cls.template_channel != "email" and d.commander_webhook_env:
        room = os.environ.get(d.commander_webhook_env)
        if room:
            out[room] = None
    return list(out)


async def _probe(app: App, name: str, contacts: list[str]) -> list[ProbeResult]:
    cfg = app.config.channels[name]
    target = cfg.kind
    try:
        channel = registry.get(cfg.kind)(cfg, app.config.company)
        await channel.open()
    except OutageCommsError as exc:
        return [ProbeResult(target=target, ok=False, detail=str(exc))]
    try:
        return await channel.probe(contacts)
    except OutageCommsError as exc:
        return [ProbeResult(target=target, ok=False, detail=str(exc))]
    finally:
        await channel.close()


def check_channels(app: App, *, probe: bool = True) -> ChannelsReport:
    """Check every configured channel's secrets and (with ``probe``) probe it; the channels are
    probed at once, each within its own ``timeout``. Nothing is sent to anyone."""
    with app.store.read() as conn:
        customers = customers_db.all_customers(conn)
    checks = [
        ChannelCheck(name, cfg.kind, channel_secrets(app, name))
        for name, cfg in sorted(app.config.channels.items())
    ]
    todo: list[tuple[ChannelCheck, list[str]]] = []
    for check in checks:
        if not probe:
            check.skipped = "--no-probe"
        elif not all(s.set for s in check.secrets):
            check.skipped = "a secret it needs is not set"
        else:
            contacts = _contacts(app, check.name, customers)
            needs = registry.get(check.kind).contact_field in _URL_CONTACTS
            if needs and not contacts:
                check.skipped = "no customer has a contact on it yet"
            else:
                todo.append((check, contacts))

    async def run_all() -> list[list[ProbeResult]]:
        return list(await asyncio.gather(*(_probe(app, c.name, urls) for c, urls in todo)))

    if todo:
        for (check, _), found in zip(todo, asyncio.run(run_all()), strict=True):
            check.probes = found
            if not found:  # a kind without a probe (a plugin's), or no host to connect to
                check.skipped = "nothing to probe"
    return ChannelsReport(checks, daemon_secrets(app))


#: contact fields that are URLs: such a channel is probed by connecting to its contacts' hosts
_URL_CONTACTS = frozenset({"slack_webhook", "teams_webhook", "webhook_url"})
