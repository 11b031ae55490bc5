"""``maintenance schedule|list|show|update|reschedule|cancel|start|complete``: planned work,
told before it happens (``docs/maintenance.md``). Each write asks first (``--yes``: don't;
without a terminal it refuses, as ``declare`` does), then sends its notice from this process
(a daemon or ``tick`` sends what is left, and keeps the reminders)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from outagecomms.cli import options as opt
from outagecomms.cli.exits import EXIT_PARTIAL, Group
from outagecomms.cli.options import JsonOpt, YesOpt, open_app
from outagecomms.cli.output import Table, add_row, err, escape, fmt_counts, note, out, print_json
from outagecomms.cli.sending import confirm_send, sample_lines

if TYPE_CHECKING:
    from outagecomms.app import App
    from outagecomms.maintenance.lifecycle import NoticeCreated
    from outagecomms.models import MaintenanceNotice, MaintenanceWindow

maintenance = Group(
    help="Scheduled maintenance: announce planned work, remind, start, complete or cancel it.",
    no_args_is_help=True,
)

MaintenanceArg = Annotated[str, typer.Argument(help="The window, e.g. MNT-3.", metavar="MNT")]
MessageOpt = Annotated[
    str, typer.Option("--message", "-m", help="What customers should know (optional).")
]


def _window_json(w: MaintenanceWindow) -> dict[str, Any]:
    from outagecomms.values import format_duration, iso

    return {
        "maintenance": w.ref,
        "title": w.title,
        "status": w.status.value,
        "message": w.message,
        "components": list(w.components),
        "regions": list(w.regions),
        "selector": w.selector.to_json(),
        "start": iso(w.starts_at),
        "end": iso(w.ends_at),
        "sequence": w.sequence,
        "remind": [format_duration(r) for r in w.remind],
        "audience": w.audience_size,
        "commander": w.commander,
        "created_at": iso(w.created_at),
        "started_at": iso(w.started_at),
        "completed_at": iso(w.completed_at),
        "cancelled_at": iso(w.cancelled_at),
        "overrun_reminded_at": iso(w.overrun_reminded_at),
        "incident": f"INC-{w.incident_id}" if w.incident_id else None,
    }


def _notice_json(n: MaintenanceNotice, counts: dict[str, int]) -> dict[str, Any]:
    from outagecomms.values import iso

    return {
        "notice": n.seq,
        "kind": n.kind.value,
        "status": n.status,
        "detail": n.detail,
        "message": n.message,
        "created_at": iso(n.created_at),
        "due_at": iso(n.due_at),
        "start": iso(n.starts_at),
        "end": iso(n.ends_at),
        "sequence": n.sequence,
        "deliveries": counts,
    }


def _send(a: App, created: NoticeCreated, as_json: bool) -> dict[str, Any]:
    from outagecomms.maintenance.sender import send_now

    s = send_now(a)
    note(
        as_json,
        f"{created.window.ref} notice {created.notice.seq} ({created.notice.kind.value}): "
        f"{s.sent} sent, {s.retry} to retry, {s.failed + s.dead} failed",
    )
    return {"queued": created.queued, "sent": s.sent, "retry": s.retry, "failed": s.failed + s.dead}


def _finish(a: App, created: NoticeCreated, as_json: bool, **more: Any) -> None:
    result = _send(a, created, as_json)
    result.update(more)
    if as_json:
        print_json(
            {**_window_json(created.window), "notice": created.notice.seq,
             "kind": created.notice.kind.value, **result}
        )  # fmt: skip
    if result["retry"] or result["failed"]:
        raise typer.Exit(EXIT_PARTIAL)


def _ask(yes: bool, w: MaintenanceWindow, what: str) -> None:
    confirm_send(
        yes,
        f"{what} [bold]{w.ref}[/] ({escape(w.title)}) and tell its [bold]{w.audience_size}[/] "
        "customers?",
        [],
        "Send the notice now?",
    )


@maintenance.command("schedule")
def schedule(
    title: Annotated[str, typer.Argument(help="The planned work, as customers will read it.")],
    start: Annotated[
        str, typer.Option("--start", help="When it starts: ISO 8601 (UTC unless it says) or +2d.")
    ],
    end: Annotated[str, typer.Option("--end", help="When it ends: ISO 8601 or +2d4h.")],
    component: opt.SelComponent = None,
    region: opt.SelRegion = None,
    tier: opt.SelTier = None,
    tag: opt.SelTag = None,
    customer: opt.SelCustomer = None,
    exclude: opt.SelExclude = None,
    message: MessageOpt = "",
    remind: Annotated[
        str | None,
        typer.Option(
            "--remind",
            help="Reminders before the start, e.g. 72h,24h,1h "
            "(default: [maintenance] remind; '' for none).",
        ),
    ] = None,
    commander: Annotated[
        str, typer.Option("--commander", help="Who runs the work (name or email).")
    ] = "",
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Announce planned work to the customers it touches, with a calendar invitation."""
    from outagecomms.config.maintenance import reminder_offsets
    from outagecomms.maintenance.lifecycle import plan_schedule
    from outagecomms.maintenance.lifecycle import schedule as do_schedule

    a = open_app()
    now = a.clock()
    offsets = None
    if remind is not None:
        offsets = reminder_offsets([r for r in remind.split(",") if r.strip()], field="remind")
    plan = plan_schedule(
        a,
        title=title,
        selector=opt.selector(component, region, tier, tag, customer, exclude),
        start=opt.time(start, now, "start"),
        end=opt.time(end, now, "end"),
        message=message,
        remind=offsets,
        commander=commander or os.environ.get("USER", ""),
    )
    w = plan.window
    for warning in plan.warnings:  # before the prompt; --json has them in "warnings" too
        note(as_json, f"warning: {warning}")
    confirm_send(
        yes,
        f"Announce [bold]{escape(w.title)}[/] ({w.starts_at:%Y-%m-%d %H:%M} to "
        f"{w.ends_at:%Y-%m-%d %H:%M} UTC) to [bold]{w.audience_size}[/] customers "
        f"({fmt_counts(plan.channel_counts())})?",
        sample_lines(
            plan.sample,
            plan.sample_customer.id if plan.sample_customer else None,
            plan.sample_channel,
            "announcement",
        ),
        "Send the announcement now?",
    )
    created = do_schedule(a, plan)
    err.print(f"[bold]{created.window.ref}[/] scheduled: {w.audience_size} customers")
    _finish(a, created, as_json, warnings=list(plan.warnings))


