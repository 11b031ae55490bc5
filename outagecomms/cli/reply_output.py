"""How ``show`` and ``watch`` print what customers sent back: the counts by kind and label,
one customer's messages and what we sent because of them, and the dashboard's "Replies" panel
(negative replies in bold red, so they stand out at a glance).

Customers' words are shown literally (escaped, control characters removed), never as markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from outagecomms.cli.output import Table, escape, out
from outagecomms.terminal import terminal_safe

#: how each label stands out on the dashboard
LABEL_STYLES = {"negative": "bold red", "positive": "green", "neutral": ""}


def counts_line(replies: Mapping[str, Any]) -> str:
    """``replies: 5 (negative 3, neutral 1, positive 1); auto-replies 2; bounces 1``, or
    ``replies: none``."""
    labels = replies.get("reply", {})
    people = sum(labels.values())
    parts = []
    if people:
        shown = ", ".join(f"{k} {v}" for k, v in labels.items() if v)
        parts.append(f"{people} ({shown})")
    elif not (replies.get("auto_reply") or replies.get("bounce")):
        return "replies: none"
    else:
        parts.append("0")
    line = "replies: " + parts[0]
    if replies.get("auto_reply"):
        line += f"; auto-replies {replies['auto_reply']}"
    if replies.get("bounce"):
        line += f"; bounces {replies['bounce']}"
    for kind, n in replies.items():
        if kind not in ("reply", "auto_reply", "bounce") and n:
            line += f"; {kind} {n}"
    return line


def _when(value: str | None) -> str:
    return (value or "-")[:19].replace("T", " ")


def print_customer_replies(customer: Mapping[str, Any]) -> None:
    """``show --customer``: their messages, then what we sent because of them."""
    replies: Sequence[Mapping[str, Any]] = customer.get("replies", ())
    sends: Sequence[Mapping[str, Any]] = customer.get("reply_sends", ())
    out.print(f"\n--- what {customer['id']} sent us: {len(replies) or 'nothing'} ---", markup=False)
    for r in replies:
        flags = []
        if r["escalated"]:
            flags.append(f"escalated {_when(r['escalated_at'])}")
        flags.append(f"responded {_when(r['responded_at'])}" if r["responded"] else "no response")
        out.print(
            f"#{r['id']} {_when(r['received_at'])} {r['kind'] or 'unclassified'}"
            f"{' ' + r['label'] if r['label'] else ''} via {r['channel']}; {', '.join(flags)}",
            markup=False,
        )
        out.print(f"  “{r['text']}”", markup=False)
    if sends:
        out.print("--- what we sent because of it ---", markup=False)
    for s in sends:
        out.print(
            f"{s['kind']} for #{s['reply_id']} via {s['channel']} to {s['to']}: {s['status']}"
            f" (queued {_when(s['created_at'])}, sent {_when(s['sent_at'])})",
            markup=False,
        )


def replies_panel(lines: Sequence[Mapping[str, Any]]) -> Any:
    """The dashboard's newest replies as a table, newest first; a negative one in bold red."""
    from rich.text import Text

    table = Table("received", "incident", "customer", "kind", "label", "text", title="Replies")
    table.columns[-1].overflow = "ellipsis"
    if not lines:
        table.add_row("-", "", "", "", "", escape("no replies yet"))
        return table
    for r in lines:
        label = r["label"] or ("read it" if r["needs_person"] else "-")
        style = LABEL_STYLES.get(r["label"] or "", "")
        if r["escalated"]:
            label += " (escalated)"
        cells = (_when(r["received_at"])[11:], r["incident"], r["customer_id"], r["kind"] or "-")
        table.add_row(
            *(Text(terminal_safe(v)) for v in cells),
            Text(label, style=style),
            Text(terminal_safe(r["text"]), style=style if r["label"] == "negative" else ""),
        )
    return table


def print_counts(replies: Mapping[str, Any]) -> None:
    out.print(counts_line(replies), markup=False)


def reply_cell(replies: Mapping[str, Any]) -> str:
    """The dashboard's per-incident count: ``5 (3 neg)``, or ``-``."""
    people = sum(replies.get("reply", {}).values())
    negative = replies.get("reply", {}).get("negative", 0)
    if not people:
        return "-"
    return f"{people} ({negative} neg)" if negative else str(people)
