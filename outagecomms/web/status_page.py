"""The public status page's routes (``[status_page] enabled``; none while it is false, so
every path answers 404)::

    GET /status                  the page (HTML, ``templates/pages/status.html.j2``)
    GET /status/feed.atom        Atom 1.0: one entry per public update, newest first
    GET /status/summary.json     Statuspage's summary.json shape
    GET /api/v2/summary.json     the same body, where Statuspage's clients look for it
    GET /api/v2/status.json      Statuspage's status.json shape (page and indicator)
    GET /status/logo             the configured logo, if any

Everything is computed from one :class:`~outagecomms.pages.status.StatusCache` (``[status_page]
cache``), so a burst of clients reads the store once per cache period. Responses are public
(``Cache-Control: public, max-age=<cache>``); the page loads nothing from elsewhere: its CSS
is inline under a per-response nonce, the logo is ours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from outagecomms.app import App
from outagecomms.errors import OutageCommsError
from outagecomms.pages.feeds import ATOM_TYPE, atom_feed, status_json, summary_json
from outagecomms.pages.status import StatusCache, StatusData, page_context

log = logging.getLogger("outagecomms.web")

#: the page's Content-Security-Policy; {nonce} is the response's
CSP = (
    "default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def status_routes(app: App) -> list[Route]:
    """The routes of the public status page; none while ``[status_page] enabled`` is false."""
    cfg = app.config.status_page
    if not cfg.enabled:
        return []
    cache = StatusCache(app)
    logo = cfg.logo.read_bytes() if cfg.logo is not None else None

    def headers(**extra: str) -> dict[str, str]:
        seconds = max(0, int(app.config.status_page.cache.total_seconds()))
        return {
            "Cache-Control": f"public, max-age={seconds}",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            **extra,
        }

    def urls(request: Request) -> tuple[str, str]:
        """The page's and the feed's absolute URLs: ``[daemon] public_url``'s, else the
        request's own base (a daemon reached directly)."""
        base = app.config.daemon.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        return f"{base}/status", f"{base}/status/feed.atom"

    #: (view, page URL) -> (the data it was built from, what it built): each view is built
    #: once per computation of the data, each response then costs a lookup (and a nonce)
    built: dict[tuple[str, str], tuple[StatusData, Any]] = {}
    title = cfg.title

    def build_page(data: StatusData, page_url: str, feed_url: str) -> list[str]:
        """The page rendered with an unguessable marker where the nonce goes, split at it;
        each response joins the pieces with its own nonce."""
        marker = secrets.token_urlsafe(24)
        ctx = page_context(app, data, nonce=marker, logo=logo is not None)
        return app.renderer.render_page("status", ctx).split(marker)

    def build_feed(data: StatusData, page_url: str, feed_url: str) -> bytes:
        author = app.config.company.name
        return atom_feed(data, title=title, author=author, page_url=page_url, feed_url=feed_url)

    def build_json(fn: Callable[..., dict[str, Any]]) -> Callable[[StatusData, str, str], bytes]:
        def build(data: StatusData, page_url: str, feed_url: str) -> bytes:
            body = fn(data, title=title, page_url=page_url)
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

        return build

    def page_response(pieces: list[str]) -> Response:
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(
            nonce.join(pieces),
            headers=headers(**{"Content-Security-Policy": CSP.format(nonce=nonce)}),
        )

    def feed_response(body: bytes) -> Response:
        return Response(body, media_type=ATOM_TYPE, headers=headers())

    def json_response(body: bytes) -> Response:
        # widgets fetch it from other sites' pages: it is public, so any origin may read it
        return Response(
            body,
            media_type="application/json",
            headers=headers(**{"Access-Control-Allow-Origin": "*"}),
        )

    def served(
        name: str, build: Callable[[StatusData, str, str], Any], respond: Callable[[Any], Response]
    ) -> Callable[[Request], Awaitable[Response]]:
        def compute(key: tuple[str, str], feed_url: str) -> Any:
            data = cache.get()
            hit = built.get(key)
            if hit is not None and hit[0] is data:
                return hit[1]
            value = build(data, key[1], feed_url)
            built[key] = (data, value)
            return value

        async def endpoint(request: Request) -> Response:
            page_url, feed_url = urls(request)
            key = (name, page_url)
            data, hit = cache.peek(), built.get(key)
            if data is not None and hit is not None and hit[0] is data:
                return respond(hit[1])  # the common case: no thread, no store, no render
            try:  # in a thread: reading the store and rendering the page both take time
                return respond(await asyncio.to_thread(compute, key, feed_url))
            except OutageCommsError as err:  # an override template broke, say
                log.error("status page: %s", err)
            except Exception:  # the store is unreachable, or a bug: never a half page
                log.exception("status page failed")
            return PlainTextResponse(
                "The status page is unavailable just now; please try again shortly.",
                status_code=503,
                headers={"Cache-Control": "no-store", "Retry-After": "30"},
            )

        return endpoint

    async def logo_file(request: Request) -> Response:
        assert logo is not None and cfg.logo_type is not None
        return Response(
            logo,
            media_type=cfg.logo_type,
            # an SVG is a document: nothing in it may run or load
            headers=headers(**{"Content-Security-Policy": "default-src 'none'; sandbox"}),
        )

    summary = served("summary", build_json(summary_json), json_response)
    routes = [
        Route("/status", served("page", build_page, page_response), methods=["GET"]),
        Route("/status/feed.atom", served("feed", build_feed, feed_response), methods=["GET"]),
        Route("/status/summary.json", summary, methods=["GET"]),
        Route("/api/v2/summary.json", summary, methods=["GET"]),
        Route(
            "/api/v2/status.json",
            served("status", build_json(status_json), json_response),
            methods=["GET"],
        ),
    ]
    if logo is not None:
        routes.append(Route("/status/logo", logo_file, methods=["GET"]))
    return routes