@maintenance.command("list")
def list_windows(
    all_: Annotated[
        bool, typer.Option("--all", help="Include completed and cancelled windows.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scheduled and running maintenance windows, soonest first."""
    from outagecomms.maintenance.lifecycle import windows

    rows = windows(open_app(), include_closed=all_)
    if as_json:
        print_json({"count": len(rows), "maintenance": [_window_json(w) for w in rows]})
        return
    if not rows:
        err.print("no maintenance windows" if all_ else "no scheduled maintenance")
        return
    table = Table("id", "status", "title", "start (UTC)", "end (UTC)", "components", "audience")
    for w in rows:
        add_row(
            table, w.ref, w.status.value, w.title, f"{w.starts_at:%Y-%m-%d %H:%M}",
            f"{w.ends_at:%Y-%m-%d %H:%M}", ", ".join(w.components) or "-", str(w.audience_size),
        )  # fmt: skip
    out.print(table)


@maintenance.command("show")
def show(window: MaintenanceArg, as_json: JsonOpt = False) -> None:
    """A window, and each of its notices with its deliveries (and why a reminder was skipped)."""
    from outagecomms.maintenance.lifecycle import show as do_show
    from outagecomms.models import maintenance_id_from_ref

    w, notices, counts = do_show(open_app(), maintenance_id_from_ref(window))
    if as_json:
        print_json(
            {**_window_json(w),
             "notices": [_notice_json(n, counts.get(n.id, {})) for n in notices]}
        )  # fmt: skip
        return
    out.print(f"[bold]{w.ref}[/] {escape(w.title)} ({w.status.value})", highlight=False)
    out.print(f"{w.starts_at:%Y-%m-%d %H:%M} to {w.ends_at:%Y-%m-%d %H:%M} UTC; "
              f"{w.audience_size} customers; sequence {w.sequence}")  # fmt: skip
    table = Table("#", "kind", "at (UTC)", "status", "deliveries")
    for n in notices:
        shown = n.detail if n.status == "skipped" else fmt_counts(counts.get(n.id, {}))
        add_row(table, str(n.seq), n.kind.value, f"{n.created_at:%Y-%m-%d %H:%M}", n.status, shown)
    out.print(table)


@maintenance.command("update")
def update(
    window: MaintenanceArg,
    message: Annotated[str, typer.Argument(help="What customers should know now.")],
    title: Annotated[str | None, typer.Option("--title", help="A new title.")] = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Tell the audience something new about a window (its invitation again, same times)."""
    from outagecomms.maintenance.lifecycle import open_window
    from outagecomms.maintenance.lifecycle import update as do_update
    from outagecomms.models import MaintenanceStatus, maintenance_id_from_ref

    a = open_app()
    mid = maintenance_id_from_ref(window)
    w = open_window(a, mid, MaintenanceStatus.SCHEDULED, MaintenanceStatus.IN_PROGRESS)
    _ask(yes, w, "Update")
    _finish(a, do_update(a, mid, message, title=title), as_json)


@maintenance.command("reschedule")
def reschedule(
    window: MaintenanceArg,
    start: Annotated[str | None, typer.Option("--start", help="The new start.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="The new end.")] = None,
    message: MessageOpt = "",
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Move a window: the invitation's SEQUENCE goes up, so calendars move the entry."""
    from outagecomms.maintenance.lifecycle import open_window
    from outagecomms.maintenance.lifecycle import reschedule as do_reschedule
    from outagecomms.models import MaintenanceStatus, maintenance_id_from_ref

    a = open_app()
    now = a.clock()
    mid = maintenance_id_from_ref(window)
    new_start, new_end = opt.time(start, now, "start"), opt.time(end, now, "end")
    w = open_window(a, mid, MaintenanceStatus.SCHEDULED)
    if new_start is None and new_end is None:
        from outagecomms.errors import InputError

        raise InputError("give the new times with {field:start} and/or {field:end}", field="start")
    _ask(yes, w, "Reschedule")
    _finish(a, do_reschedule(a, mid, start=new_start, end=new_end, message=message), as_json)


def _simple(kind: str) -> Any:
    def command(
        window: MaintenanceArg, message: MessageOpt = "", yes: YesOpt = False,
        as_json: JsonOpt = False,
    ) -> None:  # fmt: skip
        from outagecomms.maintenance import lifecycle
        from outagecomms.models import MaintenanceStatus, maintenance_id_from_ref

        a = open_app()
        mid = maintenance_id_from_ref(window)
        allowed: tuple[MaintenanceStatus, ...] = (MaintenanceStatus.SCHEDULED,)
        if kind == "complete":
            allowed += (MaintenanceStatus.IN_PROGRESS,)
        w = lifecycle.open_window(a, mid, *allowed)
        _ask(yes, w, kind.capitalize())
        created = getattr(lifecycle, kind)(a, mid, message)
        assert created is not None
        _finish(a, created, as_json)

    return command


cancel = _simple("cancel")
cancel.__doc__ = "Call a window off: calendars remove the entry (METHOD:CANCEL)."
start = _simple("start")
start.__doc__ = "The work begins now (else the scheduler starts it at its start time)."
complete = _simple("complete")
complete.__doc__ = "The work is done: the completion notice goes out."
maintenance.command("cancel")(cancel)
maintenance.command("start")(start)
maintenance.command("complete")(complete)
