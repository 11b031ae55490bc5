"""``[credits] exclude_announced_maintenance``: downtime inside a maintenance window the
customer was told of at least the notice period before it started is not downtime for their
credit; a window announced too late, or one they were not told of, excludes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.directory.importer import import_file
from outagecomms.errors import ConfigError
from outagecomms.incidents.lifecycle import declare, resolve
from outagecomms.maintenance import lifecycle
from outagecomms.models import Selector
from outagecomms.recovery.credits import Span, compute_credit
from outagecomms.store import credits as credits_db
from outagecomms.store import customers as customers_db
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv, step_rule

SEL = Selector.of(components=["database"], regions=["eu-west"])


@pytest.fixture
def app(smtp_server: SmtpServer, make_config, clock: FakeClock) -> Iterator[App]:
    extra = '[credits]\nexclude_announced_maintenance = "72h"\n' + step_rule("30m")
    a = App.open(make_config(smtp_server, extra=extra), clock=clock)
    import_file(a, sample_csv())
    yield a
    a.close()


def _window(app: App, ahead: timedelta) -> lifecycle.MaintenanceWindow:
    now = app.clock()
    plan = lifecycle.plan_schedule(
        app, title="Upgrade", selector=SEL, start=now + ahead, end=now + ahead + timedelta(hours=1)
    )
    return lifecycle.schedule(app, plan).window


def _credits_for_an_outage_over(app: App, clock: FakeClock, w) -> dict[str, Decimal]:
    """An incident from the window's start for two hours (the work went wrong)."""
    clock.now = w.starts_at + timedelta(hours=2)
    inc = declare(
        app, title="Database down", severity="sev2", selector=SEL, started_at=w.starts_at
    ).incident
    resolve(app, inc.id, "Fixed.")
    with app.store.read() as conn:
        return {
            r["customer_id"]: Decimal(r["amount"])
            for r in credits_db.incident_credits(conn, inc.id)
        }


def _engine(app: App, customer_id: str, down: timedelta) -> Decimal:
    """What the credit engine gives this customer for ``down`` of plain downtime."""
    with app.store.read() as conn:
        cust = customers_db.get_customers(conn, [customer_id])[customer_id]
    start = app.clock()
    span = Span(99, start, start + down, "sev2")
    policy = app.config.credits
    return compute_credit(
        policy, customer=cust, incident=span, ack_delivered_at=start, ack_within=timedelta(hours=1),
        history=[span],
    ).amount  # fmt: skip


def test_announced_in_time_the_window_is_not_downtime(app: App, clock: FakeClock) -> None:
    w = _window(app, timedelta(hours=80))  # told 80 h ahead: the SLA asks 72 h
    got = _credits_for_an_outage_over(app, clock, w)
    assert set(got) == expected_ids("database", "eu-west")
    for cid, amount in got.items():
        assert amount == _engine(app, cid, timedelta(hours=1)) > 0
        assert amount < _engine(app, cid, timedelta(hours=2))


def test_announced_too_late_it_is_downtime(app: App, clock: FakeClock) -> None:
    w = _window(app, timedelta(hours=30))
    for cid, amount in _credits_for_an_outage_over(app, clock, w).items():
        assert amount == _engine(app, cid, timedelta(hours=2))


def test_a_cancelled_window_excludes_nothing(app: App, clock: FakeClock) -> None:
    w = _window(app, timedelta(hours=80))
    lifecycle.cancel(app, w.id)
    for cid, amount in _credits_for_an_outage_over(app, clock, w).items():
        assert amount == _engine(app, cid, timedelta(hours=2))


def test_the_notice_period_is_a_duration(make_config) -> None:
    with pytest.raises(ConfigError, match=r"credits\.exclude_announced_maintenance"):
        load_config(make_config(extra='[credits]\nexclude_announced_maintenance = "soon"\n'))
