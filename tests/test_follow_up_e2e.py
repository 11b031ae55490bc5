"""After resolution the daemon sends the follow-up; a customer's one click on a score link in
the email reaches the daemon's HTTP listener and is recorded; `nps` and `report` show it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.fakes.asgi import free_port
from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv
from tests.support.processes import run_json, start_daemon, stop, wait_until

pytestmark = pytest.mark.slow


def test_follow_up_click_is_recorded(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    cfg = make_config(smtp_server)
    text = cfg.read_text().replace(
        'update_every = "30m"', 'update_every = "30m"\nfollow_up_after = "1s"'
    )
    text = text.replace(
        "[daemon]\n",
        f'[daemon]\nhttp = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\nsecret_env = "OC_TEST_SECRET"\n',
    )
    cfg.write_text(text)
    monkeypatch.setenv("OC_TEST_SECRET", "s3cret-for-tests")
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    want = expected_ids("database", "eu-west")
    run_json(cfg, "declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes")
    run_json(cfg, "resolve", "--yes", "INC-1", "Fixed.")
    daemon = start_daemon(cfg, tmp_path / "daemon.log")
    try:
        msgs = smtp_server.handler.wait_for(
            lambda ms: sum(m.kind == "follow_up" for m in ms) >= len(want), timeout=30
        )
        follow = [m for m in msgs if m.kind == "follow_up"]
        assert {m.customer for m in follow} == want
        first = follow[0]
        links = re.findall(r"http://127\.0\.0\.1:\d+/feedback/\S+\?score=\d+", first.text())
        assert len(links) == 11
        wait_until(lambda: _healthy(port))
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["store"] == "ok" and health["role"] == "leader" and health["last_tick"]
        line = f'outagecomms_deliveries{{channel="email",status="sent"}} {len(msgs)}'
        # the sender records a batch just after the server accepted it: wait for that write
        wait_until(lambda: line in httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "outagecomms_leader 1" in metrics and "outagecomms_open_incidents 0" in metrics
        assert 'outagecomms_promise_margin_seconds_bucket{le="+Inf"}' in metrics
        assert "outagecomms_promises_late_total 0" in metrics
        for link in links:  # a mail scanner fetches every link: nothing is recorded
            assert httpx.get(link).status_code == 200
        assert run_json(cfg, "nps", "INC-1")["responses"] == 0
        r = httpx.get(links[9])  # "9": a promoter clicks, then presses the page's button
        assert r.status_code == 200 and "9 out of 10" in r.text
        target = links[9].split("?")[0]
        r = httpx.post(target, data={"score": "9"})
        assert r.status_code == 200 and "thank" in r.text.lower()
        r = httpx.post(target, data={"score": "3"})  # changed their mind: updated
        assert r.status_code == 200
        tampered = links[9].replace("/feedback/", "/feedback/x")
        assert httpx.get(tampered).status_code == 403
    finally:
        assert stop(daemon) == 0
    data = run_json(cfg, "nps", "INC-1")
    assert data["responses"] == 1 and data["detractors"] == 1 and data["nps"] == -100.0
    rep = cli("--config", str(cfg), "report", "INC-1")
    assert rep.exit_code == 0 and "INC-1" in rep.stdout


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
