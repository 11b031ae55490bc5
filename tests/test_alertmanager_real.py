"""A real Prometheus Alertmanager delivers to ``POST /hooks/alertmanager``.

The binary (Debian: ``apt-get install -y prometheus-alertmanager``) runs on loopback with a
webhook receiver pointing at the daemon's HTTP endpoint, bearer credentials and a short
group_wait; alerts are pushed to its API (``/api/v2/alerts``) as Prometheus would. Skipped
with the reason when the binary is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.intake.drafts import list_drafts
from outagecomms.models import AlertState, DraftStatus
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from tests.fakes.asgi import free_port
from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv
from tests.support.processes import wait_until
from tests.support.web import serve_web

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TOKEN = "real-alertmanager-token-42"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BINARY is None,
        reason="Prometheus Alertmanager is not installed "
        "(Debian: apt-get install -y prometheus-alertmanager)",
    ),
]

HOOKS = """
[hooks]
token_env = "OC_TEST_HOOKS_TOKEN"
[[hooks.rules]]
name = "page"
match = { page = "yes" }
title = "{service} is unavailable in {region}"
auto_declare = true
[[hooks.rules]]
name = "drafts"
"""

AM_CONFIG = """
route:
  receiver: outagecomms
  group_by: ['alertname', 'service']
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: outagecomms
    webhook_configs:
      - url: {url}/hooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[str], httpx.Client]]:
    """Start Alertmanager for a hook URL; yields a client on its API."""
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.Client] = []

    def start(hook_base: str) -> httpx.Client:
        config = tmp_path / "alertmanager.yml"
        config.write_text(AM_CONFIG.format(url=hook_base, token=TOKEN))
        port = free_port()
        log = (tmp_path / "alertmanager.log").open("wb")
        assert BINARY is not None
        procs.append(
            subprocess.Popen(
                [
                    BINARY,
                    f"--config.file={config}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",  # one instance, no gossip port
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        clients.append(client)

        def ready() -> bool:
            assert procs[-1].poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                return client.get("/-/ready").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=20, interval=0.05)
        return client

    try:
        yield start
    finally:
        for c in clients:
            c.close()
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def push(am: httpx.Client, labels: dict[str, str], *, ends_at: datetime | None = None) -> None:
    """What Prometheus does: POST the alert to Alertmanager's API."""
    alert: dict[str, Any] = {
        "labels": labels,
        "annotations": {"summary": f"{labels['service']} is failing"},
        "generatorURL": "http://prometheus.example.com:9090/graph",
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat().replace("+00:00", "Z")
    res = am.post("/api/v2/alerts", content=json.dumps([alert]), headers={"Content-Type": "application/json"})  # fmt: skip
    assert res.status_code == 200, res.text


def test_alertmanager_delivers_drafts_resolutions_and_an_auto_declared_incident(
    make_config: Callable[..., Path],
    smtp_server: SmtpServer,
    alertmanager: Callable[[str], httpx.Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "feedback-secret")
    monkeypatch.setenv("OC_TEST_HOOKS_TOKEN", TOKEN)
    with App.open(make_config(smtp_server, extra=HOOKS)) as app, serve_web(app) as web:
        import_file(app, sample_csv())
        am = alertmanager(str(web.base_url).rstrip("/"))

        search = {"alertname": "SearchDown", "service": "search", "region": "eu-west", "severity": "warning"}  # fmt: skip
        push(am, search)
        wait_until(lambda: len(list_drafts(app)) == 1, timeout=20)
        (d,) = list_drafts(app)
        assert (d.source, d.rule, d.title, d.severity) == (
            "alertmanager",
            "drafts",
            "search is failing",
            "sev3",
        )
        assert d.components == ("search",) and d.regions == ("eu-west",)
        assert d.group_key == '{}:{alertname="SearchDown", service="search"}'
        assert d.alert_state == AlertState.FIRING

        # Prometheus re-sends a firing alert every evaluation: still one draft
        push(am, search)
        push(am, search)
        # and it resolves
        push(am, search, ends_at=datetime.now(UTC) - timedelta(seconds=1))
        wait_until(lambda: list_drafts(app)[0].alert_state == AlertState.RESOLVED, timeout=20)
        (d,) = list_drafts(app, include_closed=True)
        assert d.status == DraftStatus.OPEN and d.resolved_at is not None
        assert d.times_seen >= 2  # the firing notification and the resolved one, same draft

        # a paging alert declares at once; the acknowledgement waits in the outbox
        db = {"alertname": "DatabaseDown", "service": "database", "region": "us-east", "severity": "critical", "page": "yes"}  # fmt: skip
        push(am, db)

        def declared() -> bool:
            return any(x.status == DraftStatus.DECLARED for x in list_drafts(app, include_closed=True))  # fmt: skip

        wait_until(declared, timeout=20)
        with app.store.read() as conn:
            (inc,) = incidents_db.list_incidents(conn)
            owed = outbox_db.count_deliveries(conn, inc.id)
        assert inc.title == "database is unavailable in us-east" and inc.severity == "sev1"
        assert owed == {"pending": len(expected_ids("database", "us-east"))}
        assert len(list_drafts(app, include_closed=True)) == 2
