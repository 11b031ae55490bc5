"""The report as Markdown. Every string that came from a user is made inert: no HTML, no table
breaks, no emphasis, one line."""

from __future__ import annotations

from collections.abc import Sequence

from outagecomms.recovery.report import told_rows as rows
from outagecomms.recovery.report.model import (
    Report,
    ack_within,
    adjustment_line,
    duration,
    no_duration,
    unresolved,
)
from outagecomms.recovery.report.tables import (
    MAINTENANCE_TITLE,
    PROMISE_HEAD,
    ROUND_HEAD,
    maintenance_facts,
    nps_facts,
    promise_rows,
    round_rows,
)
from outagecomms.recovery.report.units import DASH, human, money_map, offset, pct
from outagecomms.terminal import terminal_safe
from outagecomms.values import iso

__all__ = ["render_markdown"]

_MD_SPECIAL = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "`": "\\`", "*": "\\*", "_": "\\_"}
)


def _md(value: object) -> str:
    """User text made inert in Markdown: no HTML, no table breaks, no emphasis, no control
    characters (the file is read with ``cat`` too); one line."""
    text = "" if value is None else str(value)
    return terminal_safe(" ".join(text.split())).translate(_MD_SPECIAL)


def _md_block(value: str) -> list[str]:
    lines = [_md(line) for line in value.splitlines()] or [""]
    return ["> " + line if line else ">" for line in lines]


