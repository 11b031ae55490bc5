"""Update latency benchmark: how long does the commander wait for ``outagecomms update``?

usage: python benchmarks/update.py [--customers N] [--repeat R]

Sets up an open incident of N customers (``declare --queue-only``: the deliveries are queued,
nothing is sent), then measures, excluding the send:

- end to end: ``outagecomms update INC-1 "msg" --queue-only --json`` as a real subprocess
  (interpreter start, imports, config, pre-flight, the write transaction), R times, median;
- in process: ``outagecomms.incidents.lifecycle.post_update(app, 1, "msg")`` on an open App, R times,
  median (the first call, with cold template and query caches, is shown separately);
- baseline in the same run: ``outagecomms list --json`` (the CLI's fixed start-up cost).

Each update adds one round of N deliveries, so the outbox grows by N per repetition (shown per
run). Target: <= 0.5 s. Exit status 0 unless a step broke.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    customers_csv,
    free_port,
    machine_line,
    median,
    run_cli,
    verdict,
    write_config,
)


def timed_cli(config: Path, *args: str) -> tuple[float, str]:
    t = time.perf_counter()
    res = run_cli(config, *args)
    return time.perf_counter() - t, res.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description="outagecomms update latency benchmark")
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions per measurement (5)")
    ap.add_argument("--target", type=float, default=0.5, help="seconds to pass (0.5)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (config, db)")
    args = ap.parse_args()
    n, reps = args.customers, max(1, args.repeat)
    workdir = Path(tempfile.mkdtemp(prefix="oc-bench-update-"))
    broke = False
    try:
        csv_text, source = customers_csv(n, args.seed)
        (workdir / "customers.csv").write_text(csv_text)
        tiers = sorted({row["tier"] for row in csv.DictReader(io.StringIO(csv_text))})
        # Nothing is sent: the SMTP port is a free one with no server behind it.
        config = write_config(workdir, smtp_port=free_port(), max_connections=8)
        print(f"outagecomms update latency: open incident of {n} customers, {reps} repetitions")
        print(f"machine: {machine_line()}")
        print(f"customers: {source} {n} --seed {args.seed}; work dir {workdir}")
        run_cli(config, "customers", "import", str(workdir / "customers.csv"))
        tier_args = [a for t in tiers for a in ("--tier", t)]
        t_decl, out = timed_cli(
            config,
            "declare",
            "Bench",
            "--severity",
            "sev2",
            *tier_args,
            "--yes",
            "--queue-only",
            "--json",
        )
        queued = json.loads(out)["queued"]
        print(f"declare --queue-only: {t_decl:.3f} s, {queued} deliveries queued")

        print("\n[baseline: outagecomms list --json (CLI start-up, no work)]")
        base = [timed_cli(config, "list", "--json")[0] for _ in range(reps)]
        print("  runs: " + ", ".join(f"{x:.3f}" for x in base) + f" s; median {median(base):.3f} s")

        print('\n[end to end: outagecomms update INC-1 "..." --queue-only --json]')
        cli_times: list[float] = []
        for i in range(reps):
            t, out = timed_cli(
                config, "update", "INC-1", f"Bench update {i + 1}", "--queue-only", "--json"
            )
            data = json.loads(out)
            if data.get("queued") != queued:
                raise RuntimeError(f"update queued {data.get('queued')}, expected {queued}")
            cli_times.append(t)
            print(f"  round {data['round']}: {t:.3f} s (queued {data['queued']})")
        cli_med = median(cli_times)
        print(f"  median {cli_med:.3f} s; minus start-up baseline {cli_med - median(base):.3f} s")

        print('\n[in process: outagecomms.incidents.lifecycle.post_update(app, 1, "...")]')
        from outagecomms.app import App
        from outagecomms.incidents.lifecycle import post_update

        app = App.open(config)
        try:
            t = time.perf_counter()
            first = post_update(app, 1, "Bench update (cold)")
            cold = time.perf_counter() - t
            print(f"  round {first.round.seq} (first call, cold caches): {cold:.3f} s")
            lib_times: list[float] = []
            for i in range(reps):
                t = time.perf_counter()
                created = post_update(app, 1, f"Bench in-process update {i + 1}")
                lib_times.append(time.perf_counter() - t)
                if created.queued != queued:
                    raise RuntimeError(f"post_update queued {created.queued}, expected {queued}")
                print(f"  round {created.round.seq}: {lib_times[-1]:.3f} s")
        finally:
            app.close()
        lib_med = median(lib_times)
        print(f"  median {lib_med:.3f} s")

        print("\n[summary]")
        print(f"  CLI start-up baseline (list --json): {median(base):.3f} s")
        print(
            f"  update end to end (subprocess): median {cli_med:.3f} s -> target <= {args.target} s:"
            f" {verdict(cli_med <= args.target)}"
        )
        print(
            f"  post_update in process:         median {lib_med:.3f} s -> target <= {args.target} s:"
            f" {verdict(lib_med <= args.target)}"
        )
    except Exception as exc:
        print(f"benchmark broke: {type(exc).__name__}: {exc}", file=sys.stderr)
        broke = True
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
