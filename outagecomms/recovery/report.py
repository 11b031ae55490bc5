"""The post-incident report (``outagecomms report INC``): what happened, who was told what and
when, whether the promises were kept, what it cost in credits and what customers said.

``build_report`` reads the ledger (incidents, audience, rounds, deliveries, events, credits,
feedback) into one JSON-able dict; ``render_markdown`` and ``render_html`` turn that dict into
a document. The HTML is self-contained (inline CSS and an inline SVG chart; no scripts, no
network), and every string that came from a user is escaped.

Definitions (DESIGN.md §2, §3):

- *Time to first notice* of a customer: the earliest ``sent_at`` of their acknowledgement
  deliveries minus the incident's ``started_at``. A customer owed an acknowledgement (any
  delivery of the acknowledgement round) is *within* when it arrived by ``ack_due``
  (``started_at + ack_within``), *late* when after, *never* when none was sent. Median (the
  mean of the two middle values for an even count), p95 by nearest rank, max.
- *Promises kept*: deliveries sent by the round's ``due_by`` (the promise the previous round
  made; for the acknowledgement ``ack_due``) over deliveries owed (every delivery but the
  superseded ones). Rounds that keep no promise (``due_by`` empty: the follow-up) are listed but
  not counted.
- *Credits*: ``total`` sums the issued (rounded) amounts per currency; ``by_rule`` sums the rule
  lines per currency (lines are exact and before the cap and the minimum, so ``by_rule`` can
  exceed ``total``), rounded half-up once to the currency's minor unit; ``by_tier`` sums the
  issued amounts per customer tier and currency. Money is ``Decimal`` throughout, printed as
  decimal strings.
- *NPS*: %promoters (9-10) - %detractors (0-6), rounded half-up to one decimal.
"""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from babel.numbers import get_currency_precision
from sqlalchemy import Connection, func, select

from outagecomms.app import App
from outagecomms.errors import InputError
from outagecomms.incidents.views import iso, promises_kept, round_dict
from outagecomms.models import DeliveryStatus, RoundKind, RoundStats
from outagecomms.store import repository as repo
from outagecomms.store import tables as t
from outagecomms.values import as_utc, format_duration

__all__ = ["FORMATS", "build_report", "render_html", "render_markdown", "write_report"]

FORMATS = ("md", "html")
TOP_ERRORS = 5
NOT_IN_DIRECTORY = "(not in directory)"
PREVENTION_PLACEHOLDER = (
    "TO DO (commander): what we will change so that this does not happen again, "
    "with an owner and a date for each action."
)


# --- small helpers ----------------------------------------------------------------------------


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def _human(seconds: float | None) -> str:
    """A duration for people: 4m12s, 1h5m, 0s; negative values get a minus sign."""
    if seconds is None:
        return "n/a"
    sign = "-" if seconds < 0 else ""
    return sign + format_duration(timedelta(seconds=round(abs(seconds))))


def _ratio(num: int, den: int) -> float | None:
    return (num / den) if den else None


def _pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.1f}%"


def _minor(currency: str) -> int:
    try:
        return int(get_currency_precision(currency))
    except Exception:  # an unknown code: keep two places, like most currencies
        return 2


def _money(amount: Decimal, currency: str) -> str:
    """Round half-up, once, to the currency's minor unit (JPY: none)."""
    return str(amount.quantize(Decimal(1).scaleb(-_minor(currency)), rounding=ROUND_HALF_UP))


def _nearest_rank(sorted_values: list[float], pct: int) -> float:
    """The nearest-rank percentile: the value at rank ceil(pct/100 × n) (1-based)."""
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[rank - 1]


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the report --------------------------------------------------------------------------------


def build_report(app: App, incident_id: int) -> dict[str, Any]:
    """Everything the post-incident report shows, read from the ledger (JSON-able)."""
    with app.store.read() as conn:
        row = repo.get_incident(conn, incident_id)
        stats = repo.round_stats(conn, incident_id)
        events = repo.list_events(conn, incident_id)
        tiers = _audience_tiers(conn, incident_id)
        audience_rows = conn.execute(
            select(t.audience.c.customer_id, t.audience.c.channel).where(
                t.audience.c.incident_id == incident_id
            )
        ).all()
        ack = _ack_firsts(conn, incident_id)
        delivery_counts = _delivery_counts(conn, incident_id)
        errors = _top_errors(conn, incident_id)
        retried = int(
            conn.execute(
                select(func.count())
                .select_from(t.deliveries)
                .where(t.deliveries.c.incident_id == incident_id, t.deliveries.c.attempts > 1)
            ).scalar_one()
        )
        credit_rows = conn.execute(
            select(t.credits).where(t.credits.c.incident_id == incident_id)
        ).all()
        feedback_rows = conn.execute(
            select(t.feedback)
            .where(t.feedback.c.incident_id == incident_id)
            .order_by(t.feedback.c.received_at, t.feedback.c.customer_id)
        ).all()
        missing = {r.customer_id for r in credit_rows} - set(tiers)
        tiers.update(_customer_tiers(conn, missing))

    inc = row.incident
    duration = (inc.resolved_at - inc.started_at) if inc.resolved_at else None
    ack_within = inc.ack_due - inc.started_at
    incident = {
        "ref": inc.ref,
        "id": inc.id,
        "title": inc.title,
        "severity": inc.severity,
        "status": inc.status.value,
        "components": list(inc.components),
        "regions": list(inc.regions),
        "commander": inc.commander,
        "started_at": iso(inc.started_at),
        "declared_at": iso(inc.declared_at),
        "resolved_at": iso(inc.resolved_at),
        "duration_seconds": _seconds(duration),
        "duration": _human(_seconds(duration)) if duration is not None else None,
        "cadence_seconds": inc.update_every.total_seconds(),
        "cadence": _human(inc.update_every.total_seconds()),
        "ack_within_seconds": ack_within.total_seconds(),
        "ack_within": _human(ack_within.total_seconds()),
        "ack_due": iso(inc.ack_due),
        "next_update_due": iso(inc.next_update_due),
    }
    rounds = [_round_entry(s) for s in stats]
    report: dict[str, Any] = {
        "generated_at": iso(app.clock()),
        "incident": incident,
        "timeline": {
            "rounds": rounds,
            "events": [
                {"at": iso(e["at"]), "kind": e["kind"], "detail": e["detail"]} for e in events
            ],
        },
        "audience": _audience(audience_rows, tiers, row.skipped),
        "first_notice": _first_notice(ack, inc.started_at, inc.ack_due),
        "promises": _promises(stats),
        "deliveries": _deliveries(delivery_counts, errors, retried),
        "credits": _credits(credit_rows, tiers),
        "nps": _nps(feedback_rows),
    }
    report["kb_article"] = _kb_article(report, stats)
    return report


