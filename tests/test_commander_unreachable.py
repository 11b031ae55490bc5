"""When the commander's channel is the very channel that is broken, the notice that could not
reach them goes to the log at error level and to ``/healthz`` (503, ``"status": "degraded"``
with the reason), so monitoring sees it; a later notice that gets through clears it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from outagecomms import App
from outagecomms.config.loader import load_config
from outagecomms.scheduler.commander import notify_commander
from outagecomms.store import incidents as incidents_db
from tests.fakes.asgi import free_port
from tests.support.data import sample_csv
from tests.support.processes import run_json, start_daemon, stop, wait_until
from tests.support.web import serve_web

COMMANDER = "ic@example.com"


def _health(port: int) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.HTTPError:
        return None


@pytest.mark.slow
def test_a_daemon_whose_commander_channel_is_down_is_degraded_and_logs_the_notice(
    make_config: Callable[..., Path], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    cfg = make_config()  # email, to customers and to the commander, goes to a closed port
    text = cfg.read_text().replace('retry_base = "1s"', 'retry_base = "1s"\nmax_attempts = 1')
    text = text.replace(
        "[daemon]\n", f'[daemon]\nhttp = "127.0.0.1:{port}"\nsecret_env = "OC_TEST_SECRET"\n'
    )
    cfg.write_text(text)
    monkeypatch.setenv("OC_TEST_SECRET", "s3cret-for-tests")
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    run_json(cfg, "declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west",
             "--commander", COMMANDER, "--queue-only", "--yes")  # fmt: skip
    log = tmp_path / "daemon.log"
    daemon = start_daemon(cfg, log)
    try:
        # every delivery dies at its first attempt; the scheduler tells the commander, by
        # email, on the same closed port: that notice fails too
        wait_until(lambda: (r := _health(port)) is not None and r.status_code == 503)
        res = _health(port)
        assert res is not None
        body = res.json()
        assert body["status"] == "degraded" and body["store"] == "ok"
        assert body["role"] == "leader" and "pid" in body  # what a healthy body says, still
        assert f"could not reach the commander at {COMMANDER}" in body["reason"]
        assert body["reason"].startswith("INC-1: ")
        (problem,) = body["problems"]
        assert problem["check"] == "commander" and problem["since"]
    finally:
        assert stop(daemon) == 0
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    (notice,) = [x for x in lines if x.get("event") == "commander_unreachable"]
    assert notice["level"] == "error" and notice["incident"] == "INC-1"
    assert notice["channel"] == "email" and COMMANDER in notice["error"]
    assert notice["subject"].startswith("[INC-1] ")
    assert notice["subject"].endswith(" customer notices undeliverable")
    assert "deliveries retry INC-1" in notice["text"]  # the notice itself is in the log


def test_healthz_recovers_when_a_notice_gets_through(
    smtp_server: Any,
    make_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "s3cret-for-tests")
    down = make_config(name="down.toml")  # the same store, email to a closed port
    up = make_config(smtp_server)
    app = App.open(down)
    try:
        app.import_customers(sample_csv())
        app.declare("DB down", severity="sev2", components=["database"], commander=COMMANDER,
                    send=False)  # fmt: skip
        with app.store.read() as conn:
            inc = incidents_db.get_incident(conn, 1).incident
        with serve_web(app) as client:
            assert client.get("/healthz").text == "ok"  # healthy: as it always answered
            assert not notify_commander(app, inc, "[INC-1] test", "Something to know.")
            res = client.get("/healthz")
            assert res.status_code == 503 and res.json()["status"] == "degraded"
            assert "INC-1: could not reach the commander at ic@example.com" in res.json()["reason"]
            app.config = load_config(up)  # the mail server is back
            assert notify_commander(app, inc, "[INC-1] test", "Something to know.")
            res = client.get("/healthz")
            assert res.status_code == 200 and res.text == "ok"
        assert [m.rcpt_tos for m in smtp_server.handler.snapshot()] == [[COMMANDER]]
    finally:
        app.close()
