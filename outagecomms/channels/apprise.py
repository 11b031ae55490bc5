"""Apprise: the long tail of notification services (Discord, Matrix, ntfy, Telegram, a JSON
endpoint, ...), each named by an Apprise URL. Needs the optional extra:
``pip install 'outagecomms[apprise]'``.

A once-per-round channel (``contact_field = None``): each round of an incident is one delivery,
sent to every URL of the channel: ``urls`` (a list in the config) plus, when ``urls_env`` names
an environment variable, the whitespace-separated URLs it holds (for URLs that carry tokens or
passwords). The title is the rendered ``apprise`` subject, the body the rendered text
(``body_format``: text, markdown or html); the notification type follows the round (``success``
at the resolution, ``warning`` while monitoring or for sev3/sev4, ``failure`` otherwise).

Outcomes. Apprise says only whether a service accepted the notification, never why not, so:

- every URL accepted: ``sent``;
- any URL failed: ``retry``, naming each failing service by its URL with secrets masked
  (``url(privacy=True)``) and, where Apprise reports one, its last warning. Apprise cannot tell a
  transient failure from a permanent one, so none is treated as permanent: the retries run out
  (``dispatch.max_attempts``) and the delivery is dead. A retry goes only to the URLs that failed
  (remembered in memory, per delivery: after a restart every URL is sent to again);
- a URL Apprise cannot parse, or a plugin that refuses its parts: a config error when the config
  is loaded (``urls``) or when the channel opens (``urls_env``), naming the key.

Apprise is synchronous (``requests``, ``smtplib``): each URL is notified in a worker thread
(``asyncio.to_thread``), up to ``max_connections`` at once, so the event loop never blocks;
``timeout`` bounds each connect and read. Apprise is imported only when an apprise channel is
configured.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

from outagecomms.channels.base import (
    Channel,
    DeliveryResult,
    KeySpec,
    OutboundMessage,
    ProbeResult,
)
from outagecomms.config.model import ChannelConfig, CompanyConfig
from outagecomms.errors import ConfigError
from outagecomms.values import shown_env

INSTALL_HINT = "pip install 'outagecomms[apprise]'"
BODY_FORMATS = ("text", "markdown", "html")
_REMEMBERED = 1024  # deliveries whose partly-delivered URLs are remembered for their retry


def load_apprise() -> ModuleType | None:
    """The apprise module, or None when it is not installed."""
    try:
        import apprise
    except ImportError:
        return None
    return apprise


def _asset(apprise: ModuleType) -> Any:
    return apprise.AppriseAsset(app_id="outagecomms", app_desc="outagecomms outage notices")


def _scheme(url: str) -> str:
    """A URL shown without its secrets: its scheme only (it could not be parsed to mask it)."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep else "a text without '://'"


def url_problem(apprise: ModuleType, url: Any) -> str | None:
    """Why Apprise cannot use ``url`` (None when it can)."""
    if not isinstance(url, str) or not url.strip():
        return f"must be an Apprise URL (a non-empty string), got {url!r}"
    if apprise.Apprise.instantiate(url.strip(), asset=_asset(apprise)) is None:
        return (
            f"Apprise cannot use {_scheme(url.strip())}: an unknown service or missing parts "
            "(see https://github.com/caronc/apprise/wiki for each service's URL)"
        )
    return None


def notify_type(data: Mapping[str, Any]) -> str:
    """Apprise's notification type for a round: success, warning or failure."""
    if data.get("kind") == "resolution" or data.get("status") == "resolved":
        return "success"
    if data.get("kind") == "void":
        return "info"
    if data.get("status") == "monitoring" or data.get("severity") in ("sev3", "sev4"):
        return "warning"
    return "failure"


