"""An incident's life and views of it: ``declare``, ``update``, ``resolve``, ``edit``, ``list``,
``show``, ``watch``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from outagecomms.cli import options as opt
from outagecomms.cli.exits import EXIT_PARTIAL
from outagecomms.cli.options import IncidentArg, JsonOpt, NoSendOpt, QueueOnlyOpt, YesOpt, open_app
from outagecomms.cli.output import Table, add_row, err, escape, fmt_counts, note, out, print_json
from outagecomms.cli.reply_output import (
    print_counts,
    print_customer_replies,
    replies_panel,
    reply_cell,
)
from outagecomms.cli.sending import confirm_send, sample_lines, send, summary_json, summary_line

if TYPE_CHECKING:
    from outagecomms.app import App
    from outagecomms.incidents.lifecycle import DeclarePlan, RoundCreated, RoundPlan
    from outagecomms.maintenance.views import MaintenanceWatchRow


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
    component: opt.SelComponent = None,
    region: opt.SelRegion = None,
    tier: opt.SelTier = None,
    tag: opt.SelTag = None,
    customer: opt.SelCustomer = None,
    exclude: opt.SelExclude = None,
    every: Annotated[
        str | None, typer.Option("--every", help="Update cadence, e.g. 30m (default: policy).")
    ] = None,
    allow_short_cadence: opt.ShortCadenceOpt = False,
    message: Annotated[str, typer.Option("--message", "-m", help="What we know so far.")] = "",
    message_de: opt.MessageDe = "",
    message_es: opt.MessageEs = "",
    message_fr: opt.MessageFr = "",
    message_fr_ca: opt.MessageFrCa = "",
    message_ja: opt.MessageJa = "",
    message_pt_br: opt.MessagePtBr = "",
    message_file: opt.MessageFileOpt = None,
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
    yes: YesOpt = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running the scheduler here until resolved.")
    ] = False,
    no_send: NoSendOpt = False,
    credits: opt.CreditsOpt = False,
    queue_only: QueueOnlyOpt = False,
    from_draft: Annotated[
        int | None,
        typer.Option(
            "--from-draft",
            help="Declare an alert's draft (`drafts list`): its title, severity, components "
            "and regions unless given here.",
        ),
    ] = None,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="Declare even though an open incident covers the same components/regions "
            "and some of these customers (another outage).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Declare an incident and acknowledge every affected customer at once."""
    from outagecomms.incidents.lifecycle import commit_declare, plan_declare
    from outagecomms.values import iso

    if from_draft is None and title is None:
        raise click.UsageError("Missing argument 'TITLE'.")
    if from_draft is None and severity is None:
        raise click.UsageError("Missing option '--severity' / '-s'.")
    message = opt.messages(
        message, message_file, de=message_de, es=message_es, fr=message_fr,
        fr_ca=message_fr_ca, ja=message_ja, pt_br=message_pt_br,
    )  # fmt: skip
    a = open_app()
    cadence = opt.duration(every, "every")
    started = opt.time(started_at, a.clock(), "started_at")
    selector = opt.selector(component, region, tier, tag, customer, exclude)
    draft = None
    if from_draft is not None:
        from outagecomms.intake.drafts import plan_from_draft

        plan, draft = plan_from_draft(
            a, from_draft, selector=selector, title=title, severity=severity, every=cadence,
            message=message, started_at=started, commander=commander or None,
            allow_short_cadence=allow_short_cadence,
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
            allow_short_cadence=allow_short_cadence,
        )
    channels = plan.audience.channel_counts()
    if draft is not None and draft.resolved_at is not None and draft.alert_state == "resolved":
        note(as_json, f"note: draft {draft.id}'s alert resolved at {draft.resolved_at:%H:%M} UTC")
    for w in plan.warnings:  # before the prompt; --json has them in "warnings" too
        note(as_json, f"warning: {w}")
    if dry_run:
        _print_dry_run(plan, channels, as_json)
        return
    _refuse_duplicate(plan, new=new, no_send=no_send)
    if not no_send:  # --queue-only sends too: a daemon or tick sends what it queues
        confirm_send(
            yes,
            f"Declare [bold]{escape(plan.incident.title)}[/] ({plan.incident.severity}) and notify "
            f"[bold]{plan.audience.size}[/] customers ({fmt_counts(channels)})?",
            sample_lines(
                plan.sample,
                plan.sample_customer.id if plan.sample_customer else None,
                plan.sample_channel,
                "acknowledgement",
            ),
            "Send the acknowledgement now?",
        )
    if draft is not None:
        from outagecomms.intake.drafts import commit_from_draft

        created = commit_from_draft(
            a, plan, draft, send=not no_send, verify_secrets=not queue_only, new=new,
            credits=credits,
        )  # fmt: skip
    else:  # --queue-only: a daemon or tick sends, with its own environment's secrets
        created = commit_declare(
            a, plan, send=not no_send, verify_secrets=not queue_only, new=new, credits=credits
        )
    inc = created.incident
    if no_send:
        err.print(f"[bold]{inc.ref}[/] recorded for {plan.audience.size} customers; nothing sent")
    else:
        err.print(
            f"[bold]{inc.ref}[/] declared: {plan.audience.size} customers, next update promised "
            f"by {inc.next_update_due:%H:%M:%S} UTC"
        )
    summary = None if (no_send or queue_only) else send(a, inc.id, created.queued, "acknowledging")
    if summary is not None:
        err.print(f"acknowledgement: {summary_line(summary)}")
    if as_json:
        print_json(
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
                "warnings": list(plan.warnings),
                **({"draft": draft.id} if draft is not None else {}),
                **summary_json(summary),
            }
        )
    if follow:
        _follow(a, inc.id)
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)


