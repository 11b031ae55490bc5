"""The endpoint of Apprise's ``json://`` plugin: a JSON receiver on loopback that checks the
payload Apprise documents for it (``{"version": "1.0", "title", "message", "attachments",
"type"}``), records it, and answers what a test scripted (``{}`` with 200 by default)."""

from __future__ import annotations

import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.asgi import Fake, Recorded, Reply

FIELDS = {"version", "title", "message", "attachments", "type"}
TYPES = ("info", "success", "warning", "failure")


class JsonEndpoint(Fake):
    def __init__(self) -> None:
        super().__init__(Route("/{path:path}", self.handle, methods=["GET", "POST", "PUT"]))
        self.arrived = threading.Event()

    def url(self, path: str, auth: str = "") -> str:
        return f"json://{auth + '@' if auth else ''}127.0.0.1:{self.port}{path}"

    def forget(self) -> None:
        self.arrived.clear()

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next notifications to ``path`` with ``replies``."""
        self.queue(path, replies)

    async def handle(self, request: Request) -> Response:
        hit = await Recorded.of(request)
        reply = self.take(hit, hit.path, [f"{hit.path}: {p}" for p in self.check(hit)])
        self.arrived.set()
        if reply.slow:
            await self.release.wait()
        if reply.status is None:
            return Response("{}", media_type="application/json")
        return reply.response(media_type="application/json")

    @staticmethod
    def check(hit: Recorded) -> list[str]:
        """Apprise's JSON plugin: POST application/json with these five fields and types."""
        p = []
        if hit.method != "POST":
            p.append(f"method {hit.method}")
        if hit.content_type != "application/json":
            p.append(f"Content-Type {hit.content_type!r}")
        try:
            doc: Any = hit.json()
        except ValueError:
            return [*p, "body is not JSON"]
        if not isinstance(doc, dict) or set(doc) != FIELDS:
            return [*p, f"fields {sorted(doc) if isinstance(doc, dict) else doc!r}"]
        if doc["version"] != "1.0":
            p.append(f"version {doc['version']!r}")
        if not isinstance(doc["title"], str) or not isinstance(doc["message"], str):
            p.append("title and message must be strings")
        if doc["attachments"] != []:
            p.append("no attachments expected")
        if doc["type"] not in TYPES:
            p.append(f"type {doc['type']!r}")
        return p