def _md_table(head: Sequence[str], rows: list[list[object]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _bullets(facts: Sequence[tuple[str, object]]) -> list[str]:
    """``- **Name:** value`` lines (the values already escaped where they came from users)."""
    return [f"- **{name}:** {value}" for name, value in facts]


def _ids(ids: Sequence[str], limit: int = 20) -> str:
    if not ids:
        return ""
    shown = ", ".join(_md(i) for i in ids[:limit])
    more = ", \u2026" if len(ids) > limit else ""
    return f" ({shown}{more})"


def render_markdown(report: Report) -> str:
    """The report as Markdown (user strings escaped so they render as plain text)."""
    inc = report.incident
    start = inc.started_at
    span = duration(inc)
    out: list[str] = [f"# Post-incident report: {_md(inc.ref)} \u2014 {_md(inc.title)}", ""]
    cadence = human(inc.update_every.total_seconds())
    out += _bullets(
        [
            ("Severity", _md(inc.severity)),
            ("Status", _md(inc.status.value)),
            ("Components", _md(", ".join(inc.components)) or DASH),
            ("Regions", _md(", ".join(inc.regions)) or DASH),
            ("Commander", _md(inc.commander) or DASH),
            ("Started", iso(inc.started_at)),
            ("Declared", f"{iso(inc.declared_at)} ({offset(start, inc.declared_at)})"),
            ("Resolved", iso(inc.resolved_at) or unresolved(inc)),
            ("Duration", no_duration(inc) if span is None else human(span.total_seconds())),
            (
                "Update cadence",
                f"every {cadence}; acknowledgement within {human(ack_within(inc).total_seconds())}",
            ),
            ("Report generated", iso(report.generated_at)),
        ]
    )
    out += [
        "",
        "## Timeline",
        "",
        "Times are offsets from the start of the incident.",
        "",
    ]
    out += _md_table(ROUND_HEAD, round_rows(report))
    for r in report.timeline.rounds:
        if r.stats.round.message:
            out += ["", f"Round {r.seq} ({r.kind.value}) message:", ""]
            out += _md_block(r.stats.round.message)
    if report.timeline.events:
        out += ["", "### Events", ""]
        out += _md_table(
            ["Time", "At", "Kind", "Detail"],
            [
                [offset(start, e.at), iso(e.at), _md(e.kind), _md(e.detail)]
                for e in report.timeline.events
            ],
        )
    aud = report.audience
    out += ["", "## Audience", "", f"{aud.customers} customers.", ""]
    out += _md_table(["Tier", "Customers"], [[_md(k), v] for k, v in aud.by_tier.items()])
    out += [""]
    out += _md_table(["Language", "Customers"], [[_md(k), v] for k, v in aud.by_language.items()])
    out += [""]
    out += _md_table(["Channel", "Recipients"], [[_md(k), v] for k, v in aud.by_channel.items()])
    if aud.skipped:
        skipped = ", ".join(f"{_md(k)} ({v})" for k, v in aud.skipped.items())
        out += ["", f"Not reachable on any channel: {skipped}."]
    fn = report.first_notice
    within = human(fn.ack_within.total_seconds())
    out += [
        "",
        "## Time to first notice",
        "",
        f"Acknowledgement promised within {within} (by {iso(fn.ack_due)}).",
        "",
    ]
    out += _bullets(
        [
            ("Customers owed an acknowledgement", fn.owed),
            ("Median", human(fn.median)),
            ("p95", human(fn.p95)),
            ("Max", human(fn.max)),
            (f"Within {within}", fn.within),
            ("Late", f"{fn.late}{_ids(fn.late_customers)}"),
            ("Never", f"{fn.never}{_ids(fn.never_customers)}"),
        ]
    )
    ov = report.promises.overall
    out += [
        "",
        "## Promises kept",
        "",
        f"**Overall: {ov.on_time}/{ov.owed} ({pct(ov.ratio)})**",
        "",
    ]
    out += _md_table(PROMISE_HEAD, promise_rows(report))
    dl = report.deliveries
    statuses = sorted({s for v in dl.by_channel.values() for s in v})
    out += [
        "",
        "## Deliveries",
        "",
        f"{dl.total} deliveries: {dl.sent} sent, {dl.failed} failed, "
        f"{dl.dead} dead (retries exhausted), {dl.pending} pending; "
        f"{dl.retried} needed more than one attempt.",
        "",
    ]
    out += _md_table(
        ["Channel", *statuses],
        [[_md(ch), *(v.get(s, 0) for s in statuses)] for ch, v in dl.by_channel.items()],
    )
    if dl.top_errors:
        out += ["", "Top errors:", ""]
        out += [f"- {e.count} \u00d7 {_md(e.error)}" for e in dl.top_errors]
    cr = report.credits
    out += ["", "## Credits", ""]
    if cr.count:
        out += _bullets(
            [
                ("Total", money_map(cr.total)),
                ("Customers credited", f"{cr.customers_credited} of {cr.count}"),
                ("Status", ", ".join(f"{_md(k)} {v}" for k, v in cr.by_status.items())),
            ]
        )
        out += [
            "",
            "By rule (rule lines before the cap and minimum):",
            "",
        ]
        out += _md_table(
            ["Rule", "Amount"], [[_md(k), money_map(v)] for k, v in cr.by_rule.items()]
        )
        out += ["", "By tier:", ""]
        out += _md_table(
            ["Tier", "Amount"], [[_md(k), money_map(v)] for k, v in cr.by_tier.items()]
        )
        if cr.goodwill_count:
            out += ["", f"Goodwill offered to {cr.goodwill_count} customers:", ""]
            out += [f"- {v} \u00d7 {_md(k)}" for k, v in cr.goodwill_offers.items()]
        decided = [c for c in cr.customers if c.adjusted_by]
        if decided:
            out += ["", "Set by a person (`credits --adjust`):", ""]
            out += [f"- {_md(adjustment_line(c))}" for c in decided]
    else:
        out += ["No credits recorded."]
    if report.maintenance is not None:
        out += ["", f"## {MAINTENANCE_TITLE}", ""]
        out += _bullets([(k, _md(str(v))) for k, v in maintenance_facts(report.maintenance)])
    nps = report.nps
    out += ["", "## Customer feedback (NPS)", ""]
    if nps.responses:
        out += _bullets(nps_facts(nps))
        if nps.comments:
            out += ["", "Comments:", ""]
            out += [f"- {_md(c.customer)} ({c.score}): {_md(c.comment)}" for c in nps.comments]
    else:
        out += ["No feedback yet."]
    out += _told(report)
    kb = report.kb_article
    out += [
        "",
        "## Knowledge-base article (draft)",
        "",
        f"### {_md(kb.title)}",
        "",
        "**Summary.** " + _md(kb.summary),
        "",
        "**Impact.** " + _md(kb.impact),
        "",
        "**Cause and fix.**",
        "",
    ]
    out += _md_block(kb.cause_and_fix) if kb.cause_and_fix else ["_Not resolved yet._"]
    if kb.cause_notes:
        out += ["", "When the cause was identified:", ""]
        out += [f"- {_md(n)}" for n in kb.cause_notes]
    out += [
        "",
        "**Prevention.** " + _md(kb.prevention),
        "",
        "**Customer communication.** " + _md(kb.customer_communication),
        "",
    ]
    return "\n".join(out)


def _told(report: Report) -> list[str]:
    """The "What customers told us" section."""
    told, start = report.customers_told, report.incident.started_at
    out = ["", f"## {rows.TITLE}", ""]
    if not told.messages:
        return [*out, rows.NONE]
    out += [rows.summary(told), "", "### Sentiment per round", ""]
    out += _md_table(rows.MOOD_HEAD, [[_md(c) for c in r] for r in rows.mood_rows(told)])
    out += ["", "### Escalated replies", ""]
    if told.escalated:
        out += _md_table(
            rows.ESCALATED_HEAD, [[_md(c) for c in r] for r in rows.escalated_rows(told, start)]
        )
    else:
        out += ["None was escalated."]
    out += ["", "### Suggestions to pass on", "", rows.SUGGESTION_NOTE, ""]
    if told.suggestions:
        out += _md_table(
            rows.SUGGESTION_HEAD,
            [[_md(c) for c in r] for r in rows.suggestion_rows(told, start)],
        )
    else:
        out += ["No suggestions."]
    out += ["", "### Bounced contacts to fix", ""]
    if told.bounced_contacts:
        out += _md_table(rows.BOUNCE_HEAD, [[_md(c) for c in r] for r in rows.bounce_rows(told)])
    else:
        out += ["No contact bounced for good."]
    return out
