"""The outbox and the scheduler's decisions, in-process with an injected clock (no sleeping)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.errors import StateError
from outagecomms.incidents.lifecycle import create_holding_round, declare, post_update, resolve
from outagecomms.incidents.promises import fanout_margin, holding_start, reminder_at
from outagecomms.models import DeliveryStatus, Selector
from outagecomms.outbox.senders import dispatch_due
from outagecomms.scheduler.due import next_send_at, next_wakeup, run_due
from outagecomms.store import customers as customers_db
from outagecomms.store import engine
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.store import tables as t
from tests.fakes.clock import FakeClock
from tests.fakes.providers import FakeProviders
from tests.fakes.smtp import SmtpServer
from tests.support.data import migrations_head, sample_csv


@pytest.fixture
def app(smtp_server: SmtpServer, make_config, clock: FakeClock, store_url: str):
    a = App.open(make_config(smtp_server, store_url=store_url), clock=clock)
    import_file(a, sample_csv())
    yield a
    a.close()


def _declare(app: App, every: str = "30m"):
    from outagecomms.values import parse_duration

    return declare(
        app, title="API errors", severity="sev2", every=parse_duration(every),
        selector=Selector(components=("database",), regions=("eu-west",)),
    )  # fmt: skip


def _statuses(app: App, incident_id: int) -> dict[str, int]:
    with app.store.read() as conn:
        return outbox_db.count_deliveries(conn, incident_id)


def test_declare_writes_round_and_every_delivery_in_one_go(app: App) -> None:
    created = _declare(app)
    assert created.queued == created.incident.audience_size > 0
    assert _statuses(app, created.incident.id) == {"pending": created.queued}
    # the promise is floored to a whole minute for a 30m cadence: what customers read is exact
    assert created.incident.next_update_due == datetime(2026, 11, 25, 13, 30, tzinfo=UTC)
    assert created.round.due_by == created.incident.started_at + timedelta(minutes=10)


def test_unique_key_rejects_a_second_delivery(app: App) -> None:
    created = _declare(app)
    with app.store.read() as conn:
        row = conn.execute(select(t.deliveries).limit(1)).one()
    with pytest.raises(IntegrityError), app.store.write() as conn:
        conn.execute(
            insert(t.deliveries).values(
                incident_id=row.incident_id, round_id=row.round_id, customer_id=row.customer_id,
                channel=row.channel, status="pending", attempts=0,
            )
        )  # fmt: skip
    assert _statuses(app, created.incident.id)["pending"] == created.queued


def test_claims_are_disjoint_and_expired_leases_are_reclaimed(app: App, clock: FakeClock) -> None:
    created = _declare(app)
    lease = timedelta(seconds=30)
    with app.store.write() as conn:
        a = outbox_db.claim_deliveries(conn, owner="a", now=clock(), lease=lease, limit=2)
    with app.store.write() as conn:
        b = outbox_db.claim_deliveries(conn, owner="b", now=clock(), lease=lease, limit=100)
    assert {c.id for c in a}.isdisjoint({c.id for c in b})
    assert len(a) + len(b) == created.queued
    with app.store.write() as conn:
        assert (
            outbox_db.claim_deliveries(conn, owner="c", now=clock(), lease=lease, limit=100) == []
        )
    clock.advance(seconds=31)  # a's process died: its lease runs out
    with app.store.write() as conn:
        c = outbox_db.claim_deliveries(conn, owner="c", now=clock(), lease=lease, limit=100)
    assert {x.id for x in c} == {x.id for x in a} | {x.id for x in b}
    assert all(x.attempts == 2 for x in c)
    # the old owner can no longer record a result for what it lost
    with app.store.write() as conn:
        n = outbox_db.record_results(
            conn, "a", [{"id": a[0].id, "status": "sent", "sent_at": clock()}]
        )
    assert n == 0


def test_dispatch_sends_each_once_with_stable_message_id(app: App, smtp_server: SmtpServer) -> None:
    created = _declare(app)
    summary = asyncio.run(dispatch_due(app, incident_id=created.incident.id))
    assert summary.sent == created.queued and summary.problems == 0
    msgs = smtp_server.handler.wait_for(lambda ms: len(ms) >= created.queued)
    assert len({m.message_id for m in msgs}) == created.queued
    again = asyncio.run(dispatch_due(app, incident_id=created.incident.id))
    assert again.claimed == 0
    with app.store.read() as conn:
        rows = outbox_db.customer_deliveries(conn, created.incident.id, msgs[0].customer)
    assert rows[0]["content"]["message_id"] == msgs[0].message_id
    assert rows[0]["content"]["subject"] == str(msgs[0].message["Subject"])


def test_smtp_4xx_is_retried_and_5xx_fails(
    app: App, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    created = _declare(app)
    with app.store.read() as conn:
        ids = incidents_db.audience_customer_ids(conn, created.incident.id)
        customers = customers_db.get_customers(conn, ids)
    temp, perm = customers[ids[0]].email, customers[ids[1]].email
    smtp_server.handler.reject = {temp: "451 4.3.0 try again later", perm: "550 5.1.1 no such user"}
    summary = asyncio.run(dispatch_due(app, incident_id=created.incident.id))
    assert (summary.retry, summary.failed, summary.sent) == (1, 1, created.queued - 2)
    assert _statuses(app, created.incident.id) == {
        "sent": created.queued - 2,
        "pending": 1,
        "failed": 1,
    }
    smtp_server.handler.reject = {}
    # not due yet: the retry waits for its backoff
    assert asyncio.run(dispatch_due(app, incident_id=created.incident.id)).claimed == 0
    clock.advance(seconds=2)
    assert asyncio.run(dispatch_due(app, incident_id=created.incident.id)).sent == 1
    assert _statuses(app, created.incident.id) == {"sent": created.queued - 1, "failed": 1}


def test_unreachable_smtp_server_is_transient(app: App, clock: FakeClock, make_config) -> None:
    from outagecomms.config.loader import load_config

    created = _declare(app)
    cfg = load_config(make_config(None, name="down.toml"))  # a port nobody listens on
    down = App(config=cfg, store=app.store, renderer=app.renderer, clock=clock)
    s = asyncio.run(dispatch_due(down, incident_id=created.incident.id))
    assert s.retry == created.queued and s.sent == 0


def test_holding_round_is_created_once_per_promise(app: App, clock: FakeClock) -> None:
    created = _declare(app, "30m")
    inc = created.incident
    assert holding_start(inc, app.config) == inc.next_update_due - fanout_margin(inc, app.config)
    assert run_due(app).holding == []  # nothing due yet
    clock.now = holding_start(inc, app.config)
    due = run_due(app)
    assert due.holding == [f"{inc.ref} round 2"]
    assert run_due(app).holding == []  # the same promise is not kept twice
    assert create_holding_round(app, inc.id, inc.next_update_due) is None  # type: ignore[arg-type]
    with app.store.read() as conn:
        fresh = incidents_db.get_incident(conn, inc.id).incident
        rounds = incidents_db.list_rounds(conn, inc.id)
    assert rounds[-1].kind.value == "holding"
    assert rounds[-1].due_by == inc.next_update_due
    # the next promise continues the grid: previous promise + cadence
    assert fresh.next_update_due == inc.next_update_due + timedelta(minutes=30)  # type: ignore[operator]


def test_reminder_fires_once_before_the_promise(app: App, clock: FakeClock) -> None:
    inc = _declare(app, "30m").incident
    at = reminder_at(inc, app.config)
    assert at == inc.next_update_due - timedelta(minutes=5)  # type: ignore[operator]
    assert next_wakeup(app) == clock()  # the acknowledgement is still pending
    # the daemon's scheduler job ignores owed sends (the dispatch loop's own job has them):
    # a long fan-out must not spin the scheduler's decisions
    assert next_wakeup(app, include_pending=False) == at
    assert next_send_at(app) == clock()
    asyncio.run(dispatch_due(app, incident_id=inc.id))
    assert next_send_at(app) is None
    assert next_wakeup(app) == at
    clock.now = at
    assert run_due(app).reminders == [inc.ref]
    assert run_due(app).reminders == []
    with app.store.read() as conn:
        events = [e for e in incidents_db.list_events(conn, inc.id) if e["kind"] == "reminder"]
    assert len(events) == 1 and "outagecomms update INC-1" in events[0]["detail"]


def test_commander_update_restarts_cadence_and_supersedes_stale_holding(
    app: App, clock: FakeClock
) -> None:
    inc = _declare(app, "30m").incident
    asyncio.run(dispatch_due(app, incident_id=inc.id))
    clock.now = holding_start(inc, app.config)
    run_due(app)  # holding round queued, not yet sent
    clock.advance(seconds=1)
    upd = post_update(app, inc.id, "Cause found: a failed disk.", status="identified")
    assert upd.incident.status.value == "identified"
    assert upd.incident.next_update_due == (clock() + timedelta(minutes=30)).replace(
        second=0, microsecond=0
    )
    counts = _statuses(app, inc.id)
    assert counts["superseded"] == upd.queued  # nobody gets the stale "still investigating"
    assert counts["pending"] == upd.queued


def test_resolve_stops_updates(app: App, clock: FakeClock) -> None:
    inc = _declare(app, "30m").incident
    done = resolve(app, inc.id, "Fixed.")
    assert done.incident.status.value == "resolved" and done.incident.next_update_due is None
    assert done.round.promised_next_by is None
    clock.advance(hours=2)
    assert run_due(app).holding == []
    assert next_wakeup(app) == clock() - timedelta(hours=2)  # only the queued sends remain
    asyncio.run(dispatch_due(app))
    assert next_wakeup(app) == done.incident.follow_up_due  # only the follow-up is left
    with pytest.raises(StateError):
        post_update(app, inc.id, "more")


def test_overdue_promise_after_downtime_is_kept_late_not_skipped(
    app: App, clock: FakeClock
) -> None:
    inc = _declare(app, "30m").incident
    clock.advance(hours=3)  # nobody ran the scheduler for three hours
    due = run_due(app)
    assert due.holding == [f"{inc.ref} round 2"]
    with app.store.read() as conn:
        fresh = incidents_db.get_incident(conn, inc.id).incident
    assert fresh.next_update_due is not None and fresh.next_update_due > clock()


def test_store_counts_are_consistent(app: App) -> None:
    created = _declare(app)
    with app.store.read() as conn:
        n = conn.execute(select(func.count()).select_from(t.audience)).scalar_one()
    assert n == created.queued
    assert DeliveryStatus.PENDING.value == "pending"


def test_migrations_create_the_schema_once(store_url: str) -> None:
    from outagecomms.store import open_store

    head = migrations_head()
    assert head == engine.HEAD_REVISION  # the store's own idea of its head is Alembic's
    s1 = open_store(store_url)
    assert s1.current_revision() == head
    s1.dispose()
    s2 = open_store(store_url)  # a second open is a no-op
    assert s2.current_revision() == head
    s2.dispose()


def test_daemons_starting_together_migrate_once(store_url: str) -> None:
    """Six processes open a brand-new store at the same moment: one migrates, the others wait
    for it and find the schema at head; none fails on a half-built schema."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from outagecomms.store import open_store\n"
        "s = open_store(sys.argv[1]); print(s.current_revision())\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outs]
    assert {out.strip() for out, _ in outs} == {migrations_head()}


