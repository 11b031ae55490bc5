"""Promise lateness benchmark: many open incidents on a short cadence, kept by daemons on
PostgreSQL with holding rounds. Is every promise kept, and with how much to spare?

usage: python benchmarks/lateness.py [--incidents 200] [--per-incident 5] [--every 60]
                                     [--minutes 10] [--daemons 2] [--spread 60]

1. Fresh PostgreSQL database; a directory of incidents x per-incident customers
   (``gen_customers.py``), imported with ``outagecomms customers import``; a counting sink
   (postfix ``smtp-sink -c``); ``--daemons`` real daemons (the first leads).
2. Declares the incidents, each for its own few customers (the point is scheduling, not
   bandwidth), with ``--every`` seconds. They are declared one by one, evenly over the first
   ``--spread`` seconds (default 60: a cadence's worth, so promises fall due all through each
   minute, as real incidents would). ``--spread 0`` declares them back to back instead, so their
   promises fall due within a few seconds of each other: the harder case for the scheduler, a
   burst of holding rounds at once. The declares run in this process through the library
   (``plan_declare`` + ``commit_declare``, which only queue, like ``declare --queue-only``):
   200 CLI processes would cost more CPU in that minute than the daemons under test.
3. Nobody posts an update: every promise must be kept by a holding round that the leader starts
   ``margin`` before it (``scheduling.fanout_margin``: at most half the cadence). Runs for
   ``--minutes`` from the first declare, printing progress each minute; then stops the daemons.
4. For every promise P that fell due by the end (each round's ``promised_next_by``): kept when the
   incident's next round was written for it (``due_by == P``) and every delivery of it was sent
   by P. Margin = P - the last delivery of that round (P - the first is shown too); distribution
   min / 1st percentile / median / max; also how long before P the round was written, how late
   past its due moment the scheduler started it, and how long each fan-out took.
   Acknowledgements are checked against ``started_at + ack_within``. The sink must have seen
   exactly as many messages as the store has sent (nothing twice).

PASS iff every promise is kept and nothing was sent twice. Exit status 0 unless a step broke.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.request
from collections import Counter
from datetime import timedelta

from _common import Sink, ensure_smtp_sink, free_port, machine_line, write_customers
from _ha import (
    DaemonProc,
    PromiseCheck,
    StoreReader,
    ack_checks,
    add_store_args,
    check_promises,
    cli,
    fresh_database,
    ha_bench_run,
    percentile,
    read_rounds,
    start_daemons,
    utcnow,
    write_pg_config,
)

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.incidents.lifecycle import commit_declare, plan_declare
from outagecomms.incidents.promises import fanout_margin
from outagecomms.models import Selector
from outagecomms.store import incidents as incidents_db


def declare_all(
    app: App, ids: list[str], args: argparse.Namespace, t0: float
) -> tuple[list[float], float]:
    """Declare the incidents evenly over ``--spread`` s; returns each one's offset from t0
    and the longest single declare."""
    k = args.per_incident
    offsets: list[float] = []
    slowest = 0.0
    for i in range(args.incidents):
        at = t0 + i * args.spread / args.incidents
        time.sleep(max(0.0, at - time.monotonic()))
        t = time.monotonic()
        plan = plan_declare(
            app,
            title=f"Lateness bench {i + 1}",
            severity="sev3",
            selector=Selector(customers=tuple(ids[i * k : (i + 1) * k])),
            every=timedelta(seconds=args.every),
        )
        commit_declare(app, plan)
        slowest = max(slowest, time.monotonic() - t)
        offsets.append(t - t0)
    return offsets, slowest


def progress(reader: StoreReader, t0: float) -> None:
    rounds = read_rounds(reader)
    checks, _ = check_promises(rounds, utcnow())
    counts = reader.delivery_counts()
    kinds = Counter(r.kind for r in rounds)
    owed = counts.get("pending", 0) + counts.get("sending", 0)
    print(
        f"  {time.monotonic() - t0:6.0f} s: {kinds.get('acknowledgement', 0)} incidents, "
        f"{kinds.get('holding', 0)} holding rounds, {counts.get('sent', 0)} sent, {owed} owed; "
        f"promises due so far {len(checks)}, kept {sum(c.kept for c in checks)}",
        flush=True,
    )


def scrape_late_total(daemon: DaemonProc) -> str:
    """``outagecomms_promises_late_total`` from the daemon's ``/metrics``: its own count of
    deliveries sent after the promise their round kept (a cross-check)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=30) as r:
            text = r.read().decode()
    except OSError as exc:
        return f"unavailable ({exc})"
    m = re.search(r"^outagecomms_promises_late_total (\S+)$", text, re.M)
    return m.group(1) if m else "missing"


