"""``tick`` under cron: it exits 3 when it left deliveries unsent (the mail server is down), and
its ``--json`` ``errors`` holds both what the scheduler could not do and the deliveries'
errors, so the object agrees with the exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from outagecomms import App
from outagecomms.values import utcnow
from tests.fakes.clock import FakeClock
from tests.support.data import expected_ids, sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]


def _declare_queued(cfg: Path, cli: Cli) -> int:
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    res = cli(
        "--config", str(cfg), "declare", "Database down", "-s", "sev2", "-c", "database",
        "-r", "eu-west", "--queue-only", "--yes", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    return len(expected_ids("database", "eu-west"))


def test_tick_exits_3_when_the_mail_server_is_down(
    make_config: Callable[..., Path], cli: Cli
) -> None:
    cfg = make_config()  # email to a closed port: every send is a retry
    n = _declare_queued(cfg, cli)
    res = cli("--config", str(cfg), "tick")
    assert res.exit_code == 3, res.stderr
    assert f"dispatched {n}: 0 sent, {n} will be retried" in res.stderr


def test_tick_json_errors_agree_with_exit_3(make_config: Callable[..., Path], cli: Cli) -> None:
    cfg = make_config()
    n = _declare_queued(cfg, cli)
    res = cli("--config", str(cfg), "tick", "--json")
    assert res.exit_code == 3, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["sent"], doc["retry"], doc["failed"], doc["dead"]) == (0, n, 0, 0)
    assert doc["errors"] == {"cannot connect to SMTP server": n}


def test_tick_with_nothing_unsent_exits_0(smtp_server: object, make_config, cli: Cli) -> None:
    cfg = make_config(smtp_server)
    n = _declare_queued(cfg, cli)
    res = cli("--config", str(cfg), "tick", "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["sent"] == n and doc["errors"] == {}


def test_tick_json_errors_merge_the_schedulers_with_the_deliveries(
    make_config: Callable[..., Path], cli: Cli, tmp_path: Path
) -> None:
    """A holding update that cannot be rendered (the scheduler's error, exit 1) and
    acknowledgements the mail server refused (the deliveries' errors): both in ``errors``."""
    broken = tmp_path / "templates" / "holding"
    broken.mkdir(parents=True)
    (broken / "email.txt.j2").write_text("{{ no_such_value.anything }}\n")
    cfg = make_config(extra=f'\n[templates]\ndir = "{tmp_path / "templates"}"\n')
    # declared 31 minutes ago with a 30-minute cadence: the holding update is due now
    app = App.open(cfg, clock=FakeClock(utcnow() - timedelta(minutes=31)))
    try:
        app.import_customers(sample_csv())
        app.declare(
            "Database down", severity="sev2", components=["database"], regions=["eu-west"],
            send="queue",
        )  # fmt: skip
    finally:
        app.close()
    n = len(expected_ids("database", "eu-west"))
    res = cli("--config", str(cfg), "tick", "--json")
    assert res.exit_code == 1, res.stderr
    doc = json.loads(res.stdout)
    holding = [e for e in doc["errors"] if e.startswith("INC-1: holding update for ")]
    assert len(holding) == 1 and "no_such_value" in holding[0], doc["errors"]
    assert doc["errors"][holding[0]] == 1
    assert doc["errors"]["cannot connect to SMTP server"] == n
    assert f"error: {holding[0]}" in res.stderr


def test_tick_tells_the_commander_of_the_deliveries_it_left_dead(
    smtp_server: Any, make_config: Callable[..., Path], cli: Cli
) -> None:
    """Deliveries out of retries in this run: the commander hears it from this tick (not one
    cron interval later), and the tick exits 3."""
    cfg = make_config(smtp_server)
    cfg.write_text(
        cfg.read_text().replace('retry_base = "1s"', 'retry_base = "1s"\nmax_attempts = 1')
    )
    want = expected_ids("database", "eu-west")
    smtp_server.handler.reject = {f"ops+{c}@example.com": "451 4.3.0 try again later" for c in want}
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    res = cli(
        "--config", str(cfg), "declare", "Database down", "-s", "sev2", "-c", "database",
        "-r", "eu-west", "--commander", "ic@example.com", "--queue-only", "--yes",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    res = cli("--config", str(cfg), "tick", "--json")
    assert res.exit_code == 3, res.stderr
    assert json.loads(res.stdout)["dead"] == len(want)
    (notice,) = smtp_server.handler.snapshot()
    assert notice.rcpt_tos == ["ic@example.com"]
    assert str(notice.message["Subject"]) == f"[INC-1] {len(want)} customer notices undeliverable"
