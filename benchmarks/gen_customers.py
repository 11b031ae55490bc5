#!/usr/bin/env python3
"""Write a deterministic synthetic customer directory as CSV.

usage: gen_customers.py N [--seed S] > customers.csv

Columns: id,name,email,phone,slack_webhook,tier,monthly_fee,currency,components,regions,tags,
timezone,locale,account_manager. List-valued columns are separated by ';'.
Addresses use the reserved example.com/example.net domains and numbers in the +1 555 0100-0199
fictional range, so nothing here can reach a real person.

Provenance: the team's shared tools/gen_customers.py, carried here so the project never reads
outside its own tree; only split into ``generate`` (for the benchmarks to import) and ``main``.
Same seed, same rows: keep it that way, the published benchmark figures were measured on them.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from typing import TextIO

COMPONENTS = [
    "api",
    "dashboard",
    "database",
    "storage",
    "dns",
    "cdn",
    "email-relay",
    "billing",
    "auth",
    "search",
    "queue",
    "backups",
]
REGIONS = ["us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-northeast"]
TIERS = [
    ("enterprise", 0.05, (5000, 50000)),
    ("business", 0.25, (500, 5000)),
    ("standard", 0.70, (20, 500)),
]
ZONES = [
    ("America/New_York", "en_US", "USD"),
    ("America/Los_Angeles", "en_US", "USD"),
    ("Europe/London", "en_GB", "GBP"),
    ("Europe/Berlin", "de_DE", "EUR"),
    ("Europe/Paris", "fr_FR", "EUR"),
    ("Asia/Kolkata", "en_IN", "INR"),
    ("Asia/Tokyo", "ja_JP", "JPY"),
    ("Australia/Sydney", "en_AU", "AUD"),
]
WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Wonka",
    "Cyberdyne",
    "Aperture",
    "Massive",
    "Dynamic",
    "Blue",
    "North",
    "Summit",
    "Pioneer",
    "Harbor",
    "Quantum",
    "Silver",
    "Cedar",
    "Falcon",
]
SUFFIXES = ["Corp", "Labs", "GmbH", "Ltd", "Inc", "Systems", "Analytics", "Cloud", "Logistics"]


def pick_tier(r: float) -> tuple[str, int, int]:
    """The tier whose cumulative share first reaches ``r`` (the last one if rounding leaves a gap)."""
    acc = 0.0
    for tier, share, (lo, hi) in TIERS:
        acc += share
        if r <= acc:
            return tier, lo, hi
    tier, _share, (lo, hi) = TIERS[-1]
    return tier, lo, hi


def generate(n: int, seed: int, stream: TextIO) -> None:
    """Write ``n`` customers generated from ``seed`` to ``stream`` as CSV."""
    rng = random.Random(seed)
    out = csv.writer(stream, lineterminator="\n")
    out.writerow(
        [
            "id",
            "name",
            "email",
            "phone",
            "slack_webhook",
            "tier",
            "monthly_fee",
            "currency",
            "components",
            "regions",
            "tags",
            "timezone",
            "locale",
            "account_manager",
        ]
    )
    for i in range(1, n + 1):
        tier, lo, hi = pick_tier(rng.random())
        zone, locale, currency = rng.choice(ZONES)
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(SUFFIXES)} {i}"
        slug = f"c{i:07d}"
        comps = sorted(rng.sample(COMPONENTS, rng.randint(1, 5)))
        regions = sorted(rng.sample(REGIONS, rng.randint(1, 2)))
        tags = []
        if rng.random() < 0.1:
            tags.append("beta")
        if rng.random() < 0.05:
            tags.append("regulated")
        phone = (
            f"+1555{rng.randint(100, 199):03d}{rng.randint(0, 9999):04d}"
            if rng.random() < 0.6
            else ""
        )
        slack = (
            f"http://127.0.0.1:9/hooks/{slug}" if tier != "standard" and rng.random() < 0.5 else ""
        )
        fee = (
            f"{rng.uniform(lo, hi):.2f}"
            if currency != "JPY"
            else str(int(rng.uniform(lo, hi) * 150))
        )
        manager = f"am{rng.randint(1, 40)}@support.example.net" if tier == "enterprise" else ""
        out.writerow(
            [
                slug,
                name,
                f"ops+{slug}@example.com",
                phone,
                slack,
                tier,
                fee,
                currency,
                ";".join(comps),
                ";".join(regions),
                ";".join(tags),
                zone,
                locale,
                manager,
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate(args.n, args.seed, sys.stdout)


if __name__ == "__main__":
    main()
