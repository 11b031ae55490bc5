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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
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

# --- the operator's terminal: the commander's own text may not carry control characters -------

#: what a hostile comment carried: retitles the terminal and clears the screen
ESCAPES = "\x1b]0;TITLE\x07\x1b[2J"


def declared(env: Env) -> None:
    env.ok(
        "declare", "Database down", "-s", "sev2", "--component", "database", "--yes", "--no-send"
    )


TERMINAL: list[Case] = [
    Case(
        "escape sequences in an update's message",
        args("update", "INC-1", f"Fixed{ESCAPES}"),
        ("MESSAGE", "control characters", "\\x1b"),
        setup=declared,
    ),
    Case(
        "escape sequences in a resolution's message",
        args("resolve", "INC-1", f"Resolved{ESCAPES}"),
        ("MESSAGE", "control characters"),
        setup=declared,
    ),
    Case(
        "escape sequences in declare --message",
        args("declare", "Login", "-s", "sev2", "-c", "database", "-m", ESCAPES, "--yes"),
        ("--message", "control characters"),
    ),
    Case(
        "escape sequences in declare --commander",
        args("declare", "Login", "-s", "sev2", "-c", "database", "--commander", ESCAPES, "--yes"),
        ("--commander", "control characters"),
    ),
    Case(
        "escape sequences in a title",
        args("declare", f"Login{ESCAPES}", "-s", "sev2", "-c", "database", "--yes"),
        ("TITLE", "control characters"),
    ),
    Case(
        "an 8-bit CSI (C1) in edit --title",
        args("edit", "INC-1", "--title", "Login \x9b2J down"),
        ("--title", "control characters"),
        setup=declared,
    ),
]

CASES: list[Case] = [*IMPORTS, *CONFIG, *TEMPLATES, *TERMINAL]


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


# --- the HTTP listener: hostile requests get a 4xx page or JSON error, never a 500 ---------------


@dataclass(frozen=True)
class HttpCase:
    """One hostile request to the real listener (``serve_http`` on loopback). ``{token}`` in
    ``path`` is a valid feedback token for INC-1. The rule: this ``status`` (a 4xx), no
    traceback or "Internal Server Error" in the answer, ``fragment`` in it, and the store
    unchanged."""

    id: str
    method: str
    path: str
    status: int
    fragment: str = ""
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


FORM = {"content-type": "application/x-www-form-urlencoded"}
HOOKS_TOKEN = "hardening-hooks-token-0123456789"
HOOK = {"authorization": f"Bearer {HOOKS_TOKEN}", "content-type": "application/json"}

HTTP: list[HttpCase] = [
    HttpCase("superscript two as the score", "GET", "/feedback/{token}?score=%C2%B2", 400, "from 0 to 10"),
    HttpCase("Arabic-Indic three as the score", "GET", "/feedback/{token}?score=%D9%A3", 400, "from 0 to 10"),
    HttpCase("full-width seven as the score", "GET", "/feedback/{token}?score=%EF%BC%97", 400, "from 0 to 10"),
    HttpCase("a 5,000-digit score", "GET", "/feedback/{token}?score=" + "9" * 5000, 400, "from 0 to 10"),
    HttpCase("a superscript in the token", "GET", "/feedback/%C2%B2?score=5", 400, "not valid"),
    HttpCase("superscript two in the comment form", "POST", "/feedback/{token}/comment", 400, "from 0 to 10", b"score=%C2%B2&comment=hi", FORM),
    HttpCase("a 5,000-digit score in the comment form", "POST", "/feedback/{token}/comment", 400, "from 0 to 10", b"score=" + b"9" * 5000, FORM),
    HttpCase("a JSON body to the comment form", "POST", "/feedback/{token}/comment", 415, "", b'{"score": 5}', {"content-type": "application/json"}),
    HttpCase("too many form fields", "POST", "/feedback/{token}/comment", 400, "", b"a=1&" * 50, FORM),
    HttpCase("a text/plain body to a hook", "POST", "/hooks/generic", 415, "application/json", b'{"alerts": []}', {**HOOK, "content-type": "text/plain"}),
    HttpCase("JSON nested 100,000 deep", "POST", "/hooks/generic", 400, "too deeply", b"[" * 100_000, HOOK),
    HttpCase("a 5,000-digit number in JSON", "POST", "/hooks/generic", 400, "not JSON", b'{"alerts": ' + b"1" * 5000 + b"}", HOOK),
    HttpCase("a hook body that is not UTF-8", "POST", "/hooks/alertmanager", 400, "UTF-8", b"\xff\xfe", HOOK),
    HttpCase("a superscript in an alert's time", "POST", "/hooks/generic", 400, "startsAt", b'{"alerts": [{"key": "k", "title": "t", "startsAt": "\xc2\xb2"}]}', HOOK),
]  # fmt: skip

SECRET = "hardening-feedback-secret-0123456789"


@pytest.fixture
def site(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[httpx.Client, str]]:
    """The real listener on the env's store with INC-1 declared; (client, a valid token)."""
    from outagecomms.app import App
    from outagecomms.recovery.feedback import make_token
    from outagecomms.store import incidents as incidents_db
    from tests.support.web import serve_web

    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET)
    monkeypatch.setenv("OUTAGECOMMS_HOOKS_TOKEN", HOOKS_TOKEN)
    declared(env)
    with App.open(env.cfg) as app:
        with app.store.read() as conn:
            customer = sorted(incidents_db.audience_customer_ids(conn, 1))[0]
        token = make_token(SECRET.encode(), 1, customer, datetime.now(UTC) + timedelta(days=30))
        with serve_web(app) as client:
            yield client, token


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in HTTP])
def test_hostile_request(env: Env, site: tuple[httpx.Client, str], case: HttpCase) -> None:
    client, token = site
    before = env.snapshot()
    res = client.request(
        case.method, case.path.replace("{token}", token), content=case.body, headers=case.headers
    )
    assert res.status_code == case.status, (res.status_code, res.text[:300])
    assert "Traceback" not in res.text and "Internal Server Error" not in res.text
    assert case.fragment in res.text, res.text[:300]
    assert len(res.content) < 20_000  # a hostile value is quoted, not echoed whole
    assert env.snapshot() == before