def main() -> int:
    ap = argparse.ArgumentParser(description="outagecomms promise lateness on PostgreSQL")
    ap.add_argument("--incidents", type=int, default=200, help="open incidents (200)")
    ap.add_argument("--per-incident", type=int, default=5, help="customers per incident (5)")
    ap.add_argument("--every", type=float, default=60, help="cadence of each incident, s (60)")
    ap.add_argument("--minutes", type=float, default=10, help="run length from the first declare")
    ap.add_argument("--daemons", type=int, default=2, help="daemons on the store (2)")
    ap.add_argument(
        "--spread", type=float, default=60, help="declare evenly over this many s (60; 0 = burst)"
    )
    ap.add_argument("--connections", type=int, default=8, help="SMTP max_connections (8)")
    add_store_args(ap, db="bench_lateness")
    args = ap.parse_args()
    n = args.incidents * args.per_incident

    sink_kind = "smtp-sink" if ensure_smtp_sink() is not None else "aiosmtpd"
    daemons: list[DaemonProc] = []
    with ha_bench_run("oc-bench-lateness-", args) as bench:
        workdir = bench.workdir
        customers, rows, source = write_customers(workdir, n, args.seed)
        ids = [r["id"] for r in rows]
        print(
            f"outagecomms promise lateness: {args.incidents} open incidents x "
            f"{args.per_incident} customers, cadence {args.every:g} s, {args.minutes:g} min, "
            f"{args.daemons} daemon(s) on PostgreSQL, sink {sink_kind}"
        )
        print(f"machine: {machine_line()}")
        print(f"customers: {source} {n} --seed {args.seed}; work dir {workdir}")
        with fresh_database(args.db, keep=args.keep) as url, Sink(sink_kind, free_port()) as sink:
            cfg = write_pg_config(
                workdir / "outagecomms.toml",
                store=url,
                smtp_port=sink.port,
                max_connections=args.connections,
            )
            cli(cfg, "customers", "import", str(customers))
            reader = StoreReader(args.db)
            app = App.from_config(load_config(cfg))
            try:
                daemons = start_daemons(
                    cfg, workdir, args.daemons, [free_port() for _ in range(args.daemons)]
                )
                t0 = time.monotonic()
                first_at = utcnow()
                offsets, slowest = declare_all(app, ids, args, t0)
                with app.store.read() as conn:
                    margins = {
                        inc.id: fanout_margin(inc, app.config)
                        for inc in incidents_db.list_incidents(conn)
                    }
                print(
                    f"declared {len(offsets)} incidents from {offsets[0]:.1f} s to "
                    f"{offsets[-1]:.1f} s (slowest declare {slowest * 1000:.0f} ms); holding "
                    f"margin {min(margins.values()).total_seconds():g}-"
                    f"{max(margins.values()).total_seconds():g} s before each promise"
                )
                stop_at = t0 + args.minutes * 60
                next_report = t0 + 60
                while time.monotonic() < stop_at:
                    time.sleep(max(0.0, min(next_report, stop_at) - time.monotonic()))
                    if time.monotonic() >= next_report:
                        progress(reader, t0)
                        next_report += 60
                    for d in daemons:
                        if not d.alive:
                            raise RuntimeError(f"daemon {d.name} died: {d.log_tail()}")
                end = utcnow()
                late_metric = scrape_late_total(daemons[0])
                for d in daemons:
                    code = d.stop()
                    if code != 0:
                        print(f"  daemon {d.name} exited {code}: {d.log_tail(300)}")
                sink.settle(0.5)
                rounds = read_rounds(reader)
                checks, in_force = check_promises(rounds, end)
                acks_ok, acks = ack_checks(rounds)
                store_sent = reader.delivery_counts().get("sent", 0)
                retried = int(reader.value("SELECT count(*) FROM deliveries WHERE attempts > 1"))
                report(
                    args, checks, in_force, margins, (acks_ok, acks), daemons,
                    (sink.count, store_sent), late_metric, (end - first_at).total_seconds(),
                    retried,
                )  # fmt: skip
            finally:
                for d in daemons:
                    d.stop()
                reader.close()
                app.close()
    return bench.status


