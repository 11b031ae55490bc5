"""A large fan-out is shared by several sender processes: everyone told once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from outagecomms.app import App
from outagecomms.store import outbox as outbox_db
from tests.fakes.smtp import SmtpServer
from tests.support.data import write_rows
from tests.support.processes import cli_json, run_json

pytestmark = pytest.mark.slow


def write_directory(path: Path, n: int) -> list[dict[str, str]]:
    return write_rows(path, [
        {"id": f"p{i:05d}", "name": f"Customer {i}", "email": f"ops+p{i:05d}@example.com",
         "tier": ("enterprise", "business", "standard")[i % 3], "components": "api",
         "regions": "eu-west", "timezone": ("Europe/Berlin", "Asia/Tokyo", "America/New_York")[i % 3],
         "locale": ("de_DE", "ja_JP", "en_US")[i % 3], "currency": "EUR", "monthly_fee": "100"}
        for i in range(n)
    ])  # fmt: skip


def test_fan_out_over_two_processes_sends_each_message_once(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    cfg = make_config(smtp_server)
    # small batches, parallel from 100 deliveries, 2 sender processes
    cfg.write_text(
        cfg.read_text().replace(
            'retry_base = "1s"',
            'retry_base = "1s"\nbatch_size = 50\nprocesses = 2\nparallel_min = 100',
        )
    )
    directory = tmp_path / "customers.csv"
    rows = write_directory(directory, 2000)
    assert cli("--config", str(cfg), "customers", "import", str(directory)).exit_code == 0
    # a real CLI process: it is the parent of the sender processes under test
    out = cli_json(cfg, "declare", "API down", "--severity", "sev1", "--component", "api", "--yes")
    assert out["audience"] == len(rows)
    assert out["sent"] == len(rows) and out["failed"] == out["retry"] == 0
    msgs = smtp_server.handler.wait_for(lambda ms: len(ms) >= len(rows), timeout=60)
    assert Counter(m.customer for m in msgs) == Counter(r["id"] for r in rows)
    assert len({m.message_id for m in msgs}) == len(rows)
    assert run_json(cfg, "show", "INC-1")["rounds"][0]["sent"] == len(rows)
    senders: Counter[str] = Counter()
    with App.open(cfg) as app, app.store.read() as conn:
        for r in rows:
            (got,) = outbox_db.customer_deliveries(conn, 1, r["id"])
            senders[got["content"]["sender"].split(":")[1]] += 1  # the sender's pid
    assert len(senders) == 2, f"the fan-out was not shared by two processes: {senders}"
