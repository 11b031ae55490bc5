"""Scheduled maintenance where the commander looks: ``watch`` lists the open windows below the
incidents (next reminder, notices' deliveries), and the report of an incident that overran
from a window names it and says whether its downtime was excluded from the credits as
announced maintenance."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.incidents.lifecycle import declare, resolve
from outagecomms.incidents.views import watch_snapshot
from outagecomms.maintenance import lifecycle
from outagecomms.maintenance.due import run_due
from outagecomms.maintenance.sender import send_now
from outagecomms.maintenance.views import MaintenanceWatchRow, watch_windows
from outagecomms.models import MaintenanceStatus, MaintenanceWindow, Selector
from outagecomms.recovery.report import build_report, render_html, render_markdown
from outagecomms.scheduler.tick import tick
from outagecomms.store import incidents as incidents_db
from outagecomms.store import maintenance as mdb
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv, step_rule

SEL = Selector.of(components=["database"], regions=["eu-west"])
OVERRUN = '[maintenance]\ngrace = "10m"\noverrun_after = "30m"\noverrun_severity = "sev2"\n'
EXCLUDE = '[credits]\nexclude_announced_maintenance = "72h"\n' + step_rule("30m")


@pytest.fixture
def app(smtp_server: SmtpServer, make_config, clock: FakeClock, store_url: str) -> Iterator[App]:
    """On PostgreSQL (the report's cases below run on SQLite, but the first)."""
    a = App.open(make_config(smtp_server, store_url=store_url), clock=clock)
    import_file(a, sample_csv())
    yield a
    a.close()


def _schedule(app: App, ahead: timedelta, title: str = "Database upgrade") -> MaintenanceWindow:
    now = app.clock()
    plan = lifecycle.plan_schedule(
        app, title=title, selector=SEL, start=now + ahead, end=now + ahead + timedelta(hours=1),
        commander="ops@example.com",
    )  # fmt: skip
    return lifecycle.schedule(app, plan).window


def _deliveries(app: App, w: MaintenanceWindow) -> dict[str, int]:
    """The window's deliveries by status, summed over its notices, as the store counts them."""
    out: dict[str, int] = {}
    with app.store.read() as conn:
        for by_status in mdb.delivery_counts(conn, w.id).values():
            for status, n in by_status.items():
                out[status] = out.get(status, 0) + n
    return out


# --- watch ----------------------------------------------------------------------------------


def test_watch_rows_follow_a_window_through_its_reminders(app: App, clock: FakeClock) -> None:
    w = _schedule(app, timedelta(hours=80))
    assert w.remind == app.config.maintenance.remind and len(w.remind) >= 2
    first, second = (w.starts_at - r for r in w.remind[:2])
    [row] = watch_windows(app)
    assert (row.ref, row.title, row.status) == (
        w.ref,
        "Database upgrade",
        MaintenanceStatus.SCHEDULED,
    )
    assert (row.starts_at, row.ends_at, row.audience) == (w.starts_at, w.ends_at, w.audience_size)
    assert row.next_reminder_at == first
    assert row.seconds_to_reminder == (first - clock()).total_seconds()
    told = _deliveries(app, w)
    assert row.pending == told.get("pending", 0) > 0 and row.sent == 0

    send_now(app)
    [row] = watch_windows(app)
    assert row.sent == _deliveries(app, w)["sent"] == told["pending"] and row.pending == 0
    assert row.failed == 0

    clock.now = first + timedelta(minutes=1)  # a scheduler has not run yet: still owed
    [row] = watch_windows(app)
    assert row.next_reminder_at == first and row.seconds_to_reminder == -60
    due = run_due(app)
    assert due.reminders and due.errors == []
    [row] = watch_windows(app)
    assert row.next_reminder_at == second
    assert row.pending == _deliveries(app, w)["pending"] > 0

    clock.now = w.starts_at
    run_due(app)  # started at its start: no reminder left
    [row] = watch_windows(app)
    assert row.status == MaintenanceStatus.IN_PROGRESS and row.next_reminder_at is None
    assert row.seconds_to_reminder is None
    lifecycle.complete(app, w.id)
    assert watch_windows(app) == []
    assert watch_snapshot(app) == []  # the incidents' rows are their own list


def test_watch_rows_list_open_windows_soonest_first(app: App) -> None:
    later = _schedule(app, timedelta(hours=100), title="Later")
    sooner = _schedule(app, timedelta(hours=90), title="Sooner")
    gone = _schedule(app, timedelta(hours=95), title="Called off")
    lifecycle.cancel(app, gone.id)
    assert [r.ref for r in watch_windows(app)] == [sooner.ref, later.ref]


def test_a_watch_row_counts_deliveries_by_outcome() -> None:
    at = datetime(2030, 1, 2, 3, tzinfo=UTC)
    counts = {"sent": 3, "pending": 1, "sending": 2, "failed": 1, "dead": 4, "superseded": 5}
    row = MaintenanceWatchRow(
        ref="MNT-7", title="t", status=MaintenanceStatus.SCHEDULED, starts_at=at,
        ends_at=at + timedelta(hours=1), audience=9, next_reminder_at=None,
        seconds_to_reminder=None, deliveries=counts, incident=None,
    )  # fmt: skip
    assert (row.sent, row.pending, row.failed) == (3, 3, 5)  # superseded: none of them
    doc = row.to_json()
    assert doc["maintenance"] == "MNT-7" and doc["start"] == "2030-01-02T03:00:00Z"
    assert doc["end"] == "2030-01-02T04:00:00Z" and doc["status"] == "scheduled"
    assert (doc["sent"], doc["pending"], doc["failed"]) == (3, 3, 5)
    assert doc["deliveries"] == counts and doc["incident"] is None


def test_watch_once_shows_windows_below_the_incidents(
    smtp_server: SmtpServer, make_config, cli
) -> None:
    cfg = str(make_config(smtp_server))
    assert cli("--config", cfg, "customers", "import", str(sample_csv())).exit_code == 0
    res = cli("--config", cfg, "declare", "Search slow", "-s", "sev3", "-c", "search", "--yes")
    assert res.exit_code == 0, res.stderr
    alone = cli("--config", cfg, "watch", "--once")
    assert alone.exit_code == 0 and "MNT-" not in alone.stdout
    ok = cli("--config", cfg, "maintenance", "schedule", "Database upgrade", "-c", "database",
             "--start", "2030-01-02T03:00:00Z", "--end", "2030-01-02T05:00:00Z",
             "--remind", "24h,1h", "--yes", "--json")  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    sent = json.loads(ok.stdout)["sent"]
    frame = cli("--config", cfg, "watch", "--once")
    assert frame.exit_code == 0, frame.stderr
    text = frame.stdout
    assert "INC-1" in text and "Search slow" in text and "#1 acknowledgement" in text
    assert "scheduled maintenance" in text and text.index("INC-1") < text.index("MNT-1")
    flat = " ".join(text.split())
    assert "Database" in flat and "2030-01-02" in flat and "03:00" in flat and "05:00" in flat
    row = next(line for line in text.splitlines() if "MNT-1" in line)
    assert re.search(rf"\b{sent}\b", row), row  # the announcement's deliveries, sent
    assert re.search(r"\d+d\d+h", row), row  # the 24h reminder, years away, in days
    one = cli("--config", cfg, "watch", "INC-1", "--once")
    assert one.exit_code == 0 and "MNT-1" not in one.stdout  # one incident: its frame only


# --- the report -----------------------------------------------------------------------------


def _open(make_config, smtp_server: SmtpServer, clock: FakeClock, extra: str, **kw: str) -> App:
    a = App.open(make_config(smtp_server, extra=extra, **kw), clock=clock)
    import_file(a, sample_csv())
    return a


def _overrun(
    app: App, clock: FakeClock, ahead: timedelta, declared_after: timedelta | None = None
) -> tuple[MaintenanceWindow, int]:
    """A window that runs 50 minutes over; its incident declared by the scheduler at the
    overrun (or by the commander ``declared_after`` its start, and linked at the overrun);
    then the work is completed and the incident resolved."""
    w = _schedule(app, ahead)
    send_now(app)

    def at(when: datetime) -> None:
        clock.now = when
        assert asyncio.run(tick(app)).due.errors == []

    at(w.starts_at)
    if declared_after is not None:
        clock.now = w.starts_at + declared_after
        declare(app, title="Database down", severity="sev2", selector=SEL, started_at=clock.now)
    at(w.ends_at + timedelta(minutes=10))
    at(w.ends_at + timedelta(minutes=30))
    with app.store.read() as conn:
        linked = mdb.get_window(conn, w.id).incident_id
    assert linked is not None
    clock.now = w.ends_at + timedelta(minutes=50)
    lifecycle.complete(app, w.id)
    resolve(app, linked, "Fixed.")
    with app.store.read() as conn:
        return mdb.get_window(conn, w.id), linked


class _Sections(HTMLParser):
    """The text under ``<h2 id="maintenance">``, up to the next heading."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.heading, self.text = False, False, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self.heading = True
            self.inside = ("id", "maintenance") in attrs

    def handle_endtag(self, tag: str) -> None:
        self.heading = False if tag == "h2" else self.heading

    def handle_data(self, data: str) -> None:
        if self.inside and not self.heading:
            self.text.append(data)


def test_the_report_names_the_window_an_incident_overran_from(
    smtp_server: SmtpServer, make_config, clock: FakeClock, store_url: str
) -> None:
    app = _open(make_config, smtp_server, clock, OVERRUN + EXCLUDE, store_url=store_url)
    try:
        w, iid = _overrun(app, clock, timedelta(hours=80))  # told 80 h ahead: 72 h required
        with app.store.read() as conn:
            inc = incidents_db.get_incident(conn, iid).incident
            audience = set(incidents_db.audience_customer_ids(conn, iid))
        assert inc.started_at == w.ends_at and audience == expected_ids("database", "eu-west")
        report = build_report(app, iid)
        m = report.to_json()["maintenance"]
        assert m["maintenance"] == w.ref and m["title"] == "Database upgrade"
        assert m["status"] == "completed" and m["end"] == w.ends_at.isoformat().replace(
            "+00:00", "Z"
        )
        assert m["overran_by_seconds"] == (w.completed_at - w.ends_at).total_seconds() == 3000
        assert m["notice_seconds"] == (w.starts_at - w.told_at).total_seconds()
        cr = m["credits"]
        assert cr["exclude_announced_maintenance"] == timedelta(hours=72).total_seconds()
        assert cr["excluded"] is True and cr["excluded_customers"] == len(audience)
        assert cr["excluded_downtime_seconds"] == 0  # the overrun's incident starts at the end
        assert "the overrun is" in cr["why"]

        md = render_markdown(report)
        section = md.split("## Maintenance", 1)[1].split("\n## ", 1)[0]
        assert w.ref in section and "Database upgrade" in section
        assert "**Overran the announced end by:** 50m" in section
        assert f"yes, for {len(audience)} customers" in section
        assert md.index("## Credits") < md.index("## Maintenance")
        parser = _Sections()
        parser.feed(render_html(report))
        text = "".join(parser.text)
        assert w.ref in text and "Overran the announced end by50m" in text
        assert f"yes, for {len(audience)} customers" in text
    finally:
        app.close()


def test_a_linked_incident_excludes_its_downtime_inside_the_window(
    smtp_server: SmtpServer, make_config, clock: FakeClock
) -> None:
    app = _open(make_config, smtp_server, clock, OVERRUN + EXCLUDE)
    try:
        w, iid = _overrun(app, clock, timedelta(hours=80), declared_after=timedelta(minutes=20))
        with app.store.read() as conn:
            inc = incidents_db.get_incident(conn, iid).incident
        assert inc.started_at == w.starts_at + timedelta(minutes=20)  # the commander's
        cr = build_report(app, iid).to_json()["maintenance"]["credits"]
        assert cr["excluded"] is True
        assert cr["excluded_downtime_seconds"] == (w.ends_at - inc.started_at).total_seconds()
        assert cr["excluded_downtime"] == "40m"
    finally:
        app.close()


@pytest.mark.parametrize(
    ("extra", "ahead", "why"),
    [
        (OVERRUN + EXCLUDE, timedelta(hours=30), "less than the 3d the SLA requires"),
        (OVERRUN, timedelta(hours=80), "exclude_announced_maintenance is not set"),
    ],
    ids=["announced-too-late", "not-configured"],
)
def test_a_window_that_excludes_nothing_says_why(
    smtp_server: SmtpServer, make_config, clock: FakeClock, extra: str, ahead: timedelta, why: str
) -> None:
    app = _open(make_config, smtp_server, clock, extra)
    try:
        _, iid = _overrun(app, clock, ahead)
        report = build_report(app, iid)
        cr = report.to_json()["maintenance"]["credits"]
        assert cr["excluded"] is False and cr["excluded_customers"] == 0
        assert cr["excluded_downtime_seconds"] == 0 and why in cr["why"]
        assert "**Excluded from credits as announced maintenance:** no" in render_markdown(report)
    finally:
        app.close()


def test_an_incident_without_a_window_has_no_maintenance_section(app: App) -> None:
    _schedule(app, timedelta(hours=80))  # a window exists, linked to nothing
    inc = declare(
        app, title="Search slow", severity="sev3", selector=Selector.of(components=["search"])
    ).incident
    report = build_report(app, inc.id)
    assert report.maintenance is None and report.to_json()["maintenance"] is None
    assert "## Maintenance" not in render_markdown(report)
    assert 'id="maintenance"' not in render_html(report)


def test_list_and_show_name_the_windows_and_the_one_an_incident_overran_from(
    smtp_server: SmtpServer, make_config, clock: FakeClock, cli
) -> None:
    app = _open(make_config, smtp_server, clock, OVERRUN + EXCLUDE)
    try:
        w, iid = _overrun(app, clock, timedelta(hours=80))
        cfg = str(app.config.path)
        shown = json.loads(cli("--config", cfg, "show", f"INC-{iid}", "--json").stdout)
        assert shown["maintenance"] == w.ref
        human = cli("--config", cfg, "show", f"INC-{iid}").stdout
        assert f"overran from maintenance {w.ref}" in human
        later = _schedule(app, timedelta(days=3), title="Search reindex")
        listed = json.loads(cli("--config", cfg, "list", "--json").stdout)
        assert [m["maintenance"] for m in listed["maintenance"]] == [later.ref]  # open ones
        assert listed["maintenance"][0]["title"] == "Search reindex"
        assert later.ref in cli("--config", cfg, "list").stdout
    finally:
        app.close()
