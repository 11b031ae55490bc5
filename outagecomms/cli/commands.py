"""The command line: parses, calls one library function, prints. No SQL, Jinja or SMTP here.

Exit codes: 0 ok, 1 failure, 2 usage or input error, 3 partial (some deliveries failed).
Results go to stdout (``--json``: exactly one JSON object); progress and errors to stderr.
``OUTAGECOMMS_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer

from outagecomms.errors import OutageCommsError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="outagecomms",
    help="Proactive outage communication: acknowledge, keep update promises, resolve.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold passwords and tokens
    add_completion=False,
)
customers_app = typer.Typer(help="The customer directory.", no_args_is_help=True)
app.add_typer(customers_app, name="customers")


class _LazyConsole:
    """Rich costs ~25 ms to import: scripts that only want ``--json`` should not pay for it."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._console: Any = None

    def get(self) -> Any:
        """The real Rich console (for Progress, Live and anything that takes one)."""
        if self._console is None:
            self._console = self._make()
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def _make_out() -> Any:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)  # pipes and logs: do not squeeze tables to 80
    return console


def _make_err() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line


out: Any = _LazyConsole(_make_out)
err: Any = _LazyConsole(_make_err)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def Table(*columns: Any, **kwargs: Any) -> Any:
    from rich.table import Table as RichTable

    return RichTable(*columns, **kwargs)


_state: dict[str, Any] = {"config": None}

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def handle_errors(fn: F) -> F:
    """The one place where the exception tree becomes messages and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OutageCommsError as exc:
            if os.environ.get("OUTAGECOMMS_DEBUG"):
                raise
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as exc:  # a bug: one line, not a page of locals
            if os.environ.get("OUTAGECOMMS_DEBUG"):
                raise
            err.print(
                f"[bold red]internal error:[/] {escape(f'{type(exc).__name__}: {exc}')} "
                "(run with OUTAGECOMMS_DEBUG=1 for the traceback)"
            )
            raise typer.Exit(EXIT_FAIL) from None

    return wrapper  # type: ignore[return-value]


def _app() -> Any:
    from outagecomms.app import App

    return App.open(_state["config"])


def _add_row(table: Any, *cells: str) -> None:
    """User data (names, titles) is shown literally, never read as Rich markup."""
    table.add_row(*(escape(c) for c in cells))


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


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


def _send(a: Any, incident_id: int, total: int, label: str) -> Any:
    import asyncio

    from outagecomms.outbox.senders import dispatch_parallel

    advance, stop = _progress(total, label)
    try:
        return asyncio.run(dispatch_parallel(a, incident_id=incident_id, progress=advance))
    finally:
        stop()


def _summary_line(s: Any) -> str:
    parts = [f"{s.sent} sent"]
    if s.retry:
        parts.append(f"{s.retry} will be retried")
    if s.failed:
        parts.append(f"{s.failed} failed")
    if s.dead:
        parts.append(f"{s.dead} dead")
    return ", ".join(parts)


def _summary_json(s: Any) -> dict[str, Any]:
    if s is None:
        return {"sent": 0, "failed": 0, "retry": 0, "dead": 0, "errors": {}}
    return {
        "sent": s.sent,
        "failed": s.failed,
        "retry": s.retry,
        "dead": s.dead,
        "errors": s.errors,
    }


@app.callback()
def main_callback(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Config file (else $OUTAGECOMMS_CONFIG, ./outagecomms.toml)."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what the scheduler does.")
    ] = False,
) -> None:
    _state["config"] = config
    from outagecomms.logs import setup_logging

    setup_logging(verbose=verbose)


# --- init / doctor ------------------------------------------------------------------------


@app.command()
@handle_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write outagecomms.toml.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
) -> None:
    """Write a commented outagecomms.toml, a templates/ override folder and sample customers."""
    from outagecomms.workspace.scaffold import init_project

    written = init_project(directory, force=force)
    for p in written:
        err.print(f"wrote {p}")
    err.print(
        f"next: edit {directory / 'outagecomms.toml'}, then `outagecomms customers import customers.csv`"
    )


@app.command()
@handle_errors
def doctor() -> None:
    """Validate the config and every template (exit 2 on a problem)."""
    from outagecomms.workspace.doctor import doctor as run_doctor

    a = _app()
    for line in run_doctor(a):
        err.print(line)


# --- customers ----------------------------------------------------------------------------


@customers_app.command("import")
@handle_errors
def customers_import(
    file: Annotated[Path, typer.Argument(help="CSV, JSON or JSONL file.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, json or jsonl (default: by extension).")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Remove customers not in the file.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import the directory: all rows or none. Re-importing updates customers by id."""
    from outagecomms.directory.importer import import_file

    a = _app()
    res = import_file(a, file, fmt=fmt, replace=replace)
    if as_json:
        _print_json(res)
    else:
        err.print(
            f"imported {res['rows']} customers from {file}: {res['created']} new, {res['updated']} updated"
            + (f", {res['removed']} removed" if replace else "")
        )