def _dist(xs: list[float], *, low_tail: bool = False) -> str:
    if not xs:
        return "-"
    if low_tail:
        return (
            f"min {min(xs):6.2f} s · p1 {percentile(xs, 1):6.2f} s · "
            f"p50 {percentile(xs, 50):6.2f} s · max {max(xs):6.2f} s"
        )
    return (
        f"p50 {percentile(xs, 50):6.2f} s · p99 {percentile(xs, 99):6.2f} s · max {max(xs):6.2f} s"
    )


def report(
    args: argparse.Namespace,
    checks: list[PromiseCheck],
    in_force: int,
    margins: dict[int, timedelta],
    acks: tuple[int, int],
    daemons: list[DaemonProc],
    sink_vs_store: tuple[int, int],
    late_metric: str,
    observed: float,
    retried: int,
) -> None:
    kept = [c for c in checks if c.kept]
    with_round = [c for c in checks if c.kept_by is not None]
    margin_last = [c.margin_last for c in with_round if c.margin_last is not None]
    margin_first = [c.margin_first for c in with_round if c.margin_first is not None]
    lead = [c.lead for c in with_round if c.lead is not None]
    lag = [
        (c.kept_by.created_at - (c.promise - margins[c.incident_id])).total_seconds()
        for c in with_round
        if c.kept_by is not None
    ]
    fanout = [
        (c.kept_by.last_sent - c.kept_by.created_at).total_seconds()
        for c in with_round
        if c.kept_by is not None and c.kept_by.last_sent is not None
    ]
    kinds = Counter(c.kept_by.kind for c in with_round if c.kept_by is not None)
    sink_count, store_sent = sink_vs_store
    print(f"\n[results after {observed / 60:.1f} min from the first declare]")
    print(
        f"  promises that fell due: {len(checks)} (kept by {dict(kinds)}); "
        f"{in_force} not yet due at the end (not counted)"
    )
    print(f"  kept: {len(kept)}/{len(checks)}")
    print(f"  margin, promise - last delivery:  {_dist(margin_last, low_tail=True)}")
    print("      (p1: 99% of promises were kept with at least this much to spare)")
    print(f"  margin, promise - first delivery: {_dist(margin_first, low_tail=True)}")
    print(f"  round written before its promise: {_dist(lead, low_tail=True)}")
    print(f"  scheduler start past due moment:  {_dist(lag)}")
    print(f"  fan-out time of a round:          {_dist(fanout)}")
    print(f"  acknowledgements by started_at + ack_within: {acks[0]}/{acks[1]}")
    for d in daemons:
        print(
            f"  daemon {d.name}: {len(d.holding_rounds_from_log())} holding rounds written, "
            f"{d.sent_from_log()} messages sent, {d.retries_from_log()} sends to retry"
        )
    print(f"  deliveries that needed more than one attempt: {retried}")
    print(
        f"  sink saw {sink_count} messages, store has {store_sent} sent; "
        f"/metrics outagecomms_promises_late_total = {late_metric}"
    )
    broken = [c for c in checks if not c.kept]
    for c in broken[:10]:
        print(
            f"  BROKEN: INC-{c.incident_id} promise of round {c.promised_in} ({c.promise}): {c.why}"
        )
    if len(broken) > 10:
        print(f"  ... and {len(broken) - 10} more")
    all_kept = bool(checks) and len(kept) == len(checks)
    once = sink_count == store_sent
    print(f"  {'PASS' if all_kept else 'FAIL'}  every promise kept ({len(kept)}/{len(checks)})")
    print(
        f"  {'PASS' if once else 'FAIL'}  nothing sent twice (sink {sink_count} = store {store_sent})"
    )
    if margin_last:
        print(
            f"  p99 margin (1st percentile of promise - last delivery): "
            f"{percentile(margin_last, 1):.2f} s; min {min(margin_last):.2f} s"
        )
    print(f"  overall: {'PASS' if all_kept and once else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