def _refuse_duplicate(plan: DeclarePlan, *, new: bool, no_send: bool) -> None:
    """Before any prompt: a declare that repeats an open incident stops here (exit 2), unless
    ``--new``; ``--no-send`` (history) tells nobody and is not checked."""
    from outagecomms.incidents.lifecycle import refuse_duplicate

    if not new and not no_send:
        refuse_duplicate(plan)


def _print_dry_run_overlaps(plan: DeclarePlan) -> None:
    for o in plan.overlaps:
        err.print(
            f"note: {o.incident.ref} ({escape(o.incident.title)}) is open and already covers "
            f"{o.covered} of these {o.of} customers: declaring needs --new"
        )


def _print_dry_run(plan: DeclarePlan, channels: dict[str, int], as_json: bool) -> None:
    from outagecomms.values import iso

    by_customer = plan.audience.channels_by_customer()
    sample = plan.sample
    if as_json:
        print_json(
            {
                "dry_run": True,
                "incident": None,
                "audience": plan.audience.size,
                "round": 1,
                "promised_next_by": iso(plan.incident.next_update_due),
                "channels": channels,
                "skipped": plan.audience.skipped,
                "warnings": list(plan.warnings),
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
                "overlaps": [o.to_json() for o in plan.overlaps],
            }
        )
        return
    table = Table(
        "customer", "name", "tier", "timezone", "channels", title="would be told (dry run)"
    )
    for c in plan.audience.customers:
        add_row(
            table, c.id, c.name, c.tier, c.timezone, ", ".join(by_customer.get(c.id, [])) or "-"
        )
    out.print(table)
    out.print(f"{plan.audience.size} customers; {fmt_counts(channels)}")
    if plan.audience.skipped:
        out.print(f"skipped: {fmt_counts(plan.audience.skipped)}")
    if sample and plan.sample_customer:
        out.print(
            f"\n--- acknowledgement for {plan.sample_customer.id} on {plan.sample_channel} ---"
        )
        out.print(f"Subject: {sample.subject}\n", markup=False)
        out.print(sample.text, markup=False)
    _print_dry_run_overlaps(plan)
    err.print("dry run: nothing was written or sent")


