"""The cron form (``tick``), including overlapping ticks, and a daemon killed with SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv
from tests.support.processes import parse_ts, run_json, start_daemon, stop, wait_until

pytestmark = pytest.mark.slow


def _tick(cfg: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "outagecomms", "--config", str(cfg), "tick", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _declare(cfg: Path, cli, every: str = "2s") -> set[str]:
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    want = expected_ids("database", "eu-west")
    out = run_json(cfg, "declare", "Database down", "--severity", "sev2", "--component", "database",
                   "--region", "eu-west", "--every", every, "--yes")  # fmt: skip
    assert out["sent"] == len(want)
    return want


def _check_rounds(cfg: Path, smtp: SmtpServer, n_customers: int) -> dict:
    show = run_json(cfg, "show", "INC-1")
    msgs = smtp.handler.snapshot()
    # nothing sent twice: one message per Message-ID, one per (round, customer)
    assert all(n == 1 for n in Counter(m.message_id for m in msgs).values())
    assert all(n == 1 for n in Counter((m.round, m.customer) for m in msgs).values())
    dues = [r["due_by"] for r in show["rounds"] if r["kind"] == "holding"]
    assert len(dues) == len(set(dues)), "two holding rounds for the same promise"
    for r in show["rounds"]:
        got = [m for m in msgs if m.round == r["round"]]
        if r["kind"] == "holding":
            assert len(got) == n_customers, f"round {r['round']}"
            due = parse_ts(r["due_by"])
            assert all(m.at <= due for m in got), f"round {r['round']} late"
    return show


def test_ticks_keep_the_promise_even_when_they_overlap(
    smtp_server: SmtpServer, make_config, cli
) -> None:
    cfg = make_config(smtp_server)
    # 8 s: the holding round starts half a cadence before the promise, and a pair of tick
    # processes takes ~1 s to start on a quiet 2-core machine but 2-3 s on a loaded one (a
    # whole suite beside other work): 4 s of lead keeps that latency out of the assertion
    want = _declare(cfg, cli, every="8s")
    h = smtp_server.handler

    def holding_rounds() -> int:
        return len({m.round for m in h.snapshot() if m.kind == "holding"})

    # cron at a high frequency: always two ticks at once
    runs = 0
    while holding_rounds() < 3:
        a, b = _tick(cfg), _tick(cfg)
        for p in (a, b):
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        runs += 1
        assert runs < 200, "ticks never produced three holding rounds"
    h.wait_for(lambda ms: len([m for m in ms if m.kind == "holding"]) >= 3 * len(want))
    _check_rounds(cfg, smtp_server, len(want))


def test_daemon_killed_and_restarted_keeps_the_next_promise(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    cfg = make_config(smtp_server)
    want = _declare(cfg, cli, every="3s")
    h = smtp_server.handler
    log = tmp_path / "daemon.log"
    d1 = start_daemon(cfg, log)
    try:
        h.wait_for(lambda ms: len([m for m in ms if m.round == 2]) >= len(want), timeout=30)
        # make sure the sends were recorded before the kill, so a resend would be a real bug
        wait_until(
            lambda: (
                next(r for r in run_json(cfg, "show", "INC-1")["rounds"] if r["round"] == 2)["sent"]
                == len(want)
            )
        )
    finally:
        d1.send_signal(signal.SIGKILL)
        d1.wait(timeout=10)
    before = len(h.snapshot())
    d2 = start_daemon(cfg, log)
    try:
        h.wait_for(lambda ms: len([m for m in ms if m.round == 3]) >= len(want), timeout=30)
        h.wait_for(lambda ms: len([m for m in ms if m.round == 4]) >= len(want), timeout=30)
    finally:
        assert stop(d2) == 0
    assert len(h.snapshot()) >= before + 2 * len(want)
    _check_rounds(cfg, smtp_server, len(want))


def test_second_daemon_on_the_same_sqlite_file_is_refused(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    cfg = make_config(smtp_server)
    d1 = start_daemon(cfg, tmp_path / "d1.log")
    try:
        wait_until(lambda: "daemon ready" in (tmp_path / "d1.log").read_text())
        p = subprocess.run(
            [sys.executable, "-m", "outagecomms", "--config", str(cfg), "daemon"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert p.returncode == 2
        assert "another daemon" in p.stderr
    finally:
        assert stop(d1) == 0


def test_sighup_reloads_templates_and_sd_notify_watchdog(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    """SIGHUP: the next round uses the edited template override; WATCHDOG=1 reaches systemd."""
    import os
    import socket

    tpl = tmp_path / "templates" / "holding"
    tpl.mkdir(parents=True)
    cfg = make_config(smtp_server, extra=f'\n[templates]\ndir = "{tmp_path / "templates"}"\n')
    want = _declare(cfg, cli, every="2s")
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(30)
    log = tmp_path / "daemon.log"
    fh = log.open("ab")
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify),
        "WATCHDOG_USEC": "1000000",
        "PYTHONUNBUFFERED": "1",
    }
    d = subprocess.Popen(
        [sys.executable, "-m", "outagecomms", "--config", str(cfg), "daemon"],
        stdout=fh,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        seen = set()
        while not {"READY=1", "WATCHDOG=1"} <= seen:
            seen.add(sock.recv(100).decode())
        (tpl / "email.subject.j2").write_text("RELOADED {{ incident.ref }}\n")
        d.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloaded config and templates" in log.read_text())
        h = smtp_server.handler
        h.wait_for(
            lambda ms: (
                sum(str(m.message["Subject"]).startswith("RELOADED") for m in ms) >= len(want)
            ),
            timeout=30,
        )
    finally:
        assert stop(d) == 0
        sock.close()
