"""Fan-out in the customers' own languages (issue 14): does a mixed-language audience keep the
rate of an English-only one?

usage: python benchmarks/fanout_languages.py [--customers N] [--rounds R] [--connections K]

The same generated directory (``gen_customers.py N --seed 7``: en_US, en_GB, en_IN, en_AU,
de_DE, fr_FR, ja_JP customers) is declared twice per round, in two stores: once as generated
(every customer reads the catalog of their language where one is shipped, the others the
company default), once with every locale set to en_US (English only, the templates' own text).
The two runs alternate, R rounds each, against a fresh sink of the same kind, as real
``outagecomms declare --yes --json`` subprocesses; the figure is the median fan-out rate of each
(``fanout.py``'s wall time from starting ``declare`` to the sink accepting the last message).

Prints the rates, the audience by language (``doctor``'s resolution) and PASS when the mixed
rate is at least 90% of the English-only one.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
from collections import Counter
from pathlib import Path

from _common import (
    Sink,
    bench_run,
    fmt_rate,
    free_port,
    machine_line,
    pick_sink,
    run_cli,
    tiers_of,
    verdict,
    write_config,
    write_customers,
)
from fanout import run_declare

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def english_only(csv_path: Path, out: Path) -> None:
    rows = list(csv.DictReader(csv_path.open(newline="")))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for row in rows:
        w.writerow({**row, "locale": "en_US"})
    out.write_text(buf.getvalue())


def languages(rows: list[dict[str, str]]) -> Counter[str]:
    from outagecomms.rendering.i18n import Catalogs

    cats = Catalogs()
    return Counter(cats.resolve(r["locale"]) for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3, help="declares of each audience (3)")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--sink", choices=("smtp-sink", "aiosmtpd"), default="smtp-sink")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ratio", type=float, default=0.9, help="mixed/English to pass (0.9)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    n, k = args.customers, args.connections
    timeout = max(120.0, n / 50)
    sink_kind = pick_sink(args.sink)
    rates: dict[str, list[float]] = {"english": [], "mixed": []}
    problems: list[str] = []
    with bench_run("oc-bench-languages-", keep=args.keep) as run:
        mixed_csv, rows, source = write_customers(run.workdir, n, args.seed)
        english_csv = run.workdir / "customers-en.csv"
        english_only(mixed_csv, english_csv)
        tiers = tiers_of(rows)
        print(f"outagecomms fan-out by language: {n} customers, {k} SMTP connections, {sink_kind}")
        print(f"machine: {machine_line()}")
        print(f"customers: {source} {n} --seed {args.seed}")
        by = languages(rows)
        print("mixed audience reads: " + ", ".join(f"{lang} {c}" for lang, c in by.most_common()))
        for rnd in range(args.rounds):
            for name, path in (("english", english_csv), ("mixed", mixed_csv)):
                folder = run.workdir / f"{name}-{rnd}"
                folder.mkdir()
                port = free_port()
                config = write_config(folder, smtp_port=port, max_connections=k)
                run_cli(config, "customers", "import", str(path), timeout=timeout)
                with Sink(sink_kind, port, k) as sink:
                    res = run_declare(config, n, tiers, sink, timeout)
                problems += [f"{name} round {rnd + 1}: {p}" for p in res.problems]
                if res.rate:
                    rates[name].append(res.rate)
                print(f"  round {rnd + 1} {name:8s} {fmt_rate(res.rate)}")
    if problems or not all(rates.values()):
        print("\n".join(problems) or "no rate measured")
        return 1
    en, mx = statistics.median(rates["english"]), statistics.median(rates["mixed"])
    ratio = mx / en
    print(f"\nmedian fan-out: English only {fmt_rate(en)}, mixed languages {fmt_rate(mx)}")
    print(
        f"mixed / English = {ratio:.3f} (target >= {args.ratio:g}): {verdict(ratio >= args.ratio)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
