"""Setting a project up and checking it: ``init``, ``doctor``, ``preview``, ``db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from outagecomms.cli.exits import Group
from outagecomms.cli.options import JsonOpt, YesOpt, open_app
from outagecomms.cli.output import err, note, out, print_json


def init(
    directory: Annotated[Path, typer.Argument(help="Where to write outagecomms.toml.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a commented outagecomms.toml, a templates/ override folder and sample customers."""
    from outagecomms.workspace.scaffold import init_project

    written = init_project(directory, force=force)
    for p in written:
        note(as_json, f"wrote {p}")
    note(
        as_json,
        f"next: edit {directory / 'outagecomms.toml'}, then `outagecomms customers import customers.csv`",
    )
    if as_json:
        print_json({"directory": str(directory), "written": [str(p) for p in written]})


def doctor() -> None:
    """Validate the config and every template (exit 2 on a problem)."""
    from outagecomms.workspace.doctor import doctor as run_doctor

    for line in run_doctor(open_app()):
        err.print(line)


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
        open_app(), kind, customer_id=customer, channel=channel, incident=incident, message=message
    )
    out.print(f"Subject: {r.subject}\n", markup=False)
    out.print(r.text, markup=False)


db = Group(help="The store.", no_args_is_help=True)


@db.command("upgrade")
def db_upgrade(yes: YesOpt = False, as_json: JsonOpt = False) -> None:
    """Bring the store's schema to this version (also done automatically on open)."""
    from outagecomms.store.engine import HEAD_REVISION

    a = open_app()
    revision = a.store.current_revision()
    if as_json:
        print_json({"revision": revision, "head": HEAD_REVISION})
    else:
        err.print(f"store {a.store.url} is at revision {revision} (head {HEAD_REVISION})")