def _follow(a: App, incident_id: int) -> None:
    from outagecomms.scheduler.daemon import follow
    from outagecomms.values import utcnow

    err.print(
        f"following INC-{incident_id}: the scheduler runs here until it is resolved (Ctrl-C to stop)"
    )
    follow(
        a,
        incident_id,
        on_event=lambda m: err.print(f"{utcnow():%H:%M:%S} {m}", markup=False),
    )
    err.print(f"INC-{incident_id} resolved; stopped following")


def _post_round(
    incident: str,
    no_send: bool,
    queue_only: bool,
    yes: bool,
    as_json: bool,
    label: str,
    preview: Callable[[App, int], RoundPlan],
    post: Callable[[App, int, bool], RoundCreated],
) -> None:
    """``update`` and ``resolve``: unless ``--no-send``, check and render the round
    (``preview``) and ask before sending it (``--yes``: don't); then record it (``post(app,
    incident id, no_send)``), send it here unless told not to, print what happened."""
    from outagecomms.models import incident_id_from_ref

    iid = incident_id_from_ref(incident)
    a = open_app()
    if not no_send and not yes:  # --yes: nothing to ask, so nothing to render twice
        plan = preview(a, iid)
        customer, channel, rendered = plan.sample(a)
        audience = plan.incident.audience_size
        confirm_send(
            yes,
            f"Send the {label} of [bold]{plan.incident.ref}[/] "
            f"({escape(plan.incident.title)}) to [bold]{audience}[/] customers "
            f"({fmt_counts(plan.channels)})?",
            sample_lines(rendered, customer.id if customer else None, channel, label),
            f"Send the {label} now?",
        )
    created = post(a, iid, no_send)
    inc = created.incident
    summary = None if (no_send or queue_only) else send(a, inc.id, created.queued, label)
    promise = (
        f"next update promised by {inc.next_update_due:%H:%M:%S} UTC"
        if inc.next_update_due
        else "no more updates promised"
    )
    note(
        as_json,
        f"{inc.ref} round {created.round.seq} ({created.round.kind.value}) queued for {created.queued}; {promise}",
    )
    if summary is not None:
        note(as_json, f"{label}: {summary_line(summary)}")
    if as_json:
        print_json(_round_json(created, summary))
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)


def update(
    incident: IncidentArg,
    message: Annotated[str, typer.Argument(help="What customers should know now.")],
    message_de: opt.MessageDe = "",
    message_es: opt.MessageEs = "",
    message_fr: opt.MessageFr = "",
    message_fr_ca: opt.MessageFrCa = "",
    message_ja: opt.MessageJa = "",
    message_pt_br: opt.MessagePtBr = "",
    message_file: opt.MessageFileOpt = None,
    status: Annotated[
        str | None, typer.Option("--status", help="investigating, identified or monitoring.")
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="New cadence from now on, e.g. 1h.")
    ] = None,
    allow_short_cadence: opt.ShortCadenceOpt = False,
    no_send: NoSendOpt = False,
    queue_only: QueueOnlyOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Post the commander's update: sent at once, and the cadence restarts from now."""
    from outagecomms.incidents.lifecycle import post_update, preview_update

    message = opt.messages(
        message, message_file, de=message_de, es=message_es, fr=message_fr,
        fr_ca=message_fr_ca, ja=message_ja, pt_br=message_pt_br,
    )  # fmt: skip

    cadence = opt.duration(every, "every")

    def preview(a: App, iid: int) -> RoundPlan:
        return preview_update(
            a, iid, message, status=status, every=cadence, allow_short_cadence=allow_short_cadence
        )

    def post(a: App, iid: int, record_only: bool) -> RoundCreated:
        return post_update(
            a, iid, message, status=status, every=cadence, send=not record_only,
            verify_secrets=not queue_only, allow_short_cadence=allow_short_cadence,
        )  # fmt: skip

    _post_round(incident, no_send, queue_only, yes, as_json, "update", preview, post)


