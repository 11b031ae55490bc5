"""Channel kinds by short name; third parties add kinds through the entry-point group
``outagecomms.channels`` (``name = "package.module:ChannelClass"``)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outagecomms.channels.base import Channel
    from outagecomms.config.model import Config

_BUILTIN = {
    "smtp": "outagecomms.channels.smtp:SmtpChannel",
    "maildir": "outagecomms.channels.maildir:MaildirChannel",
    "console": "outagecomms.channels.console:ConsoleChannel",
    "slack": "outagecomms.channels.slack:SlackChannel",
    "teams": "outagecomms.channels.teams:TeamsChannel",
    "webhook": "outagecomms.channels.webhook:WebhookChannel",
    "twilio": "outagecomms.channels.twilio:TwilioChannel",
    "statuspage": "outagecomms.channels.statuspage:StatuspageChannel",
    "apprise": "outagecomms.channels.apprise:AppriseChannel",
}
_loaded: dict[str, type[Channel]] = {}


def _plugins() -> dict[str, str]:
    from importlib.metadata import entry_points  # costs ~10 ms: only when a kind is not built in

    return {ep.name: ep.value for ep in entry_points(group="outagecomms.channels")}


def names() -> list[str]:
    return sorted({*_BUILTIN, *_plugins()})


def get(kind: str) -> type[Channel]:
    """The channel class for ``kind``; KeyError when unknown."""
    if kind in _loaded:
        return _loaded[kind]
    target = _BUILTIN.get(kind) or _plugins().get(kind)
    if target is None:
        raise KeyError(kind)
    module, _, attr = target.partition(":")
    cls: type[Channel] = getattr(import_module(module), attr)
    _loaded[kind] = cls
    return cls


async def open_channel(config: Config, opened: dict[str, Channel], name: str) -> Channel | None:
    """The configured channel ``name``, opened once and kept in ``opened`` (the caller
    closes them); None when no such channel is configured."""
    ch = opened.get(name)
    if ch is None:
        cfg = config.channels.get(name)
        if cfg is None:
            return None
        ch = get(cfg.kind)(cfg, config.company)
        await ch.open()
        opened[name] = ch
    return ch
