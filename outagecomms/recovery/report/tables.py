"""The tables both renderers show (Markdown and HTML escape the cells, each its own way)."""

from __future__ import annotations

from outagecomms.recovery.report.model import MaintenanceLink, Nps, Report
from outagecomms.recovery.report.units import DASH, human, offset, pct
from outagecomms.values import iso

ROUND_HEAD = (
    "#", "Kind", "Status", "Created", "Due by", "Next promised", "Owed", "Sent", "Failed",
    "Pending", "On time", "First sent", "Last sent",
)  # fmt: skip
PROMISE_HEAD = ("#", "Kind", "Due by", "On time", "Owed", "Kept")


def round_rows(report: Report) -> list[list[object]]:
    """The timeline table (``ROUND_HEAD``), times as offsets from the start."""
    start = report.incident.started_at
    rows: list[list[object]] = []
    for r in report.timeline.rounds:
        s, rnd = r.stats, r.stats.round
        rows.append(
            [
                rnd.seq,
                rnd.kind.value,
                rnd.status.value,
                offset(start, rnd.created_at),
                offset(start, rnd.due_by),
                offset(start, rnd.promised_next_by),
                s.owed,
                s.sent,
                s.failed,
                s.pending,
                s.on_time,
                offset(start, s.first_sent_at),
                offset(start, s.last_sent_at),
            ]
        )
    return rows


def promise_rows(report: Report) -> list[list[object]]:
    """The promises-kept table (``PROMISE_HEAD``)."""
    return [
        [
            p.seq,
            p.kind.value,
            iso(p.due_by) or "no promise",
            p.on_time,
            p.owed,
            pct(p.ratio) if p.counted else "not counted",
        ]
        for p in report.promises.per_round
    ]


def nps_facts(nps: Nps) -> list[tuple[str, object]]:
    """The NPS figures, named (numbers only: nothing to escape)."""
    return [
        ("NPS", nps.nps),
        ("Responses", nps.responses),
        ("Promoters (9\u201310)", nps.promoters),
        ("Passives (7\u20138)", nps.passives),
        ("Detractors (0\u20136)", nps.detractors),
    ]


MAINTENANCE_TITLE = "Maintenance"


def maintenance_facts(link: MaintenanceLink) -> list[tuple[str, object]]:
    """The window the incident overran from, and its credit exclusion (unescaped: each
    renderer escapes the values its own way)."""
    overran = DASH if link.overran_by is None else human(link.overran_by.total_seconds())
    if link.required_notice is None:
        excluded = "no ([credits] exclude_announced_maintenance is not set)"
    elif link.excluded:
        excluded = (
            f"yes, for {link.excluded_customers} customers: "
            f"{human(link.excluded_downtime.total_seconds())} of this incident's downtime "
            "fell inside the window"
        )
    else:
        excluded = "no"
    return [
        ("Window", f"{link.ref} \u2014 {link.title} ({link.status})"),
        ("Announced", f"{iso(link.starts_at)} \u2013 {iso(link.ends_at)}"),
        ("Customers told", f"{iso(link.told_at)} ({human(link.notice.total_seconds())} ahead)"),
        ("Started", iso(link.started_at) or DASH),
        ("Completed", iso(link.completed_at) or "not yet"),
        ("Overran the announced end by", overran),
        ("Excluded from credits as announced maintenance", excluded),
        ("Why", link.why),
    ]
