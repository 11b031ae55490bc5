"""``/metrics`` on SQLite and PostgreSQL: every figure is counted by the database, and must
match what the rows say, recomputed here in Python from the values written (margins on and
around the bucket bounds, to the microsecond, included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from outagecomms.app import App
from outagecomms.store import outbox as outbox_db
from outagecomms.store import tables as t
from outagecomms.web.metrics import MARGIN_BUCKETS, render_metrics

US = timedelta(microseconds=1)
# a promise with a fraction of .9996 s: SQLite's date functions round it to the next second
DUE_A = datetime(2026, 3, 1, 10, 0, 0, 999600, tzinfo=UTC)
DUE_B = datetime(2026, 3, 1, 23, 59, 55, 0, tzinfo=UTC)  # bounds cross midnight
# (round, how long before its promise it was sent); None: not sent
SENDS: list[tuple[str, timedelta | None]] = [
    ("a", timedelta(seconds=10)),  # exactly on the le="10" bound
    ("a", timedelta(seconds=10) - US),
    ("a", timedelta(seconds=10) + US),
    ("a", timedelta(0)),  # on the dot: in le="0", not late
    ("a", -US),  # a microsecond late
    ("a", timedelta(seconds=-300)),  # exactly le="-300"
    ("a", timedelta(seconds=-300) + US),
    ("a", timedelta(seconds=1800, microseconds=500000)),  # beyond the last bound
    ("a", timedelta(hours=-1)),
    ("a", None),  # pending
    ("b", timedelta(seconds=-10)),  # after midnight
    ("b", timedelta(seconds=-10) + US),
    ("b", timedelta(seconds=600)),
    ("b", timedelta(minutes=3, microseconds=999999)),
    ("follow_up", timedelta(seconds=5)),  # its round keeps no promise: not in the histogram
]


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path, make_config) -> App:
    url = None
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
    application = App.open(make_config(None, store_url=url))
    request.addfinalizer(application.close)
    return application


def _fill(app: App) -> list[float]:
    """Two incidents (one resolved), three rounds, the deliveries of ``SENDS``; returns the
    margins (seconds) that count."""
    start = DUE_A - timedelta(minutes=10)
    incident = {
        "title": "x", "severity": "sev2", "components": [], "regions": [], "selector": {},
        "started_at": start, "declared_at": start, "commander": "", "update_every_s": 1800.0,
        "ack_due": DUE_A, "skipped": {}, "resolved_at": None,
    }  # fmt: skip
    dues = {"a": DUE_A, "b": DUE_B, "follow_up": None}
    kinds = {"a": "acknowledgement", "b": "update", "follow_up": "follow_up"}
    margins: list[float] = []
    with app.store.write() as conn:
        conn.execute(
            insert(t.incidents),
            [
                {**incident, "id": 1, "status": "resolved", "resolved_at": DUE_B},
                {**incident, "id": 2, "status": "investigating"},
            ],
        )
        conn.execute(
            insert(t.rounds),
            [
                {"id": i, "incident_id": 1, "seq": i, "kind": kinds[name], "message": "",
                 "status": "investigating", "created_at": start, "due_by": dues[name]}
                for i, name in enumerate(dues, 1)
            ],
        )  # fmt: skip
        round_ids = {name: i for i, name in enumerate(dues, 1)}
        rows = []
        for n, (name, early) in enumerate(SENDS):
            due = dues[name] or DUE_A
            sent = None if early is None else due - early
            rows.append(
                {"incident_id": 1, "round_id": round_ids[name], "customer_id": f"c{n}",
                 "channel": 'sms "eu"' if n % 4 == 0 else "email",
                 "status": "pending" if sent is None else "sent", "attempts": 1, "sent_at": sent}
            )  # fmt: skip
            if sent is not None and dues[name] is not None:
                margins.append((due - sent).total_seconds())
        conn.execute(insert(t.deliveries), rows)
    return margins


def _samples(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = value
    return out


def test_metrics_are_counted_by_the_database_exactly(app: App) -> None:
    margins = _fill(app)
    text = render_metrics(app, {"leader": True})
    got = _samples(text)
    for b in MARGIN_BUCKETS:
        want = sum(1 for m in margins if m <= b)
        assert got[f'outagecomms_promise_margin_seconds_bucket{{le="{b}"}}'] == str(want), b
    assert got['outagecomms_promise_margin_seconds_bucket{le="+Inf"}'] == str(len(margins))
    assert got["outagecomms_promise_margin_seconds_count"] == str(len(margins))
    assert got["outagecomms_promise_margin_seconds_sum"] == f"{sum(margins):g}"
    assert got["outagecomms_promises_late_total"] == str(sum(1 for m in margins if m < 0))
    # the cases on the bounds are there, so a rounding of the bounds would show
    assert {0.0, 10.0, -300.0} <= set(margins) and len(margins) == 13
    sent = sum(1 for _, early in SENDS if early is not None)
    assert got['outagecomms_deliveries{channel="email",status="sent"}'] == str(
        sum(1 for n, (_, e) in enumerate(SENDS) if e is not None and n % 4)
    )
    assert got['outagecomms_deliveries{channel="sms \\"eu\\"",status="sent"}'] == str(
        sum(1 for n, (_, e) in enumerate(SENDS) if e is not None and not n % 4)
    )
    assert got["outagecomms_queue_depth"] == str(len(SENDS) - sent) == "1"
    assert got["outagecomms_open_incidents"] == "1"
    assert got['outagecomms_rounds_total{kind="acknowledgement"}'] == "1"
    assert got["outagecomms_leader"] == "1"
    assert "# TYPE outagecomms_promise_margin_seconds histogram" in text


def test_metrics_of_an_empty_store(app: App) -> None:
    got = _samples(render_metrics(app))
    assert got['outagecomms_promise_margin_seconds_bucket{le="+Inf"}'] == "0"
    assert got["outagecomms_promise_margin_seconds_sum"] == "0"
    assert got["outagecomms_promises_late_total"] == "0"
    assert got["outagecomms_open_incidents"] == "0" and "outagecomms_leader" not in got


def _tallied(app: App) -> set[int]:
    with app.store.read() as conn:
        return {int(r) for (r,) in conn.execute(select(t.round_tallies.c.round_id))}


def test_settled_rounds_are_counted_once_and_a_retry_counts_them_again(app: App) -> None:
    margins = _fill(app)
    first = render_metrics(app)
    assert _tallied(app) == {2, 3}  # round 1 still owes a delivery: counted at every scrape
    # later scrapes read the stored tally: a change made behind the store's functions does not
    # show (which is how we know the tally is read, not recounted)
    d = t.deliveries
    with app.store.write() as conn:
        conn.execute(update(d).where(d.c.round_id == 2).values(status="failed", sent_at=None))
        failed = [int(i) for (i,) in conn.execute(select(d.c.id).where(d.c.round_id == 2))]
    assert render_metrics(app) == first
    # `deliveries retry` puts them back in the outbox: the round is owed again, counted live
    with app.store.write() as conn:
        outbox_db.requeue(conn, failed[:-1], datetime.now(UTC))
        outbox_db.supersede(conn, {failed[-1]: "newer news"})
    assert _tallied(app) == {3}
    got = _samples(render_metrics(app))
    round_b = sum(1 for name, early in SENDS if name == "b")
    assert got["outagecomms_queue_depth"] == str(1 + round_b - 1)
    assert got["outagecomms_promise_margin_seconds_count"] == str(len(margins) - round_b)
    superseded = [k for k in got if 'status="superseded"' in k]
    assert [got[k] for k in superseded] == ["1"]
    # once round 1's last delivery is sent it settles, and the next scrape stores its tally
    with app.store.write() as conn:
        conn.execute(
            update(d)
            .where(d.c.round_id == 1, d.c.status == "pending")
            .values(status="sent", sent_at=DUE_A)
        )
    render_metrics(app)
    assert _tallied(app) == {1, 3}
    got = _samples(render_metrics(app))  # from the tallies now: the same figures
    assert got["outagecomms_promise_margin_seconds_count"] == str(len(margins) - round_b + 1)
