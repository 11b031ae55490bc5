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

DECLARE = ("declare", "Login broken", "-s", "sev2", "--component", "auth", "--yes")


def declared(env: Env) -> None:
    """Set-up: INC-1 declared (queued only: the row's step is what must send nothing)."""
    env.ok(*DECLARE, "--queue-only")


def configured(old: str, new: str, *then: str) -> Callable[[Env], list[str]]:
    """Replace ``old`` by ``new`` in the row's config, then run ``then``."""

    def argv(env: Env) -> list[str]:
        text = env.cfg.read_text()
        assert old in text, old
        env.cfg.write_text(text.replace(old, new))
        return list(then)

    return argv


def stored_at(url: Callable[[Env], str], *then: str) -> Callable[[Env], list[str]]:
    """The row's config stores at ``url(env)`` (which may write files first)."""

    def argv(env: Env) -> list[str]:
        text = env.cfg.read_text()
        old = f'url = "sqlite:///{env.db}"'
        assert old in text
        env.cfg.write_text(text.replace(old, f'url = "{url(env)}"'))
        return list(then)

    return argv


def under_a_file(env: Env) -> str:
    env.write("afile", "not a folder\n")
    return f"sqlite:///{env.tmp / 'afile' / 'store.db'}"


def not_a_database(env: Env) -> str:
    env.write("notes.txt", "customers: see the wiki\n" * 200)
    return f"sqlite:///{env.tmp / 'notes.txt'}"


def newer_schema(env: Env) -> str:
    with sqlite3.connect(env.db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_future'")
    return f"sqlite:///{env.db}"


SMTP_LOGIN = "max_connections = 4\n"
SMTP_LOGIN_UNSET = (
    'max_connections = 4\nusername = "bot"\npassword_env = "OUTAGECOMMS_SMTP_PASSWORD"\n'
)
NEEDS_PASSWORD = ("channels.email.password_env", "$OUTAGECOMMS_SMTP_PASSWORD", "is not set")
# $HOME is set (isolated_env), and holds a path: not an Account SID
SMS_WITH_BAD_SID = """
[channels.sms]
kind = "twilio"
from = "+15550100999"
account_sid_env = "HOME"
auth_token_env = "HOME"
"""


def with_sms(env: Env) -> list[str]:
    text = env.cfg.read_text().replace('default = ["email"]', 'default = ["email", "sms"]')
    env.cfg.write_text(text + SMS_WITH_BAD_SID)
    return list(DECLARE)


CONFIG: list[Case] = [
    Case(
        "unknown component on declare",
        args("declare", "Login broken", "-s", "sev2", "--component", "authz", "--yes"),
        ("--component", "'authz'"),
    ),
    # out-of-range numbers: one bound each, in values.py (parse_duration, parse_time, FieldReader)
    Case(
        "--every 999999999d",
        args(*DECLARE, "--every", "999999999d"),
        ("--every", "at most 3650d"),
    ),
    Case(
        "--started-at in year 1",
        args(*DECLARE, "--started-at", "0001-01-01T00:00:00Z"),
        ("--started-at", "out of range", "1970-01-01"),
    ),
    Case(
        "--started-at at the end of year 9999, west of UTC",
        args(*DECLARE, "--started-at", "9999-12-31T23:59:59-14:00"),
        ("--started-at", "out of range"),
    ),
    Case(
        "--started-at -99999999d",
        args(*DECLARE, "--started-at", "-99999999d"),
        ("--started-at", "'-99999999d'", "at most 3650d"),
    ),
    Case(
        "edit --started-at in year 1",
        args("edit", "INC-1", "--started-at", "0001-01-01T00:00:00Z"),
        ("--started-at", "out of range"),
        setup=declared,
    ),
    Case(
        "update --every 999999999d",
        args("update", "INC-1", "Still on it.", "--every", "999999999d"),
        ("--every", "at most 3650d"),
        setup=declared,
    ),
    Case(
        "incident id beyond 64 bits",
        args("show", "INC-99999999999999999999"),
        ("not an incident id",),
    ),
    Case(
        "draft id beyond 64 bits",
        args("drafts", "dismiss", "99999999999999999999"),
        ("draft 99999999999999999999 does not exist",),
    ),
    Case(
        "update_every = 1000000000000 (a bare number)",
        configured('update_every = "30m"', "update_every = 1000000000000", *DECLARE),
        ("policy.default.update_every", "with a unit"),
    ),
    Case(
        "update_every = '1000000000000s'",
        configured('update_every = "30m"', 'update_every = "1000000000000s"', *DECLARE),
        ("policy.default.update_every", "at most 3650d"),
    ),
    Case(
        "batch_size = 10000000000000000000",
        configured(
            'retry_base = "1s"', 'retry_base = "1s"\nbatch_size = 10000000000000000000', *DECLARE
        ),
        ("dispatch.batch_size", "at most 100000"),
    ),
    Case(
        "rate_per_second = 1e300",
        configured(SMTP_LOGIN, "max_connections = 4\nrate_per_second = 1e300\n", *DECLARE),
        ("channels.email.rate_per_second", "at most"),
    ),
    Case(
        "max_connections = 10**12",
        configured(SMTP_LOGIN, "max_connections = 1000000000000\n", *DECLARE),
        ("channels.email.max_connections", "at most 10000"),
    ),
    # stores: say what the store is, exit 2, nothing created
    Case(
        "store below a file",
        stored_at(under_a_file, "customers", "list"),
        ("store.url", "is a file, not a folder"),
    ),
    Case(
        "store is not a database",
        stored_at(not_a_database, "customers", "list"),
        ("store.url", "not a SQLite database"),
    ),
    Case(
        "store written by a newer outagecomms",
        stored_at(newer_schema, "customers", "list"),
        ("store.url", "written by a newer outagecomms", "'0099_future'", "upgrade it"),
    ),
    Case(
        "in-memory store (sqlite:///:memory:)",
        stored_at(lambda env: "sqlite:///:memory:", "customers", "import", str(sample_csv())),
        ("store.url", "in-memory", "keeps nothing"),
    ),
    Case(
        "in-memory store (sqlite://)",
        stored_at(lambda env: "sqlite://", "customers", "import", str(sample_csv())),
        ("store.url", "in-memory"),
    ),
    Case(
        "store in a mistyped folder",
        stored_at(lambda env: f"sqlite:///{env.tmp / 'typo' / 'store.db'}", "customers", "list"),
        ("store.url", "does not exist", "db init"),
    ),
    # secrets a round needs: checked before anything is queued
    Case(
        "declare: SMTP password variable not set",
        configured(SMTP_LOGIN, SMTP_LOGIN_UNSET, *DECLARE),
        NEEDS_PASSWORD,
    ),
    Case(
        "update: SMTP password variable not set",
        configured(
            SMTP_LOGIN,
            SMTP_LOGIN_UNSET,
            "update",
            "INC-1",
            "Fix rolling out.",
        ),
        NEEDS_PASSWORD,
        setup=declared,
    ),
    Case(
        "resolve: SMTP password variable not set",
        configured(
            SMTP_LOGIN,
            SMTP_LOGIN_UNSET,
            "resolve",
            "INC-1",
            "Fixed.",
        ),
        NEEDS_PASSWORD,
        setup=declared,
    ),
    Case(
        "declare: the Twilio Account SID variable holds no SID",
        with_sms,
        ("channels.sms.account_sid_env", "$HOME", "Twilio Account SID"),
    ),
    Case(
        "doctor: SMTP password variable not set",
        configured(SMTP_LOGIN, SMTP_LOGIN_UNSET, "doctor"),
        NEEDS_PASSWORD,
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
