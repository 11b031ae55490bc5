"""A window that runs past its end, through the real scheduler with the test's clock: the
commander is reminded once at end + grace, and at end + overrun_after an incident is declared
once for the window's audience, linked to it, acknowledged like any other."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.directory.importer import import_file
from outagecomms.errors import ConfigError
from outagecomms.maintenance import lifecycle
from outagecomms.maintenance.sender import send_now
from outagecomms.models import MaintenanceStatus, Selector
from outagecomms.scheduler.tick import tick
from outagecomms.store import incidents as incidents_db
from outagecomms.store import maintenance as mdb
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv

EXTRA = '[maintenance]\ngrace = "10m"\noverrun_after = "30m"\noverrun_severity = "sev2"\n'


@pytest.fixture
def app(smtp_server: SmtpServer, make_config, clock: FakeClock, store_url: str) -> Iterator[App]:
    a = App.open(make_config(smtp_server, store_url=store_url, extra=EXTRA), clock=clock)
    import_file(a, sample_csv())
    yield a
    a.close()


def test_an_overrun_reminds_the_commander_then_declares_an_incident(
    app: App, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    want = expected_ids("database", "eu-west")
    now = clock()
    plan = lifecycle.plan_schedule(
        app, title="Database upgrade", selector=Selector.of(components=["database"],
        regions=["eu-west"]), start=now + timedelta(hours=1), end=now + timedelta(hours=2),
        commander="ops@example.com",
    )  # fmt: skip
    w = lifecycle.schedule(app, plan).window
    send_now(app)
    h = smtp_server.handler

    def step(at: timedelta) -> None:
        clock.now = w.ends_at + at
        res = asyncio.run(tick(app))
        assert res.due.errors == [] and res.unsent == 0

    def to_commander() -> list[str]:
        return [
            str(m.message["Subject"]) for m in h.snapshot() if m.rcpt_tos == ["ops@example.com"]
        ]

    step(timedelta(hours=-1))  # the start
    step(timedelta(minutes=9))
    assert to_commander() == []
    step(timedelta(minutes=10))
    step(timedelta(minutes=20))
    assert to_commander() == ["[MNT-1] maintenance overran its end"]
    with app.store.read() as conn:
        assert incidents_db.list_incidents(conn) == []
    step(timedelta(minutes=30))
    step(timedelta(minutes=45))  # again: no second incident
    with app.store.read() as conn:
        incidents = incidents_db.list_incidents(conn)
        window = mdb.get_window(conn, w.id)
    assert len(incidents) == 1
    inc = incidents[0]
    assert window.incident_id == inc.id and window.status == MaintenanceStatus.IN_PROGRESS
    assert inc.severity == "sev2" and inc.started_at == w.ends_at
    assert "overran" in inc.title
    acks = [m for m in h.snapshot() if m.message["X-Outagecomms-Round"] is not None]
    assert sorted(m.customer for m in acks) == sorted(want)
    assert {m.kind for m in acks} == {"acknowledgement"}
    assert to_commander() == ["[MNT-1] maintenance overran its end"]
    # the work can still be completed; the incident goes on by its own life
    assert lifecycle.complete(app, w.id).window.status == MaintenanceStatus.COMPLETED


def test_overrun_after_shorter_than_grace_is_refused(make_config, tmp_path) -> None:
    cfg = make_config(extra='[maintenance]\ngrace = "1h"\noverrun_after = "30m"\n')
    with pytest.raises(ConfigError, match=r"maintenance\.overrun_after"):
        load_config(cfg)
