"""A customer's own incident page over HTTP (``pages.incident`` does the work).

Routes::

    GET  /i/{token}          the page (HTML, the customer's zone and locale)
    POST /i/{token}          the page's box: form fields ``form_token`` (CSRF), ``form_id``,
                             ``text`` → a reply on channel ``web``; 303 back to the page
    GET  /i/{token}/events   server-sent events: ``changed`` whenever the page's content would
                             (the page's script then fetches it again); comments keep it alive

A changed or cut-short link gets 403, an expired or revoked one 410, one whose incident or
customer is gone 404: a short page saying so, and nothing of anyone's incident. Every answer
is ``Cache-Control: private, no-store`` and ``Referrer-Policy: no-referrer``, with a strict
Content-Security-Policy whose nonce (new on every response) is the only way a style or script
runs; the form is refused without its token (bound to this link, ``form_lifetime``) or when the
browser says it came from another site (``Origin``, ``Sec-Fetch-Site``).
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from outagecomms.app import App
from outagecomms.errors import InputError, NotFound, OutageCommsError
from outagecomms.pages import incident as pages
from outagecomms.pages.tokens import PageToken, PageTokenError, check_form_token
from outagecomms.web.params import media_type, read_limited

log = logging.getLogger("outagecomms.web")

MAX_FORM_BYTES = 64 * 1024  # 4,000 characters of text, percent-encoded, with room to spare
#: an events stream ends after this long; the browser's EventSource reconnects by itself
STREAM_FOR = 600.0
HEARTBEAT = 15.0


def csp(nonce: str) -> str:
    return (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def headers(nonce: str) -> dict[str, str]:
    return {
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": csp(nonce),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "X-Robots-Tag": "noindex, nofollow",
    }


_REFUSED: dict[str, tuple[int, str, str]] = {
    "tampered": (
        403,
        "This link is not valid",
        "This link is not valid: it may have been changed, or it was not sent by us. Please "
        "open the link in the message we sent you, exactly as it is.",
    ),
    "malformed": (
        403,
        "This link is not valid",
        "This link is incomplete or not valid; your mail program may have cut it short. "
        "Please open the link in the message we sent you again.",
    ),
    "expired": (
        410,
        "This link has expired",
        "This link has expired. Our newest message to you has a link that works; you can "
        "also reply to any of our messages.",
    ),
    "revoked": (
        410,
        "This link is no longer valid",
        "This link was withdrawn. Our next message to you will carry a new one; you can also "
        "reply to any of our messages.",
    ),
}

_NOTICE_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f5f6f8;color:#1b2330;margin:0;"
    "padding:2rem 1rem;line-height:1.5}main{max-width:34rem;margin:0 auto;background:#fff;"
    "border-radius:10px;padding:1.5rem 2rem}h1{font-size:1.35rem;margin-top:0}"
)


def notice(company: str, title: str, text: str, status: int) -> HTMLResponse:
    """A short page in place of the incident page (a refused link, an error): says why and
    shows nothing of anyone's incident."""
    nonce = secrets.token_urlsafe(16)
    e = html.escape
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{e(title)} · {e(company)}</title>"
        f'<style nonce="{nonce}">{_NOTICE_STYLE}</style></head>'
        f"<body><main><h1>{e(title)}</h1><p>{e(text)}</p><p>{e(company)}</p></main>"
        "</body></html>\n"
    )
    return HTMLResponse(doc, status_code=status, headers=headers(nonce))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def cross_site(app: App, request: Request) -> bool:
    """Whether the browser says this POST came from a page of another site.

    ``Sec-Fetch-Site: same-origin`` is set by the browser itself (no page can forge it) and
    decides: the page's own ``Referrer-Policy: no-referrer`` makes Chromium send ``Origin:
    null`` with its form, which alone would read as another site's."""
    site = request.headers.get("sec-fetch-site", "").lower()
    if site == "cross-site":
        return True
    if site == "same-origin":
        return False
    origin = request.headers.get("origin", "").strip().lower()
    if not origin:
        return False  # older browsers, curl: the form token alone decides
    if origin == "null":
        return True
    allowed = {
        _origin(app.config.daemon.public_url),
        f"{request.url.scheme}://{request.headers.get('host', '')}".lower(),
    }
    return origin not in allowed


class _Fingerprints:
    """The page's change markers, shared by every open stream of one customer's page in this
    process, so 200 open pages of one incident do not each poll the store."""

    def __init__(self, app: App, ttl: float) -> None:
        self.app, self.ttl = app, ttl
        self._seen: dict[tuple[int, str], tuple[float, tuple[Any, ...]]] = {}

    async def get(self, tok: PageToken) -> tuple[Any, ...]:
        key = (tok.incident_id, tok.customer_id)
        hit = self._seen.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = await asyncio.to_thread(pages.fingerprint, self.app, tok)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (now, value)
        return value


