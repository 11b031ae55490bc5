"""Twilio's Messages API: every request is checked against Twilio's published OpenAPI
description of the operation (``tests/data/twilio_messages_openapi.json``, with
``openapi-core``), plus what the description cannot express (Basic auth matching the account,
form encoding, E.164, one sender field, ValidityPeriod range). It answers with the message
resource (201) unless a test scripted another answer.

It also serves the read-only "Fetch an Account" call ``doctor`` probes with, as Twilio's API
reference documents it (operation FetchAccount of ``twilio_api_v2010``): ``GET
/2010-04-01/Accounts/{Sid}.json``, ``Sid`` matching ``^AC[0-9a-fA-F]{32}$``, HTTP Basic auth
(Account SID, Auth Token), no body; ``200`` with the Account resource (``sid``,
``friendly_name``, ``status``: ``active``, ``suspended`` or ``closed``, ``type``: ``Trial`` or
``Full``, ``owner_account_sid``, ``auth_token``, ``date_created``/``date_updated`` in RFC 2822,
``subresource_uris``, ``uri``); ``401`` with error 20003 for wrong credentials and ``404``
(20404) for another account. ``account_status`` sets the status it reports."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.asgi import Fake, Recorded, Reply

SPEC_PATH = Path(__file__).resolve().parent.parent / "data" / "twilio_messages_openapi.json"
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "test-auth-token-0123456789"
SERVICE = "MG0123456789abcdef0123456789abcdef"
FROM = "+15550100999"
MESSAGES_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
ACCOUNT_PATH = f"/2010-04-01/Accounts/{SID}.json"
_ACCOUNT = re.compile(r"/2010-04-01/Accounts/([^/]+)\.json")


@cache
def description() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(SPEC_PATH.read_text()))


def twilio_error(code: int, status: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilio(Fake):
    def __init__(self) -> None:
        super().__init__(Route("/{path:path}", self.handle, methods=["GET", "POST"]))
        self.api = description()
        self.by_to: dict[str, Reply] = {}  # a fixed answer for a number, whatever the order
        self.counter = 0
        self.account_status = "active"

    def forget(self) -> None:
        self.by_to.clear()
        self.account_status = "active"

    def messages(self) -> list[Recorded]:
        """The requests that would create a message (anything but the Account fetch)."""
        return [r for r in self.recorded() if r.path != ACCOUNT_PATH]

    def script(self, *replies: Reply) -> None:
        """Answer the next requests (to a number without a fixed answer) with ``replies``."""
        self.queue("", replies)

    def check(self, rec: Recorded) -> tuple[list[str], dict[str, str]]:
        p: list[str] = []
        ctype = rec.content_type
        # openapi-core: path (and AccountSid pattern), method, security, body schema
        mock = MockRequest(
            "https://api.twilio.com",
            rec.method.lower(),
            rec.path,
            headers=rec.headers,
            data=rec.body,
            content_type=ctype.split(";")[0].strip(),
        )
        try:
            self.api.validate_request(mock)
        except Exception as exc:  # every validation error: report it, answer 400
            cause = exc.__cause__
            detail = getattr(cause, "schema_errors", None) or cause or ""
            p.append(f"OpenAPI: {type(exc).__name__}: {exc} {detail}")
        # what the description cannot say
        if ctype.split(";")[0].strip() != "application/x-www-form-urlencoded":
            p.append(f"Content-Type {ctype!r}, expected application/x-www-form-urlencoded")
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if rec.authorization != expected:
            p.append("Basic auth is not (Account SID, Auth Token)")
        try:
            raw = parse_qs(rec.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            return [*p, f"body is not form-encoded ASCII: {exc}"], {}
        form: dict[str, str] = {}
        for key, values in raw.items():
            if len(values) != 1:
                p.append(f"{key} given {len(values)} times")
            form[key] = values[0]
        if not re.fullmatch(r"\+[1-9][0-9]{1,14}", form.get("To", "")):
            p.append(f"To {form.get('To')!r} is not E.164")
        if ("From" in form) == ("MessagingServiceSid" in form):
            p.append("exactly one of From and MessagingServiceSid is required")
        if not form.get("Body"):
            p.append("Body is required and non-empty")
        if "ValidityPeriod" in form:
            vp = form["ValidityPeriod"]
            if not vp.isdigit() or not 1 <= int(vp) <= 36_000:
                p.append(f"ValidityPeriod {vp!r} not an integer in 1..36000")
        return p, form

    def fetch_account(self, rec: Recorded, sid: str) -> Response:
        """FetchAccount, as documented: Basic auth, a valid Sid, the Account resource."""
        problems = []
        if rec.body:
            problems.append("a GET carries no body")
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", sid):
            problems.append(f"Sid {sid!r} does not match ^AC[0-9a-fA-F]{{32}}$")
        reply = self.take(rec, "GET", problems)
        if reply.status is not None:
            return reply.response(media_type="application/json")
        if problems:
            doc = twilio_error(20001, 400, "; ".join(problems))
            return Response(json.dumps(doc), status_code=400, media_type="application/json")
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if rec.authorization != expected:
            doc = twilio_error(20003, 401, "Authenticate")
            return Response(json.dumps(doc), status_code=401, media_type="application/json")
        if sid != SID:
            doc = twilio_error(20404, 404, f"The requested resource {rec.path} was not found")
            return Response(json.dumps(doc), status_code=404, media_type="application/json")
        return Response(json.dumps(self.account_resource()), media_type="application/json")

    def account_resource(self) -> dict[str, Any]:
        base = f"/2010-04-01/Accounts/{SID}"
        return {
            "auth_token": TOKEN,
            "date_created": "Thu, 30 Jul 2015 20:00:00 +0000",
            "date_updated": "Thu, 30 Jul 2015 20:00:00 +0000",
            "friendly_name": "S1 Technology",
            "owner_account_sid": SID,
            "sid": SID,
            "status": self.account_status,
            "type": "Full",
            "subresource_uris": {
                "messages": f"{base}/Messages.json",
                "balance": f"{base}/Balance.json",
            },
            "uri": f"{base}.json",
        }

    async def handle(self, request: Request) -> Response:
        rec = await Recorded.of(request)
        account = _ACCOUNT.fullmatch(rec.path)
        if rec.method == "GET" and account:
            return self.fetch_account(rec, account.group(1))
        problems, form = self.check(rec)
        rec = replace(rec, form=form)
        fixed = self.by_to.get(form.get("To", ""))
        reply = self.take(rec, "<fixed>" if fixed else "", problems)
        reply = fixed or reply
        with self.lock:
            self.counter += 1
            n = self.counter
        if problems:
            doc = twilio_error(21604 if "To" not in form else 20001, 400, "; ".join(problems))
            return Response(json.dumps(doc), status_code=400, media_type="application/json")
        if reply.slow:
            await self.release.wait()
        if reply.status is None:
            reply = replace(reply, status=201, body=self.message_resource(form, n))
        return reply.response(media_type="application/json")

    @staticmethod
    def message_resource(form: dict[str, str], n: int) -> dict[str, Any]:
        return {
            "sid": f"SM{n:032x}",
            "account_sid": SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "api_version": "2010-04-01",
        }
