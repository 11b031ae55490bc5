"""Planned work that touches the same components: scheduling overlapping work warns, and
declaring an incident on a component under maintenance says so (the outage may be the work)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from outagecomms.app import App
from outagecomms.models import MaintenanceStatus, MaintenanceWindow
from outagecomms.store import maintenance as mdb


def _touches(w: MaintenanceWindow, components: Sequence[str], regions: Sequence[str]) -> bool:
    """Shares a component (and a region, when both name regions)."""
    if not set(w.components) & set(components):
        return False
    return not (w.regions and regions and not set(w.regions) & set(regions))


def overlapping(
    app: App,
    components: Sequence[str],
    regions: Sequence[str],
    starts_at: datetime,
    ends_at: datetime,
    *,
    exclude: int = 0,
) -> list[MaintenanceWindow]:
    """Open windows on these components whose time overlaps ``starts_at`` .. ``ends_at``."""
    with app.store.read() as conn:
        windows = mdb.list_windows(conn)
    return [
        w
        for w in windows
        if w.id != exclude
        and w.starts_at < ends_at
        and starts_at < w.ends_at
        and _touches(w, components, regions)
    ]


def overlap_warning(w: MaintenanceWindow) -> str:
    return (
        f"{w.ref} ({w.title}) is planned on {', '.join(w.components)} from "
        f"{w.starts_at:%Y-%m-%d %H:%M} to {w.ends_at:%Y-%m-%d %H:%M} UTC, overlapping this window"
    )


def under_maintenance(
    app: App, components: Sequence[str], regions: Sequence[str], now: datetime
) -> list[str]:
    """What ``declare`` says when a component it names is under maintenance now."""
    with app.store.read() as conn:
        windows = mdb.list_windows(conn)
    return [
        f"{w.ref} ({w.title}) is under maintenance on {', '.join(w.components)} until "
        f"{w.ends_at:%Y-%m-%d %H:%M} UTC: the outage may be the planned work"
        for w in windows
        if w.status == MaintenanceStatus.IN_PROGRESS or (w.starts_at <= now < w.ends_at)
        if _touches(w, components, regions)
    ]
