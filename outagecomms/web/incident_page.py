"""A customer's own incident page's routes (``GET /i/<token>`` and what it posts)."""

from __future__ import annotations

from starlette.routing import Route

from outagecomms.app import App


def incident_routes(app: App, secret: bytes) -> list[Route]:
    """The routes of the customers' incident pages."""
    return []
