"""A customer's webhook receiver: our own webhook contract (JSON body, HMAC-SHA256 signature
over timestamp and body, Idempotency-Key), checked independently of the channel's code.

:func:`problems` checks one request (the channel tests); :class:`WebhookRecorder` is the
receiver of the end-to-end tests: it records every POST to ``/hooks/<anything>``: the
``Idempotency-Key``, the JSON body, which of the known secrets signed it and what it answered.
``answer`` decides the reply of each request, so the same receiver plays a provider that is
down (503) and then recovers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.asgi import Fake, Recorded

PATH = "/hooks/outage"
SECRET = "s3cr3t-shared-with-the-receiver"
SIGNATURE_HEADER = "x-outagecomms-signature"
TIMESTAMP_HEADER = "x-outagecomms-timestamp"
HEADERS = ("X-Outagecomms-Signature", "X-Outagecomms-Timestamp")
#: the body's fields and their JSON types
FIELDS: dict[str, type] = {
    "incident": str,
    "title": str,
    "severity": str,
    "status": str,
    "kind": str,
    "round": int,
    "message": str,
    "customer": str,
    "components": list,
    "regions": list,
    "started_at": str,
    "subject": str,
    "text": str,
    "delivery_id": int,
}


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def problems(req: Recorded, secret: bytes, headers: tuple[str, str] = HEADERS) -> list[str]:
    """What is wrong with one webhook request, signed with ``secret`` in ``headers``."""
    sig_name, ts_name = (h.lower() for h in headers)
    p: list[str] = []
    key = req.headers.get("idempotency-key", "")
    if not re.fullmatch(r"oc\.\d+\.inc-\d+\.r\d+@[a-z0-9.-]+", key):
        p.append(f"Idempotency-Key {key!r} is not a bare Message-ID")
    ts = req.headers.get(ts_name, "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
        p.append(f"timestamp {ts!r} missing or not current")
    if not hmac.compare_digest(req.headers.get(sig_name, ""), signature(secret, ts, req.body)):
        p.append("signature does not verify")
    doc = req.json()
    for k, t in FIELDS.items():
        if not isinstance(doc.get(k), t) or isinstance(doc.get(k), bool):
            p.append(f"field {k} must be {t.__name__}, got {doc.get(k)!r}")
    if doc.get("promised_next_by") is not None and not isinstance(doc["promised_next_by"], str):
        p.append("promised_next_by must be a string or null")
    return p


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


def signed_by(secrets: Mapping[str, bytes], timestamp: str, body: bytes, sig: str) -> str | None:
    for name, secret in secrets.items():
        if hmac.compare_digest(signature(secret, timestamp, body), sig):
            return name
    return None


class WebhookRecorder(Fake):
    """Records webhook POSTs. ``cond`` may be shared with another recorder (e.g. the SMTP
    handler's) so a test waits on both with one condition; it is notified on every request."""

    def __init__(
        self,
        secrets: Mapping[str, str],
        *,
        cond: threading.Condition | None = None,
        answer: Callable[[], int] | None = None,
    ):
        super().__init__(Route("/hooks/{name:path}", self._hook, methods=["POST"]))
        self.secrets = {name: value.encode() for name, value in secrets.items()}
        self.cond = cond or threading.Condition()
        self.answer = answer or (lambda: 200)
        self.hooks: list[Hook] = []

    def add_secret(self, name: str, value: str) -> None:
        with self.cond:
            self.secrets = {**self.secrets, name: value.encode()}

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


#: a ``[channels.hooks]`` table sending to each customer's ``webhook_url``, signed with the
#: secret in $TEST_HOOK_SECRET
HOOKS_CHANNEL = """
[channels.hooks]
kind = "webhook"
secret_env = "TEST_HOOK_SECRET"
max_connections = 8
"""