SelComponent = Annotated[
    list[str] | None, typer.Option("--component", "-c", help="Affected component (repeatable).")
]
SelRegion = Annotated[
    list[str] | None, typer.Option("--region", "-r", help="Affected region (repeatable).")
]
SelTier = Annotated[list[str] | None, typer.Option("--tier", help="Customer tier (repeatable).")]
SelTag = Annotated[list[str] | None, typer.Option("--tag", help="Customer tag (repeatable).")]
SelCustomer = Annotated[
    list[str] | None, typer.Option("--customer", help="Add a customer by id (repeatable).")
]
SelExclude = Annotated[
    list[str] | None, typer.Option("--exclude", help="Leave a customer out (repeatable).")
]


def _selector(component: Any, region: Any, tier: Any, tag: Any, customer: Any, exclude: Any) -> Any:
    from outagecomms.models import Selector

    def vals(v: list[str] | None) -> tuple[str, ...]:
        return tuple(dict.fromkeys(x.strip() for x in (v or []) if x.strip()))

    return Selector(
        components=vals(component),
        regions=vals(region),
        tiers=vals(tier),
        tags=vals(tag),
        customers=vals(customer),
        exclude=vals(exclude),
    )


@customers_app.command("list")
@handle_errors
def customers_list(
    component: SelComponent = None,
    region: SelRegion = None,
    tier: SelTier = None,
    tag: SelTag = None,
    customer: SelCustomer = None,
    exclude: SelExclude = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List customers, filtered with the same selectors as `declare`."""
    from outagecomms.directory.views import customer_dict, list_customers

    a = _app()
    rows = list_customers(a, _selector(component, region, tier, tag, customer, exclude))
    if as_json:
        _print_json({"count": len(rows), "customers": [customer_dict(c) for c in rows]})
        return
    table = Table("id", "name", "tier", "components", "regions", "tags", "timezone", "email")
    for c in rows:
        _add_row(
            table,
            c.id,
            c.name,
            c.tier,
            ",".join(c.components),
            ",".join(c.regions),
            ",".join(c.tags),
            c.timezone,
            c.email,
        )
    out.print(table)
    err.print(f"{len(rows)} customers")


# --- declare / update / resolve -------------------------------------------------------------


def _duration(value: str | None, flag: str) -> Any:
    from outagecomms.values import parse_duration

    return parse_duration(value, field=flag) if value is not None else None


@app.command()
@handle_errors
def declare(
    title: Annotated[
        str | None,
        typer.Argument(
            help="What is broken, as customers will read it (with --from-draft: the draft's)."
        ),
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option("--severity", "-s", help="sev1 .. sev4 (required without --from-draft)."),
    ] = None,
    component: SelComponent = None,
    region: SelRegion = None,
    tier: SelTier = None,
    tag: SelTag = None,
    customer: SelCustomer = None,
    exclude: SelExclude = None,
    every: Annotated[
        str | None, typer.Option("--every", help="Update cadence, e.g. 30m (default: policy).")
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="What we know so far.")] = "",
    started_at: Annotated[
        str | None,
        typer.Option("--started-at", help="When customers were first hurt: ISO 8601 or -15m."),
    ] = None,
    commander: Annotated[
        str, typer.Option("--commander", help="Incident commander (name or email).")
    ] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show who would be told what; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running the scheduler here until resolved.")
    ] = False,
    no_send: Annotated[
        bool,
        typer.Option("--no-send", help="Record only: nothing is sent, now or later (history)."),
    ] = False,
    queue_only: Annotated[
        bool, typer.Option("--queue-only", help="Queue the messages; a daemon or tick sends them.")
    ] = False,
    from_draft: Annotated[
        int | None,
        typer.Option(
            "--from-draft",
            help="Declare an alert's draft (`drafts list`): its title, severity, components "
            "and regions unless given here.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Declare an incident and acknowledge every affected customer at once."""
    from outagecomms.incidents.lifecycle import commit_declare, plan_declare
    from outagecomms.incidents.views import iso
    from outagecomms.values import parse_time

    if from_draft is None and title is None:
        raise click.UsageError("Missing argument 'TITLE'.")
    if from_draft is None and severity is None:
        raise click.UsageError("Missing option '--severity' / '-s'.")
    a = _app()
    cadence = _duration(every, "--every")
    started = parse_time(started_at, now=a.clock(), field="--started-at") if started_at else None
    selector = _selector(component, region, tier, tag, customer, exclude)
    draft = None
    if from_draft is not None:
        from outagecomms.intake.drafts import plan_from_draft

        plan, draft = plan_from_draft(
            a, from_draft, selector=selector, title=title, severity=severity, every=cadence,
            message=message, started_at=started, commander=commander or None,
        )  # fmt: skip
    else:
        assert title is not None and severity is not None
        plan = plan_declare(
            a,
            title=title,
            severity=severity,
            every=cadence,
            message=message,
            started_at=started,
            commander=commander or os.environ.get("USER", ""),
            selector=selector,
        )
    channels = plan.audience.channel_counts()
    if draft is not None and draft.resolved_at is not None and draft.alert_state == "resolved":
        _note(as_json, f"note: draft {draft.id}'s alert resolved at {draft.resolved_at:%H:%M} UTC")
    if dry_run:
        _print_dry_run(plan, channels, as_json)
        return
    if not yes and not no_send and sys.stdin.isatty():
        err.print(
            f"Declare [bold]{escape(plan.incident.title)}[/] ({plan.incident.severity}) and notify "
            f"[bold]{plan.audience.size}[/] customers ({_fmt_counts(channels)})?"
        )
        if not typer.confirm("Send the acknowledgement now?", default=False, err=True):
            err.print("nothing sent")
            raise typer.Exit(EXIT_USAGE)
    if draft is not None:
        from outagecomms.intake.drafts import commit_from_draft

        created = commit_from_draft(a, plan, draft, send=not no_send)
    else:
        created = commit_declare(a, plan, send=not no_send)
    inc = created.incident
    if no_send:
        err.print(f"[bold]{inc.ref}[/] recorded for {plan.audience.size} customers; nothing sent")
    else:
        err.print(
            f"[bold]{inc.ref}[/] declared: {plan.audience.size} customers, next update promised "
            f"by {inc.next_update_due:%H:%M:%S} UTC"
        )
    summary = None if (no_send or queue_only) else _send(a, inc.id, created.queued, "acknowledging")
    if summary is not None:
        err.print(f"acknowledgement: {_summary_line(summary)}")
    if as_json:
        _print_json(
            {
                "incident": inc.ref,
                "title": inc.title,
                "severity": inc.severity,
                "status": inc.status.value,
                "audience": plan.audience.size,
                "channels": channels,
                "skipped": plan.audience.skipped,
                "round": created.round.seq,
                "queued": created.queued,
                "promised_next_by": iso(inc.next_update_due),
                "ack_due": iso(inc.ack_due),
                **({"draft": draft.id} if draft is not None else {}),
                **_summary_json(summary),
            }
        )
    if follow:
        _follow(a, inc.id)
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)


