"""The root command: global options, and the command tree in the order ``--help`` lists it.

Each command lives with its kind (``incidents``, ``customers``, ``deliveries``, ``recovery``,
``drafts``, ``run``, ``project``), parses, calls one library function and prints; errors
become exit codes in ``exits``. Results go to stdout (``--json``: exactly one JSON object),
progress and errors to stderr. The reference is ``docs/cli.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from outagecomms.cli import (
    customers,
    deliveries,
    drafts,
    inbound,
    incidents,
    maintenance,
    pages,
    project,
    recovery,
    run,
)
from outagecomms.cli.exits import Group
from outagecomms.cli.options import set_config

app = Group(
    name="outagecomms",
    help="Proactive outage communication: acknowledge, keep update promises, resolve.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold passwords and tokens
    add_completion=False,
)


@app.callback()
def main_callback(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Config file (else $OUTAGECOMMS_CONFIG, ./outagecomms.toml, the user config dir; none: commands that open the store refuse).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what the scheduler does.")
    ] = False,
) -> None:
    set_config(config)
    from outagecomms.logs import setup_logging

    setup_logging(verbose=verbose)


COMMANDS: list[tuple[str, Callable[..., None]]] = [
    ("init", project.init),
    ("doctor", project.doctor),
    ("declare", incidents.declare),
    ("update", incidents.update),
    ("resolve", incidents.resolve),
    ("void", incidents.void),
    ("reopen", incidents.reopen),
    ("edit", incidents.edit),
    ("credits", recovery.credits),
    ("list", incidents.list_incidents),
    ("show", incidents.show),
    ("preview", project.preview),
    ("tick", run.tick),
    ("daemon", run.daemon),
    ("demo", run.demo),
    ("watch", incidents.watch),
    ("nps", recovery.nps),
    ("report", recovery.report),
    ("replies", inbound.replies),
    ("respond", inbound.respond),
]
for name, command in COMMANDS:
    app.command(name)(command)

app.add_typer(customers.customers, name="customers")
app.add_typer(deliveries.deliveries, name="deliveries")
app.add_typer(project.db, name="db")
app.add_typer(drafts.drafts, name="drafts")
app.add_typer(recovery.feedback, name="feedback")
app.add_typer(inbound.inbound, name="inbound")
app.add_typer(pages.page, name="page")
app.add_typer(maintenance.maintenance, name="maintenance")


def main() -> None:
    app()
