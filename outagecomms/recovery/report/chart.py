"""The SVG chart of promised versus actual notice times, one row per round (inline in the HTML
report: presentation attributes, no scripts, no CSS classes needed to look right)."""

from __future__ import annotations

import math

from outagecomms.recovery.report.model import Chart
from outagecomms.recovery.report.units import escape_html as _e
from outagecomms.recovery.report.units import human
from outagecomms.values import iso

__all__ = ["svg_chart"]

_COLOURS = {
    "promise": "#0969da",
    "ontime": "#2da44e",
    "late": "#cf222e",
    "neutral": "#8c959f",
    "grid": "#d0d7de",
    "created": "#656d76",
    "text": "#1f2328",
}
_TITLE = "Promised versus actual notice times per round"


def _tick_step(span: float) -> float:
    for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if span / step <= 10:
            return float(step)
    return float(math.ceil(span / 10 / 86400) * 86400)


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


def svg_chart(chart: Chart) -> str:
    """Promised versus actual notice times per round, on an axis of time since the start.

    One ``<g class="round">`` per round: a diamond at the promise it had to keep (``due_by``),
    a bar from its first to its last delivery (green up to the promise, red after it; grey when
    the round kept no promise) and a small circle when the round was created. Styled with
    presentation attributes, so the chart looks the same when copied out of the page.
    """
    span = chart.latest
    step = _tick_step(span)
    span = math.ceil(span / step) * step
    left, right, top, row_h, plot_w = 190, 40, 44, 34, 660
    width = left + plot_w + right
    axis_y = top + row_h * max(1, len(chart.rows))
    height = axis_y + 46
    c = _COLOURS

    def x(secs: float) -> float:
        return float(round(left + max(0.0, secs) / span * plot_w, 1))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="12" '
        f'fill="{c["text"]}" aria-label="{_TITLE}">',
        f"<title>{_TITLE}</title>",
    ]
    tick = 0.0
    while tick <= span + 0.001:
        tx = x(tick)
        parts.append(
            f'<line class="grid" stroke="{c["grid"]}" x1="{tx}" y1="{top - 6}" '
            f'x2="{tx}" y2="{axis_y}"/>'
            f'<text x="{tx}" y="{axis_y + 16}" text-anchor="middle">+{_e(human(tick))}</text>'
        )
        tick += step
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{axis_y + 36}" text-anchor="middle">'
        "time since the incident started</text>"
    )
    for i, row in enumerate(chart.rows):
        s = row.round.stats
        mid = top + i * row_h + row_h / 2
        label = f"#{s.round.seq} {s.round.kind.value}"
        tip = [label]
        if s.round.due_by:
            tip.append(f"promised by {iso(s.round.due_by)}")
        if s.first_sent_at:
            tip.append(f"sent {iso(s.first_sent_at)} to {iso(s.last_sent_at)}")
        tip.append(f"{s.on_time}/{s.owed} on time")
        parts.append(
            f'<g class="round" data-round="{_e(s.round.seq)}" data-kind="{_e(s.round.kind.value)}">'
            f"<title>{_e('; '.join(tip))}</title>"
            f'<text x="{left - 10}" y="{mid + 4}" text-anchor="end">{_e(label)}</text>'
            f'<circle class="created" fill="none" stroke="{c["created"]}" '
            f'stroke-width="1.5" cx="{x(row.created)}" cy="{mid}" r="3"/>'
        )
        first, last, due = row.first, row.last, row.due
        if first is not None and last is not None:
            if due is None:
                parts.append(_bar("neutral", x(first), x(last), mid))
            else:
                if first <= due:
                    parts.append(_bar("ontime", x(first), x(min(last, due)), mid))
                if last > due:
                    parts.append(_bar("late", x(max(first, due)), x(last), mid))
        else:
            at = x(row.created) + 8
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
