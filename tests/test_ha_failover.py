"""Several daemons on one PostgreSQL: one scheduling leader, all dispatch; SIGKILL the leader
and another takes over within leader_lease, every promise still kept, nothing sent twice."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv
from tests.support.processes import parse_ts, run_json, start_daemon, stop, wait_until

pytestmark = pytest.mark.slow


def test_leader_killed_another_takes_over(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path, pg_url: str
) -> None:
    cfg = make_config(smtp_server, store_url=pg_url)
    cfg.write_text(cfg.read_text().replace("[daemon]\n", '[daemon]\nleader_lease = "3s"\n'))
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    want = expected_ids("database", "eu-west")
    run_json(
        cfg,
        "declare",
        "DB down",
        "-s",
        "sev2",
        "-c",
        "database",
        "-r",
        "eu-west",
        "--every",
        "4s",
        "--yes",
    )
    log1, log2 = tmp_path / "d1.log", tmp_path / "d2.log"
    d1 = start_daemon(cfg, log1)
    wait_until(lambda: "became the scheduling leader" in log1.read_text(), timeout=30)
    d2 = start_daemon(cfg, log2)
    h = smtp_server.handler
    try:
        wait_until(lambda: "daemon ready" in log2.read_text(), timeout=30)
        h.wait_for(lambda ms: sum(m.round == 3 for m in ms) >= len(want), timeout=30)
        assert "became the scheduling leader" not in log2.read_text()  # exactly one leader
        # the round is recorded as sent before the kill, so any resend would be a real bug
        wait_until(
            lambda: (
                next(r for r in run_json(cfg, "show", "INC-1")["rounds"] if r["round"] == 3)["sent"]
                == len(want)
            )
        )
        killed_at = time.monotonic()
        d1.send_signal(signal.SIGKILL)
        d1.wait(timeout=10)
        wait_until(lambda: "became the scheduling leader" in log2.read_text(), timeout=15)
        takeover = time.monotonic() - killed_at
        assert takeover <= 3 + 1.5, f"takeover took {takeover:.1f}s"
        h.wait_for(lambda ms: sum(m.round == 5 for m in ms) >= len(want), timeout=30)
    finally:
        if d1.poll() is None:
            d1.kill()
        assert stop(d2) == 0
    show = run_json(cfg, "show", "INC-1")
    msgs = h.snapshot()
    assert all(n == 1 for n in Counter((m.round, m.customer) for m in msgs).values()), "sent twice"
    for r in show["rounds"]:
        if r["kind"] == "holding" and r["round"] <= 5:
            got = [m for m in msgs if m.round == r["round"]]
            assert len(got) == len(want)
            assert all(m.at <= parse_ts(r["due_by"]) for m in got), f"round {r['round']} late"


def test_the_leadership_session_tells_the_server_to_drop_a_silent_leader(pg_url: str) -> None:
    """A leader whose machine vanishes sends no FIN: the server must notice within the lease
    (keepalive and user timeout on that session), not after two hours of TCP defaults."""
    from datetime import timedelta

    from sqlalchemy import text

    from outagecomms.scheduler.leadership import Leadership, keepalive_settings
    from outagecomms.store import open_store

    store = open_store(pg_url)
    lead = Leadership(store, timedelta(seconds=15))
    try:
        assert lead.check() is True
        shown = {
            name: lead.conn.execute(text(f"SHOW {name}")).scalar()
            for name in keepalive_settings(timedelta(seconds=15))
        }
        assert shown == {
            "tcp_keepalives_idle": "5",
            "tcp_keepalives_interval": "1",
            "tcp_keepalives_count": "3",
            "tcp_user_timeout": "15000",  # ms
        }
        follower = Leadership(store, timedelta(seconds=15))
        assert follower.check() is False  # the lock is held
        follower.release()
    finally:
        lead.release()
        store.dispose()
