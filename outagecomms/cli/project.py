"""Setting a project up and checking it: ``init``, ``doctor``, ``preview``, ``db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from outagecomms.cli.exits import Group
from outagecomms.cli.options import config_path, open_app
from outagecomms.cli.output import err, out


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
def db_upgrade() -> None:
    """Bring the store's schema to this version (also done automatically on open)."""
    from outagecomms.store.engine import HEAD_REVISION

    a = open_app()
    err.print(
        f"store {a.store.display_url} is at revision {a.store.current_revision()}"
        f" (head {HEAD_REVISION})"
    )


@db.command("init")
def db_init() -> None:
    """Create the store: a SQLite database's folder, and the schema of this version. Other
    commands never create a missing folder (a mistyped one would start an empty store)."""
    from outagecomms.config.loader import load_config
    from outagecomms.store.engine import open_store

    store = open_store(load_config(config_path()).store_url, create_folder=True)
    try:
        err.print(f"store {store.display_url} is ready at revision {store.current_revision()}")
    finally:
        store.dispose()