def incident_routes(app: App, secret: bytes, stopping: asyncio.Event | None = None) -> list[Route]:
    """The routes of the customers' incident pages (see the module docstring). ``stopping``:
    once set, open event streams end (the browser reconnects, to another daemon if need be),
    so a daemon's shutdown does not wait for them."""
    company = app.config.company.name
    cfg = app.config.incident_page
    refresh = cfg.refresh.total_seconds()
    marks = _Fingerprints(app, ttl=refresh / 2)

    def refused(reason: str) -> HTMLResponse:
        status, title, text = _REFUSED[reason]
        return notice(company, title, text, status)

    def failed(err: OutageCommsError) -> HTMLResponse:
        if isinstance(err, PageTokenError):
            return refused(err.reason)
        if isinstance(err, NotFound):
            return notice(
                company,
                "We could not find this incident",
                "What this link refers to is no longer kept. Please reply to our message instead.",
                404,
            )
        log.error("incident page: %s", err)
        return notice(
            company,
            "Something went wrong",
            "We could not show this page just now. Please try again in a minute.",
            500,
        )

    async def opened(request: Request) -> PageToken | HTMLResponse:
        token = request.path_params["token"]
        try:
            return await asyncio.to_thread(pages.open_token, app, secret, token)
        except OutageCommsError as err:
            return failed(err)

    async def render(
        request: Request, tok: PageToken | None, *, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        """The page; ``tok`` None: the link is checked in the same read as the page's data
        (one transaction and one thread hop for a page view)."""
        token = request.path_params["token"]
        nonce = secrets.token_urlsafe(16)

        def build() -> str:
            if tok is None:
                _, ctx = pages.open_page(app, secret, token)
            else:
                ctx = pages.page_context(app, secret, token, tok)
            ctx.update(
                csp_nonce=nonce,
                page_path=f"/i/{token}",
                events_path=f"/i/{token}/events",
                sent=request.query_params.get("sent") == "1",
                form_error=None,
                draft="",
            )
            ctx.update(extra)
            return app.renderer.render_page("incident", ctx)

        try:
            body = await asyncio.to_thread(build)
        except OutageCommsError as err:
            return failed(err)
        return HTMLResponse(body, status_code=status, headers=headers(nonce))

    async def show(request: Request) -> Response:
        return await render(request, None)

    async def post(request: Request) -> Response:
        tok = await opened(request)
        if isinstance(tok, Response):
            return tok
        token = request.path_params["token"]
        if cross_site(app, request):
            return notice(
                company,
                "This form was not sent from your page",
                "Please write to us from your incident page, using the link in our message.",
                403,
            )
        if media_type(request.headers.get("content-type")) != "application/x-www-form-urlencoded":
            return notice(company, "Unsupported form", "Please send the form from the page.", 415)
        try:
            raw = await read_limited(request, MAX_FORM_BYTES)
        except ClientDisconnect:
            return Response(status_code=408)
        if raw is None:
            return await render(
                request,
                tok,
                status=413,
                form_error="too_long",
            )
        try:
            form = parse_qs(
                raw.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=10
            )
        except ValueError:
            return notice(company, "Unsupported form", "Please send the form from the page.", 400)

        def field(name: str) -> str:
            return (form.get(name) or [""])[0]

        if not check_form_token(
            secret,
            token,
            field("form_token"),
            app.clock(),
            int(cfg.form_lifetime.total_seconds()),
        ):
            return await render(
                request,
                tok,
                status=403,
                form_error="stale",
                draft=field("text")[: pages.MAX_REPLY],
            )
        text = field("text")
        try:
            await asyncio.to_thread(pages.submit_reply, app, tok, text, field("form_id"))
        except InputError as err:
            return await render(
                request, tok, status=400, form_error=_form_error(err), draft=text[: pages.MAX_REPLY]
            )
        except OutageCommsError as err:
            log.error("incident page reply for %s: %s", tok.customer_id, err)
            return await render(
                request,
                tok,
                status=503,
                form_error="unavailable",
                draft=text[: pages.MAX_REPLY],
            )
        if app.inbound_kick is not None:
            app.inbound_kick()  # the daemon's inbound sender: an escalation goes out now
        return RedirectResponse(
            f"/i/{token}?sent=1#told", status_code=303, headers=headers(secrets.token_urlsafe(8))
        )

    async def events(request: Request) -> Response:
        tok = await opened(request)
        if isinstance(tok, Response):
            return tok

        async def stream() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            end = loop.time() + STREAM_FOR
            last = await marks.get(tok)
            quiet_since = loop.time()
            yield f"retry: {int(refresh * 1000)}\n\n"
            while loop.time() < end:
                if stopping is None:
                    await asyncio.sleep(refresh)
                elif await _stopped(stopping, refresh):
                    return
                try:
                    now_mark = await marks.get(tok)
                except Exception as exc:  # the store is away: say nothing, try again
                    log.warning("incident page events: %s", type(exc).__name__)
                    continue
                if now_mark != last:
                    last = now_mark
                    quiet_since = loop.time()
                    yield "event: changed\ndata: {}\n\n"
                elif loop.time() - quiet_since >= HEARTBEAT:
                    quiet_since = loop.time()
                    yield ": still here\n\n"

        sse_headers = {
            **headers(secrets.token_urlsafe(8)),
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        }
        return StreamingResponse(stream(), media_type="text/event-stream", headers=sse_headers)

    return [
        Route("/i/{token}", show, methods=["GET"]),
        Route("/i/{token}", post, methods=["POST"]),
        Route("/i/{token}/events", events, methods=["GET"]),
    ]


async def _stopped(stopping: asyncio.Event, within: float) -> bool:
    """Wait ``within`` seconds, or less when ``stopping`` is set: whether it was."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=within)
    except TimeoutError:
        return False
    return True


def _form_error(err: InputError) -> str:
    """What the page says of a refused text (the template words it in the customer's
    language): ``empty`` or ``too_long``."""
    return "empty" if "is empty" in str(err) else "too_long"
