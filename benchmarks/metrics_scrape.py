"""How long a ``/metrics`` scrape takes on a store with a million deliveries.

Fills a fresh store (SQLite in a temp dir, or ``--store-url`` PostgreSQL) straight in SQL: one
``INSERT ... SELECT`` per table from a recursive CTE (SQLite) or ``generate_series``
(PostgreSQL), not the app's fan-out, which would take an hour. The deliveries look like
incidents of ``--per-round`` recipients and four rounds each (acknowledgement, two updates,
resolution; every eighth round keeps no promise), most sent around their promise (some late,
some exactly on a bucket bound, every timestamp with microseconds), some failed or dead, and
some still pending in the two newest incidents (the rounds being sent as the scrape comes).

Then, in the same run:
- ``render_metrics`` in process: the first scrape (it counts each settled round once and stores
  its tally in ``round_tallies``), then ``--runs`` more (median and spread), which read those;
- one HTTP ``GET /metrics`` of the daemon's web app (uvicorn on loopback);
- the previous implementation (a copy kept below: every sent delivery loaded into Python),
  ``--old-runs`` times, and its output compared with the new one line for line.

Target: a scrape in at most 100 ms (``--target-ms``). Exits 1 when a step broke or the two
implementations disagree; PASS/FAIL against the target is printed, not the exit status.

    python benchmarks/metrics_scrape.py [--deliveries 1000000] [--per-round 2500] [--runs 7]
        [--store-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--no-http] [--keep]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    bench_run,
    config_text,
    free_port,
    machine_line,
    smtp_channel_toml,
    verdict,
    wait_port,
)
from sqlalchemy import and_, func, select, text

from outagecomms.app import App
from outagecomms.models import IncidentStatus
from outagecomms.store import tables as t
from outagecomms.store.reporting import MarginHistogram
from outagecomms.values import as_utc
from outagecomms.web.metrics import MARGIN_BUCKETS, exposition, render_metrics

ROUNDS_PER_INCIDENT = 4
START = "2026-01-05 08:00:00"


# --- the previous implementation, kept for the comparison --------------------------------------


def old_render_metrics(app: App, status: dict[str, Any] | None = None) -> str:
    """``web/metrics.render_metrics`` as it was: the histogram in Python over every sent
    delivery ever stored (its text format was the same: ``exposition``)."""
    d, r, i = t.deliveries, t.rounds, t.incidents
    with app.store.read() as conn:
        open_n = conn.execute(
            select(func.count()).select_from(i).where(i.c.status != IncidentStatus.RESOLVED.value)
        ).scalar_one()
        rounds = conn.execute(select(r.c.kind, func.count()).group_by(r.c.kind)).all()
        by_outcome = conn.execute(
            select(d.c.channel, d.c.status, func.count()).group_by(d.c.channel, d.c.status)
        ).all()
        margins = conn.execute(
            select(d.c.sent_at, r.c.due_by)
            .join(r, r.c.id == d.c.round_id)
            .where(and_(d.c.sent_at.is_not(None), r.c.due_by.is_not(None)))
        ).all()
    values = [(as_utc(due) - as_utc(sent)).total_seconds() for sent, due in margins]
    histogram = MarginHistogram(
        bounds=MARGIN_BUCKETS,
        buckets=tuple(sum(1 for v in values if v <= b) for b in MARGIN_BUCKETS),
        count=len(values),
        sum_seconds=sum(values),
        late=sum(1 for v in values if v < 0),
    )
    leader = None if status is None else bool(status.get("leader"))
    return exposition(
        open_n,
        [(k, n) for k, n in rounds],
        [(ch, st, n) for ch, st, n in by_outcome],
        histogram,
        leader=leader,
    )


# --- filling the store --------------------------------------------------------------------------

# Per delivery i (1-based) of round k = (i-1) // per_round + 1: the offset of sent_at from the
# round's due_by, in microseconds, spread over -20 min .. +10 min; every 101st exactly 10 s
# early and every 103rd exactly on the promise (bucket bounds, where rounding would show).
# Statuses: every 50th failed, 97th pending, 211th dead, the rest sent.
_SQLITE = {
    "incidents": """
