"""A customers' webhook receiver on loopback for the end-to-end tests.

It records every POST to ``/hooks/<anything>``: the ``Idempotency-Key``, the JSON body, which
of the known secrets signed it (the signature is checked here independently of the channel's
code) and what it answered. ``answer`` decides the reply of each request, so the same receiver
plays a provider that is down (503) and then recovers. ``GET /health`` answers ``up`` for
``serve_asgi``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

SIGNATURE_HEADER = "x-outagecomms-signature"
TIMESTAMP_HEADER = "x-outagecomms-timestamp"


@dataclass(frozen=True)
class Hook:
    """One request as the receiver saw it."""

    at: datetime  # wall clock (UTC) on arrival
    path: str
    key: str  # the Idempotency-Key header
    doc: dict[str, Any]
    signer: str | None  # the name of the secret whose signature verifies; None: none does
    status: int  # what the receiver answered

    @property
    def customer(self) -> str:
        return str(self.doc["customer"])

    @property
    def delivery_id(self) -> int:
        return int(self.doc["delivery_id"])


def signed_by(
    secrets: Mapping[str, bytes], timestamp: str, body: bytes, signature: str
) -> str | None:
    for name, secret in secrets.items():
        mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(f"v1={mac}", signature):
            return name
    return None


class WebhookRecorder:
    """Records webhook POSTs. ``cond`` may be shared with another recorder (e.g. the SMTP
    handler's) so a test waits on both with one condition; it is notified on every request."""

    def __init__(
        self,
        secrets: Mapping[str, str],
        *,
        cond: threading.Condition | None = None,
        answer: Callable[[], int] | None = None,
    ):
        self.secrets = {name: value.encode() for name, value in secrets.items()}
        self.cond = cond or threading.Condition()
        self.answer = answer or (lambda: 200)
        self.hooks: list[Hook] = []
        self.app = Starlette(
            routes=[
                Route("/health", self._health),
                Route("/hooks/{name:path}", self._hook, methods=["POST"]),
            ]
        )

    def add_secret(self, name: str, value: str) -> None:
        with self.cond:
            self.secrets = {**self.secrets, name: value.encode()}

    async def _health(self, request: Request) -> Response:
        return PlainTextResponse("up")

    async def _hook(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the sender died mid-request (the crash test kills it)
            return Response(status_code=400)
        h = request.headers
        signer = signed_by(
            self.secrets, h.get(TIMESTAMP_HEADER, ""), body, h.get(SIGNATURE_HEADER, "")
        )
        status = self.answer()
        hook = Hook(
            at=datetime.now(UTC),
            path=request.url.path,
            key=h.get("idempotency-key", ""),
            doc=json.loads(body),
            signer=signer,
            status=status,
        )
        with self.cond:
            self.hooks.append(hook)
            self.cond.notify_all()
        if status >= 400:
            return JSONResponse({"error": "temporarily unavailable"}, status_code=status)
        return JSONResponse({"received": True}, status_code=status)

    def snapshot(self) -> list[Hook]:
        with self.cond:
            return list(self.hooks)