def resolve(
    incident: IncidentArg,
    message: Annotated[str, typer.Argument(help="What happened and what we fixed.")],
    message_de: opt.MessageDe = "",
    message_es: opt.MessageEs = "",
    message_fr: opt.MessageFr = "",
    message_fr_ca: opt.MessageFrCa = "",
    message_ja: opt.MessageJa = "",
    message_pt_br: opt.MessagePtBr = "",
    message_file: opt.MessageFileOpt = None,
    at: Annotated[
        str | None, typer.Option("--at", help="When service was restored (ISO 8601 or -10m).")
    ] = None,
    no_send: NoSendOpt = False,
    credits: opt.CreditsOpt = False,
    queue_only: QueueOnlyOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send the resolution notice and stop the updates."""
    from outagecomms.incidents.lifecycle import preview_resolve
    from outagecomms.incidents.lifecycle import resolve as do_resolve

    message = opt.messages(
        message, message_file, de=message_de, es=message_es, fr=message_fr,
        fr_ca=message_fr_ca, ja=message_ja, pt_br=message_pt_br,
    )  # fmt: skip

    def preview(a: App, iid: int) -> RoundPlan:
        return preview_resolve(a, iid, message, resolved_at=opt.time(at, a.clock(), "at"))

    def post(a: App, iid: int, record_only: bool) -> RoundCreated:
        return do_resolve(
            a, iid, message, resolved_at=opt.time(at, a.clock(), "at"), send=not record_only,
            verify_secrets=not queue_only, credits=credits,
        )  # fmt: skip

    _post_round(incident, no_send, queue_only, yes, as_json, "resolution", preview, post)


def _confirm(question: str, detail: str, *, yes: bool, no_send: bool) -> None:
    """A sending command's confirmation at a terminal (``--yes`` or ``--no-send``: none);
    without a terminal on stdin it refuses, as ``declare`` does (``confirm_send``)."""
    if not no_send:
        confirm_send(yes, detail, [], question)


def _round_json(created: RoundCreated, summary: Any, **more: Any) -> dict[str, Any]:
    from outagecomms.values import iso

    inc = created.incident
    return {
        "incident": inc.ref,
        "status": inc.status.value,
        "round": created.round.seq,
        "kind": created.round.kind.value,
        "queued": created.queued,
        "audience": inc.audience_size,
        "promised_next_by": iso(inc.next_update_due),
        "resolved_at": iso(inc.resolved_at),
        **more,
        **summary_json(summary),
    }


def void(
    incident: IncidentArg,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why, as the customers already told will read it (e.g. a false alarm; a "
            "duplicate of INC-4, where updates continue).",
        ),
    ],
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Tell nobody: record the void only.")
    ] = False,
    queue_only: QueueOnlyOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Take back a false alarm or a duplicate: no more updates, follow-up or credits; those
    already told get a short "please disregard" notice."""
    from outagecomms.incidents.corrections import told_channels
    from outagecomms.incidents.corrections import void as do_void
    from outagecomms.models import incident_id_from_ref

    iid = incident_id_from_ref(incident)
    a = open_app()
    told = told_channels(a, iid)
    _confirm(
        "Send the notice now?",
        f"Void INC-{iid} and ask {sum(told.values())} recipients to disregard it "
        f"({fmt_counts(told) or 'nobody was told yet'})?",
        yes=yes,
        no_send=no_send,
    )
    created = do_void(a, iid, reason, send=not no_send, verify_secrets=not queue_only)
    summary = None if (no_send or queue_only) else send(a, iid, created.queued, "void")
    told_now = "nothing sent" if no_send else f"{created.queued} told to disregard it"
    note(
        as_json,
        f"{created.incident.ref} voided: {told_now}; no more updates, follow-up or credits",
    )
    if summary is not None:
        note(as_json, f"void: {summary_line(summary)}")
    if as_json:
        print_json(_round_json(created, summary, reason=created.round.message))
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)


