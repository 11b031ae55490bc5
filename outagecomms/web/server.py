"""The daemon's small HTTP endpoint: one-click NPS links (``[daemon] http``).

Routes::

    GET  /feedback/{token}?score=N     the score N (0-10) chosen, a comment box and a button;
                                       records nothing (mail scanners fetch every link)
    POST /feedback/{token}             form fields ``score`` and ``comment``: records them
    POST /feedback/{token}/comment     the same (the form of earlier versions' pages)
    GET  /healthz                      200 ``ok`` (the daemon: JSON); 503 ``"status": "degraded"``
                                       with the reason while the commander cannot be reached
    POST /hooks/alertmanager           Prometheus Alertmanager's webhook (version 4) → drafts
    POST /hooks/generic                the generic alert shape (``docs/hooks.md``) → drafts
    POST /inbound/twilio               Twilio's incoming-SMS webhook, signature checked
                                       (``web.twilio_inbound``) → the inbound pipeline

A changed token is answered 403, an expired one 410, a cut-short one 400; nothing is recorded
then. A GET never records: mail systems (Microsoft Safe Links and the like) fetch every link in
a message within seconds, so a score is recorded only by the page's POST (the person's click on
the link, then on the button).
Pages are plain, escaped HTML with a strict Content-Security-Policy and no external resources.
What a request carries is parsed by ``web.params`` (a bad score is a 400 page, never a 500);
slow and numerous clients are bounded by ``web.limits`` (``[web]``: header and body deadlines,
``max_connections``).

:func:`serve_http` runs the server inside the caller's event loop until an ``asyncio.Event`` is
set; it installs no signal handlers (the daemon owns SIGTERM/SIGINT).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from outagecomms.app import App
from outagecomms.errors import ConfigError, InputError, NotFound, OutageCommsError
from outagecomms.recovery.feedback import (
    MAX_COMMENT,
    FeedbackTokenError,
    feedback_secret,
    read_token,
    record_feedback,
)
from outagecomms.store import incidents as incidents_db
from outagecomms.values import shown_env
from outagecomms.web.bind import parse_bind
from outagecomms.web.incident_page import incident_routes
from outagecomms.web.params import (
    is_json_type,
    media_type,
    parse_score,
    quoted,
    read_limited,
)
from outagecomms.web.status_page import status_routes

log = logging.getLogger("outagecomms.web")

MAX_FORM_BYTES = 64 * 1024  # a 4,000-character comment is at most ~36 KB percent-encoded

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f7f9;
color:#1d2430;margin:0;padding:2rem 1rem;line-height:1.5}
main{max-width:34rem;margin:0 auto;background:#fff;border-radius:12px;padding:2rem;
box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:1.4rem;margin-top:0}
textarea{width:100%;box-sizing:border-box;min-height:8rem;font:inherit;padding:.5rem}
button{margin-top:.75rem;font:inherit;padding:.5rem 1.25rem;border:0;border-radius:6px;
background:#1f5fbf;color:#fff;cursor:pointer}
.scores label{display:inline-block;min-width:1.8rem;text-align:center;margin:.1rem;
padding:.2rem;border:1px solid #c9d1dc;border-radius:4px}
.quote{white-space:pre-wrap;border-left:3px solid #c9d1dc;padding-left:.75rem;color:#3b4656}
.muted{color:#5b6675;font-size:.9rem}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, *, company: str, status: int = 200) -> HTMLResponse:
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{_e(title)} · {_e(company)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{_e(title)}</h1>{body}"
        f'<p class="muted">{_e(company)}</p></main></body></html>\n'
    )
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


_TOKEN_PAGES: dict[str, tuple[int, str, str]] = {
    "tampered": (
        403,
        "This link is not valid",
        "This feedback link is not valid: it may have been changed, or it was not sent by us. "
        "Please use the links in the message we sent you, exactly as they are.",
    ),
    "expired": (
        410,
        "This link has expired",
        "This feedback link has expired, so we can no longer record a score with it. "
        "Thank you for wanting to tell us; you can still reply to our message or contact "
        "support.",
    ),
    "malformed": (
        400,
        "This link is not valid",
        "This feedback link is incomplete or not valid; your mail program may have cut it "
        "short. Please try the link again from the message we sent you.",
    ),
}


def _score_choices(score: int) -> str:
    """The eleven scores as radio buttons, the one from the link already chosen."""
    return "".join(
        f'<label><input type="radio" name="score" value="{n}"'
        f"{' checked' if n == score else ''}>{n}</label>"
        for n in range(11)
    )


def make_web_app(
    app: App,
    status: Callable[[], dict[str, Any]] | None = None,
    stopping: asyncio.Event | None = None,
) -> Starlette:
    """The Starlette application for the feedback links. Reads the signing secret now:
    raises ``ConfigError`` (``daemon.secret_env``) when it is not set. ``stopping``: set when
    the server is about to stop, so long-lived answers (a page's events) end at once."""
    secret = feedback_secret(app)
    company = app.config.company.name

    def page(title: str, body: str, status: int = 200) -> HTMLResponse:
        return _page(title, body, company=company, status=status)

    def refused(err: FeedbackTokenError) -> HTMLResponse:
        status, title, text = _TOKEN_PAGES[err.reason]
        return page(title, f"<p>{_e(text)}</p>", status)

    def error_page(err: OutageCommsError) -> HTMLResponse:
        if isinstance(err, NotFound):
            return page(
                "We could not find this incident",
                "<p>We could not find what this link refers to any more. "
                "Thank you for wanting to tell us; please reply to our message instead.</p>",
                404,
            )
        if isinstance(err, InputError):
            return page("Please pick a score", f"<p>{_e(err)}</p>", 400)
        log.error("feedback: %s", err)
        return page(
            "Something went wrong",
            "<p>We could not record your answer just now. Please try again in a few minutes.</p>",
            500,
        )

    def title_of(incident_id: int) -> str:
        with app.store.read() as conn:
            return incidents_db.get_incident(conn, incident_id).incident.title

    def verify(token: str) -> tuple[int, str]:
        return read_token(secret, token, app.clock())

    def bad_score(raw: object) -> HTMLResponse:
        shown = "" if raw is None else f" (we got “{_e(quoted(raw))}”)"
        return page(
            "Please pick a score",
            f"<p>Please choose a score from 0 to 10 using the links in our message{shown}.</p>",
            400,
        )

    def verified(request: Request) -> tuple[str, int, str] | Response:
        """The link's token, incident and customer, or the page saying why it is refused."""
        token = request.path_params["token"]
        try:
            return (token, *verify(token))
        except FeedbackTokenError as err:
            return refused(err)

    async def click(request: Request) -> Response:
        """The link: the chosen score and the button that records it. Nothing is recorded
        here, so a scanner fetching all eleven links records nothing."""
        who = verified(request)
        if isinstance(who, Response):
            return who
        token, incident_id, _ = who
        raw = request.query_params.get("score")
        try:
            score = parse_score(raw)
        except InputError:
            return bad_score(raw)
        try:
            title = await asyncio.to_thread(title_of, incident_id)
        except OutageCommsError as err:
            return error_page(err)
        body = (
            f"<p>How we handled INC-{incident_id}: “{_e(title)}”. You chose "
            f"<strong>{score} out of 10</strong>; press the button to send it.</p>"
            f'<form method="post" action="{_e(token)}">'
            f'<p class="scores">{_score_choices(score)}</p>'
            f'<label for="comment">Is there anything we could have done better? (optional)'
            f"</label>"
            f'<textarea id="comment" name="comment" maxlength="{MAX_COMMENT}"></textarea>'
            f'<button type="submit">Send my score</button></form>'
        )
        return page("Your feedback", body)

    async def submit(request: Request) -> Response:
        """The page's form: records the score and the comment, if any."""
        who = verified(request)
        if isinstance(who, Response):
            return who
        _, incident_id, customer_id = who
        if media_type(request.headers.get("content-type")) != "application/x-www-form-urlencoded":
            return page("Unsupported form", "<p>Please send the form from the page.</p>", 415)
        try:
            body = await read_limited(request, MAX_FORM_BYTES)
        except ClientDisconnect:  # gone, or cut off by [web] body_timeout: nobody to answer
            return Response(status_code=408)
        if body is None:
            return page(
                "Your comment is too long",
                f"<p>Please keep your comment under {MAX_COMMENT:,} characters.</p>",
                413,
            )
        try:
            form = parse_qs(
                body.decode("utf-8", errors="replace"),
                keep_blank_values=True,
                max_num_fields=20,
            )
        except ValueError:
            return page("Unsupported form", "<p>Please send the form from the page.</p>", 400)
        scores = form.get("score")
        raw_score = scores[0] if scores else None
        try:
            score = parse_score(raw_score)
        except InputError:
            return bad_score(raw_score)
        text = (form.get("comment") or [""])[0].strip()[:MAX_COMMENT].strip()
        try:
            await asyncio.to_thread(
                record_feedback,
                app,
                incident_id,
                customer_id,
                score,
                comment=text or None,
                source="link",
            )
        except OutageCommsError as err:
            return error_page(err)
        lead = (
            f"<p>You gave us <strong>{score} out of 10</strong>. Thank you, we read every "
            "answer.</p>"
        )
        if text:
            lead += (
                "<p>Thank you for taking the time to tell us. We will use it to do better.</p>"
                f'<p>Your comment:</p><p class="quote">{_e(text)}</p>'
            )
        return page("Thank you", lead)

    async def healthz(request: Request) -> Response:
        problems = app.health.problems()  # e.g. the commander could not be told
        if status is None and not problems:
            return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})
        info = dict(status()) if status is not None else {}
        code = 200
        if status is not None:
            try:
                await asyncio.to_thread(app.store.current_revision)
                info["store"] = "ok"
            except Exception as exc:  # the store is unreachable: say so, and fail the probe
                info["store"] = f"unreachable: {type(exc).__name__}"
                code = 503
        if problems:  # degraded: said in the body, and the probe fails so monitoring sees it
            info["status"] = "degraded"
            info["reason"] = "; ".join(p.reason for p in problems)
            info["problems"] = [p.to_json() for p in problems]
            code = 503
        return JSONResponse(info, status_code=code, headers={"Cache-Control": "no-store"})

    async def hook(request: Request) -> Response:
        return await _hook(app, request, request.path_params["source"])

    async def twilio(request: Request) -> Response:
        from outagecomms.web.twilio_inbound import handle

        return await handle(app, request)

    async def metrics(request: Request) -> Response:
        from outagecomms.web.metrics import render_metrics

        body = await asyncio.to_thread(render_metrics, app, status() if status else None)
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[
            Route("/feedback/{token}", click, methods=["GET"]),
            Route("/feedback/{token}", submit, methods=["POST"]),
            Route("/feedback/{token}/comment", submit, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/hooks/{source:str}", hook, methods=["POST"]),
            Route("/inbound/twilio", twilio, methods=["POST"]),
            *incident_routes(app, secret, stopping),
            *status_routes(app),
        ]
    )


