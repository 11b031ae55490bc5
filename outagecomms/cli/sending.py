"""Sending what an incident owes from the command's own process (unless ``--queue-only``):
a progress bar while it runs, then the outcome in words and as ``--json`` keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from outagecomms.cli.output import err

if TYPE_CHECKING:
    from outagecomms.app import App
    from outagecomms.outbox.dispatch import DispatchSummary


def summary_line(s: DispatchSummary) -> str:
    parts = [f"{s.sent} sent"]
    if s.retry:
        parts.append(f"{s.retry} will be retried")
    if s.failed:
        parts.append(f"{s.failed} failed")
    if s.dead:
        parts.append(f"{s.dead} dead")
    return ", ".join(parts)


def summary_json(s: DispatchSummary | None) -> dict[str, Any]:
    """The dispatch keys every sending command's ``--json`` ends with."""
    if s is None:
        return {"sent": 0, "failed": 0, "retry": 0, "dead": 0, "errors": {}}
    return {
        "sent": s.sent,
        "failed": s.failed,
        "retry": s.retry,
        "dead": s.dead,
        "errors": s.errors,
    }


def _progress(total: int, label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A Rich progress bar on stderr (silent when stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if not err.is_terminal or total == 0:
        return (lambda n, _t: None), (lambda: None)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err.get(),
        transient=False,
    )
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda n, _t: bar.advance(task, n)), bar.stop


def send(a: App, incident_id: int, total: int, label: str) -> DispatchSummary:
    """Send what the incident owes now, in this process, with a progress bar."""
    import asyncio

    from outagecomms.outbox.senders import dispatch_parallel

    advance, stop = _progress(total, label)
    try:
        return asyncio.run(dispatch_parallel(a, incident_id=incident_id, progress=advance))
    finally:
        stop()
