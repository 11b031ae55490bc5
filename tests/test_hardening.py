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

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv, sample_rows
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
    #: 0: the input is harmless now: no error, and every fragment is in the output
    exit_code: int = 2
    #: the store and the outbox must be exactly as before the hostile step
    unchanged: bool = True
    #: stdin for the hostile step (the CLI in-process has no terminal)
    input: str | None = None
    #: the whole error line must be at most this long (a hostile value is quoted, not dumped)
    max_line: int = 400
    #: a report (``doctor``) prints its findings: then the error is one of its lines
    report: bool = False
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())


def args(*argv: str) -> Callable[[Env], list[str]]:
    return lambda env: list(argv)


# --- one customer's bad data must not block everyone (imports, directory) ----------------------


def _csv_with(
    field: str, value: str, row: int = 3, name: str = "hostile.csv"
) -> Callable[[Env], list[str]]:
    """The sample directory with data row ``row`` (1-based) of ``field`` set to ``value``."""

    def argv(env: Env) -> list[str]:
        rows = sample_rows()
        rows[row - 1][field] = value
        header = list(rows[0])
        if field not in header:
            header.append(field)
        buf = io.StringIO()
        w = csv.DictWriter(buf, header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return ["customers", "import", str(env.write(name, buf.getvalue()))]

    return argv


def _json_with(
    field: str,
    value: object,
    *,
    raw: str | None = None,
    jsonl: bool = False,
    one_line: bool = False,
) -> Callable[[Env], list[str]]:
    """The sample directory as JSON (``jsonl``: one object a line) with item 3's ``field`` set
    to ``value`` (``raw``: that JSON text, for numbers json.dumps cannot write)."""

    def argv(env: Env) -> list[str]:
        objs: list[dict[str, object]] = [dict(r) for r in sample_rows()]
        marker = "@@VALUE@@"
        objs[2][field] = marker if raw is not None else value
        if jsonl:
            text = "\n".join(json.dumps(o) for o in objs) + "\n"
        else:
            text = json.dumps(objs, indent=None if one_line else 2)
        if raw is not None:
            text = text.replace(json.dumps(marker), raw)
        return [
            "customers",
            "import",
            str(env.write("hostile.jsonl" if jsonl else "hostile.json", text)),
        ]

    return argv


def _declare(env: Env) -> None:
    env.ok("declare", "Login broken", "-s", "sev2", "--component", "auth", "--yes")


_AUTH = [r["id"] for r in sample_rows() if "auth" in r["components"].split(";")]
_KEEP = sample_rows()[0]["id"]
_BIG = "x" * 10_000_000


def _only_first_customer(env: Env) -> list[str]:
    rows = sample_rows()[:1]
    buf = io.StringIO()
    w = csv.DictWriter(buf, list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return ["customers", "import", "--replace", str(env.write("one.csv", buf.getvalue()))]


def _fee(value: str) -> Case:
    return Case(
        f"monthly_fee {value} (CSV)",
        _csv_with("monthly_fee", value),
        ("hostile.csv:4:", "'monthly_fee'"),
    )


IMPORTS: list[Case] = [
    # fees: bounded at import, written plainly (no exponent: 1e100000000 is refused at once)
    *(_fee(v) for v in ("1e26", "1e309", "1e999999", "1e100000000", "-0", "1e-30")),
    Case("monthly_fee 1e308 (JSON)", _json_with("monthly_fee", None, raw="1e308"), ("'monthly_fee'", "exponent")),
    Case("monthly_fee 1e999999 (JSONL)", _json_with("monthly_fee", None, raw="1e999999", jsonl=True), ("hostile.jsonl:3:", "'monthly_fee'")),
    Case("monthly_fee a 100,000-digit JSON integer", _json_with("monthly_fee", None, raw="9" * 100_000), ("'monthly_fee'", "longer than 40")),
    Case("monthly_fee above the maximum", _csv_with("monthly_fee", "1000000000001"), ("'monthly_fee'", "largest monthly fee")),
    Case("monthly_fee past the minor unit + 2", _csv_with("monthly_fee", "1.00001"), ("'monthly_fee'", "more than 4 decimals")),
    Case("monthly_fee 0.001 JPY", _csv_with("monthly_fee", "0.001", row=2), ("'monthly_fee'", "more than 2 decimals")),
    # field sizes: every field limited, the bad value quoted short (max_line)
    Case("10 MB name (JSON)", _json_with("name", _BIG), ("hostile.json:", "'name'", "longer than 200", "(10000000 characters)"), max_line=300),
    Case("10 MB name (JSONL)", _json_with("name", _BIG, jsonl=True), ("hostile.jsonl:3:", "'name'", "longer than 200"), max_line=300),
    Case("10 MB bad email (JSON)", _json_with("email", "@" + _BIG), ("'email'", "longer than 254"), max_line=300),
    Case("255-character email", _csv_with("email", "a" * 243 + "@example.com"), ("hostile.csv:4:", "'email'", "longer than 254"), max_line=300),
    Case("51 tags", _csv_with("tags", ";".join(f"t{i}" for i in range(51))), ("'tags'", "more than 50 names")),
    Case("a 101-character component", _csv_with("components", "c" * 101), ("'components'", "at most 100")),
    Case("a 2001-character tag (JSON list)", _json_with("tags", ["x" * 2001]), ("'tags'",)),
    Case("CSV value past the csv module's limit: the right line", _csv_with("name", "n" * 200_000, row=3), ("hostile.csv:4:", "longer than 131072")),
    Case("10 MB unknown key (JSON)", _json_with("k" * 10_000_000, "v"), ("hostile.json:", "unknown column", "(10000000 characters)"), max_line=600),
    # addresses
    Case("homoglyph domain (Cyrillic а)", _csv_with("email", "ops@ex\u0430mple.com"), ("'email'", "Cyrillic and Latin", "--allow-mixed-script")),
    Case("homoglyph account manager", _csv_with("account_manager", "am@p\u0430ypal.com"), ("'account_manager'", "--allow-mixed-script")),
    # odd values: zone files, non-languages, non-money
    *(Case(f"timezone {z}", _csv_with("timezone", z), ("'timezone'",)) for z in ("localtime", "posixrules", "Factory", "right/UTC", "posix/Europe/Berlin")),
    *(Case(f"locale {loc}", _csv_with("locale", loc), ("'locale'",)) for loc in ("und", "root", "de_DE@euro", "sr_RS@latin")),
    *(Case(f"currency {c}", _csv_with("currency", c), ("'currency'", "billed in")) for c in ("XXX", "XTS", "XAU")),
    # hidden characters in names and titles
    *(Case(f"name with {what}", _csv_with("name", f"Acme{ch}Corp"), ("'name'", code)) for what, ch, code in (
        ("bidi override", "\u202e", "U+202E"), ("zero-width space", "\u200b", "U+200B"),
        ("NEL", "\u0085", "U+0085"), ("line separator", "\u2028", "U+2028"),
    )),
    Case("declare title with a bidi override", args("declare", "Login \u202ebroken", "-s", "sev2", "--component", "auth", "--yes"), ("TITLE", "U+202E")),
    Case("edit --title with a line separator", args("edit", "INC-1", "--title", "Login\u2028broken"), ("--title", "U+2028"), setup=_declare),
    Case("declare title with a zero-width joiner", args("declare", "Login\u200dbroken", "-s", "sev2", "--component", "auth", "--yes"), ("TITLE", "U+200D")),
    # --replace during an open incident
    Case("customers import --replace removes an open incident's audience", _only_first_customer,
         ("INC-1 'Login broken'", f"{len(_AUTH) - (1 if _KEEP in _AUTH else 0)} customers", "--yes", "--replace"), setup=_declare),
    # error locations: one-line JSON array: the item's position
    Case("JSON nested 100,000 deep", lambda env: ["customers", "import", str(env.write("deep.json", "[" * 100_000 + "]" * 100_000))], ("deep.json", "nested too deeply")),
    Case("one-line JSON array: the item", _json_with("email", "not an email", one_line=True), ("hostile.json: item 3: field 'email'",)),
]  # fmt: skip

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
            "--yes",
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
            "--yes",
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
        configured(SMTP_LOGIN, SMTP_LOGIN_UNSET, "doctor", "--no-probe"),
        ("channels.email.password_env", "OUTAGECOMMS_SMTP_PASSWORD", "is not set"),
        report=True,
    ),
]

