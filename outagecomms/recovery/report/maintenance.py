"""The report's "Maintenance" section: the window an incident is linked to (an overrun declares
its incident linked to the window, ``maintenance/overrun.py``) and whether the downtime inside
it was left out of the credits as announced maintenance.

The exclusion is decided as the credit ledger decides it (``store.maintenance.
announced_windows`` with ``[credits] exclude_announced_maintenance``): a customer of the
incident's audience told of this window at least the required notice before it started has
the window's span taken out of their downtime. The excluded downtime is the incident's downtime
(its spans, less a reopen's gaps) inside the announced window; an overrun's incident starts at
the window's end, so for it that is none and all of the overrun counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from outagecomms.models import Incident
from outagecomms.recovery.report.model import MaintenanceLink
from outagecomms.store import incidents as incidents_db
from outagecomms.store import maintenance as mdb
from outagecomms.values import format_duration


def read_maintenance(
    conn: Connection, inc: Incident, notice: timedelta | None, now: datetime
) -> MaintenanceLink | None:
    """The incident's window and its credit exclusion, or None when it is linked to none."""
    w = mdb.window_for_incident(conn, inc.id)
    if w is None:
        return None
    told_ahead = w.starts_at - w.told_at
    excluded_customers = 0
    if notice is not None:
        ids = incidents_db.audience_customer_ids(conn, inc.id)
        planned = mdb.announced_windows(conn, ids, notice)
        excluded_customers = sum(
            1 for spans in planned.values() if (w.starts_at, w.ends_at) in spans
        )
    excluded = excluded_customers > 0
    gaps = incidents_db.incident_gaps(conn, [inc.id]).get(inc.id, ())
    inside = timedelta(0)
    if excluded:
        for a, b in incidents_db.downtime_spans(inc, gaps):
            lo, hi = max(a, w.starts_at), min(b or now, w.ends_at)
            if hi > lo:
                inside += hi - lo
    if notice is None:
        why = "[credits] exclude_announced_maintenance is not set: all downtime counts"
    elif w.status.value == "cancelled":
        why = "the window was cancelled: it excludes nothing"
    elif told_ahead < notice:
        why = (
            f"announced {format_duration(max(told_ahead, timedelta(0)))} before the start, "
            f"less than the {format_duration(notice)} the SLA requires: all downtime counts"
        )
    elif not excluded:
        why = "none of the incident's customers was told of the window: all downtime counts"
    else:
        why = (
            f"announced {format_duration(told_ahead)} before the start (the SLA requires "
            f"{format_duration(notice)}): downtime inside the window is not credited, "
            "the overrun is credited"
        )
    end = w.completed_at
    return MaintenanceLink(
        ref=w.ref,
        title=w.title,
        status=w.status.value,
        starts_at=w.starts_at,
        ends_at=w.ends_at,
        started_at=w.started_at,
        completed_at=w.completed_at,
        told_at=w.told_at,
        overran_by=None if end is None else max(end - w.ends_at, timedelta(0)),
        required_notice=notice,
        excluded=excluded,
        excluded_customers=excluded_customers,
        excluded_downtime=inside,
        why=why,
    )