def _audience_tiers(conn: Connection, incident_id: int) -> dict[str, str]:
    """customer id → tier for the incident's audience (customers since removed are absent)."""
    a, c = t.audience, t.customers
    q = (
        select(a.c.customer_id, c.c.tier)
        .join(c, c.c.id == a.c.customer_id)
        .where(a.c.incident_id == incident_id)
        .distinct()
    )
    return {r[0]: r[1] for r in conn.execute(q)}


def _customer_tiers(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    q = select(t.customers.c.id, t.customers.c.tier).where(t.customers.c.id.in_(ids))
    return {r[0]: r[1] for r in conn.execute(q)}


def _ack_firsts(conn: Connection, incident_id: int) -> dict[str, datetime | None]:
    """Every customer owed an acknowledgement → when the first one was sent (None: never)."""
    d, r = t.deliveries, t.rounds
    q = (
        select(d.c.customer_id, d.c.status, func.min(d.c.sent_at))
        .join(r, r.c.id == d.c.round_id)
        .where(
            d.c.incident_id == incident_id,
            r.c.kind == RoundKind.ACKNOWLEDGEMENT.value,
            d.c.status != DeliveryStatus.SUPERSEDED.value,
        )
        .group_by(d.c.customer_id, d.c.status)
    )
    out: dict[str, datetime | None] = {}
    for customer_id, status, first in conn.execute(q):
        out.setdefault(customer_id, None)
        sent = as_utc(first) if status == DeliveryStatus.SENT.value else None
        if sent is not None:
            prev = out[customer_id]
            out[customer_id] = sent if prev is None or sent < prev else prev
    return out


def _delivery_counts(conn: Connection, incident_id: int) -> list[tuple[str, str, int]]:
    d = t.deliveries
    q = (
        select(d.c.channel, d.c.status, func.count())
        .where(d.c.incident_id == incident_id)
        .group_by(d.c.channel, d.c.status)
        .order_by(d.c.channel, d.c.status)
    )
    return [(r[0], r[1], int(r[2])) for r in conn.execute(q)]


def _top_errors(conn: Connection, incident_id: int) -> list[tuple[str, int]]:
    d = t.deliveries
    q = (
        select(d.c.last_error, func.count())
        .where(
            d.c.incident_id == incident_id,
            d.c.status.in_([DeliveryStatus.FAILED.value, DeliveryStatus.DEAD.value]),
        )
        .group_by(d.c.last_error)
    )
    rows = [(r[0] or "(no error recorded)", int(r[1])) for r in conn.execute(q)]
    rows.sort(key=lambda x: (-x[1], x[0]))
    return rows[:TOP_ERRORS]


def _round_entry(s: RoundStats) -> dict[str, Any]:
    out = round_dict(s)
    out["deliveries"] = dict(sorted(s.by_status.items()))
    kept = s.round.due_by is not None
    out["late"] = (s.sent - s.on_time) if kept else None
    out["ratio"] = _ratio(s.on_time, s.owed) if kept else None
    return out


def _audience(
    rows: Iterable[Any], tiers: Mapping[str, str], skipped: Mapping[str, int]
) -> dict[str, Any]:
    customers: set[str] = set()
    by_channel: Counter[str] = Counter()
    tier_channel: dict[str, Counter[str]] = defaultdict(Counter)
    for customer_id, channel in rows:
        customers.add(customer_id)
        by_channel[channel] += 1
        tier_channel[tiers.get(customer_id, NOT_IN_DIRECTORY)][channel] += 1
    by_tier = Counter(tiers.get(c, NOT_IN_DIRECTORY) for c in customers)
    return {
        "customers": len(customers),
        "by_tier": dict(sorted(by_tier.items())),
        "by_channel": dict(sorted(by_channel.items())),
        "by_tier_and_channel": {
            k: dict(sorted(v.items())) for k, v in sorted(tier_channel.items())
        },
        "skipped": dict(sorted(skipped.items())),
    }


def _first_notice(
    firsts: Mapping[str, datetime | None], started_at: datetime, ack_due: datetime
) -> dict[str, Any]:
    waits: list[float] = []
    within = late = never = 0
    late_customers: list[str] = []
    never_customers: list[str] = []
    for customer_id in sorted(firsts):
        sent = firsts[customer_id]
        if sent is None:
            never += 1
            never_customers.append(customer_id)
            continue
        waits.append((sent - started_at).total_seconds())
        if sent <= ack_due:
            within += 1
        else:
            late += 1
            late_customers.append(customer_id)
    waits.sort()
    median = statistics.median(waits) if waits else None
    p95 = _nearest_rank(waits, 95) if waits else None
    worst = waits[-1] if waits else None
    return {
        "ack_within_seconds": (ack_due - started_at).total_seconds(),
        "ack_due": iso(ack_due),
        "owed": len(firsts),
        "count": len(waits),
        "within": within,
        "late": late,
        "never": never,
        "median_seconds": median,
        "p95_seconds": p95,
        "max_seconds": worst,
        "median": _human(median),
        "p95": _human(p95),
        "max": _human(worst),
        "late_customers": late_customers,
        "never_customers": never_customers,
    }


def _promises(stats: list[RoundStats]) -> dict[str, Any]:
    per_round = []
    for s in stats:
        counted = s.round.due_by is not None
        per_round.append(
            {
                "round": s.round.seq,
                "kind": s.round.kind.value,
                "due_by": iso(s.round.due_by),
                "owed": s.owed,
                "on_time": s.on_time,
                "ratio": _ratio(s.on_time, s.owed) if counted else None,
                "counted": counted,
            }
        )
    return {"per_round": per_round, "overall": promises_kept(stats)}


def _deliveries(
    counts: list[tuple[str, str, int]], errors: list[tuple[str, int]], retried: int
) -> dict[str, Any]:
    by_channel: dict[str, dict[str, int]] = defaultdict(dict)
    by_status: Counter[str] = Counter()
    for channel, status, n in counts:
        by_channel[channel][status] = n
        by_status[status] += n
    return {
        "total": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "by_channel": {k: dict(sorted(v.items())) for k, v in sorted(by_channel.items())},
        "sent": by_status.get(DeliveryStatus.SENT.value, 0),
        "failed": by_status.get(DeliveryStatus.FAILED.value, 0),
        "dead": by_status.get(DeliveryStatus.DEAD.value, 0),
        "pending": by_status.get(DeliveryStatus.PENDING.value, 0)
        + by_status.get(DeliveryStatus.SENDING.value, 0),
        "retried": retried,
        "top_errors": [{"error": e, "count": n} for e, n in errors],
    }


def _credits(rows: Iterable[Any], tiers: Mapping[str, str]) -> dict[str, Any]:
    total: dict[str, Decimal] = defaultdict(Decimal)
    by_rule: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_tier: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_status: Counter[str] = Counter({"proposed": 0, "approved": 0})
    goodwill: Counter[str] = Counter()
    customers = []
    count = 0
    for r in sorted(rows, key=lambda x: x.customer_id):
        count += 1
        amount = Decimal(r.amount)
        tier = tiers.get(r.customer_id, NOT_IN_DIRECTORY)
        total[r.currency] += amount
        by_tier[tier][r.currency] += amount
        by_status[r.status] += 1
        if r.goodwill:
            goodwill[r.goodwill] += 1
        rules = []
        for line in r.lines or []:
            by_rule[str(line["rule"])][r.currency] += Decimal(str(line["amount"]))
            rules.append(str(line["rule"]))
        customers.append(
            {
                "customer": r.customer_id,
                "tier": tier,
                "amount": str(amount),
                "currency": r.currency,
                "status": r.status,
                "rules": rules,
                "goodwill": r.goodwill,
            }
        )
    return {
        "count": count,
        "customers_credited": sum(1 for c in customers if Decimal(c["amount"]) > 0),
        "by_status": dict(sorted(by_status.items())),
        "total": {cur: str(v) for cur, v in sorted(total.items())},
        "by_rule": {
            rule: {cur: _money(v, cur) for cur, v in sorted(per.items())}
            for rule, per in sorted(by_rule.items())
        },
        "by_tier": {
            tier: {cur: str(v) for cur, v in sorted(per.items())}
            for tier, per in sorted(by_tier.items())
        },
        "goodwill": {"count": sum(goodwill.values()), "offers": dict(sorted(goodwill.items()))},
        "customers": customers,
    }


def _nps(rows: Iterable[Any]) -> dict[str, Any]:
    scores: list[int] = []
    comments = []
    for r in rows:
        scores.append(int(r.score))
        if r.comment and r.comment.strip():
            comments.append(
                {
                    "customer": r.customer_id,
                    "score": int(r.score),
                    "comment": r.comment.strip(),
                    "received_at": iso(as_utc(r.received_at)),
                }
            )
    from outagecomms.recovery.feedback import nps_from_scores

    return {**nps_from_scores(scores), "comments": comments}


def _kb_article(report: dict[str, Any], stats: list[RoundStats]) -> dict[str, Any]:
    inc = report["incident"]
    aud = report["audience"]
    fn = report["first_notice"]
    prom = report["promises"]["overall"]
    dl = report["deliveries"]
    resolution = next(
        (s.round for s in reversed(stats) if s.round.kind == RoundKind.RESOLUTION), None
    )
    cause_notes = [
        s.round.message
        for s in stats
        if s.round.kind == RoundKind.UPDATE
        and s.round.status.value == "identified"
        and s.round.message
    ]
    where = ", ".join(inc["components"]) or "our service"
    regions = ", ".join(inc["regions"])
    span = f"from {inc['started_at']}"
    span += f" to {inc['resolved_at']} ({inc['duration']})" if inc["resolved_at"] else " (ongoing)"
    summary = (
        f"{inc['severity'].upper()} incident {inc['ref']} \u201c{inc['title']}\u201d affected "
        f"{where}" + (f" in {regions}" if regions else "") + f", {span}."
    )
    if inc["commander"]:
        summary += f" Incident commander: {inc['commander']}."
    tiers = ", ".join(f"{n} {tier}" for tier, n in aud["by_tier"].items())
    channels = ", ".join(f"{ch} ({n})" for ch, n in aud["by_channel"].items())
    impact = f"{aud['customers']} customers affected" + (f" ({tiers})" if tiers else "")
    impact += f", reached on {channels}." if channels else "."
    if inc["duration"]:
        impact += f" Customer-facing downtime: {inc['duration']}."
    credits = report["credits"]
    if credits["count"]:
        money = ", ".join(f"{v} {cur}" for cur, v in credits["total"].items())
        impact += f" Service credits: {money} for {credits['customers_credited']} customers."
    comms = (
        f"{len(stats)} rounds; {dl['sent']} messages delivered, "
        f"{dl['failed'] + dl['dead']} failed; promises kept {prom['on_time']}/{prom['owed']} "
        f"({_pct(prom['ratio'])}). First notice: median {fn['median']}, p95 {fn['p95']}, "
        f"max {fn['max']}; {fn['within']} of {fn['owed']} customers within "
        f"{_human(fn['ack_within_seconds'])}, {fn['late']} late, {fn['never']} never."
    )
    nps = report["nps"]
    if nps["responses"]:
        comms += f" NPS {nps['nps']} from {nps['responses']} responses."
    return {
        "title": f"{inc['ref']}: {inc['title']}",
        "summary": summary,
        "impact": impact,
        "cause_and_fix": resolution.message if resolution else "",
        "cause_notes": cause_notes,
        "prevention": PREVENTION_PLACEHOLDER,
        "customer_communication": comms,
    }


# --- Markdown ----------------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "`": "\\`", "*": "\\*", "_": "\\_"}
)


