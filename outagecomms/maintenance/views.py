"""Read models of scheduled maintenance for the live dashboard (``watch``).

The windows are a list of their own beside ``incidents.views.watch_snapshot``'s rows, so a
caller that reads the incidents' rows sees them unchanged. The next reminder is derived as the
scheduler derives it (``due.reminder_key``): the earliest offset of a scheduled window whose
reminder has no notice yet, which may lie in the past while no scheduler has run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from outagecomms.app import App
from outagecomms.maintenance.due import reminder_key
from outagecomms.models import MaintenanceStatus, MaintenanceWindow
from outagecomms.store import maintenance as mdb
from outagecomms.values import JsonModel, json_key

#: delivery statuses counted as still owed a send, and as given up on
PENDING = ("pending", "sending")
FAILED = ("failed", "dead")


@dataclass(frozen=True, kw_only=True)
class MaintenanceWatchRow(JsonModel):
    """One scheduled or in-progress window on the live dashboard."""

    ref: str = json_key("maintenance")
    title: str
    status: MaintenanceStatus
    starts_at: datetime = json_key("start")
    ends_at: datetime = json_key("end")
    audience: int
    next_reminder_at: datetime | None  # None: none left (or the window is running)
    seconds_to_reminder: float | None  # negative: owed and not yet written by a scheduler
    deliveries: Mapping[str, int]  # delivery status -> count, over all its notices
    incident: str | None  # INC-<n> declared when it overran

    json_extra = ("sent", "pending", "failed")

    @property
    def sent(self) -> int:
        return self.deliveries.get("sent", 0)

    @property
    def pending(self) -> int:
        return sum(self.deliveries.get(s, 0) for s in PENDING)

    @property
    def failed(self) -> int:
        return sum(self.deliveries.get(s, 0) for s in FAILED)


def next_reminder_at(w: MaintenanceWindow, done: set[tuple[int, str]]) -> datetime | None:
    """The earliest reminder of a scheduled window that no scheduler has written yet."""
    if w.status != MaintenanceStatus.SCHEDULED:
        return None
    left = [w.starts_at - r for r in w.remind if (w.id, reminder_key(r, w.starts_at)) not in done]
    return min(left) if left else None


def watch_windows(app: App) -> list[MaintenanceWatchRow]:
    """The scheduled and in-progress windows, soonest first, for ``watch``."""
    now = app.clock()
    with app.store.read() as conn:
        windows = mdb.list_windows(conn)
        done = mdb.notice_keys(conn, (w.id for w in windows))
        counts = mdb.window_delivery_counts(conn, (w.id for w in windows))
    out = []
    for w in windows:
        due = next_reminder_at(w, done)
        out.append(
            MaintenanceWatchRow(
                ref=w.ref,
                title=w.title,
                status=w.status,
                starts_at=w.starts_at,
                ends_at=w.ends_at,
                audience=w.audience_size,
                next_reminder_at=due,
                seconds_to_reminder=(due - now).total_seconds() if due else None,
                deliveries=counts.get(w.id, {}),
                incident=f"INC-{w.incident_id}" if w.incident_id else None,
            )
        )
    return out