INSERT INTO incidents (id, title, severity, status, components, regions, selector, started_at,
    declared_at, resolved_at, commander, update_every_s, next_update_due, ack_due, audience_size,
    skipped, version)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :incidents)
SELECT i, 'Bench ' || i, 'sev2', CASE WHEN i % 10 = 0 THEN 'monitoring' ELSE 'resolved' END,
    '[]', '[]', '{}', strftime('%Y-%m-%d %H:%M:%S', :start, (i * 7200) || ' seconds')
    || '.250000', strftime('%Y-%m-%d %H:%M:%S', :start, (i * 7200 + 60) || ' seconds')
    || '.250000', NULL, '', 1800, NULL,
    strftime('%Y-%m-%d %H:%M:%S', :start, (i * 7200 + 600) || ' seconds') || '.250000',
    :per_round, '{}', 1
FROM n""",
    "rounds": """
INSERT INTO rounds (id, incident_id, seq, kind, message, status, created_at, due_by,
    promised_next_by)
WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < :rounds)
SELECT k, (k - 1) / 4 + 1, (k - 1) % 4 + 1,
    CASE (k - 1) % 4 WHEN 0 THEN 'acknowledgement' WHEN 3 THEN 'resolution' ELSE 'update' END,
    '', 'investigating',
    strftime('%Y-%m-%d %H:%M:%S', :start, (((k - 1) / 4 + 1) * 7200 + ((k - 1) % 4) * 1800)
        || ' seconds') || '.250000',
    CASE WHEN k % 8 = 7 THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%S', :start,
        (((k - 1) / 4 + 1) * 7200 + ((k - 1) % 4) * 1800 + 600) || ' seconds')
        || '.250000' END,
    NULL
FROM n""",
    "deliveries": """
INSERT INTO deliveries (id, incident_id, round_id, customer_id, channel, status, attempts,
    sent_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :deliveries),
p AS (
    SELECT i, (i - 1) / :per_round + 1 AS k,
        CASE WHEN i % 101 = 0 THEN -10000000 WHEN i % 103 = 0 THEN 0
             ELSE (i * 7919) % 1800000000 - 1200000000 END AS off_us,
        CASE WHEN i % 50 = 0 THEN 'failed'
             WHEN i % 97 = 0 AND (i - 1) / :per_round + 1 > :deliveries / :per_round - 8
             THEN 'pending'
             WHEN i % 211 = 0 THEN 'dead' ELSE 'sent' END AS status
    FROM n
)
SELECT i, (k - 1) / 4 + 1, k, 'c' || ((i - 1) % :per_round),
    CASE WHEN i % 3 = 0 THEN 'sms' ELSE 'email' END, status, 1 + (i % 7 = 0),
    CASE WHEN status != 'sent' THEN NULL ELSE
        -- the round's due_by (.250000) plus off_us, kept in the stored text format
        strftime('%Y-%m-%d %H:%M:%S', :start, (((k - 1) / 4 + 1) * 7200
            + ((k - 1) % 4) * 1800 + 600 + (250000 + off_us - ((250000 + off_us) % 1000000
            + 1000000) % 1000000) / 1000000) || ' seconds')
        || '.' || printf('%06d', ((250000 + off_us) % 1000000 + 1000000) % 1000000) END
FROM p""",
}

_PG = {
    "incidents": """
INSERT INTO incidents (id, title, severity, status, components, regions, selector, started_at,
    declared_at, resolved_at, commander, update_every_s, next_update_due, ack_due, audience_size,
    skipped, version)
SELECT i, 'Bench ' || i, 'sev2', CASE WHEN i % 10 = 0 THEN 'monitoring' ELSE 'resolved' END,
    '[]', '[]', '{}', s + make_interval(secs => i * 7200), s + make_interval(secs => i * 7200 + 60),
    NULL, '', 1800, NULL, s + make_interval(secs => i * 7200 + 600), :per_round, '{}', 1
FROM generate_series(1, :incidents) AS i,
    (SELECT (CAST(:start AS timestamp) + interval '0.25 second') AT TIME ZONE 'UTC' AS s) AS b""",
    "rounds": """
