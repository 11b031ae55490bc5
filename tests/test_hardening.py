"""The adversarial review's reproductions, as one table a future reviewer extends.

Each row is one hostile input: what to run and what must come back. The rule for every CLI row
(unless the row says otherwise): exit 2, exactly one line on stderr starting ``error:`` that
contains every fragment, no traceback, nothing on stdout, and the store byte-for-byte unchanged
(every table's rows) and nothing sent. A row's ``argv`` may write files under ``env.tmp`` first
(a hostile CSV, a config, a template) and returns the arguments after ``--config CFG``.

To add a finding: add a row to the section it belongs to (or a new section). Rows that need more
than one command (set-up, then the hostile step) use ``setup``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]


@dataclass
class Env:
    """A workspace with the 40 sample customers imported, a real SMTP server and a SQLite store."""

    cli: Cli
    cfg: Path
    db: Path
    tmp: Path
    smtp: SmtpServer

    def run(self, *args: str, input: str | None = None) -> CliResult:
        return self.cli("--config", str(self.cfg), *args, input=input)

    def ok(self, *args: str) -> CliResult:
        res = self.run(*args)
        assert res.exit_code == 0, (args, res.stdout, res.stderr)
        return res

    def write(self, name: str, body: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
        return path

    def snapshot(self) -> tuple[str, int]:
        """(a digest of every table's rows, messages the SMTP server received)"""
        digest = hashlib.sha256()
        if self.db.exists():
            with sqlite3.connect(self.db) as conn:
                for line in conn.iterdump():
                    digest.update(line.encode())
        return digest.hexdigest(), len(self.smtp.handler.snapshot())


@dataclass(frozen=True)
class Case:
    """One hostile input through the CLI."""

    id: str
    argv: Callable[[Env], list[str]]
    fragments: tuple[str, ...] = ()
    setup: Callable[[Env], None] | None = None
    exit_code: int = 2
    #: the store and the outbox must be exactly as before the hostile step
    unchanged: bool = True
    #: stdin for the hostile step (the CLI in-process has no terminal)
    input: str | None = None
    #: the whole error line must be at most this long (a hostile value is quoted, not dumped)
    max_line: int = 400
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())


def args(*argv: str) -> Callable[[Env], list[str]]:
    return lambda env: list(argv)


# --- one customer's bad data must not block everyone (imports, directory) ----------------------

IMPORTS: list[Case] = []

# --- config, command-line values and the store --------------------------------------------------

CONFIG: list[Case] = [
    Case(
        "unknown component on declare",
        args("declare", "Login broken", "-s", "sev2", "--component", "authz", "--yes"),
        ("--component", "'authz'"),
    ),
]

# --- templates ------------------------------------------------------------------------------------

TEMPLATES: list[Case] = []

CASES: list[Case] = [*IMPORTS, *CONFIG, *TEMPLATES]


@pytest.fixture
def env(
    cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    cfg = make_config(smtp_server)
    res = cli("--config", str(cfg), "customers", "import", str(sample_csv()))
    assert res.exit_code == 0, res.stderr
    yield Env(cli, cfg, tmp_path / "store.db", tmp_path, smtp_server)


def assert_one_line_error(res: CliResult, case: Case) -> str:
    assert res.exit_code == case.exit_code, (res.exit_code, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("error:"), line
    assert len(line) <= case.max_line, f"{len(line)} characters: {line[:200]}..."
    for fragment in case.fragments:
        assert fragment in line, (fragment, line)
    return line


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_hostile_input(env: Env, case: Case) -> None:
    if case.setup is not None:
        case.setup(env)
    argv = case.argv(env)
    before = env.snapshot()
    res = env.run(*argv, input=case.input)
    assert_one_line_error(res, case)
    assert res.stdout == ""
    if case.unchanged:
        assert env.snapshot() == before
