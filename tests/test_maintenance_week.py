"""Reminders on time for 20 windows over a simulated week, with a restart between every step
(each ``tick`` runs in a new App, as cron starts a new process) and five hours in the middle
when nothing ran: every reminder exactly once, none skipped by a restart; one whose moment
passed while nothing ran is sent at the next tick if its window has not started, and recorded
as skipped (with its reason) if it has."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.maintenance import lifecycle
from outagecomms.maintenance.due import reminder_key
from outagecomms.maintenance.sender import send_now
from outagecomms.models import MaintenanceStatus, NoticeKind, Selector
from outagecomms.scheduler.tick import tick
from outagecomms.store import maintenance as mdb
from tests.fakes.clock import START, FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv

STEP = timedelta(minutes=30)
WEEK = timedelta(days=7)
REMIND = (timedelta(hours=72), timedelta(hours=24), timedelta(hours=1))
#: nothing runs from here for five hours (a host down): reminders due meanwhile are late
DOWN = (START + timedelta(hours=50), START + timedelta(hours=55))


def _ticks() -> list[datetime]:
    out, at = [], START + STEP
    while at <= START + WEEK:
        if not DOWN[0] <= at < DOWN[1]:
            out.append(at)
        at += STEP
    return out


def test_twenty_windows_over_a_week_with_restarts(
    smtp_server: SmtpServer, make_config, tmp_path: Path
) -> None:
    cfg = make_config(smtp_server)
    clock = FakeClock()
    with App.open(cfg, clock=clock) as first:
        import_file(first, sample_csv())
        windows = []
        for i in range(20):
            start = START + timedelta(hours=2) + i * timedelta(hours=8, minutes=17)
            plan = lifecycle.plan_schedule(
                first, title=f"Upgrade {i}", selector=Selector.of(components=["database"],
                regions=["eu-west"]), start=start, end=start + timedelta(hours=1),
            )  # fmt: skip
            windows.append(lifecycle.schedule(first, plan).window)
        assert send_now(first).sent == 20 * len(expected_ids("database", "eu-west"))
    ticks = _ticks()
    for at in ticks:
        clock.now = at
        with App.open(cfg, clock=clock) as app:  # a new process each time
            res = asyncio.run(tick(app))
            assert res.due.errors == [] and res.unsent == 0, at

    want = expected_ids("database", "eu-west")
    msgs = smtp_server.handler.snapshot()
    assert all(n == 1 for n in Counter(m.message_id for m in msgs).values())
    sent = Counter(
        (str(m.message["X-Outagecomms-Maintenance"]), str(m.message["X-Outagecomms-Notice"]))
        for m in msgs
    )
    assert set(sent.values()) == {len(want)}, "each notice reached each customer exactly once"

    late_sent = late_skipped = announced_late = 0
    with App.open(cfg, clock=clock) as app, app.store.read() as conn:
        for w in windows:
            current = mdb.get_window(conn, w.id)
            assert current.status == MaintenanceStatus.IN_PROGRESS
            notices = {n.key: n for n in mdb.list_notices(conn, w.id)}
            counts = mdb.delivery_counts(conn, w.id)
            for offset in REMIND:
                due = w.starts_at - offset
                n = notices.get(reminder_key(offset, w.starts_at))
                if due <= w.told_at:  # before the announcement: moot
                    assert n is not None and n.status == "skipped" and "heard of" in n.detail
                    announced_late += 1
                    continue
                assert n is not None, f"{w.ref} {offset} reminder never decided"
                first_tick = next(t for t in ticks if t >= due)
                assert n.created_at == first_tick, "decided at the first tick at or after it"
                if first_tick >= w.starts_at:
                    assert n.status == "skipped" and "had started" in n.detail
                    late_skipped += 1
                    continue
                assert n.status == "queued" and counts[n.id] == {"sent": len(want)}
                assert n.kind == NoticeKind.REMINDER
                if first_tick - due >= STEP:
                    late_sent += 1  # its moment fell in the five hours nothing ran
            started = notices["started"]
            assert started.created_at == next(t for t in ticks if t >= w.starts_at)
            assert counts[started.id] == {"sent": len(want)}
    reminders = sum(1 for k in sent if k[1].endswith("maintenance_reminder"))
    # the week exercised each case: sent on time, sent late, skipped late, moot
    assert announced_late > 0 and late_sent > 0
    # 20 windows x 3 offsets: 47 sent (2 of them late), 1 skipped late, 12 moot
    assert reminders + late_skipped + announced_late == 60 and reminders > 20
    assert late_skipped > 0
