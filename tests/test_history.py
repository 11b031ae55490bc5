"""Recording an incident without messaging anyone (history, for uptime and credits), and
queueing without sending (for a daemon or tick)."""

from __future__ import annotations

import pytest

from tests.fakes.smtp import SmtpServer
from tests.support.data import sample_csv
from tests.support.processes import run_json

pytestmark = pytest.mark.slow


def test_past_incident_is_recorded_and_nothing_is_ever_sent(
    smtp_server: SmtpServer, make_config, cli
) -> None:
    cfg = make_config(smtp_server)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    out = run_json(cfg, "declare", "March outage", "--severity", "sev2", "--component", "database",
                   "--started-at", "2026-03-10T10:00:00Z", "--no-send")  # fmt: skip
    assert out["incident"] == "INC-1" and out["queued"] == 0 and out["sent"] == 0
    assert out["promised_next_by"] is None  # nobody was told, so nothing is promised
    res = run_json(
        cfg, "resolve", "INC-1", "Fixed then.", "--at", "2026-03-10T11:30:00Z", "--no-send"
    )
    assert res["status"] == "resolved" and res["resolved_at"] == "2026-03-10T11:30:00Z"
    tick = run_json(cfg, "tick")
    assert tick["holding"] == [] and tick["sent"] == 0
    show = run_json(cfg, "show", "INC-1")
    assert [r["kind"] for r in show["rounds"]] == ["acknowledgement", "resolution"]
    assert all(r["owed"] == 0 for r in show["rounds"])
    assert smtp_server.handler.snapshot() == []


def test_queue_only_leaves_the_sending_to_tick(smtp_server: SmtpServer, make_config, cli) -> None:
    cfg = make_config(smtp_server)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    out = run_json(cfg, "declare", "DB down", "--severity", "sev2", "--component", "database",
                   "--region", "eu-west", "--queue-only", "--yes")  # fmt: skip
    assert out["queued"] == out["audience"] > 0 and out["sent"] == 0
    assert smtp_server.handler.snapshot() == []
    assert run_json(cfg, "tick")["sent"] == out["queued"]
    smtp_server.handler.wait_for(lambda ms: len(ms) == out["queued"])
