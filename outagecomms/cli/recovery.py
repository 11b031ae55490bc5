"""After the outage: ``credits``, ``feedback record``, ``nps``, ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from outagecomms.cli.exits import Group
from outagecomms.cli.options import IncidentArg, JsonOpt, YesOpt, open_app
from outagecomms.cli.output import Table, add_row, err, note, out, print_json, write_out


def credits(
    incident: IncidentArg,
    approve: Annotated[
        bool, typer.Option("--approve", help="Freeze the proposed credits.")
    ] = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write them for billing (spreadsheet-safe).")
    ] = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Service credits per affected customer (proposed at resolution)."""
    from outagecomms.models import incident_id_from_ref
    from outagecomms.recovery import ledger

    iid = incident_id_from_ref(incident)
    a = open_app()
    if approve:
        n = ledger.approve(a, iid)
        err.print(f"approved {n} credits")
    if csv_file is not None:
        n = ledger.export_csv(a, iid, csv_file)
        err.print(f"wrote {n} credits to {csv_file}")
    data = ledger.credits_report(a, iid)
    if as_json:
        print_json(data)
        return
    table = Table("customer", "amount", "currency", "status", "rules", "goodwill")
    for c in data["credits"]:
        rules = "; ".join(f"{x['rule']} {x['amount']}" for x in c["lines"])
        add_row(
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
