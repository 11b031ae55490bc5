"""``POST /inbound/twilio``: Twilio's incoming-message webhook, so that a customer's text reaches
the incident like an email reply does.

Twilio signs each request (``X-Twilio-Signature``, see Twilio's "Webhooks security"): the
base64 HMAC-SHA1, keyed with the account's Auth Token, of the URL Twilio requested (scheme,
host, path and query string, exactly as configured in the Twilio console) followed by every POST
parameter's name and value, the names sorted (a name sent twice contributes each of its distinct
values, sorted). We cannot see the URL Twilio used behind a proxy, so it is rebuilt from ``[daemon]
public_url`` plus the request's path and query. As Twilio's own helper libraries do, the URL is
also tried with the scheme's default port added or removed (``https://x`` versus
``https://x:443``), since a proxy may have changed it.

Only a request signed with the Auth Token of a ``kind = "twilio"`` channel (any of them, when
there are several accounts) is stored; anything else is 403 with nothing stored, compared in
constant time. The body is bounded (:data:`MAX_BODY`) and must be a form. A valid request goes
to ``inbound.pipeline.ingest_sms`` in a worker thread (it commits to the store) and is answered
``200`` with an empty TwiML ``<Response/>``: we reply to people ourselves, not by TwiML.
When the store cannot take the write (``StoreUnavailable``) the answer is ``503``: Twilio does
not retry an SMS webhook by default, but its debugger then shows the failure to the operator.
The text of a message is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response

from outagecomms.app import App
from outagecomms.errors import InputError, OutageCommsError, StoreUnavailable
from outagecomms.web.params import media_type, read_limited

log = logging.getLogger("outagecomms.web.twilio")

PATH = "/inbound/twilio"
#: an SMS is at most 1,600 characters; with Twilio's other fields (MediaUrl0..9, geography,
#: SIDs) a genuine webhook stays far below this
MAX_BODY = 64 * 1024
MAX_FIELDS = 200
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_DEFAULT_PORTS = {"https": 443, "http": 80}


def signature(token: str, url: str, params: Mapping[str, Sequence[str]]) -> str:
    """Twilio's ``X-Twilio-Signature`` for a form POST to ``url`` with ``params``."""
    data = url
    for name in sorted(params):
        for value in sorted(set(params[name])):  # as Twilio's Python helper: each value once
            data += name + value
    digest = hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """``url`` as given, then with the scheme's default port added or removed: Twilio may have
    signed either spelling."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return [url]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    auth = parts.netloc.rpartition("@")[0]
    auth = f"{auth}@" if auth else ""
    if parts.port is None:
        other = f"{auth}{host}:{default}"
    elif parts.port == default:
        other = f"{auth}{host}"
    else:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=other))]


def signed_url(public_url: str, path: str, query: str) -> str:
    """The URL Twilio requested, as far as we can know it: ``[daemon] public_url`` (without a
    trailing slash), the request's path and its query string, still percent-encoded."""
    return public_url.rstrip("/") + path + (f"?{query}" if query else "")


def valid(tokens: Iterable[str], url: str, params: Mapping[str, Sequence[str]], given: str) -> bool:
    """True when ``given`` is the signature of the request with one of the tokens. Every
    candidate is compared (``compare_digest``), so the time taken does not depend on which
    token, or how much of a forged signature, was right."""
    ok = False
    wanted = given.encode()
    for token in tokens:
        for candidate in url_variants(url):
            ok |= hmac.compare_digest(signature(token, candidate, params).encode(), wanted)
    return ok


def auth_tokens(app: App) -> list[str]:
    """The Auth Tokens of the configured ``kind = "twilio"`` channels that are set."""
    out = []
    for channel in app.config.channels.values():
        if channel.kind == "twilio":
            token = channel.secret("auth_token")
            if token:
                out.append(token)
    return out


def _text(status: int, text: str) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status, headers={"Cache-Control": "no-store"})


def _ingest(app: App, form: Mapping[str, Sequence[str]]) -> None:
    """The pipeline's ``ingest_sms`` (imported when a text comes: the feedback pages and
    hooks do not need the inbound pipeline loaded)."""
    from outagecomms.inbound import pipeline

    def one(name: str) -> str:
        values = form.get(name) or [""]
        return values[0]

    pipeline.ingest_sms(
        app,
        sender=one("From"),
        to=one("To"),
        body=one("Body"),
        message_sid=one("MessageSid"),
    )


async def handle(app: App, request: Request) -> Response:
    """The webhook: 503 while it cannot check signatures (no ``public_url`` or no Auth Token),
    415 for anything but a form, 413 past :data:`MAX_BODY`, 400 for a body that is not a
    form, 403 for a missing or wrong signature, 400 for a form without ``From``/``MessageSid``, 503 when the store is down,
    200 with empty TwiML once the message is stored."""
    public_url = app.config.daemon.public_url
    tokens = auth_tokens(app)
    if not public_url or not tokens:
        missing = "[daemon] public_url" if not public_url else "a twilio channel's Auth Token"
        log.error("POST %s refused: %s is not set, so no signature can be checked", PATH, missing)
        return _text(503, f"inbound SMS is off: {missing} is not set")
    if media_type(request.headers.get("content-type")) != "application/x-www-form-urlencoded":
        return _text(415, "expected Twilio's form (application/x-www-form-urlencoded)")
    given = request.headers.get("x-twilio-signature", "")
    if not given:  # refused before the body is read
        log.warning("POST %s: no X-Twilio-Signature; nothing stored", PATH)
        return _text(403, "invalid X-Twilio-Signature")
    try:
        body = await read_limited(request, MAX_BODY)
    except ClientDisconnect:
        return Response(status_code=408)
    if body is None:
        return _text(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        form = parse_qs(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        return _text(400, "the body is not a form in UTF-8")  # Twilio never sends such a body
    url = signed_url(public_url, request.url.path, request.url.query)
    if not valid(tokens, url, form, given):
        log.warning("POST %s: wrong X-Twilio-Signature; nothing stored", PATH)
        return _text(403, "invalid X-Twilio-Signature")
    if not (form.get("From") or [""])[0] or not (form.get("MessageSid") or [""])[0]:
        return _text(400, "From and MessageSid are required")
    try:
        await asyncio.to_thread(_ingest, app, form)
    except StoreUnavailable as err:
        log.error("POST %s: not stored: %s", PATH, err)
        return _text(503, "the store is unavailable; the message was not stored")
    except InputError as err:
        return _text(400, str(err))
    except OutageCommsError as err:
        log.error("POST %s: %s", PATH, err)
        return _text(500, "the message could not be stored")
    if app.inbound_kick is not None:
        app.inbound_kick()  # the thank-you and any escalation go out now, not at a timer
    return Response(
        EMPTY_TWIML,
        media_type="text/xml",
        headers={"Cache-Control": "no-store"},
    )