def _last_warning(result: Any) -> str:
    """The last warning Apprise logged for a failed service, when it reports them (Apprise 2
    returns per-service results with their logs; 1.x returns a bare bool)."""
    for service in getattr(result, "results", ()):
        if service:
            continue
        entries = [e for e in service.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        if entries:
            return " ".join(str(entries[-1].message).split())[:200]
        if getattr(service.status, "name", "") == "TIMEOUT":
            return "timed out"
    return ""


async def _probe_said(target: str, detail: str, *, ok: bool = False) -> ProbeResult:
    """A probe result known without connecting (awaitable, like a connect)."""
    return ProbeResult(target=target, ok=ok, detail=detail)


class AppriseChannel(Channel):
    kind = "apprise"
    template_channel = "apprise"
    contact_field = None  # once per round, to every URL of the channel
    max_connections = 4  # URLs notified at once (each in a worker thread)
    rate_per_second = 0.0
    config_keys: ClassVar[dict[str, KeySpec]] = {
        "urls": (list, []),
        "urls_env": (str, ""),
        "body_format": (BODY_FORMATS, "text"),
        "timeout": (int, 10),
    }

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        if settings.get("timeout", 1) <= 0:
            return f"timeout must be at least 1 second, got {settings['timeout']}"
        urls = settings.get("urls")
        if not isinstance(urls, list):
            return f"urls must be a list of Apprise URLs, got {urls!r}"
        if not urls and not settings.get("urls_env"):
            return "set urls (a list of Apprise URLs) or urls_env (a variable holding them)"
        apprise = load_apprise()
        if apprise is None:
            return f"the apprise channel needs the Apprise library: {INSTALL_HINT}"
        for i, url in enumerate(urls):
            problem = url_problem(apprise, url)
            if problem:
                return f"urls[{i}] {problem}"
        return None

    def __init__(self, config: ChannelConfig, company: CompanyConfig):
        super().__init__(config, company)
        apprise = load_apprise()
        if apprise is None:
            raise ConfigError(
                f"the apprise channel needs the Apprise library: {INSTALL_HINT}",
                key=f"channels.{config.name}.kind",
            )
        self.apprise = apprise
        self.asset = _asset(apprise)
        self.timeout = float(self.settings.get("timeout") or 10)
        self.body_format = str(self.settings.get("body_format") or "text")
        self._urls: list[str] | None = None
        self._slots = asyncio.Semaphore(config.max_connections)
        #: delivery id -> indexes of the URLs that already accepted it (for its retry)
        self._delivered: OrderedDict[int, set[int]] = OrderedDict()

    def urls(self) -> list[str]:
        """Every URL of the channel: ``urls``, then those in ``$urls_env``. Raises ConfigError
        when the variable is unset or holds a URL Apprise cannot use."""
        if self._urls is None:
            urls = [str(u).strip() for u in self.settings.get("urls") or ()]
            var = str(self.settings.get("urls_env") or "")
            if var:
                key = f"channels.{self.config.name}.urls_env"
                held = os.environ.get(var, "").split()
                if not held:
                    raise ConfigError(
                        f"environment variable {shown_env(var)} is not set (it must hold Apprise URLs, "
                        "separated by whitespace)",
                        key=key,
                    )
                for i, url in enumerate(held):
                    problem = url_problem(self.apprise, url)
                    if problem:
                        raise ConfigError(f"URL {i + 1} in {shown_env(var)}: {problem}", key=key)
                urls += held
            self._urls = urls
        return self._urls

    async def open(self) -> None:
        self.urls()  # a missing or unusable $urls_env stops here, before anything is sent

    async def probe(self, contacts: Sequence[str] = ()) -> list[ProbeResult]:
        """A connect to each URL's service, notifying nobody: TLS to the fixed HTTPS endpoint of
        services that have one (Discord, Telegram, ...: the plugin's ``notify_url``), else TCP
        to the host and port the URL names (``json://host:port/``, ``mailto://``, ``ntfys://``)."""
        import ssl

        import httpx

        from outagecomms.channels.probing import connect

        context: ssl.SSLContext | None = None
        checks = []
        for url in self.urls():
            plugin = self.apprise.Apprise.instantiate(url, asset=self.asset)
            if plugin is None:
                checks.append(_probe_said(_scheme(url), "Apprise cannot use this URL"))
                continue
            name = str(plugin.url(privacy=True)).split("?", 1)[0]
            fixed = getattr(type(plugin), "notify_url", None)
            if isinstance(fixed, str) and fixed.startswith("https://"):
                host, port = fixed.split("/")[2], 443
                context = context or httpx.create_ssl_context()  # honours SSL_CERT_FILE
                checks.append(connect(host, port, tls=context, timeout=self.timeout, target=name))
            elif getattr(plugin, "host", None):
                port = plugin.port or (443 if plugin.secure else 80)
                checks.append(
                    connect(plugin.host, port, tls=None, timeout=self.timeout, target=name)
                )
            else:
                checks.append(_probe_said(name, "no host to connect to", ok=True))
        return list(await asyncio.gather(*checks))

    def _notify(self, url: str, title: str, body: str, kind: str) -> tuple[bool, str]:
        """Notify one URL (blocking: runs in a worker thread): (accepted, failure text)."""
        plugin = self.apprise.Apprise.instantiate(url, asset=self.asset)
        if plugin is None:  # checked at load; a plugin may still refuse at run time
            return False, f"{_scheme(url)} (Apprise cannot use this URL)"
        plugin.socket_connect_timeout = self.timeout
        plugin.socket_read_timeout = self.timeout
        one = self.apprise.Apprise(asset=self.asset)
        one.add(plugin)
        result = one.notify(body=body, title=title, notify_type=kind, body_format=self.body_format)
        if result:
            return True, ""
        where = str(plugin.url(privacy=True)).split("?", 1)[0]
        why = _last_warning(result)
        return False, f"{plugin.service_name} {where} failed" + (f": {why}" if why else "")

    async def _notify_async(self, url: str, title: str, body: str, kind: str) -> tuple[bool, str]:
        async with self._slots:
            return await asyncio.to_thread(self._notify, url, title, body, kind)

    def _remember(self, delivery_id: int, done: set[int]) -> None:
        self._delivered[delivery_id] = done
        self._delivered.move_to_end(delivery_id)
        while len(self._delivered) > _REMEMBERED:
            self._delivered.popitem(last=False)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        urls = self.urls()
        if not urls:
            return DeliveryResult.failed("Apprise: the channel has no URLs")
        done = set(self._delivered.get(message.delivery_id, ()))
        pending: Sequence[int] = [i for i in range(len(urls)) if i not in done]
        kind = notify_type(message.data)
        title, body = message.subject, message.text.strip()
        outcomes = await asyncio.gather(
            *(self._notify_async(urls[i], title, body, kind) for i in pending)
        )
        failures = []
        for i, (ok, why) in zip(pending, outcomes, strict=True):
            if ok:
                done.add(i)
            else:
                failures.append(why)
        if not failures:
            self._delivered.pop(message.delivery_id, None)
            return DeliveryResult.sent()
        self._remember(message.delivery_id, done)
        return DeliveryResult.retry(
            "Apprise: "
            + "; ".join(failures)
            + f" ({len(done)} of {len(urls)} URLs delivered; a retry sends to the others)"
        )
