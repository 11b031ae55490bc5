"""After the outage: ``credits``, ``feedback record``, ``nps``, ``report``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from outagecomms.cli.exits import EXIT_PARTIAL, Group
from outagecomms.cli.options import IncidentArg, JsonOpt, QueueOnlyOpt, YesOpt, open_app
from outagecomms.cli.output import Table, add_row, err, note, out, print_json, write_out
from outagecomms.cli.sending import confirm_send, send, summary_json, summary_line


def credits(
    incident: IncidentArg,
    approve: Annotated[
        bool,
        typer.Option(
            "--approve",
            help="Approve the proposed credits and send each customer a credit notice "
            "(the amount, why, any offer). Sends: needs --yes or a terminal's confirmation.",
        ),
    ] = False,
    customer: Annotated[
        list[str] | None,
        typer.Option(
            "--customer", help="With --approve: only this customer's credit (repeatable)."
        ),
    ] = None,
    adjust: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--adjust",
            metavar="ID AMOUNT",
            help="A person's decision: set customer ID's credit to AMOUNT (with --reason). "
            "It is then approved (and announced) with --approve.",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (with --adjust): recorded, not sent.")
    ] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write them for billing (spreadsheet-safe).")
    ] = None,
    queue_only: QueueOnlyOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Service credits per affected customer: proposed at resolution, approved at or under
    [credits] auto_approve_up_to, the rest held until --approve sends their credit notices."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery import ledger

    iid = incident_id_from_ref(incident)
    if customer and not approve:
        raise click.UsageError("--customer goes with --approve")
    if adjust is not None and not reason:
        raise click.UsageError("--adjust needs --reason: why this amount")
    if reason and adjust is None:
        raise click.UsageError("--reason goes with --adjust")
    a = open_app()
    actor = os.environ.get("USER", "")
    extra: dict[str, Any] = {}
    partial = False
    if adjust is not None:
        assert reason is not None
        row = ledger.adjust(a, iid, adjust[0], adjust[1], reason=reason, actor=actor)
        note(
            as_json,
            f"{row['customer']}: credit set to {row['amount']} {row['currency']} by "
            f"{row['adjusted']['by']}; approve it with `outagecomms credits INC-{iid} --approve`",
        )
    if approve:
        _confirm_approve(a, iid, customer or [], yes)
        done = ledger.approve(
            a, iid, customers=customer or [], actor=actor, verify_secrets=not queue_only
        )
        note(as_json, f"approved {done.approved} credits; credit notices queued for {done.queued}")
        summary = None
        if done.queued and not queue_only:
            summary = send(a, iid, done.queued, "credit notices")
            note(as_json, f"credit notices: {summary_line(summary)}")
        extra = {
            "approved": done.approved,
            "round": done.round.seq if done.round else None,
            "queued": done.queued,
            **summary_json(summary),
        }
        partial = summary is not None and bool(summary.problems)
    if csv_file is not None:
        n = ledger.export_csv(a, iid, csv_file)
        note(as_json, f"wrote {n} credits to {csv_file}")
    data = ledger.credits_report(a, iid)
    if as_json:
        print_json({**data, **extra})
    else:
        _print_credits(data)
    if partial:
        raise typer.Exit(EXIT_PARTIAL)


def _confirm_approve(a: Any, iid: int, customers: list[str], yes: bool) -> None:
    """``--approve`` sends: ``--yes``, or a terminal's confirmation; else exit 2."""
    if yes:
        return
    from outagecomms.recovery import ledger

    pending = [
        c for c in ledger.credits_report(a, iid)["credits"]
        if c["status"] == "proposed" and (not customers or c["customer"] in customers)
    ]  # fmt: skip
    confirm_send(
        yes,
        f"Approve {len(pending)} credits of INC-{iid} and send a credit notice to each customer "
        "whose credit is above 0?",
        [],
        "Send the credit notices now?",
        declined="nothing approved, nothing sent",
    )


def _print_credits(data: dict[str, Any]) -> None:
    table = Table("customer", "amount", "currency", "status", "rules", "goodwill", "decided")
    for c in data["credits"]:
        rules = "; ".join(f"{x['rule']} {x['amount']}" for x in c["lines"])
        decided = ""
        if c["adjusted"]:
            adj = c["adjusted"]
            decided = f"set by {adj['by']} (computed {adj['computed_amount']}): {adj['reason']}"
        elif c["approved_by"]:
            decided = f"approved by {c['approved_by']}"
        elif c["held"]:
            decided = "held: --approve sends it"
        add_row(
            table,
            c["customer"],
            c["amount"],
            c["currency"],
            c["status"],
            rules,
            c["goodwill"] or "",
            decided,
        )
    out.print(table)
    out.print("total: " + (", ".join(f"{v} {k}" for k, v in data["total"].items()) or "nothing"))
    for c in data["credits"]:
        if c["status"] == "review":  # the engine could not compute it: a person decides
            err.print(f"{c['customer']}: {escape(c['lines'][0]['detail'])}")


feedback = Group(help="Customer feedback (NPS).", no_args_is_help=True)


@feedback.command("record")
def feedback_record(
    incident: IncidentArg,
    customer: Annotated[str, typer.Argument(help="Customer id.")],
    score: Annotated[int, typer.Argument(help="0-10: how likely to recommend us.")],
    comment: Annotated[str | None, typer.Option("--comment", help="What they told us.")] = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Record a score gathered elsewhere (a call, a survey tool)."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery.feedback import record_feedback

    iid = incident_id_from_ref(incident)
    record_feedback(open_app(), iid, customer, score, comment=comment, source="manual")
    if as_json:
        print_json({"incident": f"INC-{iid}", "customer": customer, "score": score})
    else:
        err.print(f"recorded {score} from {customer} for INC-{iid}")


def nps(
    incident: Annotated[
        str | None, typer.Argument(help="INC-<n> (default: all incidents).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Net Promoter Score: % promoters (9-10) minus % detractors (0-6), with counts."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery.feedback import nps as compute

    data = compute(open_app(), incident_id_from_ref(incident) if incident else None)
    if as_json:
        print_json(data)
        return
    score = "-" if data["nps"] is None else f"{data['nps']:+.1f}"
    out.print(
        f"NPS {score}: {data['responses']} responses, {data['promoters']} promoters, "
        f"{data['passives']} passives, {data['detractors']} detractors"
    )
    for c in data["comments"]:
        if c.get("comment"):
            out.print(f"  {c['customer']} ({c['score']}): {c['comment']}", markup=False)


def report(
    incident: IncidentArg,
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file.")
    ] = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The post-incident report: timeline, promises kept, first notice, credits, NPS, KB stub."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery.report import write_report

    iid = incident_id_from_ref(incident)
    text = write_report(open_app(), iid, fmt, output)
    if as_json:
        file = None if output is None else str(output)
        print_json({"incident": f"INC-{iid}", "format": fmt, "file": file, "text": text})
    elif output is None:
        write_out(text)
    if output is not None:
        note(as_json, f"wrote {output}")
