"""The public status page's routes (``GET /status``, ``/status/feed.atom``, the JSON summary)."""

from __future__ import annotations

from starlette.routing import Route

from outagecomms.app import App


def status_routes(app: App) -> list[Route]:
    """The routes of the public status page; none while ``[status_page] enabled`` is false."""
    return []