def _md(value: object) -> str:
    """User text made inert in Markdown: no HTML, no table breaks, no emphasis; one line."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).translate(_MD_SPECIAL)


def _md_block(value: str) -> list[str]:
    lines = [_md(line) for line in value.splitlines()] or [""]
    return ["> " + line if line else ">" for line in lines]


def _md_table(head: list[str], rows: list[list[object]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


_ROUND_HEAD = (
    "#", "Kind", "Status", "Created", "Due by", "Next promised", "Owed", "Sent", "Failed",
    "Pending", "On time", "First sent", "Last sent",
)  # fmt: skip


def _rel(report: dict[str, Any], ts: str | None) -> str:
    """A time as an offset from the start of the incident: +4m12s."""
    at, start = _parse_iso(ts), _parse_iso(report["incident"]["started_at"])
    if at is None or start is None:
        return "\u2013"
    secs = (at - start).total_seconds()
    return ("+" if secs >= 0 else "") + _human(secs)


def _money_map(values: Mapping[str, str]) -> str:
    return ", ".join(f"{v} {cur}" for cur, v in values.items()) or "\u2013"


def _round_rows(report: dict[str, Any]) -> list[list[object]]:
    """The timeline table's rows, shared by the Markdown and the HTML report."""
    return [
        [
            r["round"],
            r["kind"],
            r["status"],
            _rel(report, r["created_at"]),
            _rel(report, r["due_by"]),
            _rel(report, r["promised_next_by"]),
            r["owed"],
            r["sent"],
            r["failed"],
            r["pending"],
            r["on_time"],
            _rel(report, r["first_sent_at"]),
            _rel(report, r["last_sent_at"]),
        ]
        for r in report["timeline"]["rounds"]
    ]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (user strings escaped so they render as plain text)."""
    inc = report["incident"]
    out: list[str] = [f"# Post-incident report: {_md(inc['ref'])} \u2014 {_md(inc['title'])}", ""]
    out += [
        f"- **Severity:** {_md(inc['severity'])}",
        f"- **Status:** {_md(inc['status'])}",
        f"- **Components:** {_md(', '.join(inc['components'])) or '–'}",
        f"- **Regions:** {_md(', '.join(inc['regions'])) or '–'}",
        f"- **Commander:** {_md(inc['commander']) or '–'}",
        f"- **Started:** {inc['started_at']}",
        f"- **Declared:** {inc['declared_at']} ({_rel(report, inc['declared_at'])})",
        f"- **Resolved:** {inc['resolved_at'] or 'not yet'}",
        f"- **Duration:** {inc['duration'] or 'ongoing'}",
        f"- **Update cadence:** every {inc['cadence']}; acknowledgement within {inc['ack_within']}",
        f"- **Report generated:** {report['generated_at']}",
        "",
        "## Timeline",
        "",
        "Times are offsets from the start of the incident.",
        "",
    ]
    out += _md_table(list(_ROUND_HEAD), _round_rows(report))
    for r in report["timeline"]["rounds"]:
        if r["message"]:
            out += ["", f"Round {r['round']} ({r['kind']}) message:", ""]
            out += _md_block(r["message"])
    if report["timeline"]["events"]:
        out += ["", "### Events", ""]
        out += _md_table(
            ["Time", "At", "Kind", "Detail"],
            [
                [_rel(report, e["at"]), e["at"], _md(e["kind"]), _md(e["detail"])]
                for e in report["timeline"]["events"]
            ],
        )
    aud = report["audience"]
    out += ["", "## Audience", "", f"{aud['customers']} customers.", ""]
    out += _md_table(["Tier", "Customers"], [[_md(k), v] for k, v in aud["by_tier"].items()])
    out += [""]
    out += _md_table(["Channel", "Recipients"], [[_md(k), v] for k, v in aud["by_channel"].items()])
    if aud["skipped"]:
        skipped = ", ".join(f"{_md(k)} ({v})" for k, v in aud["skipped"].items())
        out += ["", f"Not reachable on any channel: {skipped}."]
    fn = report["first_notice"]
    out += [
        "",
        "## Time to first notice",
        "",
        f"Acknowledgement promised within {_human(fn['ack_within_seconds'])} (by {fn['ack_due']}).",
        "",
        f"- **Customers owed an acknowledgement:** {fn['owed']}",
        f"- **Median:** {fn['median']}",
        f"- **p95:** {fn['p95']}",
        f"- **Max:** {fn['max']}",
        f"- **Within {_human(fn['ack_within_seconds'])}:** {fn['within']}",
        f"- **Late:** {fn['late']}" + _ids(fn["late_customers"]),
        f"- **Never:** {fn['never']}" + _ids(fn["never_customers"]),
    ]
    prom = report["promises"]
    ov = prom["overall"]
    out += [
        "",
        "## Promises kept",
        "",
        f"**Overall: {ov['on_time']}/{ov['owed']} ({_pct(ov['ratio'])})**",
        "",
    ]
    out += _md_table(
        ["#", "Kind", "Due by", "On time", "Owed", "Kept"],
        [
            [
                p["round"],
                p["kind"],
                p["due_by"] or "no promise",
                p["on_time"],
                p["owed"],
                _pct(p["ratio"]) if p["counted"] else "not counted",
            ]
            for p in prom["per_round"]
        ],
    )
    dl = report["deliveries"]
    statuses = sorted({s for v in dl["by_channel"].values() for s in v})
    out += [
        "",
        "## Deliveries",
        "",
        f"{dl['total']} deliveries: {dl['sent']} sent, {dl['failed']} failed, "
        f"{dl['dead']} dead (retries exhausted), {dl['pending']} pending; "
        f"{dl['retried']} needed more than one attempt.",
        "",
    ]
    out += _md_table(
        ["Channel", *statuses],
        [[_md(ch), *(v.get(s, 0) for s in statuses)] for ch, v in dl["by_channel"].items()],
    )
    if dl["top_errors"]:
        out += ["", "Top errors:", ""]
        out += [f"- {e['count']} \u00d7 {_md(e['error'])}" for e in dl["top_errors"]]
    cr = report["credits"]
    out += ["", "## Credits", ""]
    if cr["count"]:
        out += [
            f"- **Total:** {_money_map(cr['total'])}",
            f"- **Customers credited:** {cr['customers_credited']} of {cr['count']}",
            "- **Status:** " + ", ".join(f"{_md(k)} {v}" for k, v in cr["by_status"].items()),
            "",
            "By rule (rule lines before the cap and minimum):",
            "",
        ]
        out += _md_table(
            ["Rule", "Amount"], [[_md(k), _money_map(v)] for k, v in cr["by_rule"].items()]
        )
        out += ["", "By tier:", ""]
        out += _md_table(
            ["Tier", "Amount"], [[_md(k), _money_map(v)] for k, v in cr["by_tier"].items()]
        )
        if cr["goodwill"]["count"]:
            out += ["", f"Goodwill offered to {cr['goodwill']['count']} customers:", ""]
            out += [f"- {v} \u00d7 {_md(k)}" for k, v in cr["goodwill"]["offers"].items()]
    else:
        out += ["No credits recorded."]
    nps = report["nps"]
    out += ["", "## Customer feedback (NPS)", ""]
    if nps["responses"]:
        out += [
            f"- **NPS:** {nps['nps']}",
            f"- **Responses:** {nps['responses']}",
            f"- **Promoters (9\u201310):** {nps['promoters']}",
            f"- **Passives (7\u20138):** {nps['passives']}",
            f"- **Detractors (0\u20136):** {nps['detractors']}",
        ]
        if nps["comments"]:
            out += ["", "Comments:", ""]
            out += [
                f"- {_md(c['customer'])} ({c['score']}): {_md(c['comment'])}"
                for c in nps["comments"]
            ]
    else:
        out += ["No feedback yet."]
    kb = report["kb_article"]
    out += [
        "",
        "## Knowledge-base article (draft)",
        "",
        f"### {_md(kb['title'])}",
        "",
        "**Summary.** " + _md(kb["summary"]),
        "",
        "**Impact.** " + _md(kb["impact"]),
        "",
        "**Cause and fix.**",
        "",
    ]
    out += _md_block(kb["cause_and_fix"]) if kb["cause_and_fix"] else ["_Not resolved yet._"]
    if kb["cause_notes"]:
        out += ["", "When the cause was identified:", ""]
        out += [f"- {_md(n)}" for n in kb["cause_notes"]]
    out += [
        "",
        "**Prevention.** " + _md(kb["prevention"]),
        "",
        "**Customer communication.** " + _md(kb["customer_communication"]),
        "",
    ]
    return "\n".join(out)


def _ids(ids: list[str], limit: int = 20) -> str:
    if not ids:
        return ""
    shown = ", ".join(_md(i) for i in ids[:limit])
    more = ", \u2026" if len(ids) > limit else ""
    return f" ({shown}{more})"


# --- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
max-width:1060px;margin:2rem auto;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;
margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.n{text-align:right}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem}dl.facts dt{font-weight:600}
dl.facts dd{margin:0}blockquote{border-left:4px solid #d0d7de;margin:.4rem 0;padding:.2rem .8rem;
white-space:pre-wrap;color:#444}.muted{color:#656d76}.todo{background:#fff8c5;padding:.4rem .6rem}
.chart{overflow-x:auto}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _h_table(head: list[str], rows: list[list[object]], numeric: Iterable[int] = ()) -> str:
    nums = set(numeric)
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(c)}</td>' if i in nums else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _facts(pairs: list[tuple[str, object]]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def _tick_step(span: float) -> float:
    for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if span / step <= 10:
            return float(step)
    return float(math.ceil(span / 10 / 86400) * 86400)


_COLOURS = {
    "promise": "#0969da",
    "ontime": "#2da44e",
    "late": "#cf222e",
    "neutral": "#8c959f",
    "grid": "#d0d7de",
    "created": "#656d76",
    "text": "#1f2328",
}


def _promise_mark(x: float, mid: float, size: float = 8) -> str:
    return (
        f'<path class="promise" fill="{_COLOURS["promise"]}" '
        f'd="M{x},{mid - size} l{size * 0.75},{size} l{-size * 0.75},{size} '
        f'l{-size * 0.75},{-size} z"/>'
    )


def _bar(cls: str, x1: float, x2: float, mid: float) -> str:
    return (
        f'<rect class="sent {cls}" fill="{_COLOURS[cls]}" x="{x1}" y="{mid - 7}" '
        f'width="{max(3.0, round(x2 - x1, 1))}" height="14" rx="2"/>'
    )


def _svg_chart(report: dict[str, Any]) -> str:
    """Promised versus actual notice times per round, on an axis of time since the start.

    One ``<g class="round">`` per round: a diamond at the promise it had to keep (``due_by``),
    a bar from its first to its last delivery (green up to the promise, red after it; grey when
    the round kept no promise) and a small circle when the round was created. Styled with
    presentation attributes, so the chart looks the same when copied out of the page.
    """
    start = _parse_iso(report["incident"]["started_at"])
    assert start is not None

    def rel(ts: str | None) -> float | None:
        at = _parse_iso(ts)
        return None if at is None else (at - start).total_seconds()

    rows = [
        {
            "r": r,
            "created": rel(r["created_at"]),
            "due": rel(r["due_by"]),
            "first": rel(r["first_sent_at"]),
            "last": rel(r["last_sent_at"]),
        }
        for r in report["timeline"]["rounds"]
    ]
    values = [v for row in rows for k, v in row.items() if k != "r" and v is not None]
    resolved = rel(report["incident"]["resolved_at"])
    if resolved is not None:
        values.append(resolved)
    span = max([60.0, *values])
    step = _tick_step(span)
    span = math.ceil(span / step) * step
    left, right, top, row_h, plot_w = 190, 40, 44, 34, 660
    width = left + plot_w + right
    axis_y = top + row_h * max(1, len(rows))
    height = axis_y + 46
    c = _COLOURS

    def x(secs: float) -> float:
        return float(round(left + max(0.0, secs) / span * plot_w, 1))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="12" '
        f'fill="{c["text"]}" aria-label="Promised versus actual notice times per round">',
        "<title>Promised versus actual notice times per round</title>",
    ]
    tick = 0.0
    while tick <= span + 0.001:
        tx = x(tick)
        parts.append(
            f'<line class="grid" stroke="{c["grid"]}" x1="{tx}" y1="{top - 6}" '
            f'x2="{tx}" y2="{axis_y}"/>'
            f'<text x="{tx}" y="{axis_y + 16}" text-anchor="middle">+{_e(_human(tick))}</text>'
        )
        tick += step
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{axis_y + 36}" text-anchor="middle">'
        "time since the incident started</text>"
    )
    for i, row in enumerate(rows):
        r = row["r"]
        mid = top + i * row_h + row_h / 2
        label = f"#{r['round']} {r['kind']}"
        tip = [label]
        if r["due_by"]:
            tip.append(f"promised by {r['due_by']}")
        if r["first_sent_at"]:
            tip.append(f"sent {r['first_sent_at']} to {r['last_sent_at']}")
        tip.append(f"{r['on_time']}/{r['owed']} on time")
        parts.append(
            f'<g class="round" data-round="{_e(r["round"])}" data-kind="{_e(r["kind"])}">'
            f"<title>{_e('; '.join(tip))}</title>"
            f'<text x="{left - 10}" y="{mid + 4}" text-anchor="end">{_e(label)}</text>'
        )
        if row["created"] is not None:
            parts.append(
                f'<circle class="created" fill="none" stroke="{c["created"]}" '
                f'stroke-width="1.5" cx="{x(row["created"])}" cy="{mid}" r="3"/>'
            )
        first, last, due = row["first"], row["last"], row["due"]
        if first is not None and last is not None:
            if due is None:
                parts.append(_bar("neutral", x(first), x(last), mid))
            else:
                if first <= due:
                    parts.append(_bar("ontime", x(first), x(min(last, due)), mid))
                if last > due:
                    parts.append(_bar("late", x(max(first, due)), x(last), mid))
        else:
            at = x(row["created"]) + 8 if row["created"] is not None else left + 6
            parts.append(f'<text x="{at}" y="{mid + 4}" fill="{c["created"]}">nothing sent</text>')
        if due is not None:
            dx = x(due)
            parts.append(
                f'<line class="promise-line" stroke="{c["promise"]}" stroke-dasharray="3 3" '
                f'x1="{dx}" y1="{mid - 14}" x2="{dx}" y2="{mid + 14}"/>' + _promise_mark(dx, mid)
            )
        parts.append("</g>")
    legend = [
        (_promise_mark(0, 0, 6), "promised by"),
        (f'<rect fill="{c["ontime"]}" x="-9" y="-5" width="18" height="10"/>', "sent on time"),
        (f'<rect fill="{c["late"]}" x="-9" y="-5" width="18" height="10"/>', "sent late"),
        (
            f'<circle fill="none" stroke="{c["created"]}" stroke-width="1.5" r="3"/>',
            "round created",
        ),
    ]
    parts.append('<g class="legend">')
    lx = float(left)
    for mark, text in legend:
        parts.append(
            f'<g transform="translate({lx},16)">{mark}<text x="14" y="4">{_e(text)}</text></g>'
        )
        lx += 30 + 7 * len(text)
    parts.append("</g></svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page: inline CSS and SVG, no scripts, every user string escaped."""
    inc = report["incident"]
    title = f"Post-incident report: {inc['ref']} \u2014 {inc['title']}"
    body: list[str] = [f"<h1>{_e(title)}</h1>"]
    body.append(
        _facts(
            [
                ("Severity", inc["severity"]),
                ("Status", inc["status"]),
                ("Components", ", ".join(inc["components"]) or "\u2013"),
                ("Regions", ", ".join(inc["regions"]) or "\u2013"),
                ("Commander", inc["commander"] or "\u2013"),
                ("Started", inc["started_at"]),
                ("Declared", f"{inc['declared_at']} ({_rel(report, inc['declared_at'])})"),
                ("Resolved", inc["resolved_at"] or "not yet"),
                ("Duration", inc["duration"] or "ongoing"),
                ("Update cadence", f"every {inc['cadence']}"),
                ("Acknowledgement within", inc["ack_within"]),
                ("Report generated", report["generated_at"]),
            ]
        )
    )
    body.append("<h2>Promised versus actual notice times</h2>")
    body.append(f'<div class="chart">{_svg_chart(report)}</div>')
    body.append(
        '<p class="muted">Each row is a round: the diamond is the time it had promised to '
        "reach customers by; the bar runs from its first to its last delivery.</p>"
    )
    body.append("<h2>Timeline</h2>")
    rounds = report["timeline"]["rounds"]
    body.append(
        _h_table(
            list(_ROUND_HEAD),
            _round_rows(report),
            numeric=range(6, 11),
        )
    )
    for r in rounds:
        if r["message"]:
            body.append(
                f"<p>Round {_e(r['round'])} ({_e(r['kind'])}):</p>"
                f"<blockquote>{_e(r['message'])}</blockquote>"
            )
    events = report["timeline"]["events"]
    if events:
        body.append("<h3>Events</h3>")
        body.append(
            _h_table(
                ["Time", "At", "Kind", "Detail"],
                [[_rel(report, e["at"]), e["at"], e["kind"], e["detail"]] for e in events],
            )
        )
    aud = report["audience"]
    body.append(f"<h2>Audience</h2><p>{_e(aud['customers'])} customers.</p>")
    body.append(_h_table(["Tier", "Customers"], list(map(list, aud["by_tier"].items())), [1]))
    body.append(
        _h_table(["Channel", "Recipients"], list(map(list, aud["by_channel"].items())), [1])
    )
    if aud["skipped"]:
        skipped = ", ".join(f"{k} ({v})" for k, v in aud["skipped"].items())
        body.append(f"<p>Not reachable on any channel: {_e(skipped)}.</p>")
    fn = report["first_notice"]
    body.append("<h2>Time to first notice</h2>")
    body.append(
        _facts(
            [
                ("Promised within", f"{_human(fn['ack_within_seconds'])} (by {fn['ack_due']})"),
                ("Customers owed an acknowledgement", fn["owed"]),
                ("Median", fn["median"]),
                ("p95", fn["p95"]),
                ("Max", fn["max"]),
                ("Within", fn["within"]),
                ("Late", f"{fn['late']} {', '.join(fn['late_customers'])}".strip()),
                ("Never", f"{fn['never']} {', '.join(fn['never_customers'])}".strip()),
            ]
        )
    )
    prom = report["promises"]
    ov = prom["overall"]
    body.append(
        "<h2>Promises kept</h2>"
        f"<p><strong>Overall: {_e(ov['on_time'])}/{_e(ov['owed'])} "
        f"({_e(_pct(ov['ratio']))})</strong></p>"
    )
    body.append(
        _h_table(
            ["#", "Kind", "Due by", "On time", "Owed", "Kept"],
            [
                [
                    p["round"],
                    p["kind"],
                    p["due_by"] or "no promise",
                    p["on_time"],
                    p["owed"],
                    _pct(p["ratio"]) if p["counted"] else "not counted",
                ]
                for p in prom["per_round"]
            ],
            [3, 4],
        )
    )
    dl = report["deliveries"]
    statuses = sorted({s for v in dl["by_channel"].values() for s in v})
    body.append(
        "<h2>Deliveries</h2>"
        f"<p>{_e(dl['total'])} deliveries: {_e(dl['sent'])} sent, {_e(dl['failed'])} failed, "
        f"{_e(dl['dead'])} dead (retries exhausted), {_e(dl['pending'])} pending; "
        f"{_e(dl['retried'])} needed more than one attempt.</p>"
    )
    body.append(
        _h_table(
            ["Channel", *statuses],
            [[ch, *(v.get(s, 0) for s in statuses)] for ch, v in dl["by_channel"].items()],
            range(1, len(statuses) + 1),
        )
    )
    if dl["top_errors"]:
        body.append(
            _h_table(["Error", "Count"], [[e["error"], e["count"]] for e in dl["top_errors"]], [1])
        )
    cr = report["credits"]
    body.append("<h2>Credits</h2>")
    if cr["count"]:
        body.append(
            _facts(
                [
                    ("Total", _money_map(cr["total"])),
                    ("Customers credited", f"{cr['customers_credited']} of {cr['count']}"),
                    ("Status", ", ".join(f"{k} {v}" for k, v in cr["by_status"].items())),
                ]
            )
        )
        body.append("<p>By rule (rule lines before the cap and minimum):</p>")
        body.append(
            _h_table(["Rule", "Amount"], [[k, _money_map(v)] for k, v in cr["by_rule"].items()])
        )
        body.append("<p>By tier:</p>")
        body.append(
            _h_table(["Tier", "Amount"], [[k, _money_map(v)] for k, v in cr["by_tier"].items()])
        )
        if cr["goodwill"]["count"]:
            body.append(
                _h_table(
                    ["Goodwill offer", "Customers"],
                    list(map(list, cr["goodwill"]["offers"].items())),
                    [1],
                )
            )
    else:
        body.append("<p>No credits recorded.</p>")
    nps = report["nps"]
    body.append("<h2>Customer feedback (NPS)</h2>")
    if nps["responses"]:
        body.append(
            _facts(
                [
                    ("NPS", nps["nps"]),
                    ("Responses", nps["responses"]),
                    ("Promoters (9\u201310)", nps["promoters"]),
                    ("Passives (7\u20138)", nps["passives"]),
                    ("Detractors (0\u20136)", nps["detractors"]),
                ]
            )
        )
        if nps["comments"]:
            body.append(
                _h_table(
                    ["Customer", "Score", "Comment"],
                    [[c["customer"], c["score"], c["comment"]] for c in nps["comments"]],
                    [1],
                )
            )
    else:
        body.append("<p>No feedback yet.</p>")
    kb = report["kb_article"]
    body.append("<h2>Knowledge-base article (draft)</h2>")
    body.append(f"<h3>{_e(kb['title'])}</h3>")
    body.append(f"<p><strong>Summary.</strong> {_e(kb['summary'])}</p>")
    body.append(f"<p><strong>Impact.</strong> {_e(kb['impact'])}</p>")
    body.append("<p><strong>Cause and fix.</strong></p>")
    body.append(
        f"<blockquote>{_e(kb['cause_and_fix'])}</blockquote>"
        if kb["cause_and_fix"]
        else '<p class="muted">Not resolved yet.</p>'
    )
    if kb["cause_notes"]:
        notes = "".join(f"<li>{_e(n)}</li>" for n in kb["cause_notes"])
        body.append(f"<p>When the cause was identified:</p><ul>{notes}</ul>")
    body.append(
        f'<p><strong>Prevention.</strong> <span class="todo">{_e(kb["prevention"])}</span></p>'
    )
    body.append(
        f"<p><strong>Customer communication.</strong> {_e(kb['customer_communication'])}</p>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# --- convenience -------------------------------------------------------------------------------


def write_report(app: App, incident_id: int, fmt: str = "md", output: Path | None = None) -> str:
    """Build and render the report; write it to ``output`` when given. Returns the text."""
    if fmt not in FORMATS:
        raise InputError("unknown report format; use md or html", field="format", value=fmt)
    report = build_report(app, incident_id)
    text = render_markdown(report) if fmt == "md" else render_html(report)
    if output is not None:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot write the report: {exc.strerror or exc}", field="output", value=str(output)
            ) from None
    return text
