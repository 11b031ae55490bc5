"""The inbound part of ``/metrics``: what customers sent back, and how fast someone heard.

``outagecomms_inbound_messages{kind,label}`` is a gauge of the messages the store holds by kind
(``reply``, ``auto_reply``, ``bounce``; ``unprocessed`` while one waits to be classified) and,
for a person's reply, its label (``negative``/``neutral``/``positive``; ``""`` otherwise or when
not scored). It is a gauge, not a counter: ``db prune`` deletes old messages.

``outagecomms_escalation_latency_seconds`` is a histogram of the seconds from a reply reaching
us to its first escalation being accepted by a channel (the issue's target: p99 at most 5 s),
over the newest escalations the store keeps (``store.inbound.escalation_latencies``), so it
too can go down after a prune.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from outagecomms.store import inbound as inbound_db

LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def inbound_lines(conn: Connection) -> list[str]:
    """Read the figures and give their exposition lines."""
    return exposition(inbound_db.totals(conn), inbound_db.escalation_latencies(conn))


def exposition(totals: Mapping[tuple[str, str], int], latencies: Sequence[float]) -> list[str]:
    lines = [
        "# HELP outagecomms_inbound_messages Messages customers sent back, by kind and label.",
        "# TYPE outagecomms_inbound_messages gauge",
    ]
    for (kind, label), n in sorted(totals.items()):
        lines.append(
            f'outagecomms_inbound_messages{{kind="{_label(kind)}",label="{_label(label)}"}} {n}'
        )
    name = "outagecomms_escalation_latency_seconds"
    lines.append(
        f"# HELP {name} Seconds from a reply reaching us to its escalation being accepted."
    )
    lines.append(f"# TYPE {name} histogram")
    for bound in LATENCY_BUCKETS:
        n = sum(1 for s in latencies if s <= bound)
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {n}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {len(latencies)}')
    lines.append(f"{name}_sum {sum(latencies):g}")
    lines.append(f"{name}_count {len(latencies)}")
    return lines
