"""``deliveries [list] INC`` and ``deliveries retry INC``: an incident's outbox."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
import typer.core

from outagecomms.cli.exits import EXIT_PARTIAL, Group
from outagecomms.cli.options import IncidentArg, JsonOpt, YesOpt, open_app
from outagecomms.cli.output import Table, add_row, note, out, print_json
from outagecomms.cli.sending import send, summary_json, summary_line


class _DefaultListGroup(typer.core.TyperGroup):
    """``deliveries INC ...`` means ``deliveries list INC ...``; ``deliveries retry INC`` is
    the subcommand (docs/cli.md has both forms)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["list", *args]
        return super().parse_args(ctx, args)


deliveries = Group(
    help="An incident's deliveries (the outbox): `deliveries INC` lists, `deliveries retry INC`"
    " sends failed and dead ones again.",
    cls=_DefaultListGroup,
    no_args_is_help=True,
)


@deliveries.command("list")
def deliveries_list(
    incident: IncidentArg,
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, sending, sent, failed, dead, superseded."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List an incident's deliveries (the outbox)."""
    from outagecomms.outbox.deliveries import list_deliveries

    rows: list[dict[str, Any]] = [
        r.to_json() for r in list_deliveries(open_app(), incident, status=status)
    ]
    if as_json:
        print_json({"incident": incident.upper(), "count": len(rows), "deliveries": rows})
        return
    table = Table("id", "round", "customer", "channel", "status", "attempts", "sent_at", "error")
    for r in rows:
        add_row(
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


@deliveries.command("retry")
def deliveries_retry(
    incident: IncidentArg,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Only this customer's deliveries.")
    ] = None,
    queue_only: Annotated[
        bool, typer.Option("--queue-only", help="Queue them; a daemon or tick sends them.")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send an incident's failed and dead deliveries again (those not superseded by a newer
    round). Exit 3 if some still fail."""
    from outagecomms.outbox.redelivery import retry_deliveries

    a = open_app()
    res = retry_deliveries(a, incident, customer=customer)
    note(
        as_json,
        f"{res.incident.ref}: {res.requeued} deliveries queued again"
        + (f"; {res.superseded} not resent (a newer round reached them)" if res.superseded else ""),
    )
    summary = None
    if res.requeued and not queue_only:
        summary = send(a, res.incident.id, res.requeued, "retrying")
        note(as_json, f"retry: {summary_line(summary)}")
    if as_json:
        print_json(
            {
                "incident": res.incident.ref,
                "requeued": res.requeued,
                "superseded": res.superseded,
                **summary_json(summary),
            }
        )
    if summary is not None and summary.problems:
        raise typer.Exit(EXIT_PARTIAL)
