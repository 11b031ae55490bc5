"""The SVG chart of how the mood moved as updates went out: one column per round, a stacked
bar of its replies by label (how many, and how they felt) and a line through the mean
sentiment score (−1 to 1) of each round whose replies were scored. Inline in the HTML report,
presentation attributes only, like ``chart``."""

from __future__ import annotations

from collections.abc import Sequence

from outagecomms.inbound.views import LABELS
from outagecomms.recovery.report.told import UNSCORED, RoundMood
from outagecomms.recovery.report.units import escape_html as _e

__all__ = ["svg_mood"]

_COLOURS = {
    "negative": "#cf222e",
    "neutral": "#8c959f",
    "positive": "#2da44e",
    UNSCORED: "#d4a72c",
    "score": "#0969da",
    "grid": "#d0d7de",
    "text": "#1f2328",
}
_TITLE = "Replies per round by label, and their mean sentiment score"


def _label(mood: RoundMood) -> str:
    return "no round" if mood.round is None else f"#{mood.round} {mood.kind}"


def svg_mood(rounds: Sequence[RoundMood]) -> str:
    """One ``<g class="round">`` per round: ``<rect class="label-…">`` segments (bottom up:
    negative, neutral, positive, unscored) and, when scored, a ``<circle class="score">`` at its
    mean, joined by a ``<polyline class="score-line">`` in round order."""
    c = _COLOURS
    left, top, col_w, bars_h, gap, score_h = 60, 40, 90, 150, 40, 120
    width = left + col_w * max(1, len(rounds)) + 30
    bars_top = top + score_h + gap
    base = bars_top + bars_h
    height = base + 50
    most = max([1, *(r.replies for r in rounds)])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="12" '
        f'fill="{c["text"]}" aria-label="{_TITLE}">',
        f"<title>{_TITLE}</title>",
    ]

    def score_y(score: float) -> float:
        return float(round(top + (1 - score) / 2 * score_h, 1))

    for value in (1, 0, -1):
        y = score_y(value)
        parts.append(
            f'<line class="grid" stroke="{c["grid"]}" x1="{left}" y1="{y}" '
            f'x2="{width - 20}" y2="{y}"/>'
            f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{value:+d}</text>'
        )
    parts.append(f'<text x="{left}" y="{top - 14}">mean sentiment score</text>')
    parts.append(f'<text x="{left}" y="{bars_top - 8}">replies (most: {most})</text>')
    points = []
    for i, mood in enumerate(rounds):
        cx = left + i * col_w + col_w / 2
        tip = [_label(mood), f"{mood.replies} replies"]
        tip += [f"{k} {n}" for k, n in mood.labels.items() if n]
        if mood.mean_score is not None:
            tip.append(f"mean score {mood.mean_score:+.2f}")
        parts.append(
            f'<g class="round" data-round="{_e(mood.round if mood.round is not None else "")}">'
            f"<title>{_e('; '.join(tip))}</title>"
        )
        y = float(base)
        for key in (*LABELS, UNSCORED):
            n = mood.labels.get(key, 0)
            if not n:
                continue
            h = round(n / most * bars_h, 1)
            y -= h
            parts.append(
                f'<rect class="label-{key}" data-count="{n}" fill="{c[key]}" '
                f'x="{cx - 22}" y="{round(y, 1)}" width="44" height="{h}"/>'
            )
        if mood.mean_score is not None:
            sy = score_y(mood.mean_score)
            points.append(f"{cx},{sy}")
            parts.append(
                f'<circle class="score" data-score="{mood.mean_score:.3f}" fill="{c["score"]}" '
                f'cx="{cx}" cy="{sy}" r="4"/>'
            )
        parts.append(
            f'<text x="{cx}" y="{base + 16}" text-anchor="middle">{_e(_label(mood))}</text></g>'
        )
    if len(points) > 1:
        parts.append(
            f'<polyline class="score-line" fill="none" stroke="{c["score"]}" stroke-width="2" '
            f'points="{" ".join(points)}"/>'
        )
    parts.append('<g class="legend">')
    lx = float(left)
    for key in (*LABELS, UNSCORED):
        parts.append(
            f'<g transform="translate({lx},{base + 36})"><rect fill="{c[key]}" x="0" y="-9" '
            f'width="12" height="10"/><text x="16" y="0">{_e(key)}</text></g>'
        )
        lx += 30 + 7 * len(key)
    parts.append("</g></svg>")
    return "".join(parts)
