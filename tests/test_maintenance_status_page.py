"""Scheduled maintenance on the public status page (issue 15's seam): an open window touching a
public component is listed (HTML and Statuspage's ``scheduled_maintenances``), and while it is
in progress its components are under_maintenance unless an incident does worse; no customer
data on the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from outagecomms import App
from outagecomms.maintenance import lifecycle
from outagecomms.models import Selector
from outagecomms.pages.status import MAINTENANCE, OPERATIONAL, compute_status
from tests.fakes.clock import FakeClock
from tests.support.status_page import STATUS_SECRET, AsgiClient, status_app


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", STATUS_SECRET)


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[App]:
    with status_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", clock) as a:
        yield a


def test_a_window_is_listed_then_its_components_are_under_maintenance(
    app: App, clock: FakeClock
) -> None:
    from outagecomms.web.server import make_web_app

    now = clock()
    plan = lifecycle.plan_schedule(
        app, title="Database upgrade", selector=Selector.of(components=["database"]),
        start=now + timedelta(hours=1), end=now + timedelta(hours=3),
    )  # fmt: skip
    w = lifecycle.schedule(app, plan).window
    data = compute_status(app)
    assert [m["id"] for m in data.maintenance] == ["MNT-1"]
    assert data.maintenance[0]["components"] == ["Managed Database"]
    assert {c.key: c.state for c in data.components}["database"] == OPERATIONAL
    assert data.state == OPERATIONAL

    lifecycle.start(app, w.id)
    data = compute_status(app)
    states = {c.key: c.state for c in data.components}
    assert states["database"] == MAINTENANCE and states["api"] == OPERATIONAL
    assert data.state == MAINTENANCE

    c = AsgiClient(make_web_app(app))
    summary = json.loads(c.get("/status/summary.json").text)
    assert summary["status"]["indicator"] == "maintenance"
    (sm,) = summary["scheduled_maintenances"]
    assert sm["id"] == "MNT-1" and sm["status"] == "in_progress"
    assert sm["scheduled_for"] == w.starts_at.isoformat()
    page = c.get("/status").text
    assert "Database upgrade" in page and "s-under_maintenance" in page
    assert "Zebracorn" not in page and "zebra" not in json.dumps(summary)

    lifecycle.complete(app, w.id)
    data = compute_status(app)
    assert data.maintenance == () and data.state == OPERATIONAL
