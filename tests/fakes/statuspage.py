"""Atlassian Statuspage's API for one page, on loopback (it plays ``https://api.statuspage.io/v1``).

It checks every request the way Statuspage documents it (method and path,
``Authorization: OAuth <key>``, JSON ``{"incident": {...}}`` with the documented field names,
types, realtime statuses, component statuses, impact values and metadata shape), keeps page
incidents in memory (with their incident updates and the page's component statuses), lists
unresolved ones and searches by text, and answers whatever a test scripted: 420/429 with
Retry-After, 5xx, 401, 404, 422, or a change that is applied but answered only after the
client gave up (a lost answer).

``GET /pages/{page_id}`` ("Get a page", read-only: what ``doctor`` probes with) answers the Page
object (``id``, ``name``, ``subdomain``, ``url``, ``time_zone``, ``created_at``, ...; 404 for
another page, 401 without a valid key).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.asgi import Fake, Recorded, Reply

PAGE = "qfn30z5r6s5h"
COMPONENTS = {"api": "8kbf7d35c070", "auth": "vtnh60py4yd7", "db": "3kvnqjd2pjb3"}
INCIDENT_FIELDS = {  # POST/PATCH /pages/{page_id}/incidents: the documented incident fields
    "name", "status", "impact_override", "scheduled_for", "scheduled_until",
    "scheduled_remind_prior", "auto_transition_to_maintenance_state",
    "auto_transition_to_operational_state", "scheduled_auto_in_progress",
    "scheduled_auto_completed", "auto_transition_deliver_notifications_at_start",
    "auto_transition_deliver_notifications_at_end", "metadata", "deliver_notifications",
    "auto_tweet_at_beginning", "auto_tweet_on_completion", "auto_tweet_on_creation",
    "auto_tweet_one_hour_before", "backfill_date", "backfilled", "body", "components",
    "component_ids", "scheduled_auto_transition",
}  # fmt: skip
REALTIME = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
IMPACTS = ("none", "minor", "major", "critical")
STARTED = "2026-01-15T12:48:00+00:00"


# --- the fake Statuspage ------------------------------------------------------------------------


def incident_problems(doc: Any, *, create: bool) -> list[str]:
    """What Statuspage would refuse in a create/update body (its documented shape)."""
    if (
        not isinstance(doc, dict)
        or set(doc) != {"incident"}
        or not isinstance(doc["incident"], dict)
    ):
        return ['body must be {"incident": {...}}']
    inc = doc["incident"]
    p = [f"unknown incident field {k!r}" for k in inc if k not in INCIDENT_FIELDS]
    name = inc.get("name")
    if (create or "name" in inc) and not (isinstance(name, str) and 1 <= len(name) <= 255):
        p.append("name must be a string of 1..255 characters")
    if "status" in inc and inc["status"] not in REALTIME:
        p.append(f"status {inc['status']!r} is not a realtime incident status")
    if "body" in inc and (not isinstance(inc["body"], str) or len(inc["body"]) > 25000):
        p.append("body must be a string of at most 25000 characters")
    if "impact_override" in inc and inc["impact_override"] not in IMPACTS:
        p.append(f"impact_override {inc['impact_override']!r} not one of {IMPACTS}")
    if "deliver_notifications" in inc and not isinstance(inc["deliver_notifications"], bool):
        p.append("deliver_notifications must be a boolean")
    meta = inc.get("metadata", {})
    if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
        p.append("metadata: all top-level values must be objects")
    comps = inc.get("components", {})
    if not isinstance(comps, dict):
        p.append("components must be an object of component id: status")
    else:
        for cid, status in comps.items():
            if cid not in COMPONENTS.values():
                p.append(f"component {cid!r} is not on the page")
            if status not in COMPONENT_STATUSES:
                p.append(f"component status {status!r} not one of {COMPONENT_STATUSES}")
    ids = inc.get("component_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        p.append("component_ids must be a list of strings")
    elif any(i not in COMPONENTS.values() for i in ids):
        p.append(f"component_ids {ids} name a component not on the page")
    return p


class FakeStatuspage(Fake):
    def __init__(self) -> None:
        methods = ["GET", "POST", "PATCH", "PUT"]
        super().__init__(Route("/{path:path}", self.handle, methods=methods))
        self.base = f"{self.base}/v1"
        self.keys: set[str] = set()
        self.incidents: dict[str, dict[str, Any]] = {}
        self.components: dict[str, str] = {}
        self.reset()

    def forget(self) -> None:
        self.keys.clear()
        self.incidents.clear()
        self.components = dict.fromkeys(COMPONENTS.values(), "operational")

    def script(self, method: str, *replies: Reply) -> None:
        """Answer the next requests of ``method`` (GET, POST, PATCH) with ``replies``."""
        self.queue(method, replies)

    def recorded(self, method: str | None = None) -> list[Recorded]:
        """The requests of ``method`` (all of them: None)."""
        with self.lock:
            return [r for r in self.requests if method is None or r.method == method]

    async def handle(self, request: Request) -> Response:
        rec = await Recorded.of(request)
        reply = self.take(rec, rec.method)
        if reply.status is not None:
            return reply.response()
        if rec.authorization not in {f"OAuth {k}" for k in self.keys}:
            return JSONResponse({"error": "Could not authenticate"}, status_code=401)
        answer = self.apply(rec)
        if reply.slow:  # the change is made; the answer comes too late for the client
            await self.release.wait()
        return answer

    def _problem(self, rec: Recorded, problems: list[str], status: int = 422) -> Response:
        with self.lock:
            self.problems.extend(f"{rec.method} {rec.path}: {x}" for x in problems)
        return JSONResponse({"error": problems}, status_code=status)

    def page(self) -> dict[str, Any]:
        """The Page object of ``GET /pages/{page_id}`` (a subset of its documented fields)."""
        return {
            "id": PAGE,
            "created_at": "2026-01-02T09:00:00.000Z",
            "updated_at": "2026-01-02T09:00:00.000Z",
            "name": "S1 Technology",
            "page_description": "",
            "headline": "",
            "branding": "basic",
            "subdomain": "s1technology",
            "domain": "status.example.com",
            "url": "https://www.example.com",
            "support_url": "https://www.example.com/support",
            "hidden_from_search": False,
            "allow_page_subscribers": True,
            "allow_incident_subscribers": True,
            "allow_email_subscribers": True,
            "allow_sms_subscribers": True,
            "allow_rss_atom_feeds": True,
            "allow_webhook_subscribers": True,
            "time_zone": "Etc/UTC",
        }

    def apply(self, rec: Recorded) -> Response:
        page = re.fullmatch(r"/v1/pages/([^/]+)", rec.path)
        if page and rec.method == "GET":
            if rec.body:
                return self._problem(rec, ["a GET carries no body"], 400)
            if page.group(1) != PAGE:
                return JSONResponse({"error": "The requested resource could not be found."}, 404)
            return JSONResponse(self.page())
        m = re.fullmatch(r"/v1/pages/([^/]+)/incidents(?:/([^/]+))?", rec.path)
        if not m or m.group(1) != PAGE:
            return self._problem(rec, [f"no such page or path: {rec.path}"], 404)
        sub = m.group(2)
        if rec.method == "GET":
            if rec.body:
                return self._problem(rec, ["a GET carries no body"], 400)
            if sub == "unresolved":
                return self.list_unresolved(rec)
            if sub is None:
                return self.search(rec)
            return self._problem(rec, [f"unexpected GET {rec.path}"], 404)
        if rec.content_type.split(";")[0].strip() != "application/json":
            return self._problem(rec, [f"Content-Type {rec.content_type!r}"], 415)
        try:
            doc = rec.json()
        except ValueError:
            return self._problem(rec, ["body is not JSON"], 400)
        if rec.method == "POST" and sub is None:
            problems = incident_problems(doc, create=True)
            return self._problem(rec, problems) if problems else self.create(doc["incident"])
        if rec.method == "PATCH" and sub is not None:
            if sub not in self.incidents:
                return JSONResponse({"error": "The requested resource could not be found."}, 404)
            problems = incident_problems(doc, create=False)
            return self._problem(rec, problems) if problems else self.update(sub, doc["incident"])
        return self._problem(rec, [f"unexpected {rec.method} {rec.path}"], 405)

    def _page(self, items: list[dict[str, Any]], rec: Recorded, size_key: str) -> Response:
        try:
            page = int(rec.params.get("page", "1"))
            size = int(rec.params.get(size_key, "100"))
        except ValueError:
            return self._problem(rec, ["page and page size must be integers"], 400)
        if page < 1 or not 1 <= size <= 100:
            return self._problem(rec, ["page >= 1, page size 1..100"], 400)
        return JSONResponse(items[(page - 1) * size : page * size])

    def _newest_first(self) -> list[dict[str, Any]]:
        with self.lock:
            return sorted(self.incidents.values(), key=lambda i: i["created_at"], reverse=True)

    def list_unresolved(self, rec: Recorded) -> Response:
        items = [i for i in self._newest_first() if i["status"] not in ("resolved", "postmortem")]
        return self._page(items, rec, "per_page")

    def search(self, rec: Recorded) -> Response:
        """``q`` searches name, status, postmortem body and incident updates (not metadata)."""
        q = rec.params.get("q", "").lower()

        def hit(i: dict[str, Any]) -> bool:
            texts = [i["name"], i["status"], *(u["body"] for u in i["incident_updates"])]
            return q in " ".join(texts).lower()

        return self._page([i for i in self._newest_first() if hit(i)], rec, "limit")

    def _set_components(self, inc: dict[str, Any], fields: dict[str, Any]) -> None:
        for cid, status in fields.get("components", {}).items():
            self.components[cid] = status
        ids = list(dict.fromkeys([*inc["component_ids"], *fields.get("component_ids", [])]))
        inc["component_ids"] = ids
        name_of = {v: k for k, v in COMPONENTS.items()}
        inc["components"] = [
            {"id": c, "name": name_of[c], "status": self.components[c], "page_id": PAGE}
            for c in ids
        ]

    def _add_update(self, inc: dict[str, Any], fields: dict[str, Any]) -> None:
        inc["incident_updates"].insert(
            0,
            {
                "id": secrets.token_hex(6),
                "incident_id": inc["id"],
                "body": fields.get("body", ""),
                "status": inc["status"],
                "deliver_notifications": fields.get("deliver_notifications", True),
                "affected_components": dict(fields.get("components", {})),
                "created_at": time.time(),
            },
        )

    def create(self, fields: dict[str, Any]) -> Response:
        with self.lock:
            iid = secrets.token_hex(6)
            inc: dict[str, Any] = {
                "id": iid,
                "page_id": PAGE,
                "name": fields["name"],
                "status": fields.get("status", "investigating"),
                "impact_override": fields.get("impact_override"),
                "metadata": dict(fields.get("metadata", {})),
                "component_ids": [],
                "components": [],
                "incident_updates": [],
                "created_at": time.time(),
                "resolved_at": None,
                "shortlink": f"https://stspg.io/{iid[:5]}",
            }
            self._set_components(inc, fields)
            self._add_update(inc, fields)
            self.incidents[iid] = inc
            return JSONResponse(inc, status_code=201)

    def update(self, iid: str, fields: dict[str, Any]) -> Response:
        with self.lock:
            inc = self.incidents[iid]
            for k in ("name", "status", "impact_override"):
                if k in fields:
                    inc[k] = fields[k]
            inc["metadata"].update(fields.get("metadata", {}))
            if inc["status"] == "resolved":
                inc["resolved_at"] = time.time()
            self._set_components(inc, fields)
            self._add_update(inc, fields)
            return JSONResponse(inc)
