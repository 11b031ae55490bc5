"""Sending what an incident owes from the command's own process (unless ``--queue-only``):
a progress bar while it runs, then the outcome in words and as ``--json`` keys."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from outagecomms.cli.exits import EXIT_USAGE
from outagecomms.cli.output import err, escape

if TYPE_CHECKING:
    from outagecomms.app import App
    from outagecomms.outbox.dispatch import DispatchSummary
    from outagecomms.rendering.templates import Rendered

#: how many lines of the sample message the confirmation prompt shows
SAMPLE_LINES = 8

NOT_A_TERMINAL = "not a terminal: pass --yes to send"


def sample_lines(
    rendered: Rendered | None, customer: str | None, channel: str | None, kind: str
) -> list[str]:
    """One rendered message as the prompt shows it: who gets it on which channel, the
    subject (channels that have one) and its first lines."""
    if rendered is None or customer is None:
        return []
    lines = [f"--- {kind} for {customer} on {channel} ---"]
    if rendered.subject:
        lines.append(f"Subject: {rendered.subject}")
    body = rendered.text.strip().splitlines()
    lines += body[:SAMPLE_LINES]
    if len(body) > SAMPLE_LINES:
        lines.append(f"... ({len(body) - SAMPLE_LINES} more lines)")
    return lines


def confirm_send(
    yes: bool,
    summary: str,
    sample: list[str],
    question: str,
    declined: str = "nothing sent",
    refusal: str = NOT_A_TERMINAL,
) -> None:
    """Ask before sending: the counts (``summary``, Rich markup), one rendered message, then
    ``question``. ``--yes`` skips it; without a terminal on stdin (a runbook, ``echo n |``)
    nothing can be asked, so the command refuses (exit 2) before anything is written."""
    if yes:
        return
    if not sys.stdin.isatty():
        err.print(f"[bold red]error:[/] {refusal}", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    err.print(summary)
    for line in sample:
        err.print(escape(line), highlight=False)
    if not typer.confirm(question, default=False, err=True):
        err.print(declined)
        raise typer.Exit(EXIT_USAGE)


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


#: what finishes a fan-out that Ctrl-C stopped
FINISH = "`outagecomms tick` or the daemon sends the rest"


def send(a: App, incident_id: int, total: int, label: str) -> DispatchSummary:
    """Send what the incident owes now, in this process, with a progress bar. Ctrl-C stops
    it cleanly: one line (sent, queued, what sends the rest), exit 130."""
    import asyncio

    from outagecomms.cli.exits import EXIT_INTERRUPTED
    from outagecomms.outbox.senders import Interrupted, dispatch_interruptible

    advance, stop = _progress(total, label)
    try:
        result = asyncio.run(dispatch_interruptible(a, incident_id=incident_id, progress=advance))
    finally:
        stop()
    if isinstance(result, Interrupted):
        err.print(
            f"interrupted: {result.summary.sent} sent, {result.queued} queued; {FINISH}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    return result
