"""``drafts list`` and ``drafts dismiss``: incidents proposed by monitoring alerts (declare one
with ``declare --from-draft``)."""

from __future__ import annotations

from typing import Annotated

import typer

from outagecomms.cli.exits import Group
from outagecomms.cli.options import JsonOpt, YesOpt, open_app
from outagecomms.cli.output import Table, add_row, err, out, print_json

drafts = Group(
    help="Incidents proposed by monitoring alerts (POST /hooks/...): declare or dismiss.",
    no_args_is_help=True,
)


@drafts.command("list")
def drafts_list(
    all_: Annotated[
        bool, typer.Option("--all", help="Include declared and dismissed drafts.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Open drafts: what alerts propose, whether the alert still fires, how often it came."""
    from outagecomms.intake.drafts import draft_dict, list_drafts

    rows = [draft_dict(d) for d in list_drafts(open_app(), include_closed=all_)]
    if as_json:
        print_json({"count": len(rows), "drafts": rows})
        return
    if not rows:
        err.print("no drafts" if all_ else "no open drafts")
        return
    table = Table(
        "id", "status", "alert", "severity", "title", "components", "regions", "seen", "last seen",
        "incident",
    )  # fmt: skip
    for r in rows:
        add_row(
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


@drafts.command("dismiss")
def drafts_dismiss(
    draft_id: Annotated[int, typer.Argument(metavar="ID", help="The draft's id.")],
    note: Annotated[str, typer.Option("--note", help="Why it is not an incident.")] = "",
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Decide an open draft is not an incident (its alert's repeats stay with it)."""
    from outagecomms.intake.drafts import dismiss, draft_dict

    d = dismiss(open_app(), draft_id, note=note)
    if as_json:
        print_json(draft_dict(d))
    else:
        err.print(f"draft {d.id} dismissed")
