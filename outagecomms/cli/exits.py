"""The one place where the exception tree becomes one-line messages and exit codes.

Exit codes: 0 ok, 1 failure, 2 usage or input error, 3 partial (some deliveries failed), 130
interrupted. ``OUTAGECOMMS_DEBUG=1`` lets the exception (and its traceback) through.

Every command is a ``Command`` (``Group.command`` sees to it), so its body holds no
try/except of its own: an ``OutageCommsError`` from the library is printed here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
import typer
import typer.core

from outagecomms.cli.output import err, escape
from outagecomms.errors import OutageCommsError
from outagecomms.values import mask_url

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


# Library fields that no command has a parameter of that name for: the selector's fields
# (``Selector.components``) are the repeatable ``--component`` flags.
FLAGS = {
    "components": "--component",
    "regions": "--region",
    "tiers": "--tier",
    "tags": "--tag",
    "customers": "--customer",
    "exclude": "--exclude",
    "resolved_at": "--at",  # resolve --at
    "back_at": "--at",  # reopen --at
}


def flag_for(field: str, command: click.Command | None) -> str:
    """How the CLI names a library field: the running command's argument of that name (its
    metavar, ``TITLE``), its ``--field-name`` flag, the first flag of its parameter of that
    name, else ``FLAGS``, else the field as it is (``selector`` is no flag). ``a/b`` names two
    fields."""
    if "/" in field:
        return "/".join(flag_for(f, command) for f in field.split("/"))
    option = "--" + field.replace("_", "-")
    for param in command.params if command is not None else ():
        if isinstance(param, click.Argument) and param.name == field:
            return param.human_readable_name
        if option in param.opts:
            return option
        if param.name == field:
            return param.opts[0]
    return FLAGS.get(field, field)


def message(exc: OutageCommsError, command: click.Command | None) -> str:
    """The error's sentence as a CLI user reads it: flags for fields, commands for operations."""

    def label(kind: str, name: str) -> str:
        return f"`outagecomms {name}`" if kind == "command" else flag_for(name, command)

    return exc.render(label)


class Command(typer.core.TyperCommand):
    """A Typer command whose library errors end as one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(os.environ.get("OUTAGECOMMS_DEBUG"))
        try:
            return super().invoke(ctx)
        except OutageCommsError as exc:
            if debug:
                raise
            # a URL's password never reaches the terminal, whatever the message quotes
            text = mask_url(message(exc, ctx.command))
            err.print(f"[bold red]error:[/] {escape(text)}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as exc:  # a bug: one line, not a page of locals
            if debug:
                raise
            err.print(
                f"[bold red]internal error:[/] {escape(mask_url(f'{type(exc).__name__}: {exc}'))} "
                "(run with OUTAGECOMMS_DEBUG=1 for the traceback)"
            )
            raise typer.Exit(EXIT_FAIL) from None


class Group(typer.Typer):
    """A Typer app whose commands are all ``Command``s."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)
