"""Prometheus metrics, computed from the store at scrape time (the store is the truth, and
every daemon of a cluster reports the same numbers; ``outagecomms_leader`` tells them apart).

Every figure is counted or summed by the database (``store.reporting``), and a round's figures
are counted once it is settled (nothing owed any more) and kept in ``round_tallies``: a scrape
reads a row per round and counts only the rounds still sending, however many deliveries the
store holds. What customers sent back is in ``web.inbound_metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outagecomms.app import App
from outagecomms.store import reporting
from outagecomms.web.inbound_metrics import inbound_lines

#: seconds before (positive) or after (negative) its promise a delivery was sent
MARGIN_BUCKETS = (-300, -60, -10, 0, 10, 30, 60, 120, 300, 600, 1800)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(app: App, status: dict[str, Any] | None = None) -> str:
    """The Prometheus text exposition of the store's figures (and, given the daemon's
    ``status``, whether this daemon leads)."""
    with app.store.read() as conn:
        settled = reporting.rounds_to_tally(conn, MARGIN_BUCKETS)
    if settled:  # counted once, then read back from round_tallies by every later scrape
        with app.store.write() as conn:
            reporting.store_tallies(conn, MARGIN_BUCKETS, settled)
    with app.store.read() as conn:
        open_n = reporting.open_incident_count(conn)
        rounds = reporting.rounds_by_kind(conn)
        figures = reporting.scrape(conn, MARGIN_BUCKETS)
        inbound = inbound_lines(conn)
        inbound += maintenance_lines(conn)
    leader = None if status is None else bool(status.get("leader"))
    text = exposition(open_n, rounds, figures.by_outcome, figures.margins, leader=leader)
    return text + "\n".join(inbound) + "\n"


def maintenance_lines(conn: Any) -> list[str]:
    """Scheduled maintenance: windows by status (every status, 0 included) and their notices'
    deliveries by channel and outcome."""
    from outagecomms.models import MaintenanceStatus
    from outagecomms.store import maintenance as maintenance_db

    windows, deliveries = maintenance_db.figures(conn)
    lines = [
        "# HELP outagecomms_maintenance_windows Maintenance windows by status.",
        "# TYPE outagecomms_maintenance_windows gauge",
    ]
    lines += [
        f'outagecomms_maintenance_windows{{status="{s.value}"}} {windows.get(s.value, 0)}'
        for s in MaintenanceStatus
    ]
    lines += [
        "# HELP outagecomms_maintenance_deliveries Maintenance notices' deliveries by channel and outcome.",
        "# TYPE outagecomms_maintenance_deliveries gauge",
    ]
    lines += [
        f'outagecomms_maintenance_deliveries{{channel="{_label(ch)}",status="{st}"}} {n}'
        for ch, st, n in deliveries
    ]
    return lines


def exposition(
    open_incidents: int,
    rounds: Sequence[tuple[str, int]],
    by_outcome: Sequence[tuple[str, str, int]],
    margins: reporting.MarginHistogram,
    *,
    leader: bool | None = None,
) -> str:
    """The figures in Prometheus' text format (``leader`` None: not a daemon's scrape)."""
    lines: list[str] = []

    def metric(
        name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{lab}}} {value:g}" if lab else f"{name} {value:g}")

    metric(
        "outagecomms_open_incidents", "gauge", "Incidents not yet resolved.",
        [({}, open_incidents)],
    )  # fmt: skip
    metric(
        "outagecomms_rounds_total",
        "counter",
        "Rounds written, by kind.",
        [({"kind": k}, n) for k, n in rounds],
    )
    metric(
        "outagecomms_deliveries", "gauge", "Deliveries by channel and outcome.",
        [({"channel": ch, "status": st}, n) for ch, st, n in by_outcome],
    )  # fmt: skip
    depth = sum(n for _ch, st, n in by_outcome if st in ("pending", "sending"))
    metric("outagecomms_queue_depth", "gauge", "Deliveries owed and not yet sent.", [({}, depth)])
    lines.append(
        "# HELP outagecomms_promise_margin_seconds Seconds a delivery was sent before its promise (negative: late)."
    )
    lines.append("# TYPE outagecomms_promise_margin_seconds histogram")
    for b, n in zip(margins.bounds, margins.buckets, strict=True):
        lines.append(f'outagecomms_promise_margin_seconds_bucket{{le="{b}"}} {n}')
    lines.append(f'outagecomms_promise_margin_seconds_bucket{{le="+Inf"}} {margins.count}')
    lines.append(f"outagecomms_promise_margin_seconds_sum {margins.sum_seconds:g}")
    lines.append(f"outagecomms_promise_margin_seconds_count {margins.count}")
    lines.append("# HELP outagecomms_promises_late_total Deliveries sent after their promise.")
    lines.append("# TYPE outagecomms_promises_late_total counter")
    lines.append(f"outagecomms_promises_late_total {margins.late}")
    if leader is not None:
        metric(
            "outagecomms_leader",
            "gauge",
            "1 when this daemon is the scheduling leader.",
            [({}, 1 if leader else 0)],
        )
    return "\n".join(lines) + "\n"
