"""Which commands take ``--json`` and ``--yes`` is what README and docs/cli.md say (issue 11:
the README said every command takes both; ``edit --yes`` did not exist)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import typer.main

from outagecomms.cli.app import app
from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv
from tests.support.processes import CliResult

REPO = Path(__file__).resolve().parents[1]

#: every command that sends or writes
WRITES = {
    "init", "declare", "update", "resolve", "void", "reopen", "edit", "credits", "tick", "report",
    "customers import", "deliveries retry", "drafts dismiss", "feedback record", "db upgrade", "db init",
    "inbound ingest", "respond", "db prune", "page revoke",
    "maintenance schedule", "maintenance update", "maintenance reschedule", "maintenance cancel",
    "maintenance start", "maintenance complete",
}  # fmt: skip
#: what reads and only says what it found (doctor: the checks' findings)
LISTINGS = {
    "list", "show", "nps", "customers list", "deliveries list", "drafts list", "doctor", "replies",
    "page link", "maintenance list", "maintenance show",
}  # fmt: skip
NEITHER = {"preview", "watch", "daemon", "demo"}


def commands(group: click.Command, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            yield from commands(sub, f"{prefix}{name} ")
    else:
        yield prefix.strip(), group


def flags(command: click.Command) -> set[str]:
    return {o for p in command.params for o in p.opts}


def test_every_command_is_classified_and_takes_what_it_says() -> None:
    tree = dict(commands(typer.main.get_command(app)))
    assert set(tree) == WRITES | LISTINGS | NEITHER, "classify the new command here and in docs"
    for name, command in tree.items():
        has = flags(command)
        assert ("--json" in has) == (name in WRITES | LISTINGS), name
        assert ("--yes" in has) == (name in WRITES), name


def test_docs_name_exactly_those_commands() -> None:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text.split("## `--json` and `--yes`: which commands take them", 1)[1]
    named = set(re.findall(r"`([a-z]+(?: [a-z]+)?)(?: \[list\])?`", section))
    named = {"deliveries list" if n == "deliveries" else n for n in named}
    assert named >= WRITES | LISTINGS | NEITHER, sorted((WRITES | LISTINGS | NEITHER) - named)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "every command takes `--json`" not in readme
    assert "every command that sends or writes takes `--json`" in readme


def test_edit_yes_report_init_and_db_upgrade_json(
    cli: Callable[..., CliResult],
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    cfg = str(make_config(smtp_server))

    def ok(*args: str) -> CliResult:
        res = cli("--config", cfg, *args)
        assert res.exit_code == 0, (args, res.stderr)
        return res

    ok("customers", "import", str(sample_csv()), "--yes")
    ok("declare", "Database down", "-s", "sev2", "-c", "database", "--yes", "--no-send")
    data = json.loads(ok("edit", "INC-1", "--title", "Database slow", "--yes", "--json").stdout)
    assert data["title"] == "Database slow"

    res = ok("report", "INC-1", "--json", "--yes")
    data = json.loads(res.stdout)
    assert (data["incident"], data["format"], data["file"]) == ("INC-1", "md", None)
    assert "Database slow" in data["text"]
    out = tmp_path / "r.html"
    data = json.loads(ok("report", "INC-1", "--format", "html", "-o", str(out), "--json").stdout)
    assert data["file"] == str(out) and out.read_text(encoding="utf-8") == data["text"]

    data = json.loads(ok("db", "upgrade", "--json", "--yes").stdout)
    assert data["revision"] == data["head"]

    res = cli("init", str(tmp_path / "project"), "--json", "--yes")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert str(tmp_path / "project" / "outagecomms.toml") in data["written"]
