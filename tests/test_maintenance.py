"""Scheduled maintenance end to end: announced, rescheduled, reminded, started and completed
through the real scheduler (``tick``) with the test's clock and a real SMTP server; the
iCalendar parts parsed with ``icalendar``; a cancellation; bad input refused with nothing
written."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from icalendar import Calendar

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.errors import InputError, StateError
from outagecomms.maintenance import lifecycle
from outagecomms.maintenance.sender import send_now
from outagecomms.models import MaintenanceStatus, NoticeKind, Selector
from outagecomms.scheduler.tick import tick
from outagecomms.store import customers as customers_db
from outagecomms.store import maintenance as mdb
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import Received, SmtpServer
from tests.support.data import expected_ids, sample_csv, sample_rows


@pytest.fixture
def app(smtp_server: SmtpServer, make_config, clock: FakeClock, store_url: str) -> Iterator[App]:
    a = App.open(make_config(smtp_server, store_url=store_url), clock=clock)
    import_file(a, sample_csv())
    yield a
    a.close()


def _schedule(app: App, start: timedelta, length: timedelta = timedelta(hours=2), **kw: object):
    now = app.clock()
    plan = lifecycle.plan_schedule(
        app,
        title="Database upgrade",
        selector=Selector.of(components=["database"], regions=["eu-west"]),
        start=now + start,
        end=now + start + length,
        message="Writes pause for a few minutes.",
        **kw,  # type: ignore[arg-type]
    )
    return lifecycle.schedule(app, plan)


def _kind(m: Received) -> str:
    return str(m.message["X-Outagecomms-Notice"]).split()[1]


def _calendar(m: Received) -> tuple[str, Calendar]:
    """The text/calendar part: its Content-Type method and the parsed object."""
    parts = [p for p in m.message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one invitation per email"
    part = parts[0]
    assert isinstance(part, EmailMessage)
    assert part.get_content_charset() == "utf-8"
    return str(part.get_param("method")), Calendar.from_ical(part.get_content())


def _tick(app: App, clock: FakeClock, at: datetime) -> None:
    clock.now = at
    res = asyncio.run(tick(app))
    assert res.due.errors == [] and res.unsent == 0


def test_announced_rescheduled_reminded_started_completed(
    app: App, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    want = expected_ids("database", "eu-west")
    h = smtp_server.handler
    created = _schedule(app, timedelta(days=5), remind=(timedelta(hours=24), timedelta(hours=1)))
    w = created.window
    assert w.ref == "MNT-1" and w.status == MaintenanceStatus.SCHEDULED
    assert created.queued == len(want)
    assert send_now(app).sent == len(want)
    announced = h.snapshot()
    assert {m.customer for m in announced} == want
    assert {_kind(m) for m in announced} == {"maintenance_announcement"}

    # the invitation: one VEVENT, UID per window, UTC times, the customer as attendee
    rows = {r["id"]: r for r in sample_rows()}
    uids = set()
    for m in announced:
        method, cal = _calendar(m)
        assert method == "REQUEST" and str(cal["METHOD"]) == "REQUEST"
        events = cal.walk("VEVENT")
        assert len(events) == 1
        ev = events[0]
        uids.add(str(ev["UID"]))
        assert ev.decoded("DTSTART") == w.starts_at and ev.decoded("DTEND") == w.ends_at
        assert ev.decoded("DTSTART").utcoffset() == timedelta(0)
        assert ev["DTSTART"].to_ical().endswith(b"Z")
        assert int(ev["SEQUENCE"]) == 0
        assert str(ev["SUMMARY"]) == "Database upgrade"
        assert str(ev["ATTENDEE"]).lower() == f"mailto:{rows[m.customer]['email']}".lower()
        assert str(ev["ORGANIZER"]) == "mailto:support@example.com"
        assert str(ev["X-OUTAGECOMMS-TZID"]) == rows[m.customer]["timezone"]
        assert rows[m.customer]["timezone"] in str(ev["DESCRIPTION"])
        assert "Writes pause" in str(ev["DESCRIPTION"])
    assert uids == {"mnt-1@example.com"}

    # moved two days later: SEQUENCE 1, same UID, new times, METHOD REQUEST
    new_start = w.starts_at + timedelta(days=2)
    moved = lifecycle.reschedule(app, w.id, start=new_start, end=new_start + timedelta(hours=3))
    assert moved.window.sequence == 1
    assert send_now(app).sent == len(want)
    updates = [m for m in h.snapshot() if _kind(m) == "maintenance_update"]
    assert {m.customer for m in updates} == want
    for m in updates:
        method, cal = _calendar(m)
        ev = cal.walk("VEVENT")[0]
        assert method == "REQUEST" and str(ev["UID"]) == "mnt-1@example.com"
        assert int(ev["SEQUENCE"]) == 1
        assert ev.decoded("DTSTART") == new_start
        assert ev.decoded("DTEND") == new_start + timedelta(hours=3)
        assert "has moved" in m.text()

    # the scheduler: nothing before the reminders' moments, each reminder once, then the start
    _tick(app, clock, new_start - timedelta(hours=25))
    assert len(h.snapshot()) == 2 * len(want)
    _tick(app, clock, new_start - timedelta(hours=24))
    _tick(app, clock, new_start - timedelta(hours=23))  # again: nothing more
    _tick(app, clock, new_start - timedelta(minutes=59))
    _tick(app, clock, new_start + timedelta(seconds=1))
    _tick(app, clock, new_start + timedelta(minutes=30))
    msgs = h.snapshot()
    reminders = [m for m in msgs if _kind(m) == "maintenance_reminder"]
    assert Counter(m.customer for m in reminders) == dict.fromkeys(want, 2)
    assert any("starts in 1 day" in m.text() for m in reminders)
    assert all(_calendar_parts(m) == 0 for m in reminders)
    started = [m for m in msgs if _kind(m) == "maintenance_started"]
    assert {m.customer for m in started} == want and len(started) == len(want)
    with app.store.read() as conn:
        assert mdb.get_window(conn, w.id).status == MaintenanceStatus.IN_PROGRESS

    done = lifecycle.complete(app, w.id, "All done, thank you for your patience.")
    assert done.window.status == MaintenanceStatus.COMPLETED
    assert send_now(app).sent == len(want)
    completed = [m for m in h.snapshot() if _kind(m) == "maintenance_completed"]
    assert {m.customer for m in completed} == want
    assert "thank you for your patience" in completed[0].text()
    # nothing twice: one message per Message-ID and per (notice, customer)
    msgs = h.snapshot()
    assert all(n == 1 for n in Counter(m.message_id for m in msgs).values())
    notices = Counter((str(m.message["X-Outagecomms-Notice"]), m.customer) for m in msgs)
    assert set(notices.values()) == {1}


def _calendar_parts(m: Received) -> int:
    return sum(1 for p in m.message.walk() if p.get_content_type() == "text/calendar")


def test_cancellation_removes_the_entry(app: App, smtp_server: SmtpServer) -> None:
    want = expected_ids("database", "eu-west")
    w = _schedule(app, timedelta(days=2)).window
    lifecycle.cancel(app, w.id, "The upgrade is not needed after all.")
    # the announcement had not gone out yet: the cancellation replaces it (nothing stale)
    assert send_now(app).sent == len(want)
    msgs = smtp_server.handler.snapshot()
    assert {_kind(m) for m in msgs} == {"maintenance_cancelled"}
    method, cal = _calendar(msgs[0])
    ev = cal.walk("VEVENT")[0]
    assert method == "CANCEL" and str(cal["METHOD"]) == "CANCEL"
    assert str(ev["STATUS"]) == "CANCELLED" and int(ev["SEQUENCE"]) == 1
    assert str(ev["UID"]) == "mnt-1@example.com"
    with pytest.raises(StateError, match="called off"):
        lifecycle.start(app, w.id)


def test_the_window_in_the_customers_zone(app: App, smtp_server: SmtpServer) -> None:
    _schedule(app, timedelta(days=1))
    send_now(app)
    rows = {r["id"]: r for r in sample_rows()}
    zones = {rows[m.customer]["timezone"]: m for m in smtp_server.handler.snapshot()}
    assert len(zones) > 1, "the sample covers customers in several zones"
    for zone, m in zones.items():
        assert f"your time zone: {zone}" in m.text()


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"start": timedelta(hours=-1)}, "start"),
        ({"length": timedelta(0)}, "end"),
        ({"length": timedelta(hours=-2)}, "end"),
    ],
)
def test_bad_times_are_refused_with_nothing_written(
    app: App, kw: dict[str, timedelta], field: str
) -> None:
    with pytest.raises(InputError) as exc:
        _schedule(app, kw.get("start", timedelta(hours=2)), kw.get("length", timedelta(hours=1)))
    assert exc.value.field == field
    with app.store.read() as conn:
        assert mdb.list_windows(conn, include_closed=True) == []


def test_unknown_component_suggests_the_closest(app: App) -> None:
    now = app.clock()
    with pytest.raises(InputError, match="closest first: database") as exc:
        lifecycle.plan_schedule(
            app, title="x", selector=Selector.of(components=["databse"]),
            start=now + timedelta(hours=1), end=now + timedelta(hours=2),
        )  # fmt: skip
    assert exc.value.field == "components"


def test_cli_refuses_without_a_terminal_and_names_the_flag(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    cfg = str(make_config(smtp_server))
    assert cli("--config", cfg, "customers", "import", str(sample_csv())).exit_code == 0
    base = ["--config", cfg, "maintenance", "schedule", "Database upgrade", "-c", "database"]
    res = cli(*base, "--start", "+2h", "--end", "+1h", "--yes")
    assert res.exit_code == 2 and "--end" in res.stderr and "after the start" in res.stderr
    res = cli(*base, "--start", "-1h", "--end", "+1h", "--yes")
    assert res.exit_code == 2 and "--start" in res.stderr and "in the past" in res.stderr
    res = cli(*base, "--start", "+2h", "--end", "+3h", "--remind", "0s", "--yes")
    assert res.exit_code == 2 and "--remind" in res.stderr
    res = cli(*base, "--start", "+2h", "--end", "+3h")  # no --yes, no terminal
    assert res.exit_code == 2 and "pass --yes" in res.stderr
    listed = cli("--config", cfg, "maintenance", "list", "--all", "--json")
    assert listed.exit_code == 0 and '"count": 0' in listed.stdout
    assert smtp_server.handler.snapshot() == []
    ok = cli(*base, "--start", "2030-01-02T03:00:00Z", "--end", "2030-01-02T05:00:00Z",
             "--remind", "24h,1h", "--yes", "--json")  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    import json

    body = json.loads(ok.stdout)
    assert body["maintenance"] == "MNT-1" and body["sent"] == body["queued"] > 0
    assert body["start"] == "2030-01-02T03:00:00Z" and body["remind"] == ["1d", "1h"]
    shown = json.loads(cli("--config", cfg, "maintenance", "show", "MNT-1", "--json").stdout)
    assert [n["kind"] for n in shown["notices"]] == ["maintenance_announcement"]
    assert shown["notices"][0]["deliveries"] == {"sent": body["sent"]}
    assert datetime.fromisoformat(shown["end"]) == datetime(2030, 1, 2, 5, tzinfo=UTC)


@pytest.mark.slow
def test_the_daemon_reminds_and_starts(
    smtp_server: SmtpServer, make_config, cli, tmp_path: Path
) -> None:
    """A real daemon (its own process, the real clock): the reminder at its offset, the start
    at the start, each once; and it stops cleanly."""
    from tests.support.processes import cli_json, start_daemon, stop

    cfg = make_config(smtp_server)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    want = expected_ids("database", "eu-west")
    daemon = start_daemon(cfg, tmp_path / "daemon.log")
    try:
        out = cli_json(cfg, "maintenance", "schedule", "Failover drill", "-c", "database",
                       "-r", "eu-west", "--start", "+12s", "--end", "+1h", "--remind", "8s",
                       "--yes")  # fmt: skip
        assert out["sent"] == len(want)
        h = smtp_server.handler
        msgs = h.wait_for(
            lambda ms: sum(_kind(m) == "maintenance_started" for m in ms) >= len(want), timeout=60
        )
        reminders = [m for m in msgs if _kind(m) == "maintenance_reminder"]
        started = [m for m in msgs if _kind(m) == "maintenance_started"]
        assert sorted(m.customer for m in reminders) == sorted(want)
        assert sorted(m.customer for m in started) == sorted(want)
        start = datetime.fromisoformat(out["start"])
        assert all(m.at >= start for m in started), "never before its start"
    finally:
        assert stop(daemon) == 0, (tmp_path / "daemon.log").read_text()
    shown = cli_json(cfg, "maintenance", "show", "MNT-1")
    assert shown["status"] == "in_progress"
    assert [n["kind"] for n in shown["notices"]] == [
        "maintenance_announcement", "maintenance_reminder", "maintenance_started",
    ]  # fmt: skip


def test_two_schedulers_write_one_reminder(app: App, clock: FakeClock) -> None:
    """Both decided the reminder is due (neither saw the other's notice): the unique key keeps
    one, and the loser is told so, not an error."""
    from outagecomms.maintenance import due

    w = _schedule(app, timedelta(hours=3), remind=(timedelta(hours=1),)).window
    clock.advance(hours=2, minutes=1)
    key = due.reminder_key(timedelta(hours=1), w.starts_at)
    at = w.starts_at - timedelta(hours=1)
    assert due._write(app, w, key, clock(), at, skip="") is True
    assert due._write(app, w, key, clock(), at, skip="") is False
    assert due.run_due(app).reminders == []  # and a later run sees it done
    with app.store.read() as conn:
        kinds = [n.kind.value for n in mdb.list_notices(conn, w.id)]
    assert kinds == ["maintenance_announcement", "maintenance_reminder"]


def test_a_crashed_senders_deliveries_are_sent_once_its_lease_lapses(
    app: App, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    want = expected_ids("database", "eu-west")
    _schedule(app, timedelta(days=1))
    lease = app.config.dispatch.lease
    with app.store.write() as conn:  # a sender claims them, then dies before sending
        claimed = mdb.claim_deliveries(conn, now=clock(), lease=lease, limit=100)
    assert len(claimed) == len(want)
    assert send_now(app).claimed == 0  # still leased: nobody else takes them
    clock.advance(lease + timedelta(seconds=1))
    assert send_now(app).sent == len(want)
    assert send_now(app).claimed == 0
    msgs = smtp_server.handler.snapshot()
    assert sorted(m.customer for m in msgs) == sorted(want)
    # the dead sender's late result is not written over the real one
    with app.store.write() as conn:
        assert not mdb.record_result(conn, claimed[0], status="failed", last_error="late")


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_every_notice_renders_on_every_channel(app: App, kind: NoticeKind) -> None:
    from dataclasses import replace

    from outagecomms.maintenance import render

    w = _schedule(app, timedelta(days=3)).window
    with app.store.read() as conn:
        notice = replace(mdb.list_notices(conn, w.id)[0], kind=kind, message="Words of ours.")
        customer = next(
            iter(customers_db.get_customers(conn, expected_ids("database", "eu-west")).values())
        )
    ctx = render.context(app.renderer, w, notice, customer)
    for tset in render.TEMPLATE_SETS:
        out = render.render(app.renderer, tset, ctx)
        assert "Database upgrade" in out.text, (tset, out.text)
        if tset != "sms":
            assert "MNT-1" in out.subject and "Words of ours." in out.text, (tset, out)
    sms = render.render(app.renderer, "sms", ctx).text
    assert "MNT-1" in sms and len(sms) < 480, sms


def test_the_html_escapes_what_people_wrote(app: App) -> None:
    from outagecomms.maintenance import render

    now = app.clock()
    plan = lifecycle.plan_schedule(
        app, title="<b>Upgrade</b>", selector=Selector.of(components=["database"]),
        start=now + timedelta(hours=1), end=now + timedelta(hours=2), message="a <i>b</i>",
    )  # fmt: skip
    assert plan.sample is not None and plan.sample.html is not None
    assert "<b>" not in plan.sample.html and "&lt;b&gt;Upgrade&lt;/b&gt;" in plan.sample.html
    assert "<i>" not in plan.sample.html
    assert "<b>Upgrade</b>" in plan.sample.text  # the text part says it as written
    assert render.template_set("apprise") == "slack"


def test_overlapping_work_warns_and_declare_says_a_component_is_under_maintenance(
    app: App, clock: FakeClock
) -> None:
    from outagecomms.incidents.lifecycle import plan_declare

    first = _schedule(app, timedelta(hours=2)).window
    now = app.clock()
    clash = lifecycle.plan_schedule(
        app, title="Network work", selector=Selector.of(components=["database"]),
        start=now + timedelta(hours=3), end=now + timedelta(hours=5),
    )  # fmt: skip
    assert len(clash.warnings) == 1 and "MNT-1" in clash.warnings[0]
    apart = lifecycle.plan_schedule(
        app, title="Later", selector=Selector.of(components=["database"]),
        start=now + timedelta(hours=4, minutes=1), end=now + timedelta(hours=5),
    )  # fmt: skip
    assert apart.warnings == ()

    def declare_warnings() -> tuple[str, ...]:
        return plan_declare(
            app, title="DB errors", severity="sev2",
            selector=Selector.of(components=["database"], regions=["eu-west"]),
        ).warnings  # fmt: skip

    assert not any("under maintenance" in w for w in declare_warnings())
    clock.now = first.starts_at + timedelta(minutes=5)
    assert any("MNT-1" in w and "under maintenance" in w for w in declare_warnings())


def test_metrics_count_windows_and_their_deliveries(app: App) -> None:
    from outagecomms.web.metrics import render_metrics

    want = expected_ids("database", "eu-west")
    w = _schedule(app, timedelta(days=1)).window
    send_now(app)
    lifecycle.start(app, w.id)
    text = render_metrics(app)
    assert 'outagecomms_maintenance_windows{status="in_progress"} 1' in text
    assert 'outagecomms_maintenance_windows{status="scheduled"} 0' in text
    # the announcement went out; the start notice is owed
    assert (
        f'outagecomms_maintenance_deliveries{{channel="email",status="sent"}} {len(want)}' in text
    )
    assert (
        f'outagecomms_maintenance_deliveries{{channel="email",status="pending"}} {len(want)}'
        in text
    )


def test_doctor_renders_the_maintenance_templates(
    smtp_server: SmtpServer, make_config, tmp_path: Path, cli
) -> None:
    cfg = make_config(smtp_server)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code == 0, res.stderr
    assert "templates maintenance: ok" in res.stdout + res.stderr
    broken = tmp_path / "overrides" / "maintenance"
    broken.mkdir(parents=True)
    (broken / "sms.txt.j2").write_text("{{ maintenance.nope.deeper }}")
    (broken / "email.txt.j2").write_text("{% if %}")
    cfg.write_text(cfg.read_text() + f'\n[templates]\ndir = "{tmp_path / "overrides"}"\n')
    res = cli("--config", str(cfg), "doctor")
    assert res.exit_code != 0 and "maintenance/email.txt.j2" in res.stderr


def test_reminders_per_tier_from_the_default_policy(
    smtp_server: SmtpServer, make_config, clock: FakeClock
) -> None:
    cfg = make_config(smtp_server)
    cfg.write_text(
        cfg.read_text().replace(
            "[policy.default]\n",
            '[policy.default]\nmaintenance_remind = { enterprise = ["24h", "1h"], '
            'business = [], default = ["1h"] }\n',
        )
    )
    rows = {r["id"]: r["tier"] for r in sample_rows()}
    want = expected_ids("database", "eu-west")
    by_tier = {t: {c for c in want if rows[c] == t} for t in ("enterprise", "business", "standard")}
    assert all(by_tier.values()), "the audience has a customer of each tier"
    with App.open(cfg, clock=clock) as app:
        import_file(app, sample_csv())
        w = _schedule(app, timedelta(days=2)).window
        assert w.remind == (timedelta(hours=24), timedelta(hours=1))  # the tiers' union
        send_now(app)
        _tick(app, clock, w.starts_at - timedelta(hours=24))
        _tick(app, clock, w.starts_at - timedelta(minutes=59))
        msgs = smtp_server.handler.snapshot()
    reminders = [m for m in msgs if _kind(m) == "maintenance_reminder"]
    got = Counter(m.customer for m in reminders)
    assert got == {
        **dict.fromkeys(by_tier["enterprise"], 2),
        **dict.fromkeys(by_tier["standard"], 1),
    }


def test_a_store_at_0010_upgrades_its_audience_to_per_tier_reminders(store_url: str) -> None:
    """0011 adds each audience row's own offsets; a row written before reads as the window's."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import inspect

    import outagecomms.store as store_pkg
    from outagecomms.store.engine import HEAD_REVISION, Store

    store = Store(store_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(store_pkg.__file__).parent / "migrations"))
    cfg.attributes["engine"] = store.engine
    command.upgrade(cfg, "0010")
    cols = {c["name"] for c in inspect(store.engine).get_columns("maintenance_audience")}
    assert "remind_s" not in cols
    command.upgrade(cfg, "head")
    assert store.current_revision() == HEAD_REVISION
    cols = {c["name"] for c in inspect(store.engine).get_columns("maintenance_audience")}
    assert "remind_s" in cols
    store.dispose()