def _spans_json(spans: list[tuple[Any, Any]]) -> list[dict[str, str | None]]:
    from outagecomms.values import iso

    return [{"started_at": iso(a), "resolved_at": iso(b)} for a, b in spans]


def reopen(
    incident: IncidentArg,
    message: Annotated[str, typer.Argument(help="What customers should know: it is back.")],
    every: Annotated[
        str | None,
        typer.Option("--every", help="Update cadence from now on (default: the incident's)."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="When the outage came back (ISO 8601 or -10m; default now)."),
    ] = None,
    allow_short_cadence: opt.ShortCadenceOpt = False,
    no_send: NoSendOpt = False,
    queue_only: QueueOnlyOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The outage came back after `resolve`: the audience hears it is back, the cadence
    resumes, and the next `resolve` computes downtime and credits over both spans."""
    from outagecomms.incidents.corrections import incident_spans
    from outagecomms.incidents.corrections import reopen as do_reopen
    from outagecomms.models import incident_id_from_ref
    from outagecomms.values import iso

    iid = incident_id_from_ref(incident)
    a = open_app()
    cadence = opt.duration(every, "every")
    back = opt.time(at, a.clock(), "back_at")
    _confirm(
        "Send it now?",
        f"Reopen INC-{iid} and tell its whole audience the outage is back?",
        yes=yes,
        no_send=no_send,
    )
    created = do_reopen(
        a, iid, message, every=cadence, back_at=back, send=not no_send,
        verify_secrets=not queue_only, allow_short_cadence=allow_short_cadence,
    )  # fmt: skip
    inc = created.incident
    summary = None if (no_send or queue_only) else send(a, iid, created.queued, "reopened")
    promise = (
        f"next update promised by {inc.next_update_due:%H:%M:%S} UTC"
        if inc.next_update_due
        else "nothing sent, nothing promised"
    )
    note(
        as_json,
        f"{inc.ref} reopened: round {created.round.seq} queued for {created.queued}; {promise}",
    )
    if summary is not None:
        note(as_json, f"reopened: {summary_line(summary)}")
    if as_json:
        spans = incident_spans(a, iid)
        print_json(
            _round_json(created, summary, reopened_at=iso(spans[-1][0]), spans=_spans_json(spans))
        )
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)


def edit(
    incident: IncidentArg,
    title: Annotated[str | None, typer.Option("--title")] = None,
    severity: Annotated[str | None, typer.Option("--severity", "-s")] = None,
    started_at: Annotated[
        str | None, typer.Option("--started-at", help="When customers were first hurt.")
    ] = None,
    resolved_at: Annotated[
        str | None, typer.Option("--resolved-at", help="When service was restored.")
    ] = None,
    send_corrections: Annotated[
        bool,
        typer.Option(
            "--send-corrections",
            help="With --yes: send a correction (a credit notice) to each customer whose "
            "announced credit amount changed.",
        ),
    ] = False,
    queue_only: QueueOnlyOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Correct an incident's facts; proposed credits are recomputed. A change to a credit that
    was approved or that a customer was told is shown per customer and needs --yes; nothing is
    sent unless --send-corrections."""
    from outagecomms.incidents.lifecycle import edit as do_edit
    from outagecomms.incidents.views import IncidentSummary
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery.ledger import CreditChangesNeedConfirmation

    iid = incident_id_from_ref(incident)
    if send_corrections and not yes:
        raise click.UsageError("--send-corrections sends: pass --yes too")
    a = open_app()
    now = a.clock()
    try:
        done = do_edit(
            a, iid, title=title, severity=severity,
            started_at=opt.time(started_at, now, "started_at"),
            resolved_at=opt.time(resolved_at, now, "resolved_at"),
            confirm=yes, send_corrections=send_corrections, actor=os.environ.get("USER", ""),
        )  # fmt: skip
    except CreditChangesNeedConfirmation as exc:
        _print_credit_changes(exc.changes, as_json)
        if as_json:
            print_json(
                {"incident": f"INC-{iid}", "applied": False,
                 "credit_changes": [c.to_json() for c in exc.changes]}
            )  # fmt: skip
        raise
    inc = done.incident
    summary = None
    if done.corrections_queued and not queue_only:
        summary = send(a, inc.id, done.corrections_queued, "credit corrections")
    if not as_json:
        _print_credit_changes(done.credit_changes, as_json)
    note(as_json, f"{inc.ref} updated")
    if done.correction_round is not None:
        note(as_json, f"credit corrections queued for {done.corrections_queued}")
    if summary is not None:
        note(as_json, f"credit corrections: {summary_line(summary)}")
    if as_json:
        print_json(
            {
                **IncidentSummary.of(inc).to_json(),
                "applied": True,
                "credit_changes": [c.to_json() for c in done.credit_changes],
                "corrections_queued": done.corrections_queued,
                **(summary_json(summary) if summary is not None else {}),
            }
        )
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)