# --- alert hooks ------------------------------------------------------------------------------


def _hook_error(status: int, reason: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": reason}, status_code=status, headers={"Cache-Control": "no-store", **headers}
    )


def _bearer(header: str | None) -> bytes:
    scheme, _, credentials = (header or "").strip().partition(" ")
    return credentials.strip().encode() if scheme.lower() == "bearer" else b""


async def _hook(app: App, request: Request, source: str) -> Response:
    """``POST /hooks/{alertmanager,generic}``: bearer token, bounded body, then drafts.

    503 while ``[hooks] token_env`` names no set variable; 401 for a missing or wrong token
    (checked before the body is read); 413 past ``[hooks] max_body``; 400 with the reason for
    a body that is not the documented shape; 200 with the drafts otherwise.
    """
    from outagecomms.intake.alerts import SOURCES
    from outagecomms.intake.drafts import ingest

    if source not in SOURCES:
        return _hook_error(404, f"no such hook; use /hooks/{' or /hooks/'.join(SOURCES)}")
    hooks = app.config.hooks
    expected = hooks.token()
    if expected is None:
        return _hook_error(
            503,
            f"hooks are off: set the bearer token in {shown_env(hooks.token_env)} ([hooks] token_env)",
        )
    given = _bearer(request.headers.get("authorization"))
    # compare_digest: the time taken does not tell how much of a guess was right
    if not given or not hmac.compare_digest(given, expected.encode()):
        return _hook_error(
            401,
            "a valid bearer token is required (Authorization: Bearer ...)",
            **{"WWW-Authenticate": 'Bearer realm="outagecomms hooks"'},
        )
    if not is_json_type(request.headers.get("content-type")):
        return _hook_error(415, "the body must be JSON: send it as Content-Type: application/json")
    try:
        body = await read_limited(request, hooks.max_body)
    except ClientDisconnect:  # gone, or cut off by [web] body_timeout: nobody to answer
        return Response(status_code=408)
    if body is None:
        return _hook_error(
            413, f"the body is larger than {hooks.max_body} bytes ([hooks] max_body)"
        )
    try:
        report = await asyncio.to_thread(ingest, app, source, body)
    except InputError as err:
        return _hook_error(400, str(err))
    except OutageCommsError as err:  # the store is unwell: the sender should retry
        log.error("hook %s: %s", source, err)
        return _hook_error(500, str(err))
    except Exception as exc:  # a bug or a lost database: 500, so Alertmanager retries
        log.exception("hook %s failed", source)
        return _hook_error(500, f"internal error: {type(exc).__name__}")
    return JSONResponse(report.to_json(), headers={"Cache-Control": "no-store"})


