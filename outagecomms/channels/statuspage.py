"""Atlassian Statuspage: one page incident kept in step with each of our incidents.

A once-per-round channel (``contact_field = None``): each round of an incident is one delivery,
which creates or updates the page incident through the Statuspage REST API (``base_url``,
default ``https://api.statuspage.io/v1``), authenticated with ``Authorization: OAuth <key>``:

- no page incident yet (normally the acknowledgement): ``POST /pages/{page_id}/incidents`` with
  ``{"incident": {name, status, body, impact_override, components, component_ids,
  deliver_notifications, metadata}}``;
- later rounds: ``PATCH /pages/{page_id}/incidents/{incident_id}`` with the same fields; the
  resolution sets ``status = "resolved"`` and every affected component ``operational``.

``name`` is our title, ``status`` our status (investigating, identified, monitoring, resolved),
``body`` the rendered ``statuspage`` template. ``components`` maps each affected component that
``[channels.<name>] components`` knows (our name = Statuspage component id) to a component
status by severity (``component_status``; defaults sev1 ``major_outage``, sev2
``partial_outage``, sev3/sev4 ``degraded_performance``), and ``impact_override`` comes from
``impact`` (defaults sev1 ``critical``, sev2 ``major``, sev3/sev4 ``minor``; ``""`` lets
Statuspage compute it).

Crash safety: ``metadata`` carries ``{"outagecomms": {"incident": "INC-12", "started_at":
"2026-01-15T12:48:00+00:00", "round": 3}}`` (reference and start name our incident: a page
incident of an earlier store's INC-12 is not ours).
Before creating, the channel looks for a page incident holding our reference
(``GET /pages/{page_id}/incidents/unresolved``, then, for a round after the acknowledgement, a
search ``GET /pages/{page_id}/incidents?q=INC-12`` that also finds a resolved one), so a retry
after a crash (Statuspage accepted the request, we died before recording it) or after a lost
answer (timeout) adopts that page incident instead of creating a second. A round the page
incident already carries (its metadata round is this round or later) is not sent again: the
result is ``sent`` with the page incident id and no request. The reference → page incident
mapping is cached in the channel; a request whose outcome is unsure drops the cache entry, so
the next attempt looks again.

Statuspage allows one request per second per API key: every request (a delivery may need two:
a lookup and the change) waits for a :class:`RateLimiter` shared by all channels in the process
that use the same key (``rate_per_second``, default 1). Outcomes: 2xx ``sent`` (provider id: the
page incident id); 420/429 ``retry`` honouring ``Retry-After``; 5xx, timeouts and connection
errors ``retry``; 401, 403, 404, 422 and other 4xx ``failed`` with the start of the body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx

from outagecomms.channels.base import (
    DeliveryResult,
    KeySpec,
    OutboundMessage,
    Outcome,
    ProbeResult,
    RateLimiter,
)
from outagecomms.channels.http_base import (
    HTTP_KEYS,
    HttpChannel,
    body_excerpt,
    classify_status,
    parse_retry_after,
    sent_with_id,
)
from outagecomms.config.model import SEVERITIES, ChannelConfig, CompanyConfig

log = logging.getLogger("outagecomms.channels.statuspage")

DEFAULT_BASE_URL = "https://api.statuspage.io/v1"
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
#: component statuses an incident may set (``operational`` only at the resolution)
OUTAGE_STATUSES = ("degraded_performance", "partial_outage", "major_outage", "under_maintenance")
IMPACTS = ("none", "minor", "major", "critical")
DEFAULT_COMPONENT_STATUS = {
    "sev1": "major_outage",
    "sev2": "partial_outage",
    "sev3": "degraded_performance",
    "sev4": "degraded_performance",
}
DEFAULT_IMPACT = {"sev1": "critical", "sev2": "major", "sev3": "minor", "sev4": "minor"}
NAME_MAX = 255  # Statuspage's limits
BODY_MAX = 25_000
METADATA_KEY = "outagecomms"
PER_PAGE = 100
MAX_PAGES = 5  # of unresolved incidents looked through for ours (500 open incidents)
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # page and component ids: 12 lowercase alphanumerics

#: one limiter per API key (and rate) in the process: Statuspage counts requests per key, not
#: per channel, so channels sharing a key share its limit
_limiters: dict[tuple[str, float], RateLimiter] = {}


def limiter_for_key(api_key: str, rate: float) -> RateLimiter:
    """The process-wide limiter of one API key (held by the key's hash, not the key)."""
    slot = (hashlib.sha256(api_key.encode()).hexdigest(), float(rate))
    lim = _limiters.get(slot)
    if lim is None:
        lim = _limiters[slot] = RateLimiter(rate, burst=1.0)
    return lim


@dataclass(frozen=True)
class PageIncident:
    """A page incident of ours: its id and the last round it carries."""

    id: str
    round: int


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _round_of(data: Mapping[str, Any]) -> int:
    value = data.get("round")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"the message carries no round number (round = {value!r})")
    return value


