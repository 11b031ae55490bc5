"""Prometheus metrics, computed from the store at scrape time (the store is the truth, and
every daemon of a cluster reports the same numbers; ``outagecomms_leader`` tells them apart)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select

from outagecomms.app import App
from outagecomms.models import IncidentStatus
from outagecomms.store import tables as t
from outagecomms.values import as_utc

#: seconds before (positive) or after (negative) its promise a delivery was sent
MARGIN_BUCKETS = (-300, -60, -10, 0, 10, 30, 60, 120, 300, 600, 1800)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(app: App, status: dict[str, Any] | None = None) -> str:
    d, r, i = t.deliveries, t.rounds, t.incidents
    lines: list[str] = []

    def metric(
        name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{lab}}} {value:g}" if lab else f"{name} {value:g}")

    with app.store.read() as conn:
        open_n = conn.execute(
            select(func.count()).select_from(i).where(i.c.status != IncidentStatus.RESOLVED.value)
        ).scalar_one()
        rounds = conn.execute(select(r.c.kind, func.count()).group_by(r.c.kind)).all()
        by_outcome = conn.execute(
            select(d.c.channel, d.c.status, func.count()).group_by(d.c.channel, d.c.status)
        ).all()
        margins = conn.execute(
            select(d.c.sent_at, r.c.due_by)
            .join(r, r.c.id == d.c.round_id)
            .where(and_(d.c.sent_at.is_not(None), r.c.due_by.is_not(None)))
        ).all()
    metric("outagecomms_open_incidents", "gauge", "Incidents not yet resolved.", [({}, open_n)])
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
    values = [(as_utc(due) - as_utc(sent)).total_seconds() for sent, due in margins]
    lines.append(
        "# HELP outagecomms_promise_margin_seconds Seconds a delivery was sent before its promise (negative: late)."
    )
    lines.append("# TYPE outagecomms_promise_margin_seconds histogram")
    for b in MARGIN_BUCKETS:
        lines.append(
            f'outagecomms_promise_margin_seconds_bucket{{le="{b}"}} {sum(1 for v in values if v <= b)}'
        )
    lines.append(f'outagecomms_promise_margin_seconds_bucket{{le="+Inf"}} {len(values)}')
    lines.append(f"outagecomms_promise_margin_seconds_sum {sum(values):g}")
    lines.append(f"outagecomms_promise_margin_seconds_count {len(values)}")
    lines.append("# HELP outagecomms_promises_late_total Deliveries sent after their promise.")
    lines.append("# TYPE outagecomms_promises_late_total counter")
    lines.append(f"outagecomms_promises_late_total {sum(1 for v in values if v < 0)}")
    if status is not None:
        metric(
            "outagecomms_leader",
            "gauge",
            "1 when this daemon is the scheduling leader.",
            [({}, 1 if status.get("leader") else 0)],
        )
    return "\n".join(lines) + "\n"
