"""The library names its own fields and operations; the CLI shows its flags and commands."""

from __future__ import annotations

import click
import pytest
import typer

from outagecomms.cli import app
from outagecomms.cli.exits import message
from outagecomms.errors import InputError, StateError


def command(*path: str) -> click.Command:
    cmd = typer.main.get_command(app)
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


def test_library_says_fields_and_operations() -> None:
    exc = InputError(
        "select with {field:components} or see {command:customers list}", field="started_at"
    )
    assert str(exc) == "field 'started_at': select with components or see `customers list`"


@pytest.mark.parametrize(
    ("path", "field", "shown"),
    [
        (("declare",), "started_at", "--started-at"),  # an option by its long flag
        (("declare",), "title", "TITLE"),  # an argument by its metavar
        (("edit",), "title", "--title"),  # the same field, an option of this command
        (("drafts", "dismiss"), "draft_id", "ID"),
        (("customers", "import"), "format", "--format"),  # parameter fmt, flag --format
        (("customers", "list"), "components", "--component"),  # Selector field -> its flag
        (("edit",), "started_at/resolved_at", "--started-at/--resolved-at"),
        (("declare",), "selector", "selector"),  # no flag of that name: left as it is
    ],
)
def test_cli_shows_the_flag(path: tuple[str, ...], field: str, shown: str) -> None:
    exc = InputError("is wrong", field=field, value="x")
    assert message(exc, command(*path)) == f"field {shown!r} = 'x': is wrong"


def test_cli_shows_commands_and_flags_inside_the_sentence() -> None:
    exc = StateError("use {command:resolve} or {field:components}")
    assert message(exc, command("update")) == "use `outagecomms resolve` or --component"


def test_a_field_of_a_file_is_not_a_flag() -> None:
    exc = InputError("is not a severity", file="customers.csv", line=3, field="severity")
    assert (
        message(exc, command("declare")) == "customers.csv:3: field 'severity': is not a severity"
    )