def _print_credit_changes(changes: Sequence[Any], as_json: bool) -> None:
    """Before/after per customer, on stderr (with --json the document says it)."""
    if not changes or as_json:
        return
    table = Table(
        "customer", "told", "credit before", "credit after", "offer before", "offer after"
    )
    for c in changes:
        add_row(
            table, c.customer_id,
            f"{c.announced_amount} {c.currency}" if c.announced_amount is not None
            else ("the offer" if c.told else f"no ({c.status})"),
            f"{c.amount_before} {c.currency}", f"{c.amount_after} {c.currency}",
            c.goodwill_before or "-", c.goodwill_after or "-",
        )  # fmt: skip
    err.print(table)


def list_incidents(
    all_: Annotated[bool, typer.Option("--all", help="Include resolved incidents.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Open incidents (with --all, resolved ones too), then the scheduled and running
    maintenance windows."""
    from outagecomms.incidents.views import list_incidents as rows_of
    from outagecomms.maintenance.views import watch_windows

    a = open_app()
    rows = [r.to_json() for r in rows_of(a, include_resolved=all_)]
    windows = [w.to_json() for w in watch_windows(a)]
    if as_json:
        print_json({"incidents": rows, "maintenance": windows})
        return
    table = Table(
        "incident", "severity", "status", "title", "audience", "started", "next update due"
    )
    for r in rows:
        add_row(
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
    if windows:
        mt = Table("maintenance", "status", "title", "audience", "start", "end")
        for w in windows:
            add_row(
                mt, w["maintenance"], w["status"], w["title"], str(w["audience"]),
                w["start"][:19], w["end"][:19],
            )  # fmt: skip
        out.print(mt)


def show(
    incident: IncidentArg,
    customer: Annotated[
        str | None,
        typer.Option(
            "--customer",
            help="Show exactly what this customer was sent, what they sent back and what we "
            "sent because of it.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The incident's timeline of rounds with sent/failed/on-time counts, and its replies by
    kind and label."""
    from outagecomms.incidents.views import show_incident

    data = show_incident(open_app(), incident, customer=customer).to_json()
    if as_json:
        print_json(data)
        return
    out.print(
        f"[bold]{data['incident']}[/] {escape(data['title'])}  ({data['severity']}, {data['status']})"
    )
    out.print(
        f"started {data['started_at']}  declared {data['declared_at']}  resolved {data['resolved_at'] or '-'}\n"
        f"audience {data['audience']} customers ({fmt_counts(data['channels'])}); "
        f"every {data['update_every_seconds']:g}s; next update due {data['next_update_due'] or '-'}"
    )
    if len(data["downtime_spans"]) > 1:  # reopened
        spans = ", ".join(
            f"{s['started_at'][:19]} to {(s['resolved_at'] or 'now')[:19]}"
            for s in data["downtime_spans"]
        )
        out.print(f"downtime spans (reopened): {spans}")
    if data["maintenance"]:
        out.print(f"overran from maintenance {data['maintenance']}")
    if data["skipped"]:
        out.print(f"skipped: {fmt_counts(data['skipped'])}")
    for f in data.get("flagged_contacts", []):
        out.print(
            f"skipped from now on: {f['customer']} on {f['channel']} ({f['contact']}): "
            f"{f['reason']}",
            markup=False,
        )
    print_counts(data["replies"])
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
        add_row(
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
        if e["kind"] in SHOWN_EVENTS:
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
        print_customer_replies(data["customer"])


#: the events ``show`` prints under the rounds (``--json`` has them all)
SHOWN_EVENTS = ("reminder", "error", "voided", "reopened")


def _countdown(left: float | None) -> str:
    if left is None:
        return "-"
    if left >= 0:
        return f"{int(left) // 60}m{int(left) % 60:02d}s"
    return f"LATE {int(-left)}s"


def _reminder_cell(left: float | None) -> str:
    """Reminders are hours or days away: minutes and seconds only in the last hour."""
    if left is None or left < 0:
        return "due now"
    if left < 3600:
        return _countdown(left)
    from datetime import timedelta

    from outagecomms.values import format_duration

    return format_duration(timedelta(minutes=int(left) // 60))


def maintenance_table(rows: Sequence[MaintenanceWatchRow]) -> Any:
    """``watch``'s maintenance panel (below the incidents), or None when no window is open."""
    if not rows:
        return None
    table = Table(
        "maintenance", "status", "title", "window (UTC)", "next reminder (UTC)", "sent",
        "pending", "failed", "incident", title="scheduled maintenance", expand=True,
    )  # fmt: skip
    for w in rows:
        window = f"{w.starts_at:%Y-%m-%d %H:%M}\u2013{w.ends_at:%Y-%m-%d %H:%M}"
        reminder = (
            "-"
            if w.next_reminder_at is None
            else f"{w.next_reminder_at:%m-%d %H:%M} ({_reminder_cell(w.seconds_to_reminder)})"
        )
        add_row(
            table, w.ref, w.status.value, w.title, window, reminder, str(w.sent),
            str(w.pending), str(w.failed), w.incident or "-",
        )  # fmt: skip
    return table


def watch(
    incident: Annotated[
        str | None, typer.Argument(help="INC-<n> (default: every open one).")
    ] = None,
    every: Annotated[float, typer.Option("--every", help="Refresh interval in seconds.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    """Live dashboard: fan-out progress, outcomes, countdown to the next promise, the open
    maintenance windows, and the newest replies (negative ones highlighted). Ctrl-C exits."""
    import time

    from rich.console import Group
    from rich.live import Live

    from outagecomms.incidents.views import watch_replies, watch_snapshot
    from outagecomms.maintenance.views import watch_windows

    a = open_app()

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
            "replies",
            "recent",
            title="outagecomms watch",
            expand=True,
        )
        rows = watch_snapshot(a, incident)
        for row in (w.to_json() for w in rows):
            r = row["latest_round"] or {}
            recent = "; ".join(f"{e['kind']}: {e['detail']}" for e in row["recent"][-2:])
            add_row(
                table, row["incident"], row["severity"], row["status"], row["title"],
                f"#{r.get('round', '-')} {r.get('kind', '')}", f"{r.get('sent', 0)}/{r.get('owed', 0)}",
                str(r.get("failed", 0)), str(r.get("pending", 0)),
                _countdown(row["seconds_to_promise"]), reply_cell(row["replies"]), recent[:80],
            )  # fmt: skip
        panels: list[Any] = [table]
        if incident is None:  # one incident named: its frame only
            windows = maintenance_table(watch_windows(a))
            if windows is not None:
                panels.append(windows)
        panels.append(replies_panel([x.to_json() for x in watch_replies(a, rows)]))
        return Group(*panels)

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