# --- templates ------------------------------------------------------------------------------------


def override(template: str, body: str, *then: str, config: str = "") -> Callable[[Env], list[str]]:
    """An override ``template`` (e.g. ``acknowledgement/email.txt.j2``) in the templates folder
    beside the row's config (``config``: appended to it), then run ``then``."""

    def argv(env: Env) -> list[str]:
        env.write(f"templates/{template}", body)
        if config:
            env.cfg.write_text(env.cfg.read_text() + config)
        return list(then)

    return argv


ACK = "acknowledgement/email.txt.j2"
FIRST = sample_rows()[0]["id"]
BIG = "{{ 'B' * 10**8 }}"
#: names the template, the line and the limit
BIG_ERROR = (
    f"template {ACK}, line 2",
    "'B' * 100000000",
    "100000000 characters",
    "[templates] max_body (262144)",
)
STEPS = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"

TEMPLATES: list[Case] = [
    # 'B' * 10**8: refused before it is built, at every pre-flight (nothing queued or sent)
    Case("'B' * 10**8: doctor", override(ACK, f"Hello\n{BIG}\n", "doctor", "--no-probe"), BIG_ERROR, report=True),
    Case("'B' * 10**8: preview", override(ACK, f"Hello\n{BIG}\n", "preview", "acknowledgement", "--customer", FIRST), BIG_ERROR),
    Case("'B' * 10**8: declare --dry-run", override(ACK, f"Hello\n{BIG}\n", *DECLARE, "--dry-run"), BIG_ERROR),
    Case("'B' * 10**8: declare", override(ACK, f"Hello\n{BIG}\n", *DECLARE), BIG_ERROR),
    Case("'B' * 10**8: update", override("update/email.txt.j2", BIG, "update", "INC-1", "Fix rolling out."), ("template update/email.txt.j2, line 1", "max_body"), setup=declared),
    # numbers, loops, time
    Case("7**(10**8)", override(ACK, "{{ 7**(10**8) }}", "doctor", "--no-probe"), (f"template {ACK}, line 1", "7 ** 100000000", "at most 4300 digits"), report=True),
    Case("nested range(100000) loops", override(ACK, "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "doctor", "--no-probe"), (ACK, "range() of 100000 items", "at most 10000"), report=True),
    Case("nested range(10000) loops: max_steps", override(ACK, STEPS, "doctor", "--no-probe"), (ACK, "more than 200000 steps", "[templates] max_steps"), report=True),
    Case("slow steps: render_timeout", override(ACK, "{% set s = 'B ' * 100000 %}{% for i in range(10000) %}{{ s|wordwrap(3)|length }}{% endfor %}", "doctor", "--no-probe", config='[templates]\nrender_timeout = "50ms"\n'), (ACK, "longer than 0.05s", "[templates] render_timeout"), report=True),
    # folding: an {% if false %} branch is compiled, never evaluated (was a MemoryError)
    Case("{% if false %}{{'B'*10**9}}{% endif %}: compiles, renders nothing", override(ACK, "{% if false %}{{'B'*10**9}}{% endif %}Hello", "doctor", "--no-probe"), ("templates acknowledgement: ok",), exit_code=0),
    Case("{% if false %} with a huge filter constant", override(ACK, "{% if false %}{{ 'B'|center(1000000000) }}{% endif %}Hello", "doctor", "--no-probe"), ("templates acknowledgement: ok",), exit_code=0),
    # the other ways to build a huge value: each refused before it is built
    Case("doubling with ~ in a namespace", override(ACK, "{% set ns = namespace(s='B') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "doctor", "--no-probe"), (ACK, "'~'", "max_body"), report=True),
    Case("a macro doubling its output", override(ACK, "{% macro d(n) %}{% if n %}{% set r = d(n-1) %}{{ r }}{{ r }}{% else %}B{% endif %}{% endmacro %}{{ d(40) }}", "doctor", "--no-probe"), (ACK, "output is longer", "max_body"), report=True),
    Case("str.replace with itself", override(ACK, "{% set s = 'B' * 100000 %}{{ s.replace('B', s) }}", "doctor", "--no-probe"), (ACK, "replace()", "max_body"), report=True),
    Case("|center(10**9)", override(ACK, "{{ 'x'|center(1000000000) }}", "doctor", "--no-probe"), (ACK, "filter 'center'", "max_body"), report=True),
    Case("'%1000000000d' % 1", override(ACK, "{{ '%1000000000d' % 1 }}", "doctor", "--no-probe"), (ACK, "operator '%'", "max_body"), report=True),
    Case("'{:1000000000}'.format(1)", override(ACK, "{{ '{:1000000000}'.format(1) }}", "doctor", "--no-probe"), (ACK, "format()", "max_body"), report=True),
    Case("lipsum(10**9)", override(ACK, "{{ lipsum(10**9) }}", "doctor", "--no-probe"), (ACK, "lipsum()", "max_body"), report=True),
    Case("a 2000-character subject", override("acknowledgement/email.subject.j2", "{{ 'S' * 2000 }}", "preview", "acknowledgement", "--customer", FIRST), ("template acknowledgement/email.subject.j2", "2000 characters", "[templates] max_subject (998)")),
    # resolve pre-flights what the incident still needs: the follow-up (and, with credits, the notice)
    Case("resolve: a broken follow_up override", override("follow_up/email.txt.j2", "Hi {{ nope }}\n", "resolve", "INC-1", "Fixed."), ("template follow_up/email.txt.j2, line 1", "'nope' is undefined", "follow_up round", "INC-1 stays open"), setup=declared),
    Case("resolve: 'B' * 10**8 in the follow-up", override("follow_up/email.html.j2", f"<p>\n{BIG}</p>", "resolve", "INC-1", "Fixed."), ("template follow_up/email.html.j2, line 2", "max_body", "follow_up round"), setup=declared),
    # the limits' own bounds
    Case("[templates] max_body = 10", configured("[daemon]", '[templates]\nmax_body = 10\n[daemon]', "doctor", "--no-probe"), ("templates.max_body", ">= 1024")),
    Case("[templates] max_subject = 5000", configured("[daemon]", '[templates]\nmax_subject = 5000\n[daemon]', "doctor", "--no-probe"), ("templates.max_subject", "at most 998")),
    Case("[templates] render_timeout = '1h'", configured("[daemon]", '[templates]\nrender_timeout = "1h"\n[daemon]', "doctor", "--no-probe"), ("templates.render_timeout", "from 10ms to 60s")),
]  # fmt: skip

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


def record(case_id: str, outcome: str) -> None:
    """With HARDENING_TABLE=FILE, append ``| input | what it gets |`` to FILE: the
    table of inputs and answers a review note quotes (``pytest tests/test_hardening.py``)."""
    path = os.environ.get("HARDENING_TABLE")
    if path:
        cell = outcome.replace("|", "\\|").replace("\n", " ")
        if len(cell) > 240:
            cell = cell[:237] + "..."
        with open(path, "a", encoding="utf-8") as out:
            name = case_id.replace("|", "\\|")
            out.write(f"| {name} | {cell} |\n")


def assert_one_line_error(res: CliResult, case: Case) -> str:
    assert res.exit_code == case.exit_code, (res.exit_code, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    if case.report:
        lines = [x for x in lines if x.startswith("error:")]
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
    if case.exit_code == 0:  # a row that must now work: no error, what it says in its output
        assert res.exit_code == 0, (res.stdout, res.stderr)
        assert "error:" not in res.stderr and "Traceback" not in res.stderr, res.stderr
        for fragment in case.fragments:
            assert fragment in res.stdout + res.stderr, (fragment, res.stderr)
        record(case.id, "exit 0: harmless now (no error)")
    else:
        line = assert_one_line_error(res, case)
        record(case.id, f"exit {res.exit_code}: `{line.replace(str(env.tmp) + '/', '')}`")
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
    said = [ln for ln in re.sub(r"<[^>]+>", "\n", res.text).splitlines() if ln.strip()]
    shown = next(
        (ln for ln in said if case.fragment and case.fragment in ln), said[0] if said else ""
    )
    record(case.id, f"HTTP {res.status_code}: {shown.strip()}")
    assert len(res.content) < 20_000  # a hostile value is quoted, not echoed whole
    assert env.snapshot() == before
