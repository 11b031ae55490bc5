"""``resolve`` pre-flights every template the incident still needs once resolved (the
follow-up; see ``incidents.preflight.AFTER_RESOLUTION``), and a follow-up that fails later
anyway (an override broken after the resolution) is named in ``tick --json``'s ``errors``,
agreeing with its exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from outagecomms.app import App
from outagecomms.models import RoundKind
from outagecomms.rendering import templates
from outagecomms.rendering.templates import Renderer
from outagecomms.store import incidents as incidents_db
from tests.fakes.smtp import SmtpServer
from tests.support.builders import COMPANY
from tests.support.data import sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]
BROKEN = "Hi {{ nope }}\n"


def _workspace(make_config: Callable[..., Path], smtp: SmtpServer) -> Path:
    """A config whose follow-up falls due at once after the resolution."""
    cfg = make_config(smtp)
    text = cfg.read_text().replace(
        'update_every = "30m"', 'update_every = "30m"\nfollow_up_after = "1ms"'
    )
    cfg.write_text(text)
    return cfg


def test_resolve_refuses_a_broken_follow_up_and_stays_open(
    make_config: Callable[..., Path], cli: Cli, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    cfg = _workspace(make_config, smtp_server)

    def run(*args: str) -> CliResult:
        return cli("--config", str(cfg), *args)

    assert run("customers", "import", str(sample_csv())).exit_code == 0
    assert run("declare", "Database down", "-s", "sev2", "-c", "database", "--yes").exit_code == 0
    sent = len(smtp_server.handler.snapshot())
    override = tmp_path / "templates" / "follow_up" / "email.txt.j2"
    override.parent.mkdir(parents=True)
    override.write_text(BROKEN)
    for yes in ((), ("--yes",)):  # said before the prompt's question, and with --yes
        res = run("resolve", "INC-1", "Fixed.", *yes)
        assert res.exit_code == 2, res.stderr
        assert "template follow_up/email.txt.j2, line 1: 'nope' is undefined" in res.stderr
    assert len(smtp_server.handler.snapshot()) == sent  # no resolution went out
    with App.open(cfg) as app, app.store.read() as conn:
        assert incidents_db.get_incident(conn, 1).incident.is_open
    # fixed: the resolution goes out
    override.unlink()
    assert run("resolve", "INC-1", "Fixed.", "--yes").exit_code == 0


def test_a_follow_up_failing_in_tick_is_in_its_json_errors(
    make_config: Callable[..., Path], cli: Cli, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """Broken after the resolution (nothing can catch that earlier): tick exits 1, and
    ``--json`` says why, in ``errors``."""
    cfg = _workspace(make_config, smtp_server)

    def run(*args: str) -> CliResult:
        return cli("--config", str(cfg), *args)

    assert run("customers", "import", str(sample_csv())).exit_code == 0
    assert run("declare", "Database down", "-s", "sev2", "-c", "database", "--yes").exit_code == 0
    assert run("resolve", "INC-1", "Fixed.", "--yes").exit_code == 0
    override = tmp_path / "templates" / "follow_up" / "email.txt.j2"
    override.parent.mkdir(parents=True)
    override.write_text(BROKEN)
    res = run("tick", "--json")
    assert res.exit_code == 1, res.stderr
    errors = json.loads(res.stdout)["errors"]
    assert errors, res.stdout
    assert any("follow-up not sent" in e and "follow_up/email.txt.j2" in e for e in errors)


def test_a_kind_without_templates_is_not_preflighted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round kind whose templates are not installed (yet) is skipped, not an error."""
    (tmp_path / "acknowledgement").mkdir()
    (tmp_path / "acknowledgement" / "email.txt.j2").write_text("Hi\n")
    monkeypatch.setattr(templates, "default_templates_dir", lambda: tmp_path)
    r = Renderer(company=COMPANY)
    assert r.has_templates(RoundKind.ACKNOWLEDGEMENT)
    assert not r.has_templates(RoundKind.FOLLOW_UP)
