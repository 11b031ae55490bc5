"""Failover benchmark: SIGKILL the scheduling leader of two daemons on PostgreSQL; how long until
the survivor starts the next holding round, and is every promise still kept?

usage: python benchmarks/failover.py [--repeat 3] [--customers 200] [--every 20]
                                     [--leader-lease 15] [--kill-before 1,5,9]
                                     [--scenario before-due|mid-send]

Each repetition, on a fresh PostgreSQL database:
1. imports N customers and starts two real daemons (``outagecomms daemon --http ...``); A is
   started alone until its ``/healthz`` says it leads, then B joins as a follower;
2. declares an incident for all N with ``--every`` seconds (``declare --queue-only``: the daemons
   send); waits for A's first holding round (steady state);
3. reads the next promise P from the store and the moment H its holding round falls due
   (``scheduling.holding_start``: P - margin) and SIGKILLs A:
   - ``before-due`` (default): ``--kill-before`` seconds before H, so the round is the
     survivor's to start;
   - ``mid-send``: as soon as A's holding round for P exists and A holds deliveries of it
     (leases in the store); this shows what the dispatch lease does to a promise;
4. measures from the kill (wall clock, the same clock as the store's timestamps):
   - *takeover*: until B's ``/healthz`` says ``"leader": true`` (polled every 50 ms);
   - *first holding round*: the ``created_at`` of the first holding round written after the
     kill, and that B's log says B's scheduler wrote it; its delay past H;
5. waits until the promise after that round has fallen due too, stops B and checks every
   promise of the run in the store (``due_by`` of the next round == P and each of its
   deliveries ``sent_at <= P``) and that the sink saw no message twice except deliveries in
   flight at the kill (leased by A then; a resend after the lease is allowed for them).

PASS when every repetition: first holding round within ``leader_lease`` of the kill, made by the
survivor, every promise kept, no extra message beyond those in flight. Exit status is 0 unless a
step broke.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from _common import (
    ALL_TIERS,
    Sink,
    ensure_smtp_sink,
    free_port,
    machine_line,
    tier_args,
    write_customers,
)
from _ha import (
    DaemonProc,
    PromiseCheck,
    StoreReader,
    add_store_args,
    check_promises,
    cli,
    fresh_database,
    ha_bench_run,
    read_rounds,
    start_daemons,
    utcnow,
    wait_until,
    write_pg_config,
)

from outagecomms.app import App
from outagecomms.config.loader import load_config
from outagecomms.incidents.promises import fanout_margin, holding_start
from outagecomms.store import incidents as incidents_db


@dataclass
class Run:
    index: int
    pid_killed: int = 0
    kill_to_due: float = 0.0  # kill -> H (when the round fell due)
    takeover: float | None = None  # kill -> survivor's /healthz says leader
    to_round: float | None = None  # kill -> first holding round created after the kill
    late_start: float | None = None  # created_at - H
    round_ref: str = ""
    by_survivor: bool = False
    promise_margin: float | None = None  # P - last delivery of that round
    in_flight: int = 0  # deliveries leased by the killed daemon at the kill
    in_flight_done: float | None = None  # kill -> all of them sent by the survivor (mid-send)
    promises: list[PromiseCheck] = field(default_factory=list)
    extra_sends: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(1 for c in self.promises if c.kept)


def one_run(i: int, args: argparse.Namespace, workdir: Path, customers: Path, sink: Sink) -> Run:
    run = Run(i)
    run_dir = workdir / f"run{i}"
    daemons: list[DaemonProc] = []
    with fresh_database(args.db, keep=args.keep) as url:
        cfg = write_pg_config(
            run_dir / "outagecomms.toml",
            store=url,
            smtp_port=sink.port,
            max_connections=args.connections,
            daemon={"leader_lease": f'"{args.leader_lease:g}s"'},
            dispatch={"lease": f'"{args.dispatch_lease:g}s"'} if args.dispatch_lease else None,
        )
        cli(cfg, "customers", "import", str(customers))
        reader = StoreReader(args.db)
        app = App.from_config(load_config(cfg))
        try:
            daemons = start_daemons(cfg, run_dir, 2, [free_port(), free_port()])
            a, b = daemons
            if b.is_leader() or not a.is_leader():
                run.problems.append("A should lead and B follow before the kill")
            sink_before = sink.count
            tiers = tier_args(ALL_TIERS)
            decl = json.loads(
                cli(
                    cfg, "declare", "Failover bench", "--severity", "sev2", *tiers,
                    "--every", f"{args.every:g}s", "--queue-only", "--yes", "--json",
                ).stdout
            )  # fmt: skip
            ref = decl["incident"]
            iid = int(ref.split("-")[1])
            # steady state: the leader has kept one promise with a holding round
            wait_until(
                lambda: reader.value("SELECT count(*) FROM rounds WHERE kind = 'holding'") >= 1,
                args.every * 2 + 30,
                0.1,
                "the leader's first holding round",
            )
            with app.store.read() as conn:
                inc = incidents_db.get_incident(conn, iid).incident
            h = holding_start(inc, app.config)
            promise = inc.next_update_due
            assert h is not None and promise is not None
            margin = fanout_margin(inc, app.config)
            holding_before = reader.value("SELECT count(*) FROM rounds WHERE kind = 'holding'")

            if args.scenario == "before-due":
                before = args.kill_before[(i - 1) % len(args.kill_before)]
                wait = (h - timedelta(seconds=before) - utcnow()).total_seconds()
                if wait < 0.05:
                    run.problems.append(
                        f"too late to kill before the round fell due ({wait:.2f} s)"
                    )
                time.sleep(max(0.0, wait))
            else:
                _wait_mid_send(reader, a.pid, int(holding_before) + 1, args.every * 2 + 30)
            run.pid_killed = a.pid
            killed_at = a.kill()
            mono_kill = time.monotonic()
            run.in_flight = int(
                reader.value(
                    "SELECT count(*) FROM deliveries WHERE status = 'sending' AND lease_owner LIKE %s",
                    (f"%:{a.pid}:%",),
                )
            )
            in_flight_ids = [
                r[0]
                for r in reader.rows(
                    "SELECT id FROM deliveries WHERE status = 'sending' AND lease_owner LIKE %s",
                    (f"%:{a.pid}:%",),
                )
            ]

            first: tuple[int, datetime, datetime | None, datetime | None] | None = None
            deadline = mono_kill + args.leader_lease + args.every + 30
            while time.monotonic() < deadline and (run.takeover is None or first is None):
                if run.takeover is None and b.is_leader():
                    run.takeover = time.monotonic() - mono_kill
                if first is None:
                    row = reader.rows(
                        "SELECT seq, created_at, due_by, promised_next_by FROM rounds "
                        "WHERE kind = 'holding' AND created_at > %s ORDER BY created_at LIMIT 1",
                        (killed_at,),
                    )
                    if row:
                        first = row[0]
                time.sleep(0.05)
            if run.takeover is None:
                run.problems.append("the survivor never reported leadership on /healthz")
            if first is None:
                raise RuntimeError("no holding round was written after the kill")
            seq, created, due_by, next_promise = first
            run.round_ref = f"{ref} round {seq}"
            run.to_round = (created - killed_at).total_seconds()
            assert due_by is not None
            due_at = due_by - margin  # when this round fell due (holding_start)
            run.kill_to_due = (due_at - killed_at).total_seconds()
            run.late_start = (created - due_at).total_seconds()
            if args.scenario == "before-due" and due_by != promise:
                run.problems.append(f"{run.round_ref} kept {due_by}, expected {promise}")
            if in_flight_ids:
                wait_until(
                    lambda: (
                        reader.value(
                            "SELECT count(*) FROM deliveries WHERE id = ANY(%s) AND status <> 'sent'",
                            (in_flight_ids,),
                        )
                        == 0
                    ),
                    args.dispatch_lease_effective + 30,
                    0.1,
                    "the killed daemon's deliveries to be sent by the survivor",
                )
                last = reader.value(
                    "SELECT max(sent_at) FROM deliveries WHERE id = ANY(%s)", (in_flight_ids,)
                )
                run.in_flight_done = (last - killed_at).total_seconds()
            # one more promise under the survivor alone, then check them all
            assert next_promise is not None
            wait = (next_promise - utcnow()).total_seconds() + 1.0
            time.sleep(max(0.0, wait))
            end = utcnow()
            b.stop()
            sink.settle(0.5)
            rounds = read_rounds(reader)
            run.promises, _in_force = check_promises(rounds, end)
            kept_by = {c.kept_by.seq: c for c in run.promises if c.kept_by is not None}
            if seq in kept_by:
                run.promise_margin = kept_by[seq].margin_last
            run.by_survivor = run.round_ref in b.holding_rounds_from_log()
            if not b.became_leader():
                run.problems.append("B's log does not say it became the leader")
            store_sent = int(reader.value("SELECT count(*) FROM deliveries WHERE status = 'sent'"))
            run.extra_sends = (sink.count - sink_before) - store_sent
            if args.verbose:
                print(
                    f"    margin {margin.total_seconds():g} s; promise {promise:%H:%M:%S.%f}; "
                    f"holding start {h:%H:%M:%S.%f}; killed {killed_at:%H:%M:%S.%f}; "
                    f"round {seq} created {created:%H:%M:%S.%f}"
                )
        finally:
            for d in daemons:
                d.stop()
            reader.close()
            app.close()
    return run


def _wait_mid_send(reader: StoreReader, pid: int, holding_n: int, timeout: float) -> None:
    """Until the leader (pid) has written holding round number ``holding_n`` and holds leases on
    some of its deliveries: the moment to kill it in the middle of a fan-out."""

    def sending() -> bool:
        n = reader.value(
            "SELECT count(*) FROM deliveries d JOIN rounds r ON r.id = d.round_id "
            "WHERE r.kind = 'holding' AND d.status = 'sending' AND d.lease_owner LIKE %s",
            (f"%:{pid}:%",),
        )
        return (
            bool(n)
            and reader.value("SELECT count(*) FROM rounds WHERE kind = 'holding'") >= holding_n
        )

    wait_until(sending, timeout, 0.005, "the leader to hold deliveries of a holding round")


def main() -> int:
    ap = argparse.ArgumentParser(description="outagecomms HA failover benchmark (PostgreSQL)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (3)")
    ap.add_argument("--customers", type=int, default=200, help="audience size (200)")
    ap.add_argument("--every", type=float, default=20, help="incident cadence, s (20)")
    ap.add_argument(
        "--leader-lease", type=float, default=15, help="[daemon] leader_lease, s (15, the default)"
    )
    ap.add_argument(
        "--kill-before",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[1.0, 5.0, 9.0],
        help="kill this many s before the holding round is due; a list is cycled (1,5,9)",
    )
    ap.add_argument("--scenario", choices=("before-due", "mid-send"), default="before-due")
    ap.add_argument(
        "--dispatch-lease", type=float, default=0, help="[dispatch] lease, s (default: product's)"
    )
    ap.add_argument("--connections", type=int, default=4, help="SMTP max_connections (4)")
    add_store_args(ap, db="bench_failover")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.dispatch_lease_effective = args.dispatch_lease or 15.0  # the product default

    if ensure_smtp_sink() is None:
        print("smtp-sink unavailable (install postfix); using the aiosmtpd sink")
        sink_kind = "aiosmtpd"
    else:
        sink_kind = "smtp-sink"
    runs: list[Run] = []
    with ha_bench_run("oc-bench-failover-", args) as bench:
        workdir = bench.workdir
        customers, rows, source = write_customers(workdir, args.customers, args.seed)
        print(
            f"outagecomms failover: 2 daemons on PostgreSQL, {len(rows)} customers, "
            f"cadence {args.every:g} s, leader_lease {args.leader_lease:g} s, "
            f"scenario {args.scenario}"
            + (f" (kill {'/'.join(f'{x:g}' for x in args.kill_before)} s before the holding "
               "round is due)" if args.scenario == "before-due" else "")
        )  # fmt: skip
        print(f"machine: {machine_line()}")
        print(f"customers: {source} {args.customers} --seed {args.seed}; work dir {workdir}")
        with Sink(sink_kind, free_port(), args.connections * 2) as sink:
            for i in range(1, args.repeat + 1):
                run = one_run(i, args, workdir, customers, sink)
                runs.append(run)
                _print_run(run, args)
        _summary(runs, args)
    return bench.status


def _f(x: float | None, unit: str = " s") -> str:
    return "-" if x is None else f"{x:.2f}{unit}"


def _print_run(run: Run, args: argparse.Namespace) -> None:
    kept = f"{run.kept}/{len(run.promises)}"
    print(f"\n[run {run.index}] killed leader pid {run.pid_killed}")
    print(f"  next holding round fell due  {run.kill_to_due:6.2f} s after the kill")
    print(f"  survivor leads (/healthz)    {_f(run.takeover)} after the kill")
    print(
        f"  first holding round          {_f(run.to_round)} after the kill ({run.round_ref}, "
        f"{'written by the survivor' if run.by_survivor else 'NOT in the survivor log'})"
    )
    print(f"  ... started past its due time {_f(run.late_start)}")
    print(f"  that promise: {_f(run.promise_margin)} to spare (last delivery before it)")
    if args.scenario == "mid-send" or run.in_flight:
        print(
            f"  in flight at the kill        {run.in_flight} deliveries"
            + (f", all sent {_f(run.in_flight_done)} after the kill" if run.in_flight else "")
        )
    print(f"  promises kept (whole run)    {kept}; extra messages at the sink: {run.extra_sends}")
    for c in run.promises:
        if not c.kept:
            print(f"    BROKEN: INC-{c.incident_id} promise of round {c.promised_in}: {c.why}")
    for p in run.problems:
        print(f"  PROBLEM: {p}")


def _summary(runs: list[Run], args: argparse.Namespace) -> None:
    from statistics import median

    def stats(xs: list[float]) -> str:
        if not xs:
            return "-"
        return f"min {min(xs):.2f} s · median {median(xs):.2f} s · max {max(xs):.2f} s"

    to_round = [r.to_round for r in runs if r.to_round is not None]
    takeover = [r.takeover for r in runs if r.takeover is not None]
    print(f"\n[summary: {len(runs)} kills, leader_lease {args.leader_lease:g} s]")
    print(f"  kill -> survivor leads:        {stats(takeover)}")
    print(f"  kill -> first holding round:   {stats(to_round)}")
    print(
        f"  ... its start past its due time: {stats([r.late_start for r in runs if r.late_start is not None])}"
    )
    inflight = [r.in_flight_done for r in runs if r.in_flight_done is not None]
    if inflight:
        print(f"  kill -> in-flight deliveries sent: {stats(inflight)}")
    promises = sum(len(r.promises) for r in runs)
    kept = sum(r.kept for r in runs)
    extra_ok = all(0 <= r.extra_sends <= r.in_flight for r in runs)
    lease = args.leader_lease
    leads = len(takeover) == len(runs) and all(x <= lease for x in takeover)
    in_time = all(
        r.to_round is not None and r.to_round <= max(0.0, r.kill_to_due) + lease for r in runs
    )
    checks = {
        f"survivor leads within leader_lease ({lease:g} s) of the kill": leads,
        "first holding round within leader_lease of the kill or of its due time": in_time,
        "written by the survivor": all(r.by_survivor for r in runs),
        f"every promise kept ({kept}/{promises})": kept == promises and promises > 0,
        "nothing sent twice except in-flight deliveries "
        f"(extra {sum(r.extra_sends for r in runs)}, in flight {sum(r.in_flight for r in runs)})": extra_ok,
        "no other problem": not any(r.problems for r in runs),
    }
    for what, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    print(f"  overall: {'PASS' if all(checks.values()) else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