def _identity(data: Mapping[str, Any]) -> dict[str, str]:
    """What names our incident in a page incident's metadata: its reference and start."""
    ident = {"incident": str(data.get("incident") or "")}
    if data.get("started_at"):
        ident["started_at"] = str(data["started_at"])
    return ident


def ours(docs: Iterable[Any], ref: str, started_at: str | None) -> PageIncident | None:
    """The page incident among ``docs`` whose metadata names our incident ``ref`` that started
    at ``started_at`` (another store's INC-1, e.g. before a reset, is another incident); the one
    with the latest round when, against expectations, there are several."""
    best: PageIncident | None = None
    for doc in docs:
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            continue
        meta = doc.get("metadata")
        mine = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
        if not isinstance(mine, dict) or mine.get("incident") != ref:
            continue
        if started_at is not None and mine.get("started_at") != started_at:
            continue
        rnd = mine.get("round")
        found = PageIncident(doc["id"], rnd if isinstance(rnd, int) and rnd > 0 else 0)
        if best is None or found.round > best.round:
            best = found
    return best


class StatuspageChannel(HttpChannel):
    kind = "statuspage"
    template_channel = "statuspage"
    contact_field = None  # once per round: one page incident, not one message per customer
    provider = "Statuspage"
    max_connections = 2
    rate_per_second = 1.0  # requests per second per API key (Statuspage's limit)
    config_keys: ClassVar[dict[str, KeySpec]] = {
        **HTTP_KEYS,
        "page_id": (str, ""),
        "api_key_env": (str, "STATUSPAGE_API_KEY"),
        "base_url": (str, DEFAULT_BASE_URL),
        "components": (dict, {}),  # our component name = Statuspage component id
        "component_status": (dict, {}),  # severity = component status while not resolved
        "impact": (dict, {}),  # severity = impact_override ("" = let Statuspage compute it)
        "deliver_notifications": (bool, True),  # Statuspage notifies the page's subscribers
    }

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        problem = super().check_config(settings)
        if problem:
            return problem
        page = settings.get("page_id") or ""
        if not page:
            return "page_id is required: the id of your Statuspage page (see its API info)"
        if not _ID.fullmatch(page):
            return f"page_id must be letters and digits, got {page!r}"
        if not settings.get("api_key_env"):
            return "api_key_env must name the environment variable holding the Statuspage API key"
        base = settings.get("base_url") or ""
        try:
            url = httpx.URL(base)
        except (httpx.InvalidURL, TypeError):
            return f"base_url is not a valid URL: {base!r}"
        if url.scheme not in ("https", "http") or not url.host:
            return f"base_url must be an http(s) URL, got {base!r}"
        components = settings.get("components")
        if not isinstance(components, Mapping):
            return (
                "components must be a table of our component name = Statuspage component id, "
                f"got {components!r}"
            )
        for name, cid in components.items():
            if not isinstance(cid, str) or not _ID.fullmatch(cid):
                return f"components.{name} must be a Statuspage component id, got {cid!r}"
        allowed: tuple[tuple[str, tuple[str, ...]], ...] = (
            ("component_status", OUTAGE_STATUSES),
            ("impact", (*IMPACTS, "")),
        )
        for key, choices in allowed:
            table = settings.get(key)
            if not isinstance(table, Mapping):
                return f"{key} must be a table of severity = value, got {table!r}"
            for sev, value in table.items():
                if sev not in SEVERITIES:
                    return f"{key}.{sev}: unknown severity; use sev1 .. sev4"
                if value not in choices:
                    shown = ", ".join(repr(c) for c in choices)
                    return f"{key}.{sev} must be one of {shown}, got {value!r}"
        return None

    def __init__(
        self,
        config: ChannelConfig,
        company: CompanyConfig,
        *,
        client: httpx.AsyncClient | None = None,
    ):
        super().__init__(config, company, client=client)
        s = self.settings
        self.base_url = str(s.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.page_id = str(s.get("page_id") or "")
        self.component_ids: dict[str, str] = dict(s.get("components") or {})
        self.component_status = {**DEFAULT_COMPONENT_STATUS, **(s.get("component_status") or {})}
        self.impact = {**DEFAULT_IMPACT, **(s.get("impact") or {})}
        self.deliver_notifications = bool(s.get("deliver_notifications", True))
        self._key: str | None = None
        self.known: dict[str, PageIncident] = {}  # our incident ref -> its page incident
        self._locks: dict[str, asyncio.Lock] = {}

    # -- secrets and requests ----------------------------------------------------------------

    def _api_key(self) -> str:
        if self._key is None:
            self._key = self.required_secret("api_key", "the Statuspage API key")
        return self._key

    async def open(self) -> None:
        self._api_key()  # a missing key stops here, before anything is sent
        await super().open()

    async def probe(self, contacts: Sequence[str] = ()) -> list[ProbeResult]:
        """Get the page (``GET /pages/{page_id}``, read-only): the API key works and the page
        is the one configured."""
        key = self._api_key()
        if self.rate > 0:
            await limiter_for_key(key, self.rate).acquire()
        url = f"{self.base_url}/pages/{quote(self.page_id, safe='')}"

        def named(response: httpx.Response) -> tuple[bool, str]:
            try:
                doc = response.json()
            except ValueError:
                doc = None
            if not isinstance(doc, dict) or doc.get("id") != self.page_id:
                return False, f"the answer is not page {self.page_id}"
            return True, f"page {str(doc.get('name') or self.page_id)[:80]!r}"

        return [await self.probe_get(url, {"Authorization": f"OAuth {key}"}, url, named)]

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Send; the rate limit applies to each request, inside ``send``."""
        return await self.send(message)

    async def call(
        self,
        method: str,
        path: str,
        document: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response | DeliveryResult:
        """One API request under ``/pages/{page_id}``, after waiting for the key's turn."""
        key = self._api_key()
        if self.rate > 0:
            await limiter_for_key(key, self.rate).acquire()
        url = f"{self.base_url}/pages/{quote(self.page_id, safe='')}{path}"
        if params:
            url += "?" + urlencode(params)
        headers = {"Authorization": f"OAuth {key}", "Accept": "application/json"}
        body = None
        if document is not None:
            body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        return await self.request(method, url, body, headers)

    def problem(self, response: httpx.Response) -> DeliveryResult | None:
        """The result of a non-2xx answer; None for 2xx."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        if status == 420:  # Statuspage's other "rate limited" answer: like 429
            detail = body_excerpt(response)
            return DeliveryResult.retry(
                "Statuspage HTTP 420 (rate limited)" + (f": {detail}" if detail else ""),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        return classify_status(response, provider=self.provider)

    def result(self, response: httpx.Response) -> DeliveryResult:
        """The result of a create or update: ``sent`` with the page incident id."""
        problem = self.problem(response)
        if problem is not None:
            return problem
        return sent_with_id(response, "id", provider="Statuspage", what="an incident id")

    async def _list(self, path: str, params: Mapping[str, str | int]) -> list[Any] | DeliveryResult:
        answer = await self.call("GET", path, params=params)
        if isinstance(answer, DeliveryResult):
            return answer
        problem = self.problem(answer)
        if problem is not None:
            return problem
        try:
            docs = answer.json()
        except ValueError:
            docs = None
        if not isinstance(docs, list):
            return DeliveryResult.failed(
                f"Statuspage GET {path}: expected a list of incidents, got "
                f"{body_excerpt(answer) or '<empty body>'}"
            )
        return docs

    async def find(
        self, ref: str, started_at: str | None, *, search: bool
    ) -> PageIncident | DeliveryResult | None:
        """Our page incident for ``ref`` on the page: among the unresolved ones, then (with
        ``search``) by a text search that also finds resolved ones."""
        found: PageIncident | None = None
        for page in range(1, MAX_PAGES + 1):
            docs = await self._list("/incidents/unresolved", {"page": page, "per_page": PER_PAGE})
            if isinstance(docs, DeliveryResult):
                return docs
            found = ours(docs, ref, started_at)
            if found is not None or len(docs) < PER_PAGE:
                break
        if found is None and search:
            docs = await self._list("/incidents", {"q": ref, "limit": PER_PAGE})
            if isinstance(docs, DeliveryResult):
                return docs
            found = ours(docs, ref, started_at)
        return found

    # -- one round ---------------------------------------------------------------------------

    def document(self, message: OutboundMessage) -> dict[str, Any]:
        """``{"incident": {...}}`` for one round; ValueError when the round's data is unusable."""
        data = message.data
        ref = str(data.get("incident") or "")
        if not ref:
            raise ValueError("the message carries no incident reference")
        rnd = _round_of(data)
        # a voided incident is closed on the page with its "please disregard" text
        status = "resolved" if data.get("kind") in ("resolution", "void") else data.get("status")
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(INCIDENT_STATUSES)}")
        severity = str(data.get("severity") or "")
        fields: dict[str, Any] = {
            "name": _cut(str(data.get("title") or ref).strip(), NAME_MAX),
            "status": status,
            "deliver_notifications": self.deliver_notifications,
            "metadata": {METADATA_KEY: _identity(data) | {"round": rnd}},
        }
        body = message.text.strip() or str(data.get("message") or "").strip()
        if body:
            fields["body"] = _cut(body, BODY_MAX)
        impact = self.impact.get(severity)
        if impact:
            fields["impact_override"] = impact
        ids: list[str] = []
        for name in data.get("components") or ():
            cid = self.component_ids.get(str(name))
            if cid and cid not in ids:
                ids.append(cid)
        if ids:
            now = (
                "operational"
                if status == "resolved"
                else self.component_status.get(severity, "major_outage")
            )
            fields["components"] = {cid: now for cid in ids}
            fields["component_ids"] = ids
        return {"incident": fields}

    def payload(self, message: OutboundMessage) -> bytes:
        return json.dumps(self.document(message), ensure_ascii=False).encode()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            doc = self.document(message)
        except ValueError as exc:
            return DeliveryResult.failed(f"Statuspage: {exc}")
        ident = _identity(message.data)
        ref, rnd = ident["incident"], _round_of(message.data)
        # rounds of one incident go one at a time: the second must see the first's page incident
        async with self._locks.setdefault(ref, asyncio.Lock()):
            known = self.known.get(ref)
            if known is None:
                found = await self.find(
                    ref,
                    ident.get("started_at"),
                    search=message.data.get("kind") != "acknowledgement",
                )
                if isinstance(found, DeliveryResult):
                    return found
                if found is not None:
                    log.info("%s: adopting page incident %s (round %d)", ref, found.id, found.round)
                known = found
            if known is not None and known.round >= rnd:
                # the page already carries this round (a resend after a crash or a lost answer)
                # or a later one (this round is stale): changing it again would go backwards
                self.known[ref] = known
                return DeliveryResult.sent(known.id)
            if known is None:
                answer = await self.call("POST", "/incidents", doc)
            else:
                answer = await self.call("PATCH", f"/incidents/{quote(known.id, safe='')}", doc)
            result = answer if isinstance(answer, DeliveryResult) else self.result(answer)
            if result.outcome == Outcome.SENT and result.provider_id:
                self.known[ref] = PageIncident(result.provider_id, rnd)
            else:
                self.known.pop(ref, None)  # unsure what the page holds now: look next time
            return result
