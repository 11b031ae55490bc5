"""One Starlette app on loopback that plays Slack, Teams and a customer's webhook receiver, by
path: ``/services/T../B../..`` is a Slack incoming webhook, ``/workflows/<id>/triggers/...`` a
Teams Workflows trigger, ``/hooks/...`` a webhook receiver. It checks every request the way
the provider documents it (:mod:`tests.fakes.slack`, :mod:`tests.fakes.teams`,
:mod:`tests.fakes.webhook`), records it, and answers with whatever a test scripted: 429 with
Retry-After, 5xx, Slack error bodies, 4xx, or an answer held back past the channel's timeout.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes import slack, teams, webhook
from tests.fakes.asgi import Fake, Recorded, Reply


class FakeProviders(Fake):
    def __init__(self) -> None:
        super().__init__(Route("/{path:path}", self.handle, methods=["GET", "POST", "PUT"]))
        self.webhook_headers = webhook.HEADERS

    def forget(self) -> None:
        self.webhook_headers = webhook.HEADERS

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with ``replies``."""
        self.queue(path, replies)

    async def handle(self, request: Request) -> Response:
        rec = await Recorded.of(request)
        problems = self._check(rec)
        reply = self.take(rec, rec.path, [f"{rec.path}: {x}" for x in problems])
        if problems:
            return self._invalid(rec.path, problems)
        if reply.slow:
            await self.release.wait()
        if reply.status is None:
            return self._default(rec.path)
        return reply.response()

    def _check(self, rec: Recorded) -> list[str]:
        p: list[str] = []
        if rec.method != "POST":
            p.append(f"method {rec.method}, expected POST")
        ctype = rec.content_type
        if ctype.split(";")[0].strip() != "application/json":
            p.append(f"Content-Type {ctype!r}, expected application/json")
        try:
            json.loads(rec.body)
        except ValueError:
            return [*p, "body is not JSON"]
        if rec.path.startswith("/services/"):
            p += slack.problems(rec)
        elif rec.path.startswith("/workflows/"):
            p += teams.problems(rec)
        elif rec.path.startswith("/hooks/"):
            p += webhook.problems(rec, webhook.SECRET.encode(), self.webhook_headers)
        return p

    @staticmethod
    def _invalid(path: str, problems: list[str]) -> Response:
        if path.startswith("/services/"):
            return PlainTextResponse("invalid_payload", status_code=400)
        return Response(
            json.dumps({"error": {"code": "InvalidRequest", "message": "; ".join(problems)}}),
            status_code=400,
            media_type="application/json",
        )

    @staticmethod
    def _default(path: str) -> Response:
        if path.startswith("/services/"):
            return Response(slack.OK_BODY, headers=slack.OK_HEADERS)
        if path.startswith("/workflows/"):
            return Response("", status_code=202, headers={"x-ms-workflow-run-id": teams.RUN_ID})
        return Response('{"received": true}', headers={"content-type": "application/json"})
