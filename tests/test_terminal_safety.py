"""Text from outside reaches the operator's terminal inert (issue 11): a customer's comment with
``\\x1b]0;TITLE\\x07\\x1b[2J`` retitled the terminal and cleared the screen on ``nps`` and
``report``. Everything the CLI prints is escaped in one place (cli/output.py, through
``outagecomms.terminal``); ``--json`` escapes as JSON does."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from outagecomms.logs import TerminalFormatter
from outagecomms.terminal import terminal_safe
from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]
HOSTILE = "Too slow\x1b]0;TITLE\x07\x1b[2J"
SHOWN = "Too slow\\x1b]0;TITLE\\x07\\x1b[2J"
#: what may drive a terminal: none of these may reach stdout or stderr raw
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (HOSTILE, SHOWN),
        ("a\rb\x08c\x7fd", "a\\x0db\\x08c\\x7fd"),
        ("csi \x9b2J", "csi \\x9b2J"),
        ("evil \u202eexe.txt", "evil \\u202eexe.txt"),
        ("line\u2028break", "line\\u2028break"),
        ("two\nlines\tand a tab, é, 日本, 👍", "two\nlines\tand a tab, é, 日本, 👍"),
    ],
)
def test_terminal_safe_escapes_what_drives_a_terminal(text: str, shown: str) -> None:
    assert terminal_safe(text) == shown
    assert terminal_safe(terminal_safe(text)) == shown  # escaping twice changes nothing


@pytest.fixture
def cfg(cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer) -> Path:
    """Customers imported, INC-1 declared (nothing sent), and one hostile comment recorded."""
    path = make_config(smtp_server)
    for args in (
        ("customers", "import", str(sample_csv())),
        ("declare", "Database down", "-s", "sev2", "-c", "database", "--yes", "--no-send"),
    ):
        assert cli("--config", str(path), *args).exit_code == 0
    res = cli("--config", str(path), "customers", "list", "-c", "database", "--json")
    customer = json.loads(res.stdout)["customers"][0]["id"]
    res = cli(
        "--config", str(path), "feedback", "record", "INC-1", customer, "3", "--comment", HOSTILE
    )
    assert res.exit_code == 0, res.stderr
    return path


def assert_inert(res: CliResult) -> None:
    assert res.exit_code == 0, res.stderr
    for raw in RAW:
        assert raw not in res.stdout and raw not in res.stderr, repr(res.stdout)


def test_nps_shows_a_hostile_comment_escaped(cli: Cli, cfg: Path) -> None:
    res = cli("--config", str(cfg), "nps", "INC-1")
    assert_inert(res)
    assert SHOWN in res.stdout
    data = json.loads(cli("--config", str(cfg), "nps", "INC-1", "--json").stdout)
    assert data["comments"][0]["comment"] == HOSTILE  # the data itself is kept as it came


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_shows_a_hostile_comment_escaped(cli: Cli, cfg: Path, fmt: str) -> None:
    res = cli("--config", str(cfg), "report", "INC-1", "--format", fmt)
    assert_inert(res)
    assert "\\x1b]0;TITLE" in res.stdout


def test_a_markdown_report_file_is_inert_too(cli: Cli, cfg: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    assert cli("--config", str(cfg), "report", "INC-1", "-o", str(out)).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert "\x1b" not in text and "\\x1b]0;TITLE" in text


def test_log_lines_on_a_terminal_are_escaped() -> None:
    record = logging.LogRecord(
        "outagecomms.web", logging.WARNING, __file__, 1, "alert %s", (HOSTILE,), None
    )
    line = TerminalFormatter("%(message)s").format(record)
    assert line == f"alert {SHOWN}"
