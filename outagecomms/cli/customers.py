"""``customers import`` and ``customers list``: the customer directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from outagecomms.cli import options as opt
from outagecomms.cli.exits import Group
from outagecomms.cli.options import JsonOpt, YesOpt, open_app
from outagecomms.cli.output import Table, add_row, err, escape, out, print_json

customers = Group(help="The customer directory.", no_args_is_help=True)


@customers.command("import")
def customers_import(
    file: Annotated[Path, typer.Argument(help="CSV, JSON or JSONL file.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, json or jsonl (default: by extension).")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Remove customers not in the file.")
    ] = False,
    allow_mixed_script: Annotated[
        bool,
        typer.Option(
            "--allow-mixed-script",
            help="Accept email domains that mix scripts (Latin and Cyrillic letters: the "
            "look-alike domains of phishing).",
        ),
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import the directory: all rows or none. Re-importing updates customers by id.

    With --replace, removing customers of an open incident's audience needs --yes."""
    from outagecomms.directory.importer import import_file

    res = import_file(
        open_app(), file, fmt=fmt, replace=replace, allow_mixed_script=allow_mixed_script, yes=yes
    ).to_json()
    if as_json:
        print_json(res)
    else:
        err.print(
            f"imported {res['rows']} customers from {file}: {res['created']} new, {res['updated']} updated"
            + (f", {res['removed']} removed" if replace else "")
            + (
                f" ({res['kept_for_open_incidents']} kept for the open incidents they are in)"
                if res["kept_for_open_incidents"]
                else ""
            )
        )


@customers.command("list")
def customers_list(
    component: opt.SelComponent = None,
    region: opt.SelRegion = None,
    tier: opt.SelTier = None,
    tag: opt.SelTag = None,
    customer: opt.SelCustomer = None,
    exclude: opt.SelExclude = None,
    as_json: JsonOpt = False,
) -> None:
    """List customers, filtered with the same selectors as `declare`."""
    from outagecomms.directory.views import list_customers

    rows = list_customers(open_app(), opt.selector(component, region, tier, tag, customer, exclude))
    if as_json:
        print_json({"count": len(rows), "customers": [c.to_json() for c in rows]})
        return
    flagged = any(c.flagged for c in rows)
    columns = ["id", "name", "tier", "components", "regions", "tags", "timezone", "email"]
    table = Table(*columns, *(["flagged"] if flagged else []))
    for c in rows:
        extra = [", ".join(f.split(" (")[0] for f in c.flagged) or "-"] if flagged else []
        add_row(
            table,
            c.id,
            c.name,
            c.tier,
            ",".join(c.components),
            ",".join(c.regions),
            ",".join(c.tags),
            c.timezone,
            c.email,
            *extra,
        )
    out.print(table)
    for c in rows:
        for f in c.flagged:
            err.print(f"{escape(c.id)}: skipped from now on: {escape(f)}", highlight=False)
    err.print(f"{len(rows)} customers")