INSERT INTO rounds (id, incident_id, seq, kind, message, status, created_at, due_by,
    promised_next_by)
SELECT k, (k - 1) / 4 + 1, (k - 1) % 4 + 1,
    CASE (k - 1) % 4 WHEN 0 THEN 'acknowledgement' WHEN 3 THEN 'resolution' ELSE 'update' END,
    '', 'investigating', s + make_interval(secs => ((k - 1) / 4 + 1) * 7200 + ((k - 1) % 4) * 1800),
    CASE WHEN k % 8 = 7 THEN NULL ELSE
        s + make_interval(secs => ((k - 1) / 4 + 1) * 7200 + ((k - 1) % 4) * 1800 + 600) END,
    NULL
FROM generate_series(1, :rounds) AS k,
    (SELECT (CAST(:start AS timestamp) + interval '0.25 second') AT TIME ZONE 'UTC' AS s) AS b""",
    "deliveries": """
INSERT INTO deliveries (id, incident_id, round_id, customer_id, channel, status, attempts,
    sent_at)
SELECT i, (k - 1) / 4 + 1, k, 'c' || ((i - 1) % :per_round),
    CASE WHEN i % 3 = 0 THEN 'sms' ELSE 'email' END, status,
    CASE WHEN i % 7 = 0 THEN 2 ELSE 1 END,
    CASE WHEN status != 'sent' THEN NULL ELSE
        s + make_interval(secs => ((k - 1) / 4 + 1) * 7200 + ((k - 1) % 4) * 1800 + 600)
          + off_us * interval '1 microsecond' END