def _fmt_counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) or "none"


def _print_dry_run(plan: Any, channels: dict[str, int], as_json: bool) -> None:
    from outagecomms.incidents.views import iso

    by_customer: dict[str, list[str]] = {}
    for cid, ch in plan.audience.pairs:
        by_customer.setdefault(cid, []).append(ch)
    sample = plan.sample
    if as_json:
        _print_json(
            {
                "dry_run": True,
                "incident": None,
                "audience": plan.audience.size,
                "round": 1,
                "promised_next_by": iso(plan.incident.next_update_due),
                "channels": channels,
                "skipped": plan.audience.skipped,
                "recipients": [
                    {"customer": c.id, "channels": by_customer.get(c.id, [])}
                    for c in plan.audience.customers
                ],
                "sample": {
                    "customer": plan.sample_customer.id if plan.sample_customer else None,
                    "channel": plan.sample_channel,
                    "subject": sample.subject if sample else None,
                    "text": sample.text if sample else None,
                },
            }
        )
        return
    table = Table(
        "customer", "name", "tier", "timezone", "channels", title="would be told (dry run)"
    )
    for c in plan.audience.customers:
        _add_row(
            table, c.id, c.name, c.tier, c.timezone, ", ".join(by_customer.get(c.id, [])) or "-"
        )
    out.print(table)
    out.print(f"{plan.audience.size} customers; {_fmt_counts(channels)}")
    if plan.audience.skipped:
        out.print(f"skipped: {_fmt_counts(plan.audience.skipped)}")
    if sample and plan.sample_customer:
        out.print(
            f"\n--- acknowledgement for {plan.sample_customer.id} on {plan.sample_channel} ---"
        )
        out.print(f"Subject: {sample.subject}\n", markup=False)
        out.print(sample.text, markup=False)
    err.print("dry run: nothing was written or sent")


