"""Shared machinery of the HTTP channels (slack, teams, webhook, twilio, statuspage).

Up to ``max_connections`` connections per channel, each held by its own one-connection
:class:`httpx.AsyncClient` (a *lane*), created on demand and closed in ``close``. A request takes
an idle lane whose kept-alive connection goes to its origin, else a new lane while there are
fewer than ``max_connections``, else the lane idle the longest (its connection is replaced).
Why not one client with a pool of ``max_connections``: httpcore's pool (1.0.x) re-examines every
connection it holds, with a ``poll()`` and several socket calls on each idle one, twice per
request, so its CPU per request grows with the pool. On loopback, one process made about 1,200
requests/s through a pool of 8 connections but 300/s through a pool of 32 (the webhook
default); 32 lanes made 1,300/s (``benchmarks/webhook_fanout.py``; encode/httpcore#1035).

A client passed to the constructor is used as is, with its own pool, and left to its owner to
close. Outcomes (as the channel protocol in channels/base.py defines them):

- 2xx: ``sent`` (a subclass may look at the body first, e.g. Slack's ``ok``);
- 429: ``retry`` honouring ``Retry-After`` (delta-seconds or an HTTP date);
- 5xx, timeouts, connection errors: ``retry`` (``Retry-After`` honoured when given);
- other 4xx, redirects, an unusable URL: ``failed`` (permanent: retrying will not help).

Rate limits are per destination (per URL): Slack allows one message per second per incoming
webhook, so ``rate_per_second`` of an HTTP channel limits each URL separately, through one
:class:`RateLimiter` per URL, rather than the whole channel (Twilio limits the account, and
Statuspage each API key, so those channels override ``deliver``).
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from outagecomms.channels.base import (
    Channel,
    DeliveryResult,
    KeySpec,
    OutboundMessage,
    ProbeResult,
    RateLimiter,
)
from outagecomms.config.model import ChannelConfig, CompanyConfig
from outagecomms.errors import ConfigError
from outagecomms.values import shown_env
from outagecomms.version import __version__

USER_AGENT = f"outagecomms/{__version__}"
#: config keys every HTTP channel has
HTTP_KEYS: dict[str, KeySpec] = {"timeout": (int, 10)}
_ERROR_BODY_CHARS = 200


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds (``"30"``) or an HTTP date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``); None when absent or unreadable. Never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def body_excerpt(response: httpx.Response) -> str:
    """The start of a response body on one line, for an error message."""
    try:
        text = response.text
    except Exception:  # undecodable body: say how long it was instead
        return f"<{len(response.content)} bytes>"
    return " ".join(text.split())[:_ERROR_BODY_CHARS]


def classify_status(response: httpx.Response, *, provider: str) -> DeliveryResult:
    """The outcome of an HTTP answer by status code alone."""
    status = response.status_code
    detail = body_excerpt(response)
    error = f"{provider} HTTP {status}" + (f": {detail}" if detail else "")
    if 200 <= status < 300:
        return DeliveryResult.sent(response.headers.get("x-request-id"))
    if status == 429 or status >= 500:
        return DeliveryResult.retry(
            error, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    if 300 <= status < 400:
        where = response.headers.get("location", "")
        return DeliveryResult.failed(
            f"{provider} HTTP {status}: the URL redirects"
            + (f" to {where[:_ERROR_BODY_CHARS]}" if where else "")
            + "; update the contact to the final URL"
        )
    return DeliveryResult.failed(error)


def sent_with_id(response: httpx.Response, key: str, *, provider: str, what: str) -> DeliveryResult:
    """A 2xx answer whose JSON body must carry the provider's id under ``key`` (Twilio's
    message ``sid``, Statuspage's incident ``id``): ``sent`` with it, else ``failed`` (an
    answer without it is not an accepted message)."""
    try:
        doc = response.json()
    except ValueError:
        doc = None
    value = doc.get(key) if isinstance(doc, dict) else None
    if isinstance(value, str) and value:
        return DeliveryResult.sent(value)
    return DeliveryResult.failed(
        f"{provider} HTTP {response.status_code} without {what}: "
        f"{body_excerpt(response) or '<empty body>'}"
    )


class HttpChannel(Channel):
    """Base of channels that POST one JSON document per message to the contact's URL."""

    contact_field: ClassVar[str | None] = "webhook_url"
    max_connections = 16
    #: a human name for error messages ("Slack", "Teams", "webhook")
    provider: ClassVar[str] = "HTTP"
    config_keys: ClassVar[dict[str, KeySpec]] = dict(HTTP_KEYS)

    def required_secret(self, key: str, holds: str) -> str:
        """The secret the ``<key>_env`` setting names; a ConfigError naming that key when the
        setting or its variable is empty (``holds``: what the variable must hold)."""
        value = self.config.secret(key)
        if value is None:
            var = self.settings.get(f"{key}_env") or ""
            raise ConfigError(
                f"environment variable {shown_env(var)} is not set (it must hold {holds})"
                if var
                else f"is not set: name the environment variable holding {holds}",
                key=f"channels.{self.config.name}.{key}_env",
            )
        return value

    def __init__(
        self,
        config: ChannelConfig,
        company: CompanyConfig,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(config, company)
        self.clock = clock  # wall time for what a provider dates (signatures, validity)
        # rate_per_second applies per destination URL, not to the channel as a whole
        self.limiter = None
        self.rate = float(config.rate_per_second)
        self.limiters: dict[str, RateLimiter] = {}
        self.timeout = float(self.settings.get("timeout") or 10)
        self._client = client  # injected: used as is, never closed here
        self._lanes: list[httpx.AsyncClient] = []
        #: idle lanes -> the origin their kept-alive connection goes to; least recently used first
        self._idle: dict[httpx.AsyncClient, tuple[str, str, int | None]] = {}
        self._ssl: ssl.SSLContext | None = None  # shared by all lanes
        self._slots = asyncio.Semaphore(config.max_connections)

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        if settings.get("timeout", 1) <= 0:
            return f"timeout must be at least 1 second, got {settings['timeout']}"
        return None

    # -- connections -----------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:  # loading the CA bundle takes a while: once, not per lane
            self._ssl = httpx.create_ssl_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
        return self._ssl

    def _make_lane(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=self._ssl_context(),
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,  # a POST must not silently turn into something else
            trust_env=True,  # HTTPS_PROXY / NO_PROXY as usual
        )

    def _take_lane(self, origin: tuple[str, str, int | None]) -> httpx.AsyncClient:
        """A lane for one request; the caller holds a slot, so one is idle or can be made."""
        for lane, where in reversed(self._idle.items()):  # the warmest connection first
            if where == origin:
                del self._idle[lane]
                return lane
        if len(self._lanes) < self.config.max_connections:
            lane = self._make_lane()
            self._lanes.append(lane)
            return lane
        if not self._idle:  # pragma: no cover - the slots make this impossible
            raise RuntimeError("no idle HTTP connection although a slot was free")
        lane = next(iter(self._idle))  # idle the longest: its connection gets replaced
        del self._idle[lane]
        return lane

    async def open(self) -> None:
        """Load the CA bundle now rather than in the first request; lanes come on demand."""
        if self._client is None:
            self._ssl_context()

    async def close(self) -> None:
        lanes, self._lanes = self._lanes, []
        self._idle.clear()
        await asyncio.gather(*(lane.aclose() for lane in lanes), return_exceptions=True)

    # -- rate limits -----------------------------------------------------------------------

    def limiter_for(self, url: str) -> RateLimiter | None:
        """The limiter of one destination URL (None when the channel has no rate limit)."""
        if self.rate <= 0:
            return None
        lim = self.limiters.get(url)
        if lim is None:
            lim = self.limiters[url] = RateLimiter(self.rate, burst=1.0)
        return lim

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Send honouring the rate limit of the message's destination URL."""
        lim = self.limiter_for(message.to)
        if lim is not None:
            await lim.acquire()
        return await self.send(message)

    # -- one request -----------------------------------------------------------------------

    def _parse_url(self, url: str) -> httpx.URL | str:
        """The URL, or a sentence describing why it cannot be posted to."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            return f"{self.provider} URL {url!r} is not valid: {exc}"
        if parsed.scheme not in ("https", "http") or not parsed.host:
            return f"{self.provider} URL {url!r} is not an http(s) URL"
        return parsed

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> httpx.Response | DeliveryResult:
        """POST ``body`` as JSON; the response, or the result of a transport problem."""
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return await self.request("POST", url, body, all_headers)

    async def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response | DeliveryResult:
        """One request on an idle connection; the response, or the result of a transport
        problem (timeouts and connection errors: ``retry``; an unusable URL: ``failed``)."""
        target = self._parse_url(url)
        if isinstance(target, str):
            return DeliveryResult.failed(target)
        origin = (target.scheme, target.host, target.port)
        async with self._slots:
            client = self._client if self._client is not None else self._take_lane(origin)
            try:
                return await client.request(method, target, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                kind = type(exc).__name__
                return DeliveryResult.retry(
                    f"{self.provider} timeout ({kind}) after {self.timeout:g}s"
                )
            except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
                return DeliveryResult.failed(f"{self.provider} request not possible: {exc}")
            except httpx.TransportError as exc:
                return DeliveryResult.retry(
                    f"{self.provider} connection failed: {type(exc).__name__} {exc}".rstrip()
                )
            finally:
                if client is not self._client and client in self._lanes:  # not closed meanwhile
                    self._idle[client] = origin  # the response is read and closed: lane free

    # -- doctor ----------------------------------------------------------------------------

    async def probe(self, contacts: Sequence[str] = ()) -> list[ProbeResult]:
        """A TLS connect (TCP for http) to each distinct host the contacts name: nothing is
        posted, so nobody receives anything (an incoming webhook has no read-only call)."""
        from outagecomms.channels.probing import connect_each

        return await connect_each(
            contacts,
            context=self._ssl_context(),
            timeout=self.timeout,
            limit=self.config.max_connections,
        )

    async def probe_get(
        self,
        url: str,
        headers: Mapping[str, str],
        shown: str,
        check: Callable[[httpx.Response], tuple[bool, str]] | None = None,
    ) -> ProbeResult:
        """A read-only ``GET url`` (``shown`` names it without secrets): ok on 2xx, when
        ``check`` (given the 2xx answer: ok and what to say) agrees."""
        from outagecomms.channels.probing import describe

        target = f"GET {shown}"
        client = self._client if self._client is not None else self._make_lane()
        try:
            answer = await client.get(url, headers={"Accept": "application/json", **headers})
        except httpx.HTTPError as exc:
            return ProbeResult(target=target, ok=False, detail=describe(exc, timeout=self.timeout))
        finally:
            if client is not self._client:
                await client.aclose()
        if 200 <= answer.status_code < 300:
            ok, said = check(answer) if check else (True, "")
            detail = f"HTTP {answer.status_code}" + (f", {said}" if said else "")
            return ProbeResult(target=target, ok=ok, detail=detail)
        detail = body_excerpt(answer)
        return ProbeResult(
            target=target,
            ok=False,
            detail=f"HTTP {answer.status_code}" + (f": {detail}" if detail else ""),
        )

    def result(self, response: httpx.Response) -> DeliveryResult:
        """Map a response to a result; subclasses refine (e.g. by body)."""
        return classify_status(response, provider=self.provider)

    @abstractmethod
    def payload(self, message: OutboundMessage) -> bytes:
        """The request body for one message."""

    def headers(self, message: OutboundMessage, body: bytes) -> dict[str, str]:
        """Extra request headers for one message."""
        return {}

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        body = self.payload(message)
        answer = await self.post(message.to, body, self.headers(message, body))
        if isinstance(answer, DeliveryResult):
            return answer
        return self.result(answer)