FROM (
    SELECT i, (i - 1) / :per_round + 1 AS k,
        CASE WHEN i % 101 = 0 THEN -10000000 WHEN i % 103 = 0 THEN 0
             ELSE (i::bigint * 7919) % 1800000000 - 1200000000 END AS off_us,
        CASE WHEN i % 50 = 0 THEN 'failed'
             WHEN i % 97 = 0 AND (i - 1) / :per_round + 1 > :deliveries / :per_round - 8
             THEN 'pending'
             WHEN i % 211 = 0 THEN 'dead' ELSE 'sent' END AS status
    FROM generate_series(1, :deliveries) AS i
) AS p, (SELECT (CAST(:start AS timestamp) + interval '0.25 second') AT TIME ZONE 'UTC' AS s) AS b
""",
}


def fill(app: App, deliveries: int, per_round: int) -> float:
    """Write the incidents, rounds and deliveries; returns the seconds it took."""
    rounds = -(-deliveries // per_round)
    incidents = -(-rounds // ROUNDS_PER_INCIDENT)
    params = {
        "incidents": incidents,
        "rounds": rounds,
        "deliveries": deliveries,
        "per_round": per_round,
        "start": START,
    }
    sql = _SQLITE if app.store.dialect == "sqlite" else _PG
    t0 = time.perf_counter()
    with app.store.write() as conn:
        for table in ("incidents", "rounds", "deliveries"):
            conn.execute(text(sql[table]), params)
    # fresh statistics, as a live store would have; on PostgreSQL also the visibility map
    # that autovacuum keeps (without it an index-only scan reads the table too)
    with app.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE" if app.store.dialect == "sqlite" else "VACUUM ANALYZE")
    return time.perf_counter() - t0


def _store_counts(app: App) -> tuple[int, int]:
    with app.store.read() as conn:
        n = conn.execute(select(func.count()).select_from(t.deliveries)).scalar_one()
        sent = conn.execute(
            select(func.count())
            .select_from(t.deliveries)
            .where(t.deliveries.c.sent_at.is_not(None))
        ).scalar_one()
    return int(n), int(sent)


def _reset(app: App) -> None:
    """Empty the tables this benchmark fills (a --store-url that was used before)."""
    with app.store.write() as conn:
        for table in (t.deliveries, t.rounds, t.events, t.audience, t.credits, t.feedback):
            conn.execute(table.delete())
        conn.execute(t.incidents.delete())


# --- timing -------------------------------------------------------------------------------------


def time_runs(fn: Any, runs: int) -> tuple[list[float], str]:
    times, out = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def http_scrape(app: App) -> tuple[float, str]:
    """One GET /metrics of the daemon's web app, served by uvicorn on loopback."""
    import httpx
    import uvicorn

    from outagecomms.web.server import make_web_app

    # the web app signs feedback links; this throwaway one only serves /metrics on loopback
    os.environ.setdefault("OUTAGECOMMS_SECRET", secrets.token_hex(32))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(make_web_app(app), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="metrics-http", daemon=True)
    thread.start()
    try:
        wait_port(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            client.get("/healthz")  # connection and app warm, as for a scraper
            t0 = time.perf_counter()
            res = client.get("/metrics")
            took = time.perf_counter() - t0
            res.raise_for_status()
        return took, res.text
    finally:
        server.should_exit = True
        thread.join(10)


def ms(x: float) -> str:
    return f"{x * 1000:,.1f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--deliveries", type=int, default=1_000_000)
    ap.add_argument("--per-round", type=int, default=2500, help="deliveries per round")
    ap.add_argument("--runs", type=int, default=7, help="in-process scrapes (new implementation)")
    ap.add_argument("--old-runs", type=int, default=1, help="scrapes with the old implementation")
    ap.add_argument("--target-ms", type=float, default=100.0)
    ap.add_argument("--store-url", help="a PostgreSQL URL (its tables are emptied first)")
    ap.add_argument("--no-http", action="store_true", help="skip the GET /metrics")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (and its store)")
    args = ap.parse_args(argv)

    with bench_run("oc-metrics-", keep=args.keep) as run:
        url = args.store_url or f"sqlite:///{run.workdir / 'bench.db'}"
        cfg = run.workdir / "outagecomms.toml"
        # a channel is required; nothing is sent (the deliveries are written in SQL)
        cfg.write_text(config_text(url, "email", smtp_channel_toml(free_port(), 1)))
        app = App.open(Path(cfg))
        try:
            if args.store_url:
                _reset(app)
            took = fill(app, args.deliveries, args.per_round)
            total, sent = _store_counts(app)
            print(machine_line())
            print(
                f"store {app.store.dialect}: {total:,} deliveries ({sent:,} sent) in "
                f"{-(-total // args.per_round):,} rounds, filled in {took:.1f} s"
            )
            # the first scrape counts every settled round once and stores its tally
            (cold,), cold_out = time_runs(lambda: render_metrics(app), 1)
            print(f"render_metrics, first:   {ms(cold)} (counts and stores the settled rounds)")
            new_times, new_out = time_runs(lambda: render_metrics(app), args.runs)
            med = statistics.median(new_times)
            print(
                f"render_metrics, after:   median {ms(med)} of {args.runs} "
                f"(min {ms(min(new_times))}, max {ms(max(new_times))})"
            )
            if cold_out != new_out:
                print("the first scrape and the later ones disagree", file=sys.stderr)
                run.failed = True
            if not args.no_http:
                http_took, http_out = http_scrape(app)
                print(f"GET /metrics over HTTP:  {ms(http_took)}")
                if http_out != new_out:
                    print("GET /metrics and render_metrics disagree", file=sys.stderr)
                    run.failed = True
            old_times, old_out = time_runs(lambda: old_render_metrics(app), args.old_runs)
            old_med = statistics.median(old_times)
            print(
                f"old (Python histogram):  median {ms(old_med)} of {args.old_runs}  "
                f"-> {old_med / med:,.1f}x faster now"
            )
            if old_out == new_out:
                print("old and new output: identical")
            elif sorted(old_out.splitlines()) == sorted(new_out.splitlines()):
                # the old queries had no ORDER BY: PostgreSQL returned groups in hash order
                print("old and new output: the same lines (the old order was the database's)")
            else:
                print("the old and new implementations disagree:", file=sys.stderr)
                for a, b in zip(old_out.splitlines(), new_out.splitlines(), strict=False):
                    if a != b:
                        print(f"  old: {a}\n  new: {b}", file=sys.stderr)
                run.failed = True
            print(
                f"target <= {args.target_ms:g} ms: {verdict(med * 1000 <= args.target_ms)} "
                f"(median {ms(med)})"
            )
        finally:
            app.close()
    return run.status


if __name__ == "__main__":
    sys.exit(main())
