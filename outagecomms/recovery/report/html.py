"""The report as a self-contained HTML page: inline CSS and an inline SVG chart, no scripts,
no network; every string that came from a user is escaped.

Written as Python rather than a Jinja template: the page is tables and definition lists built
from the same rows as the Markdown (``tables``), and escaping each cell in one helper is as
safe as autoescape without a second template language to keep in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from outagecomms.recovery.report import told_rows as rows
from outagecomms.recovery.report.chart import svg_chart
from outagecomms.recovery.report.model import (
    Report,
    ack_within,
    adjustment_line,
    duration,
    no_duration,
    unresolved,
)
from outagecomms.recovery.report.mood_chart import svg_mood
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
from outagecomms.recovery.report.units import escape_html as _e
from outagecomms.values import iso

__all__ = ["render_html"]

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


def _h_table(head: Sequence[str], rows: list[list[object]], numeric: Iterable[int] = ()) -> str:
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


def render_html(report: Report) -> str:
    """A self-contained HTML page: inline CSS and SVG, no scripts, every user string escaped."""
    inc = report.incident
    start = inc.started_at
    span = duration(inc)
    title = f"Post-incident report: {inc.ref} \u2014 {inc.title}"
    body: list[str] = [f"<h1>{_e(title)}</h1>"]
    body.append(
        _facts(
            [
                ("Severity", inc.severity),
                ("Status", inc.status.value),
                ("Components", ", ".join(inc.components) or DASH),
                ("Regions", ", ".join(inc.regions) or DASH),
                ("Commander", inc.commander or DASH),
                ("Started", iso(inc.started_at)),
                ("Declared", f"{iso(inc.declared_at)} ({offset(start, inc.declared_at)})"),
                ("Resolved", iso(inc.resolved_at) or unresolved(inc)),
                ("Duration", no_duration(inc) if span is None else human(span.total_seconds())),
                ("Update cadence", f"every {human(inc.update_every.total_seconds())}"),
                ("Acknowledgement within", human(ack_within(inc).total_seconds())),
                ("Report generated", iso(report.generated_at)),
            ]
        )
    )
    body.append("<h2>Promised versus actual notice times</h2>")
    body.append(f'<div class="chart">{svg_chart(report.chart)}</div>')
    body.append(
        '<p class="muted">Each row is a round: the diamond is the time it had promised to '
        "reach customers by; the bar runs from its first to its last delivery.</p>"
    )
    body.append("<h2>Timeline</h2>")
    body.append(_h_table(ROUND_HEAD, round_rows(report), numeric=range(6, 11)))
    for r in report.timeline.rounds:
        if r.stats.round.message:
            body.append(
                f"<p>Round {_e(r.seq)} ({_e(r.kind.value)}):</p>"
                f"<blockquote>{_e(r.stats.round.message)}</blockquote>"
            )
    events = report.timeline.events
    if events:
        body.append("<h3>Events</h3>")
        body.append(
            _h_table(
                ["Time", "At", "Kind", "Detail"],
                [[offset(start, e.at), iso(e.at), e.kind, e.detail] for e in events],
            )
        )
    aud = report.audience
    body.append(f"<h2>Audience</h2><p>{_e(aud.customers)} customers.</p>")
    body.append(_h_table(["Tier", "Customers"], [[k, v] for k, v in aud.by_tier.items()], [1]))
    body.append(
        _h_table(["Language", "Customers"], [[k, v] for k, v in aud.by_language.items()], [1])
    )
    body.append(
        _h_table(["Channel", "Recipients"], [[k, v] for k, v in aud.by_channel.items()], [1])
    )
    if aud.skipped:
        skipped = ", ".join(f"{k} ({v})" for k, v in aud.skipped.items())
        body.append(f"<p>Not reachable on any channel: {_e(skipped)}.</p>")
    fn = report.first_notice
    body.append("<h2>Time to first notice</h2>")
    body.append(
        _facts(
            [
                (
                    "Promised within",
                    f"{human(fn.ack_within.total_seconds())} (by {iso(fn.ack_due)})",
                ),
                ("Customers owed an acknowledgement", fn.owed),
                ("Median", human(fn.median)),
                ("p95", human(fn.p95)),
                ("Max", human(fn.max)),
                ("Within", fn.within),
                ("Late", f"{fn.late} {', '.join(fn.late_customers)}".strip()),
                ("Never", f"{fn.never} {', '.join(fn.never_customers)}".strip()),
            ]
        )
    )
    ov = report.promises.overall
    body.append(
        "<h2>Promises kept</h2>"
        f"<p><strong>Overall: {_e(ov.on_time)}/{_e(ov.owed)} "
        f"({_e(pct(ov.ratio))})</strong></p>"
    )
    body.append(_h_table(PROMISE_HEAD, promise_rows(report), [3, 4]))
    dl = report.deliveries
    statuses = sorted({s for v in dl.by_channel.values() for s in v})
    body.append(
        "<h2>Deliveries</h2>"
        f"<p>{_e(dl.total)} deliveries: {_e(dl.sent)} sent, {_e(dl.failed)} failed, "
        f"{_e(dl.dead)} dead (retries exhausted), {_e(dl.pending)} pending; "
        f"{_e(dl.retried)} needed more than one attempt.</p>"
    )
    body.append(
        _h_table(
            ["Channel", *statuses],
            [[ch, *(v.get(s, 0) for s in statuses)] for ch, v in dl.by_channel.items()],
            range(1, len(statuses) + 1),
        )
    )
    if dl.top_errors:
        body.append(_h_table(["Error", "Count"], [[e.error, e.count] for e in dl.top_errors], [1]))
    cr = report.credits
    body.append("<h2>Credits</h2>")
    if cr.count:
        body.append(
            _facts(
                [
                    ("Total", money_map(cr.total)),
                    ("Customers credited", f"{cr.customers_credited} of {cr.count}"),
                    ("Status", ", ".join(f"{k} {v}" for k, v in cr.by_status.items())),
                ]
            )
        )
        body.append("<p>By rule (rule lines before the cap and minimum):</p>")
        body.append(
            _h_table(["Rule", "Amount"], [[k, money_map(v)] for k, v in cr.by_rule.items()])
        )
        body.append("<p>By tier:</p>")
        body.append(
            _h_table(["Tier", "Amount"], [[k, money_map(v)] for k, v in cr.by_tier.items()])
        )
        if cr.goodwill_count:
            body.append(
                _h_table(
                    ["Goodwill offer", "Customers"],
                    [[k, v] for k, v in cr.goodwill_offers.items()],
                    [1],
                )
            )
        decided = [c for c in cr.customers if c.adjusted_by]
        if decided:
            body.append("<p>Set by a person (<code>credits --adjust</code>):</p>")
            body.append(
                "<ul>" + "".join(f"<li>{_e(adjustment_line(c))}</li>" for c in decided) + "</ul>"
            )
    else:
        body.append("<p>No credits recorded.</p>")
    if report.maintenance is not None:
        body.append(f'<h2 id="maintenance">{_e(MAINTENANCE_TITLE)}</h2>')
        body.append(_facts(maintenance_facts(report.maintenance)))
    nps = report.nps
    body.append("<h2>Customer feedback (NPS)</h2>")
    if nps.responses:
        body.append(_facts(nps_facts(nps)))
        if nps.comments:
            body.append(
                _h_table(
                    ["Customer", "Score", "Comment"],
                    [[c.customer, c.score, c.comment] for c in nps.comments],
                    [1],
                )
            )
    else:
        body.append("<p>No feedback yet.</p>")
    body += _told(report)
    kb = report.kb_article
    body.append("<h2>Knowledge-base article (draft)</h2>")
    body.append(f"<h3>{_e(kb.title)}</h3>")
    body.append(f"<p><strong>Summary.</strong> {_e(kb.summary)}</p>")
    body.append(f"<p><strong>Impact.</strong> {_e(kb.impact)}</p>")
    body.append("<p><strong>Cause and fix.</strong></p>")
    body.append(
        f"<blockquote>{_e(kb.cause_and_fix)}</blockquote>"
        if kb.cause_and_fix
        else '<p class="muted">Not resolved yet.</p>'
    )
    if kb.cause_notes:
        notes = "".join(f"<li>{_e(n)}</li>" for n in kb.cause_notes)
        body.append(f"<p>When the cause was identified:</p><ul>{notes}</ul>")
    body.append(
        f'<p><strong>Prevention.</strong> <span class="todo">{_e(kb.prevention)}</span></p>'
    )
    body.append(f"<p><strong>Customer communication.</strong> {_e(kb.customer_communication)}</p>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _told(report: Report) -> list[str]:
    """The "What customers told us" section, with the mood chart."""
    told, start = report.customers_told, report.incident.started_at
    out = [f'<h2 id="customers-told">{_e(rows.TITLE)}</h2>']
    if not told.messages:
        return [*out, f"<p>{_e(rows.NONE)}</p>"]
    out.append(f"<p>{_e(rows.summary(told))}</p>")
    out.append("<h3>Sentiment per round</h3>")
    if told.per_round:
        out.append(f'<div class="chart">{svg_mood(told.per_round)}</div>')
    out.append(_h_table(rows.MOOD_HEAD, rows.mood_rows(told), range(1, 7)))
    out.append("<h3>Escalated replies</h3>")
    out.append(
        _h_table(rows.ESCALATED_HEAD, rows.escalated_rows(told, start))
        if told.escalated
        else "<p>None was escalated.</p>"
    )
    out.append("<h3>Suggestions to pass on</h3>")
    out.append(f'<p class="muted">{_e(rows.SUGGESTION_NOTE)}</p>')
    out.append(
        _h_table(rows.SUGGESTION_HEAD, rows.suggestion_rows(told, start))
        if told.suggestions
        else "<p>No suggestions.</p>"
    )
    out.append("<h3>Bounced contacts to fix</h3>")
    out.append(
        _h_table(rows.BOUNCE_HEAD, rows.bounce_rows(told))
        if told.bounced_contacts
        else "<p>No contact bounced for good.</p>"
    )
    return out