# --- serving --------------------------------------------------------------------------------


def _listen(host: str, port: int, bind: str) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise ConfigError(f"cannot resolve {bind!r}: {exc}", key="daemon.http") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {bind!r}: {exc.strerror or exc}", key="daemon.http"
        ) from None
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (the daemon)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None


async def serve_http(
    app: App, bind: str, stop: asyncio.Event, status: Callable[[], dict[str, Any]] | None = None
) -> None:
    """Serve the feedback links on ``bind`` (``[daemon] http``) in the running event loop until
    ``stop`` is set, then finish the requests in flight and close.

    Raises ``ConfigError`` before serving when the secret is not set (``daemon.secret_env``) or
    the address is wrong or taken (``daemon.http``).
    """
    from outagecomms.web.limits import guarded_protocol

    host, port = parse_bind(bind)
    config = uvicorn.Config(
        make_web_app(app, status, stop),
        http=guarded_protocol(app.config.web),  # [web] header/body timeouts, max_connections
        host=host,
        port=port,
        log_level="warning",
        log_config=None,  # leave the host's logging configuration alone
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = _Server(config)
    # Bind here, not in uvicorn: a taken port is a ConfigError, not a SystemExit.
    sock = _listen(host, port, bind)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="outagecomms-http")
    stopping = asyncio.create_task(stop.wait(), name="outagecomms-http-stop")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        server.should_exit = True
        try:
            await asyncio.shield(serving)  # re-raises what made the server fail, if anything
        except asyncio.CancelledError:
            if not serving.done():
                server.force_exit = True
                serving.cancel()
            raise
        finally:
            sock.close()  # uvicorn closes it on a clean shutdown; this covers a failed start
