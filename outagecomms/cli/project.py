"""Setting a project up and checking it: ``init``, ``doctor``, ``preview``, ``db upgrade``,
``db init``, ``db prune``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from outagecomms.cli.exits import EXIT_USAGE, Group
from outagecomms.cli.options import JsonOpt, YesOpt, config_path, open_app
from outagecomms.cli.output import err, escape, note, out, print_json


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


def doctor(
    no_probe: Annotated[
        bool,
        typer.Option(
            "--no-probe",
            "--offline",
            help="Skip the network probes of the channels (secrets are still checked).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate the config and every template, check the secrets the daemon needs and probe
    every channel without sending anything (exit 2 on a problem, one line each)."""
    from outagecomms.workspace.channel_checks import check_channels
    from outagecomms.workspace.doctor import doctor as run_doctor

    a = open_app()
    lines = run_doctor(a)
    for line in lines:
        err.print(line, markup=False, highlight=False)
    report = check_channels(a, probe=not no_probe)
    for line in report.lines():
        err.print(line, markup=False, highlight=False)
    for problem in report.errors():
        err.print(f"[bold red]error:[/] {escape(problem)}", highlight=False)
    if as_json:
        print_json({"checks": lines, **report.to_json()})
    if not report.ok:
        raise typer.Exit(EXIT_USAGE)


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
        err.print(f"store {a.store.display_url} is at revision {revision} (head {HEAD_REVISION})")


@db.command("init")
def db_init(yes: YesOpt = False, as_json: JsonOpt = False) -> None:
    """Create the store: a SQLite database's folder, and the schema of this version. Other
    commands never create a missing folder (a mistyped one would start an empty store)."""
    from outagecomms.config.loader import load_config
    from outagecomms.store.engine import HEAD_REVISION, open_store

    store = open_store(load_config(config_path()).store_url, create_folder=True)
    try:
        revision = store.current_revision()
        if as_json:
            print_json({"store": store.display_url, "revision": revision, "head": HEAD_REVISION})
        else:
            err.print(f"store {store.display_url} is ready at revision {revision}")
    finally:
        store.dispose()


@db.command("prune")
def db_prune(
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            help="Delete what is older than this (e.g. 90d); default: [inbound] keep.",
            metavar="DURATION",
        ),
    ] = None,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete customers' replies (and what was sent because of them) older than [inbound]
    keep: they are personal data. Asks first, saying how many."""
    from outagecomms.cli.options import duration
    from outagecomms.cli.sending import confirm_send
    from outagecomms.store import inbound as inbound_db
    from outagecomms.store.inbound_keep import prunable
    from outagecomms.values import iso

    a = open_app()
    age = duration(before, "before") or a.config.inbound.keep
    cutoff = a.clock() - age
    with a.store.read() as conn:
        messages, sends = prunable(conn, cutoff)
    if messages:
        confirm_send(
            yes,
            f"{messages} inbound message(s) received before {iso(cutoff)} and {sends} message(s) "
            "sent because of them will be deleted.",
            [],
            "Delete them?",
            declined="nothing deleted",
            refusal="not a terminal: pass --yes to delete",
        )
        with a.store.write() as conn:
            messages, sends = inbound_db.prune(conn, cutoff)
    if as_json:
        print_json({"before": iso(cutoff), "messages": messages, "sends": sends})
    else:
        note(
            False,
            f"deleted {messages} inbound message(s) received before {iso(cutoff)} "
            f"and {sends} message(s) sent because of them",
        )