def _note(plain: bool, text: str) -> None:
    """A line for the person on stderr; plain (no Rich to load) when a script asked for --json."""
    if plain:
        sys.stderr.write(text + "\n")
    else:
        err.print(escape(text))


def _round_cmd_output(a: Any, created: Any, send_now: bool, as_json: bool, label: str) -> None:
    from outagecomms.incidents.views import iso

    inc = created.incident
    summary = _send(a, inc.id, created.queued, label) if send_now else None
    promise = (
        f"next update promised by {inc.next_update_due:%H:%M:%S} UTC"
        if inc.next_update_due
        else "no more updates promised"
    )
    _note(
        as_json,
        f"{inc.ref} round {created.round.seq} ({created.round.kind.value}) queued for {created.queued}; {promise}",
    )
    if summary is not None:
        _note(as_json, f"{label}: {_summary_line(summary)}")
    if as_json:
        _print_json(
            {
                "incident": inc.ref,
                "status": inc.status.value,
                "round": created.round.seq,
                "kind": created.round.kind.value,
                "queued": created.queued,
                "audience": inc.audience_size,
                "promised_next_by": iso(inc.next_update_due),
                "resolved_at": iso(inc.resolved_at),
                **_summary_json(summary),
            }
        )
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
@handle_errors
def update(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    message: Annotated[str, typer.Argument(help="What customers should know now.")],
    status: Annotated[
        str | None, typer.Option("--status", help="investigating, identified or monitoring.")
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="New cadence from now on, e.g. 1h.")
    ] = None,
    no_send: Annotated[
        bool,
        typer.Option("--no-send", help="Record only: nothing is sent, now or later (history)."),
    ] = False,
    queue_only: Annotated[
        bool, typer.Option("--queue-only", help="Queue the messages; a daemon or tick sends them.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Post the commander's update: sent at once, and the cadence restarts from now."""
    from outagecomms.incidents.lifecycle import post_update
    from outagecomms.models import incident_id_from_ref

    iid = incident_id_from_ref(incident)
    cadence = _duration(every, "--every")
    a = _app()
    created = post_update(a, iid, message, status=status, every=cadence, send=not no_send)
    _round_cmd_output(a, created, not (no_send or queue_only), as_json, "update")


@app.command()
@handle_errors
def resolve(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    message: Annotated[str, typer.Argument(help="What happened and what we fixed.")],
    at: Annotated[
        str | None, typer.Option("--at", help="When service was restored (ISO 8601 or -10m).")
    ] = None,
    no_send: Annotated[
        bool,
        typer.Option("--no-send", help="Record only: nothing is sent, now or later (history)."),
    ] = False,
    queue_only: Annotated[
        bool, typer.Option("--queue-only", help="Queue the messages; a daemon or tick sends them.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send the resolution notice and stop the updates."""
    from outagecomms.incidents.lifecycle import resolve as do_resolve
    from outagecomms.models import incident_id_from_ref
    from outagecomms.values import parse_time

    iid = incident_id_from_ref(incident)
    a = _app()
    when = parse_time(at, now=a.clock(), field="--at") if at else None
    created = do_resolve(a, iid, message, at=when, send=not no_send)
    _round_cmd_output(a, created, not (no_send or queue_only), as_json, "resolution")


@app.command()
@handle_errors
def edit(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    title: Annotated[str | None, typer.Option("--title")] = None,
    severity: Annotated[str | None, typer.Option("--severity", "-s")] = None,
    started_at: Annotated[
        str | None, typer.Option("--started-at", help="When customers were first hurt.")
    ] = None,
    resolved_at: Annotated[
        str | None, typer.Option("--resolved-at", help="When service was restored.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Correct an incident's facts; proposed credits are recomputed, nothing is sent."""
    from outagecomms.incidents.lifecycle import edit_incident
    from outagecomms.incidents.views import incident_dict
    from outagecomms.models import incident_id_from_ref
    from outagecomms.values import parse_time

    iid = incident_id_from_ref(incident)
    a = _app()
    now = a.clock()
    inc = edit_incident(
        a, iid, title=title, severity=severity,
        started_at=parse_time(started_at, now=now, field="--started-at") if started_at else None,
        resolved_at=parse_time(resolved_at, now=now, field="--resolved-at") if resolved_at else None,
    )  # fmt: skip
    if as_json:
        _print_json(incident_dict(inc))
    else:
        err.print(f"[bold]{inc.ref}[/] updated")


@app.command()
@handle_errors
def credits(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    approve: Annotated[
        bool, typer.Option("--approve", help="Freeze the proposed credits.")
    ] = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write them for billing (spreadsheet-safe).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Service credits per affected customer (proposed at resolution)."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery import ledger

    iid = incident_id_from_ref(incident)
    a = _app()
    if approve:
        n = ledger.approve(a, iid)
        err.print(f"approved {n} credits")
    if csv_file is not None:
        n = ledger.export_csv(a, iid, csv_file)
        err.print(f"wrote {n} credits to {csv_file}")
    data = ledger.credits_report(a, iid)
    if as_json:
        _print_json(data)
        return
    table = Table("customer", "amount", "currency", "status", "rules", "goodwill")
    for c in data["credits"]:
        rules = "; ".join(f"{x['rule']} {x['amount']}" for x in c["lines"])
        _add_row(
            table,
            c["customer"],
            c["amount"],
            c["currency"],
            c["status"],
            rules,
            c["goodwill"] or "",
        )
    out.print(table)
    out.print("total: " + (", ".join(f"{v} {k}" for k, v in data["total"].items()) or "nothing"))


# --- seeing ---------------------------------------------------------------------------------


@app.command("list")
@handle_errors
def list_cmd(
    all_: Annotated[bool, typer.Option("--all", help="Include resolved incidents.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open incidents (with --all, resolved ones too)."""
    from outagecomms.incidents.views import list_incidents

    rows = list_incidents(_app(), include_resolved=all_)
    if as_json:
        _print_json({"incidents": rows})
        return
    table = Table(
        "incident", "severity", "status", "title", "audience", "started", "next update due"
    )
    for r in rows:
        _add_row(
            table,
            r["incident"],
            r["severity"],
            r["status"],
            r["title"],
            str(r["audience"]),
            (r["started_at"] or "")[:19],
            (r["next_update_due"] or "-")[:19],
        )
    out.print(table)


@app.command()
@handle_errors
def show(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    customer: Annotated[
        str | None, typer.Option("--customer", help="Show exactly what this customer was sent.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The incident's timeline of rounds with sent/failed/on-time counts."""
    from outagecomms.incidents.views import show_incident

    data = show_incident(_app(), incident, customer=customer)
    if as_json:
        _print_json(data)
        return
    out.print(
        f"[bold]{data['incident']}[/] {escape(data['title'])}  ({data['severity']}, {data['status']})"
    )
    out.print(
        f"started {data['started_at']}  declared {data['declared_at']}  resolved {data['resolved_at'] or '-'}\n"
        f"audience {data['audience']} customers ({_fmt_counts(data['channels'])}); "
        f"every {data['update_every_seconds']:g}s; next update due {data['next_update_due'] or '-'}"
    )
    if data["skipped"]:
        out.print(f"skipped: {_fmt_counts(data['skipped'])}")
    for f in data.get("flagged_contacts", []):
        out.print(
            f"skipped from now on: {f['customer']} on {f['channel']} ({f['contact']}): "
            f"{f['reason']}",
            markup=False,
        )
    pk = data["promises_kept"]
    if pk["owed"]:
        out.print(f"promises kept: {pk['on_time']}/{pk['owed']} ({100 * pk['ratio']:.1f}%)")
    table = Table(
        "#",
        "kind",
        "status",
        "created",
        "due by",
        "owed",
        "sent",
        "failed",
        "pending",
        "on time",
        "next by",
    )
    for r in data["rounds"]:
        _add_row(
            table,
            str(r["round"]),
            r["kind"],
            r["status"],
            (r["created_at"] or "")[11:19],
            (r["due_by"] or "-")[11:19],
            str(r["owed"]),
            str(r["sent"]),
            str(r["failed"]),
            str(r["pending"]) + (f" ({r['retrying']} retrying)" if r["retrying"] else ""),
            f"{r['on_time']}/{r['owed']}",
            (r["promised_next_by"] or "-")[11:19],
        )
    out.print(table)
    for e in data["events"]:
        if e["kind"] in ("reminder", "error"):
            out.print(f"{e['at'][:19]} {e['kind']}: {e['detail']}", markup=False)
    if customer is not None:
        for d in data["customer"]["deliveries"]:
            out.print(
                f"\n--- round {d['round']} {d['kind']} via {d['channel']}: {d['status']}"
                f" at {d['sent_at'] or '-'} ({'on time' if d['on_time'] else 'late' if d['sent_at'] else 'not sent'}) ---",
                markup=False,
            )
            if d["last_error"]:
                out.print(f"error: {d['last_error']}", markup=False)
            m = d["message"]
            if m:
                out.print(
                    f"To: {m['to']}\nMessage-ID: {m['message_id']}\nSubject: {m['subject']}\n\n{m['text']}",
                    markup=False,
                )


class _DefaultListGroup(typer.core.TyperGroup):
    """``deliveries INC ...`` means ``deliveries list INC ...``; ``deliveries retry INC`` is
    the subcommand (DESIGN §9 has both forms)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


deliveries_app = typer.Typer(
    help="An incident's deliveries (the outbox): `deliveries INC` lists, `deliveries retry INC`"
    " sends failed and dead ones again.",
    cls=_DefaultListGroup,
    no_args_is_help=True,
)
app.add_typer(deliveries_app, name="deliveries")


@deliveries_app.command("list")
@handle_errors
def deliveries_list(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, sending, sent, failed, dead, superseded."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List an incident's deliveries (the outbox)."""
    from outagecomms.outbox.deliveries import list_deliveries

    rows = list_deliveries(_app(), incident, status=status)
    if as_json:
        _print_json({"incident": incident.upper(), "count": len(rows), "deliveries": rows})
        return
    table = Table("id", "round", "customer", "channel", "status", "attempts", "sent_at", "error")
    for r in rows:
        _add_row(
            table,
            str(r["id"]),
            str(r["round"]),
            r["customer"],
            r["channel"],
            r["status"],
            str(r["attempts"]),
            (r["sent_at"] or "-")[:19],
            r["last_error"] or "",
        )
    out.print(table)


@deliveries_app.command("retry")
@handle_errors
def deliveries_retry(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    customer: Annotated[
        str | None, typer.Option("--customer", help="Only this customer's deliveries.")
    ] = None,
    queue_only: Annotated[
        bool, typer.Option("--queue-only", help="Queue them; a daemon or tick sends them.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send an incident's failed and dead deliveries again (those not superseded by a newer
    round). Exit 3 if some still fail."""
    from outagecomms.outbox.redelivery import retry_deliveries

    a = _app()
    res = retry_deliveries(a, incident, customer=customer)
    _note(
        as_json,
        f"{res.incident.ref}: {res.requeued} deliveries queued again"
        + (f"; {res.superseded} not resent (a newer round reached them)" if res.superseded else ""),
    )
    summary = None
    if res.requeued and not queue_only:
        summary = _send(a, res.incident.id, res.requeued, "retrying")
        _note(as_json, f"retry: {_summary_line(summary)}")
    if as_json:
        _print_json(
            {
                "incident": res.incident.ref,
                "requeued": res.requeued,
                "superseded": res.superseded,
                **_summary_json(summary),
            }
        )
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
@handle_errors
def preview(
    kind: Annotated[str, typer.Argument(help="acknowledgement, update, holding or resolution.")],
    customer: Annotated[str, typer.Option("--customer", help="Render for this customer.")],
    channel: Annotated[str, typer.Option("--channel", help="Template set.")] = "email",
    incident: Annotated[
        str | None, typer.Option("--incident", help="Use this incident's data.")
    ] = None,
    message: Annotated[
        str, typer.Option("--message", "-m")
    ] = "Our engineers have found the cause and are rolling out a fix.",
) -> None:
    """Render a template for one customer, without sending anything."""
    from outagecomms.rendering.preview import preview as do_preview

    r = do_preview(
        _app(), kind, customer_id=customer, channel=channel, incident=incident, message=message
    )
    out.print(f"Subject: {r.subject}\n", markup=False)
    out.print(r.text, markup=False)


# --- processes ------------------------------------------------------------------------------


@app.command()
@handle_errors
def tick(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Do everything due now (holding updates, reminders, pending sends), then exit. For cron."""
    import asyncio

    from outagecomms.scheduler.tick import tick as do_tick

    res = asyncio.run(do_tick(_app()))
    if as_json:
        _print_json(
            {
                "holding": res.due.holding,
                "follow_ups": res.due.follow_ups,
                "reminders": res.due.reminders,
                "errors": res.due.errors,
                **_summary_json(res.dispatch),
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
            err.print(f"dispatched {res.dispatch.claimed}: {_summary_line(res.dispatch)}")
    for e in res.due.errors:
        err.print(f"[red]error:[/] {e}")
    if res.due.errors:
        raise typer.Exit(EXIT_FAIL)
    if res.dispatch.failed or res.dispatch.dead:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
@handle_errors
def daemon(
    http: Annotated[
        str | None,
        typer.Option("--http", help="HOST:PORT for the feedback links (default: [daemon] http)."),
    ] = None,
) -> None:
    """Run the scheduler and the senders until SIGTERM. Picks up every open incident at start."""
    from outagecomms.scheduler.daemon import run_daemon

    a = _app()
    log = logging.getLogger("outagecomms.daemon")
    logging.getLogger("outagecomms").setLevel(logging.INFO)  # a daemon reports what it does
    log.info("outagecomms daemon: store %s, pid %d", a.store.url, os.getpid())
    run_daemon(a, http=http)


def _now() -> str:
    from outagecomms.values import utcnow

    return utcnow().strftime("%H:%M:%S")


def _follow(a: Any, incident_id: int) -> None:
    import asyncio

    from outagecomms.scheduler.daemon import Daemon
    from outagecomms.store import repository as repo

    def done() -> bool:
        from outagecomms.outbox.dispatch import pending_count

        with a.store.read() as conn:
            inc = repo.get_incident(conn, incident_id).incident
        return not inc.is_open and pending_count(a, incident_id) == 0

    err.print(
        f"following INC-{incident_id}: the scheduler runs here until it is resolved (Ctrl-C to stop)"
    )
    asyncio.run(
        Daemon(a, until=done, on_event=lambda m: err.print(f"{_now()} {m}", markup=False)).run()
    )
    err.print(f"INC-{incident_id} resolved; stopped following")


@app.command()
@handle_errors
def demo(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to keep the demo (default: a temp dir).")
    ] = None,
    every: Annotated[str, typer.Option("--every", help="Demo update cadence.")] = "3s",
) -> None:
    """A self-contained run of the main job: declare, promised updates, resolve (to a maildir)."""
    from outagecomms.demo import run_demo

    cadence = _duration(every, "--every")
    run_demo(directory, every=cadence, console=err.get())


@app.command()
@handle_errors
def watch(
    incident: Annotated[
        str | None, typer.Argument(help="INC-<n> (default: every open one).")
    ] = None,
    every: Annotated[float, typer.Option("--every", help="Refresh interval in seconds.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    """Live dashboard: fan-out progress, outcomes, countdown to the next promise. Ctrl-C exits."""
    import time

    from rich.live import Live

    from outagecomms.incidents.views import watch_snapshot

    a = _app()

    def frame() -> Any:
        table = Table(
            "incident",
            "sev",
            "status",
            "title",
            "latest round",
            "sent/owed",
            "failed",
            "pending",
            "next promise in",
            "recent",
            title="outagecomms watch",
            expand=True,
        )
        for row in watch_snapshot(a, incident):
            r = row["latest_round"] or {}
            left = row["seconds_to_promise"]
            countdown = (
                "-"
                if left is None
                else (
                    f"{int(left) // 60}m{int(left) % 60:02d}s"
                    if left >= 0
                    else f"LATE {int(-left)}s"
                )
            )
            recent = "; ".join(f"{e['kind']}: {e['detail']}" for e in row["recent"][-2:])
            _add_row(
                table, row["incident"], row["severity"], row["status"], row["title"],
                f"#{r.get('round', '-')} {r.get('kind', '')}", f"{r.get('sent', 0)}/{r.get('owed', 0)}",
                str(r.get("failed", 0)), str(r.get("pending", 0)), countdown, recent[:80],
            )  # fmt: skip
        return table

    if once:
        out.print(frame())
        return
    try:
        with Live(frame(), console=out.get(), refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(max(0.2, every))
                live.update(frame())
    except KeyboardInterrupt:
        pass


db_app = typer.Typer(help="The store.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Bring the store's schema to this version (also done automatically on open)."""
    from outagecomms.store.repository import HEAD_REVISION

    a = _app()
    err.print(
        f"store {a.store.url} is at revision {a.store.current_revision()} (head {HEAD_REVISION})"
    )


drafts_app = typer.Typer(
    help="Incidents proposed by monitoring alerts (POST /hooks/...): declare or dismiss.",
    no_args_is_help=True,
)
app.add_typer(drafts_app, name="drafts")


@drafts_app.command("list")
@handle_errors
def drafts_list(
    all_: Annotated[
        bool, typer.Option("--all", help="Include declared and dismissed drafts.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open drafts: what alerts propose, whether the alert still fires, how often it came."""
    from outagecomms.intake.drafts import draft_dict, list_drafts

    rows = [draft_dict(d) for d in list_drafts(_app(), include_closed=all_)]
    if as_json:
        _print_json({"count": len(rows), "drafts": rows})
        return
    if not rows:
        err.print("no drafts" if all_ else "no open drafts")
        return
    table = Table(
        "id", "status", "alert", "severity", "title", "components", "regions", "seen", "last seen",
        "incident",
    )  # fmt: skip
    for r in rows:
        _add_row(
            table, str(r["id"]), r["status"], r["alert"], r["severity"], r["title"],
            ",".join(r["components"]) or "-", ",".join(r["regions"]) or "-",
            f"{r['times_seen']}x", (r["last_seen"] or "")[:19], r["incident"] or "",
        )  # fmt: skip
    out.print(table)
    for r in rows:
        if r["note"]:
            out.print(f"draft {r['id']}: {r['note']}", markup=False)
    if rows and not all_:
        err.print("declare one with `outagecomms declare --from-draft ID`, or `drafts dismiss ID`")


@drafts_app.command("dismiss")
@handle_errors
def drafts_dismiss(
    draft_id: Annotated[int, typer.Argument(metavar="ID", help="The draft's id.")],
    note: Annotated[str, typer.Option("--note", help="Why it is not an incident.")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Decide an open draft is not an incident (its alert's repeats stay with it)."""
    from outagecomms.intake.drafts import dismiss, draft_dict

    d = dismiss(_app(), draft_id, note=note)
    if as_json:
        _print_json(draft_dict(d))
    else:
        err.print(f"draft {d.id} dismissed")


feedback_app = typer.Typer(help="Customer feedback (NPS).", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("record")
@handle_errors
def feedback_record(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    customer: Annotated[str, typer.Argument(help="Customer id.")],
    score: Annotated[int, typer.Argument(help="0-10: how likely to recommend us.")],
    comment: Annotated[str | None, typer.Option("--comment", help="What they told us.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record a score gathered elsewhere (a call, a survey tool)."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery.feedback import record_feedback

    iid = incident_id_from_ref(incident)
    a = _app()
    record_feedback(a, iid, customer, score, comment=comment, source="manual")
    if as_json:
        _print_json({"incident": f"INC-{iid}", "customer": customer, "score": score})
    else:
        err.print(f"recorded {score} from {customer} for INC-{iid}")


@app.command()
@handle_errors
def nps(
    incident: Annotated[
        str | None, typer.Argument(help="INC-<n> (default: all incidents).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Net Promoter Score: % promoters (9-10) minus % detractors (0-6), with counts."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery.feedback import nps as compute

    data = compute(_app(), incident_id_from_ref(incident) if incident else None)
    if as_json:
        _print_json(data)
        return
    score = "-" if data["nps"] is None else f"{data['nps']:+.1f}"
    out.print(
        f"NPS {score}: {data['responses']} responses, {data['promoters']} promoters, "
        f"{data['passives']} passives, {data['detractors']} detractors"
    )
    for c in data["comments"]:
        if c.get("comment"):
            out.print(f"  {c['customer']} ({c['score']}): {c['comment']}", markup=False)


@app.command()
@handle_errors
def report(
    incident: Annotated[str, typer.Argument(help="INC-<n>.")],
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file.")
    ] = None,
) -> None:
    """The post-incident report: timeline, promises kept, first notice, credits, NPS, KB stub."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery.report import write_report

    text = write_report(_app(), incident_id_from_ref(incident), fmt, output)
    if output is None:
        sys.stdout.write(text)
    else:
        err.print(f"wrote {output}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
