"""The processes: ``tick`` (once, for cron), ``daemon`` (until SIGTERM), ``demo``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from outagecomms.cli.exits import EXIT_FAIL, EXIT_PARTIAL
from outagecomms.cli.options import JsonOpt, YesOpt, open_app
from outagecomms.cli.output import err, print_json
from outagecomms.cli.sending import summary_json, summary_line


def tick(yes: YesOpt = False, as_json: JsonOpt = False) -> None:
    """Do everything due now (holding updates, reminders, pending sends), then exit. For cron.
    Exit 3 when deliveries were left unsent (failed, to be retried or dead)."""
    import asyncio

    from outagecomms.scheduler.tick import tick as do_tick

    res = asyncio.run(do_tick(open_app()))
    if as_json:
        print_json(
            {
                "holding": res.due.holding,
                "follow_ups": res.due.follow_ups,
                "reminders": res.due.reminders,
                "maintenance": {
                    "reminders": res.due.maintenance_reminders,
                    "skipped": res.due.maintenance_skipped,
                    "started": res.due.maintenance_started,
                    "overran": res.due.maintenance_overran,
                    "incidents": res.due.maintenance_incidents,
                    "sent": res.maintenance.sent,
                    "unsent": res.maintenance.retry + res.maintenance.failed + res.maintenance.dead,
                },
                **summary_json(res.dispatch),
                "errors": res.errors,  # the scheduler's and the deliveries' errors, merged
            }
        )
    else:
        for h in res.due.holding:
            err.print(f"holding update queued: {h}")
        for r in res.due.reminders:
            err.print(f"reminded the commander of {r}")
        for f in res.due.follow_ups:
            err.print(f"follow-up queued: {f}")
        if res.dispatch.claimed:
            err.print(f"dispatched {res.dispatch.claimed}: {summary_line(res.dispatch)}")
        for r in res.due.maintenance_reminders:
            err.print(f"maintenance reminder queued: {r}")
        for r in res.due.maintenance_skipped:
            err.print(f"maintenance reminder skipped: {r}")
        for r in res.due.maintenance_started:
            err.print(f"maintenance started: {r}")
        for r in res.due.maintenance_overran:
            err.print(f"maintenance overran, commander reminded: {r}")
        for r in res.due.maintenance_incidents:
            err.print(f"maintenance overran, incident declared: {r}")
        if res.maintenance.claimed:
            m = res.maintenance
            err.print(
                f"maintenance notices: {m.sent} sent, {m.retry} to retry, {m.failed + m.dead} failed"
            )
    for e in res.due.errors:
        err.print(f"[red]error:[/] {e}")
    if res.due.errors:
        raise typer.Exit(EXIT_FAIL)
    if res.unsent:  # so cron tells someone: the mail server may be down
        raise typer.Exit(EXIT_PARTIAL)


def daemon(
    http: Annotated[
        str | None,
        typer.Option("--http", help="HOST:PORT for the feedback links (default: [daemon] http)."),
    ] = None,
) -> None:
    """Run the scheduler and the senders until SIGTERM. Picks up every open incident at start.
    SIGTERM or SIGINT: the batch in hand finishes, held deliveries are released, exit 0."""
    from outagecomms.scheduler.daemon import run_daemon

    a = open_app()
    log = logging.getLogger("outagecomms.daemon")
    logging.getLogger("outagecomms").setLevel(logging.INFO)  # a daemon reports what it does
    log.info("outagecomms daemon: store %s, pid %d", a.store.display_url, os.getpid())
    run_daemon(a, http=http)


def demo(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to keep the demo (default: a temp dir).")
    ] = None,
    every: Annotated[str, typer.Option("--every", help="Demo update cadence.")] = "3s",
) -> None:
    """A self-contained run of the main job: declare, promised updates, resolve (to a maildir)."""
    from outagecomms.demo import run_demo
    from outagecomms.values import parse_duration

    run_demo(directory, every=parse_duration(every, field="every"), console=err.get())
