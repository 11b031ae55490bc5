"""``outagecomms demo``: the main job end to end on the embedded default, no mail server needed.

A SQLite store and a Maildir in a temporary (or given) folder, the sample customers, one
incident: acknowledgement fan-out, two promised (holding) updates a few seconds apart kept by
the real scheduler, resolution. Then it prints where the messages are.
"""

from __future__ import annotations

import mailbox
import tempfile
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from outagecomms import App, DispatchSummary, RoundKind, sample_customers_file

DEMO_CONFIG = """\
[store]
url = "sqlite:///outagecomms-demo.db"

[company]
name = "S1 Technology (demo)"
status_page_url = "https://status.example.com"
support_email = "support@example.com"

[policy.default]
update_every = "30m"
min_update_every = "1s"                     # the demo's cadence is seconds, on purpose
remind_before = "1s"

[channels.email]
kind = "maildir"
path = "maildir"
from = "S1 Support <support@example.com>"

[daemon]
reconcile_every = "500ms"
min_margin = "1s"

[credits]
auto_approve_up_to = "10%"
[[credits.rules]]
kind = "downtime_step"
percent_per_block = 5
block = "30m"
rounding = "ceil"

[[goodwill]]
offer = "a free month of premium support"
tiers = ["enterprise"]
"""


def _fan_out(app: App, incident: str, total: int, label: str, console: Console) -> None:
    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(label, total=total)
        summary: DispatchSummary = app.send(incident, progress=lambda n, _t: bar.advance(task, n))
    console.print(
        f"  {summary.sent} sent, {summary.retry} to retry, {summary.failed + summary.dead} failed"
    )


def run_demo(directory: Path | None, *, every: timedelta, console: Console) -> Path:
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="outagecomms-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    cfg_path = base / "outagecomms.toml"
    cfg_path.write_text(DEMO_CONFIG)
    with App.open(cfg_path) as app:
        res = app.import_customers(sample_customers_file())
        console.print(
            f"[bold]1.[/] imported {res.rows} sample customers into {app.store.display_url}"
        )
        declared = app.declare(
            "Database connections failing in eu-west",
            severity="sev2",
            every=every,
            components=["database"],
            regions=["eu-west"],
            commander="demo",
            started_at=app.clock() - timedelta(minutes=4),
            message="Some requests to the database fail with timeouts. We are investigating.",
            send="queue",  # sent below, with a progress bar
        )
        inc = declared.incident
        console.print(
            f"[bold]2.[/] declared {inc.ref} for component database in eu-west: {inc.audience_size} customers; "
            f"next update promised every {every.total_seconds():g}s"
        )
        _fan_out(app, inc.ref, declared.queued, "acknowledgement", console)

        def two_holding_rounds_sent() -> bool:
            rounds = app.show(inc).rounds
            done = [r for r in rounds if r.kind == RoundKind.HOLDING and r.pending == 0 and r.sent]
            return len(done) >= 2

        console.print(
            "[bold]3.[/] the scheduler keeps the promise: holding updates go out before each promised time"
        )
        app.run_daemon(
            until=two_holding_rounds_sent, on_event=lambda m: console.print(f"  scheduler: {m}")
        )
        done = app.resolve(
            inc,
            "A failed disk on the primary database node caused the timeouts. We failed over to a healthy replica and replaced the disk.",
            send="queue",
        )
        console.print(f"[bold]4.[/] resolved {inc.ref}")
        _fan_out(app, inc.ref, done.queued, "resolution", console)
        credits = app.credits(inc)
        total = ", ".join(f"{v} {k}" for k, v in credits["total"].items())
        held = sum(1 for c in credits["credits"] if c["held"])
        console.print(
            f"  service credits: {total}; {held} held for approval"
            f" (see `outagecomms credits {inc.ref}`)"
        )
        shown = app.show(inc)
        pk = shown.promises_kept
        console.print(
            f"\n{inc.ref}: {len(shown.rounds)} rounds, promises kept {pk.on_time}/{pk.owed}"
        )
        for r in shown.rounds:
            console.print(
                f"  round {r.round} {r.kind:<16} sent {r.sent}/{r.owed}, on time {r.on_time}"
            )
        box = Path(app.config.channels["email"].settings["path"])
        count = len(mailbox.Maildir(str(box), create=False))
        console.print(f"\n{count} messages are in the maildir {box}/new (one file per email).")
        console.print(
            f"See them with:  outagecomms --config {cfg_path} show {inc.ref} --customer {declared.plan.audience.customers[0].id}"
        )
        return box