def test_cron_every_minute_keeps_the_promise_with_default_margin(
    smtp_server: SmtpServer, make_config, clock: FakeClock, tmp_path: Path
) -> None:
    """With the default min_margin, a `tick` on each whole minute (cron) always creates the
    holding round before the (whole-minute) promise, with time left for the fan-out."""
    cfg = make_config(smtp_server)
    cfg.write_text(cfg.read_text().replace('min_margin = "1s"\n', ""))
    app = App.open(cfg, clock=clock)
    try:
        import_file(app, sample_csv())
        inc = _declare(app, "30m").incident
        assert inc.next_update_due is not None
        clock.now = clock.now.replace(second=0, microsecond=0)
        created_at = None
        while created_at is None:
            clock.advance(minutes=1)  # the next cron run
            if run_due(app).holding:
                created_at = clock()
        assert created_at < inc.next_update_due
        assert inc.next_update_due - created_at >= timedelta(seconds=30)
    finally:
        app.close()


def test_follow_up_goes_out_once_after_resolution(
    app: App, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    from outagecomms.scheduler.due import next_wakeup as wake

    inc = _declare(app, "30m").incident
    asyncio.run(dispatch_due(app, incident_id=inc.id))
    done = resolve(app, inc.id, "Fixed.")
    asyncio.run(dispatch_due(app, incident_id=inc.id))
    due = done.incident.follow_up_due
    assert due == clock() + app.config.policy("sev2").follow_up_after
    assert wake(app) == due
    clock.now = due - timedelta(seconds=1)  # type: ignore[operator]
    assert run_due(app).follow_ups == []
    clock.now = due
    assert run_due(app).follow_ups == [f"{inc.ref} round 3"]
    assert run_due(app).follow_ups == []  # once
    sent = asyncio.run(dispatch_due(app, incident_id=inc.id))
    assert sent.sent == done.queued
    msgs = smtp_server.handler.wait_for(
        lambda ms: sum(m.kind == "follow_up" for m in ms) == done.queued
    )
    follow = next(m for m in msgs if m.kind == "follow_up")
    # in the incident's thread: the same subject stem, a reply to the acknowledgement
    assert " ".join(str(follow.message["Subject"]).split()) == f"Re: [{inc.ref}] API errors"
    assert "how we handled it" in follow.text()
    assert follow.message["In-Reply-To"] is not None
    assert wake(app) is None


def test_recorded_past_incident_gets_no_follow_up(app: App, clock: FakeClock) -> None:
    from outagecomms.incidents.lifecycle import commit_declare, plan_declare

    plan = plan_declare(
        app, title="Old", severity="sev3", selector=Selector(components=("database",)),
        started_at=clock() - timedelta(days=30),
    )  # fmt: skip
    inc = commit_declare(app, plan, send=False).incident
    done = resolve(app, inc.id, "Fixed then.", resolved_at=clock() - timedelta(days=29), send=False)
    assert done.incident.follow_up_due is None and done.queued == 0
    clock.advance(days=2)
    assert run_due(app).follow_ups == []


def test_a_slow_batch_keeps_its_lease_and_sends_each_once(
    app: App, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    """Every reading of this clock moves it 7 s (the test config's lease is 20 s): without lease
    renewal the batch's own deliveries would expire mid-batch and be sent again."""
    created = declare(
        app, title="Everything down", severity="sev1",
        selector=Selector(tiers=("enterprise", "business", "standard")),
    )  # fmt: skip
    assert created.queued == 40

    class Ticking:
        def __init__(self, start: datetime) -> None:
            self.now = start

        def __call__(self) -> datetime:
            self.now += timedelta(seconds=7)
            return self.now

    slow = App(config=app.config, store=app.store, renderer=app.renderer, clock=Ticking(clock()))
    # bounded: without renewal the sender keeps re-claiming its own batch and never finishes
    summary = asyncio.run(asyncio.wait_for(dispatch_due(slow, incident_id=created.incident.id), 30))
    assert summary.claimed == summary.sent == created.queued
    msgs = smtp_server.handler.wait_for(lambda ms: len(ms) >= created.queued)
    assert len(msgs) == len({m.message_id for m in msgs}) == created.queued
    assert _statuses(app, created.incident.id) == {"sent": created.queued}


def test_commander_gets_the_reminder_and_the_holding_notice_by_email(
    app: App, clock: FakeClock, smtp_server: SmtpServer
) -> None:
    from outagecomms.incidents.lifecycle import commit_declare, plan_declare
    from outagecomms.values import parse_duration

    plan = plan_declare(
        app, title="API errors", severity="sev2", every=parse_duration("30m"),
        selector=Selector(components=("database",), regions=("eu-west",)), commander="ic@example.com",
    )  # fmt: skip
    inc = commit_declare(app, plan).incident
    asyncio.run(dispatch_due(app, incident_id=inc.id))
    h = smtp_server.handler
    before = len(h.wait_for(lambda ms: len(ms) == inc.audience_size))
    clock.now = reminder_at(inc, app.config)
    assert run_due(app).reminders == [inc.ref]
    msgs = h.wait_for(lambda ms: len(ms) == before + 1)
    reminder = msgs[-1]
    assert reminder.rcpt_tos == ["ic@example.com"]
    assert "outagecomms update INC-1" in reminder.text()
    clock.now = holding_start(inc, app.config)
    assert run_due(app).holding
    msgs = h.wait_for(lambda ms: len(ms) == before + 2)
    assert msgs[-1].rcpt_tos == ["ic@example.com"] and "holding update" in str(
        msgs[-1].message["Subject"]
    )


def test_commander_reminders_can_go_to_a_slack_room(
    smtp_server: SmtpServer,
    make_config,
    clock: FakeClock,
    providers: FakeProviders,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """[daemon] commander_channel names a slack channel; the room's incoming-webhook URL comes
    from the environment variable commander_webhook_env."""
    path = "/services/T0/B0/room"
    monkeypatch.setenv("OC_CMD_SLACK", providers.base + path)
    cfg = make_config(smtp_server, extra='\n[channels.ops]\nkind = "slack"\n')
    cfg.write_text(
        cfg.read_text().replace(
            "[daemon]\n",
            '[daemon]\ncommander_channel = "ops"\ncommander_webhook_env = "OC_CMD_SLACK"\n',
        )
    )
    app = App.open(cfg, clock=clock)
    import_file(app, sample_csv())
    try:
        inc = _declare(app).incident
        clock.now = reminder_at(inc, app.config)
        assert run_due(app).reminders == [inc.ref]
        posts = [json.dumps(r.json()) for r in providers.recorded(path)]
        assert len(posts) == 1
        assert "outagecomms update INC-1 MESSAGE" in posts[0]
        clock.now = holding_start(inc, app.config)
        assert run_due(app).holding
        posts = [json.dumps(r.json()) for r in providers.recorded(path)]
        assert len(posts) == 2 and "holding update" in posts[1]
    finally:
        app.close()
    assert providers.problems == []  # each notice as Slack documents a webhook request
    # customers were not posted to the room: only the commander's two notices
    assert len(providers.recorded()) == 2 and all("INC-1" in p for p in posts)


def test_a_failing_holding_round_is_retried_with_backoff_not_in_a_loop(
    app: App, clock: FakeClock, tmp_path: Path
) -> None:
    """A holding template broken after the declaration (a reload) fails the holding round:
    logged and recorded once per try, and tried again after 5 s, 10 s, 20 s... (the daemon
    wakes at ``next_wakeup``), not 100 times a second; once fixed, the promise is kept."""
    from outagecomms.rendering.templates import Renderer
    from outagecomms.scheduler.due import RETRY_FIRST

    inc = _declare(app, "30m").incident
    asyncio.run(dispatch_due(app, incident_id=inc.id))
    good = app.renderer
    broken_dir = tmp_path / "broken"
    (broken_dir / "holding").mkdir(parents=True)
    (broken_dir / "holding" / "email.txt.j2").write_text("{{ nope.attr }}\n")
    app.renderer = Renderer(company=app.config.company, user_dir=broken_dir)

    def errors() -> int:
        with app.store.read() as conn:
            return sum(1 for e in incidents_db.list_events(conn, inc.id) if e["kind"] == "error")

    start = holding_start(inc, app.config)
    assert start is not None
    clock.now = start
    first = run_due(app)
    assert len(first.errors) == 1 and "next try in 5s" in first.errors[0]
    for _ in range(50):  # a daemon woken again and again at once: nothing more is tried
        assert run_due(app).errors == []
    assert errors() == 1
    assert next_wakeup(app, include_pending=False) == start + RETRY_FIRST
    clock.now = start + RETRY_FIRST
    assert "next try in 10s" in run_due(app).errors[0]
    assert next_wakeup(app, include_pending=False) == clock.now + 2 * RETRY_FIRST
    assert errors() == 2
    app.renderer = good  # fixed: the next try keeps the promise
    clock.now += 2 * RETRY_FIRST
    assert run_due(app).holding == [f"{inc.ref} round 2"]
    assert app.retries == {}
