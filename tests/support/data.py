"""Where the repository and the tests' data are, and the sample directory of customers."""

from __future__ import annotations

import csv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
#: 40 synthetic customers in the CSV import format (the packaged sample)
SAMPLE_CSV = REPO / "outagecomms" / "samples" / "customers.csv"


def step_rule(block: str = "30m") -> str:
    """A ``[[credits.rules]]`` table, hosting style: 5% of the monthly fee per started
    ``block`` of downtime (a TOML string: ``block`` goes in as written, valid or not)."""
    return f"""\
[[credits.rules]]
kind = "downtime_step"
percent_per_block = 5
block = "{block}"
rounding = "ceil"
"""


def sample_csv() -> Path:
    return SAMPLE_CSV


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE_CSV.open(newline="") as fh:
        return list(csv.DictReader(fh))


def expected_ids(component: str, region: str) -> set[str]:
    """The sample customers affected by ``component`` in ``region``."""
    return {
        r["id"]
        for r in sample_rows()
        if component in r["components"].split(";") and region in r["regions"].split(";")
    }


def migrations_head() -> str:
    """The head revision of the store's Alembic scripts, as Alembic computes it (the store's
    hand-kept ``HEAD_REVISION`` must equal it)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(REPO / "outagecomms" / "store" / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None, "the store has no migration scripts"
    return head


def write_rows(path: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """``rows`` as a customers CSV at ``path`` (the columns of the first row); returns them."""
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows
