"""Bad input through the CLI: exit code 2, one line on stderr, and nothing written or sent."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]


@dataclass
class Env:
    cli: Cli
    cfg: Path
    db: Path
    smtp: SmtpServer
    templates: Path

    def run(self, *args: str) -> CliResult:
        return self.cli("--config", str(self.cfg), *args)

    def json(self, *args: str) -> Any:
        res = self.run(*args, "--json")
        assert res.exit_code == 0, res.stderr
        return json.loads(res.stdout)

    def incidents(self) -> list[dict[str, Any]]:
        return list(self.json("list", "--all")["incidents"])

    def count(self, table: str) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def state(self) -> tuple[int, int, int, int]:
        """(incidents, rounds, deliveries, messages received by the SMTP server)"""
        return (
            len(self.incidents()),
            self.count("rounds"),
            self.count("deliveries"),
            len(self.smtp.handler.snapshot()),
        )

    def declare(self, *args: str) -> dict[str, Any]:
        data = self.json("declare", "API errors", "--severity", "sev2", "--yes", *args)
        n = data["queued"]
        self.smtp.handler.wait_for(lambda m: len(m) >= self.sent + n)
        self.sent += n
        return dict(data)

    sent: int = 0


@pytest.fixture
def env(
    cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Env]:
    templates = tmp_path / "tpl"
    templates.mkdir()
    cfg = make_config(smtp_server, extra=f'\n[templates]\ndir = "{templates}"\n')
    res = cli("--config", str(cfg), "customers", "import", str(sample_csv()))
    assert res.exit_code == 0, res.stderr
    yield Env(cli, cfg, tmp_path / "store.db", smtp_server, templates)


def rows() -> list[dict[str, str]]:
    with sample_csv().open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def assert_usage_error(res: CliResult, *fragments: str) -> str:
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error:"), lines[0]
    assert "Traceback" not in res.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


EMPTY = (0, 0, 0, 0)

DECLARE_ERRORS: dict[str, tuple[list[str], list[str]]] = {
    # case: (declare arguments, fragments of the error line)
    "unknown component": (
        ["Login broken", "-s", "sev2", "--component", "authz"],
        ["--component", "'authz'", "auth"],
    ),
    "unknown region": (
        ["Login broken", "-s", "sev2", "--region", "eu-north"],
        ["--region", "'eu-north'", "eu-west"],
    ),
    "unknown tier": (["Login broken", "-s", "sev2", "--tier", "gold"], ["--tier", "'gold'"]),
    "unknown tag": (["Login broken", "-s", "sev2", "--tag", "vip"], ["--tag", "'vip'"]),
    "unknown customer id": (
        ["Login broken", "-s", "sev2", "--customer", "c0000404"],
        ["--customer", "'c0000404'"],
    ),
    "unknown exclude id": (
        ["Login broken", "-s", "sev2", "-c", "auth", "--exclude", "c0000404"],
        ["--exclude", "'c0000404'"],
    ),
    "one bad component among good ones": (
        ["Login broken", "-s", "sev2", "-c", "auth", "-c", "billng"],
        ["'billng'", "billing"],
    ),
    "bad --every": (
        ["Login broken", "-s", "sev2", "-c", "auth", "--every", "soon"],
        ["--every", "'soon'"],
    ),
    "zero --every": (
        ["Login broken", "-s", "sev2", "-c", "auth", "--every", "0m"],
        ["--every", "'0m'"],
    ),
    "bad --started-at": (
        ["Login broken", "-s", "sev2", "-c", "auth", "--started-at", "yesterday"],
        ["--started-at", "'yesterday'"],
    ),
    "--started-at in the future": (
        ["Login broken", "-s", "sev2", "-c", "auth", "--started-at", "+2h"],
        ["--started-at", "future"],
    ),
    "title with CR/LF": (
        ["Login broken\r\nBcc: evil@example.net", "-s", "sev2", "-c", "auth"],
        ["TITLE", "one line"],
    ),
    "title with LF": (["Login\nbroken", "-s", "sev2", "-c", "auth"], ["TITLE"]),
    "empty title": (["   ", "-s", "sev2", "-c", "auth"], ["title"]),
    "unknown severity": (["Login broken", "-s", "sev9", "-c", "auth"], ["--severity", "'sev9'"]),
    "no selector": (["Login broken", "-s", "sev2"], ["--component"]),
    "selection matches nobody": (
        ["Login broken", "-s", "sev2", "--region", "us-east", "--tier", "enterprise"],
        ["matches no customers"],
    ),
    "commander with LF": (
        ["Login broken", "-s", "sev2", "-c", "auth", "--commander", "al\nice"],
        ["--commander"],
    ),
}


@pytest.mark.parametrize("case", list(DECLARE_ERRORS), ids=list(DECLARE_ERRORS))
def test_declare_bad_input(env: Env, case: str) -> None:
    args, fragments = DECLARE_ERRORS[case]
    res = env.run("declare", *args, "--yes")
    assert_usage_error(res, *fragments)
    assert res.stdout == ""
    assert env.state() == EMPTY


@pytest.mark.parametrize("case", ["unknown component", "bad --every", "title with CR/LF"])
def test_declare_bad_input_with_json(env: Env, case: str) -> None:
    """--json promises one JSON object on success; on an error stdout stays empty."""
    args, fragments = DECLARE_ERRORS[case]
    res = env.run("declare", *args, "--yes", "--json")
    assert_usage_error(res, *fragments)
    assert res.stdout == ""
    assert env.state() == EMPTY


def test_unknown_component_lists_known_closest_first(env: Env) -> None:
    line = assert_usage_error(
        env.run("declare", "Slow", "-s", "sev3", "--component", "dashbord", "--yes")
    )
    listing = [x.strip() for x in line.split("closest first:")[1].split(",")]
    assert listing[0] == "dashboard"
    assert set(listing) == {c for r in rows() for c in r["components"].split(";")}


# --- templates --------------------------------------------------------------------------------


def write(root: Path, name: str, body: str) -> None:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(body)


@pytest.mark.parametrize(
    ("name", "body", "line"),
    [
        ("acknowledgement/email.txt.j2", "Hello {{ customer.name }}\n\n{% if %}\n", 3),
        ("acknowledgement/email.subject.j2", "{{ incident.ref }} {{ eta }}", 1),
        ("acknowledgement/email.html.j2", "<p>\n</p>\n<p>{{ customer.nickname }}</p>", 3),
        ("_partials/contact.txt.j2", "Call us\n{{ company.fax }}", 2),
    ],
    ids=["syntax", "undefined-name", "undefined-attr", "partial"],
)
def test_broken_template_stops_declare(env: Env, name: str, body: str, line: int) -> None:
    write(env.templates, name, body)
    res = env.run("declare", "Login broken", "-s", "sev2", "-c", "auth", "--yes")
    assert_usage_error(res, name, f"line {line}")
    assert env.state() == EMPTY


def test_broken_template_stops_dry_run_too(env: Env) -> None:
    write(env.templates, "acknowledgement/email.txt.j2", "{{ nope }}")
    res = env.run("declare", "Login broken", "-s", "sev2", "-c", "auth", "--dry-run")
    assert_usage_error(res, "acknowledgement/email.txt.j2", "line 1")
    assert env.state() == EMPTY


def test_broken_update_template_queues_nothing(env: Env) -> None:
    inc = env.declare("--component", "search")["incident"]
    before = env.state()
    assert before[0] == 1 and before[3] == env.sent > 0
    write(env.templates, "update/email.txt.j2", "Update\n\n{{ round.mesage }}\n")
    res = env.run("update", "--yes", inc, "Fix rolling out")
    assert_usage_error(res, "update/email.txt.j2", "line 3")
    assert env.state() == before
    (row,) = env.incidents()
    assert row["status"] == "investigating"


def test_broken_resolution_template_leaves_incident_open(env: Env) -> None:
    inc = env.declare("--component", "search")["incident"]
    before = env.state()
    write(env.templates, "resolution/email.subject.j2", "{% for %}")
    res = env.run("resolve", "--yes", inc, "Fixed the index")
    assert_usage_error(res, "resolution/email.subject.j2", "line 1")
    assert env.state() == before
    (row,) = env.incidents()
    assert row["status"] != "resolved"
    assert row["resolved_at"] is None


# --- config -----------------------------------------------------------------------------------


def test_config_with_unknown_key(
    cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    cfg = make_config(smtp_server, extra="colour = 'blue'\n", migrated=False)
    for args in (
        ["list"],
        ["customers", "import", str(sample_csv())],
        ["declare", "X", "-s", "sev1", "-c", "auth"],
    ):
        res = cli("--config", str(cfg), *args)
        assert_usage_error(res, "daemon.colour", str(cfg))
    assert smtp_server.handler.snapshot() == []
    assert not (cfg.parent / "store.db").exists()


# --- dry run ----------------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_prints_recipients(env: Env) -> None:
    expected = sorted(r["id"] for r in rows() if "dns" in r["components"].split(";"))
    res = env.run("declare", "DNS resolution errors", "-s", "sev2", "-c", "dns", "--dry-run")
    assert res.exit_code == 0, res.stderr
    for cid in expected:
        assert cid in res.stdout
    others = {r["id"] for r in rows()} - set(expected)
    assert not any(cid in res.stdout for cid in others)
    assert "DNS resolution errors" in res.stdout  # the sample acknowledgement
    assert "dry run" in res.stderr
    assert env.state() == EMPTY


def test_dry_run_json(env: Env) -> None:
    expected = sorted(
        r["id"]
        for r in rows()
        if "dns" in r["components"].split(";") and "us-west" in r["regions"].split(";")
    )
    data = env.json(
        "declare", "DNS errors", "-s", "sev2", "-c", "dns", "-r", "us-west", "--dry-run"
    )
    assert data["dry_run"] is True
    assert data["incident"] is None
    assert data["audience"] == len(expected)
    assert sorted(r["customer"] for r in data["recipients"]) == expected
    assert all(r["channels"] == ["email"] for r in data["recipients"])
    assert data["channels"] == {"email": len(expected)}
    assert data["promised_next_by"]
    assert data["sample"]["subject"] and "DNS errors" in data["sample"]["subject"]
    assert env.state() == EMPTY


# --- update / resolve -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["update", "INC-99", "Still working"],
        ["resolve", "INC-99", "Fixed"],
        ["update", "INC-x", "Still working"],
        ["resolve", "banana", "Fixed"],
        ["show", "INC-99"],
        ["deliveries", "INC-99"],
    ],
    ids=[
        "update-99",
        "resolve-99",
        "update-bad-ref",
        "resolve-bad-ref",
        "show-99",
        "deliveries-99",
    ],
)
def test_unknown_incident(env: Env, args: list[str]) -> None:
    assert_usage_error(env.run(*args))
    assert env.state() == EMPTY


def test_bad_input_on_an_open_incident(env: Env) -> None:
    inc = env.declare("--component", "search")["incident"]
    before = env.state()
    assert_usage_error(env.run("update", inc, "   "), "MESSAGE")
    assert_usage_error(env.run("update", inc, "x", "--status", "fixed"), "--status", "'fixed'")
    assert_usage_error(env.run("update", inc, "x", "--status", "resolved"), "resolve")
    assert_usage_error(env.run("update", inc, "x", "--every", "5x"), "--every", "'5x'")
    assert_usage_error(env.run("resolve", inc, "Fixed", "--at", "tomorrow"), "--at")
    assert_usage_error(env.run("resolve", inc, "Fixed", "--at", "+1h"), "--at", "future")
    assert_usage_error(env.run("resolve", inc, "Fixed", "--at", "-3h"), "--at", "before")
    assert_usage_error(env.run("deliveries", inc, "--status", "lost"), "--status", "'lost'")
    assert_usage_error(env.run("show", inc, "--customer", "c0000404"), "c0000404")
    assert_usage_error(env.run("preview", "apology", "--customer", "c0000003"), "KIND")
    assert_usage_error(env.run("preview", "update", "--customer", "c0000404"), "c0000404")
    assert env.state() == before


def test_update_on_resolved_incident(env: Env) -> None:
    data = env.declare("--component", "search")
    inc, audience = data["incident"], data["queued"]
    res = env.json("resolve", "--yes", inc, "The search index was rebuilt.")
    assert res["status"] == "resolved"
    env.smtp.handler.wait_for(lambda m: len(m) >= 2 * audience)
    before = env.state()
    assert before == (1, 2, 2 * audience, 2 * audience)
    line = assert_usage_error(env.run("update", inc, "One more thing"))
    assert inc in line and "resolved" in line
    line = assert_usage_error(env.run("resolve", inc, "Again"))
    assert "resolved" in line
    assert env.state() == before


# --- user text is not Rich markup -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["customers", "list", "--component", "[/]"],
        ["declare", "Search [/] slow\n", "-s", "sev2", "-c", "search"],
    ],
    ids=["component", "title"],
)
def test_error_with_markup_characters_is_still_one_clean_line(env: Env, args: list[str]) -> None:
    assert_usage_error(env.run(*args), "[/]")
    assert env.state() == EMPTY


def test_error_shows_brackets_literally(env: Env) -> None:
    assert_usage_error(env.run("customers", "list", "--component", "[bold]api"), "'[bold]api'")


def test_list_table_with_brackets_in_title(env: Env) -> None:
    data = env.json(
        "declare", "Search [/] slow", "-s", "sev3", "-c", "search", "--yes", "--queue-only"
    )
    assert data["incident"] == "INC-1"
    res = env.run("list")
    assert res.exit_code == 0
    assert "Search [/] slow" in res.stdout
