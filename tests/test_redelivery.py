"""Failed and dead deliveries: listed by status, sent again with ``deliveries retry`` (not when a
newer round already reached the customer), never retried past the next round, and reported to
the commander once per change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.outbox.redelivery import report_dead
from outagecomms.store import incidents as incidents_db
from tests.fakes.smtp import SmtpServer

HEADER = "id,name,email,tier,components,regions,timezone,locale\n"
ROWS = [
    "a,Alpha,ops@a.example,standard,api,eu,UTC,en_US",
    "b,Beta,gone@b.example,standard,api,eu,UTC,en_US",
    "c,Gamma,busy@c.example,standard,api,eu,UTC,en_US",
]


#: the SMTP server's replies that make b's address bounce and c's mailbox refuse for now
GONE = {"gone@b.example": "550 5.1.1 No such user"}
BUSY = {"busy@c.example": "451 4.3.0 Mailbox busy"}
#: the [dispatch] settings the tests start from: one attempt, so a refusal is dead at once
ONE_ATTEMPT = 'retry_base = "1s"\nmax_attempts = 1'
Declared = tuple[Path, int, dict[str, Any]]


@pytest.fixture
def declare(
    tmp_path: Path, make_config: Callable[..., Path], smtp_server: SmtpServer, cli: Any
) -> Callable[..., Declared]:
    """``declare(reject, *extra, dispatch=...)``: a config with ``dispatch`` for its
    ``[dispatch]`` retry settings, the three customers imported, the SMTP server refusing
    ``reject`` (address -> reply), then INC-1 declared (``extra`` added to ``declare``'s
    arguments). Returns the config, the exit code and the ``--json`` document."""

    def go(reject: dict[str, str], *extra: str, dispatch: str = ONE_ATTEMPT) -> Declared:
        cfg = make_config(smtp_server)
        cfg.write_text(cfg.read_text().replace('retry_base = "1s"', dispatch))
        csv = tmp_path / "customers.csv"
        csv.write_text(HEADER + "\n".join(ROWS) + "\n")
        assert cli("--config", str(cfg), "customers", "import", str(csv)).exit_code == 0
        smtp_server.handler.reject = reject
        res = cli("--config", str(cfg), "declare", "API down", "--severity", "sev2",
                  "--component", "api", "--commander", "ic@s1.example", "--yes", "--json",
                  *extra)  # fmt: skip
        return cfg, res.exit_code, json.loads(res.stdout)

    return go


def _statuses(cli: Any, cfg: Path, ref: str, status: str) -> list[str]:
    res = cli("--config", str(cfg), "deliveries", ref, "--status", status, "--json")
    assert res.exit_code == 0, res.stderr
    return sorted(d["customer"] for d in json.loads(res.stdout)["deliveries"])


def test_failed_and_dead_are_listed_and_retried(
    declare: Callable[..., Declared], smtp_server: SmtpServer, cli: Any
) -> None:
    cfg, code, out = declare(GONE | BUSY)
    assert code == 3  # partial: some deliveries failed
    assert (out["sent"], out["failed"], out["dead"]) == (1, 1, 1)
    ref = out["incident"]
    assert _statuses(cli, cfg, ref, "failed") == ["b"]
    assert _statuses(cli, cfg, ref, "dead") == ["c"]
    # the list form and the explicit subcommand agree
    listed = cli("--config", str(cfg), "deliveries", "list", ref, "--json")
    assert json.loads(listed.stdout)["count"] == 3

    smtp_server.handler.reject = {}
    res = cli("--config", str(cfg), "deliveries", "retry", ref, "--customer", "b", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["requeued"] == 1
    assert _statuses(cli, cfg, ref, "dead") == ["c"]
    res = cli("--config", str(cfg), "deliveries", "retry", ref, "--json")
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)
    assert (got["requeued"], got["sent"], got["superseded"]) == (1, 1, 0)
    assert _statuses(cli, cfg, ref, "sent") == ["a", "b", "c"]
    rcpts = sorted(m.rcpt_tos[0] for m in smtp_server.handler.messages)
    assert rcpts == ["busy@c.example", "gone@b.example", "ops@a.example"]

    res = cli("--config", str(cfg), "deliveries", "retry", ref, "--customer", "nobody")
    assert res.exit_code == 2 and "nobody" in res.stderr


def test_a_newer_round_supersedes_instead_of_a_stale_resend(
    declare: Callable[..., Declared], smtp_server: SmtpServer, cli: Any
) -> None:
    cfg, _code, out = declare(GONE)
    ref = out["incident"]
    smtp_server.handler.reject = {}
    res = cli("--config", str(cfg), "update", "--yes", ref, "Rolled back the deploy.", "--json")
    assert res.exit_code == 0, res.stderr
    res = cli("--config", str(cfg), "deliveries", "retry", ref, "--json")
    got = json.loads(res.stdout)
    assert (got["requeued"], got["superseded"]) == (0, 1)
    kinds_to_b = [m.kind for m in smtp_server.handler.messages if m.customer == "b"]
    assert kinds_to_b == ["update"]  # never the stale acknowledgement after the update
    assert _statuses(cli, cfg, ref, "superseded") == ["b"]


def test_no_retry_is_scheduled_past_the_next_round(
    declare: Callable[..., Declared], smtp_server: SmtpServer, cli: Any
) -> None:
    cfg, _code, out = declare(
        BUSY, "--every", "2m", dispatch='max_attempts = 9\nretry_base = "10m"'
    )
    assert out["dead"] == 1 and out["retry"] == 0
    res = cli("--config", str(cfg), "deliveries", out["incident"], "--status", "dead", "--json")
    [dead] = json.loads(res.stdout)["deliveries"]
    assert dead["customer"] == "c"
    assert "no retry: the next round starts at" in dead["last_error"]


def test_the_commander_is_told_of_dead_deliveries_once_per_change(
    declare: Callable[..., Declared], smtp_server: SmtpServer, cli: Any
) -> None:
    cfg, _code, out = declare(BUSY)
    ref = out["incident"]
    app = App.from_config(load_config(cfg))
    try:
        assert report_dead(app) == [ref]
        assert report_dead(app) == []  # already told
        to_ic = [m for m in smtp_server.handler.messages if m.rcpt_tos == ["ic@s1.example"]]
        assert len(to_ic) == 1
        assert "1 customer notices undeliverable" in str(to_ic[0].message["Subject"])
        body = to_ic[0].text()
        assert "451" in body or "Mailbox busy" in body or "recipient refused" in body
        assert f"outagecomms deliveries retry {ref}" in body
        # retried and dead again: that is news again
        res = cli("--config", str(cfg), "deliveries", "retry", ref, "--json")
        assert res.exit_code == 3
        assert report_dead(app) == [ref]
        with app.store.read() as conn:
            kinds = [e["kind"] for e in incidents_db.list_events(conn, 1)]
        assert kinds.count("dead_reported") == 3  # told, reset by the retry, told again
    finally:
        app.close()


def test_show_counts_the_deliveries_waiting_for_a_retry(
    declare: Callable[..., Declared], smtp_server: SmtpServer, cli: Any
) -> None:
    cfg, code, out = declare(BUSY, dispatch='max_attempts = 5\nretry_base = "1m"')
    assert code == 3 and out["retry"] == 1
    shown = json.loads(cli("--config", str(cfg), "show", out["incident"], "--json").stdout)
    r0 = shown["rounds"][0]
    assert (r0["sent"], r0["pending"], r0["retrying"]) == (2, 1, 1)
    human = cli("--config", str(cfg), "show", out["incident"]).stdout
    assert "1 (1 retrying)" in human
