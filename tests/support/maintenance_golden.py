"""What every maintenance notice renders, kind by channel, for English (``en_US``) readers:
written as golden files before ``templates/maintenance/`` moved to ``{% trans %}`` (issues 14
and 15), so the English output stays byte for byte what it was.

``python -m tests.support.maintenance_golden`` (re)writes
``tests/data/i18n/maintenance-golden/``; only ever run it against templates whose English
output is known good. ``tests/test_i18n_maintenance.py`` compares. The same cases rendered for
readers of other languages serve the SMS length checks there."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from outagecomms.config.model import CompanyConfig, DisplayNames
from outagecomms.maintenance import render
from outagecomms.models import (
    Customer,
    MaintenanceNotice,
    MaintenanceStatus,
    MaintenanceWindow,
    NoticeKind,
    Selector,
)
from outagecomms.rendering.templates import PARTS, Renderer
from tests.support.builders import COMPANY, FULL_COMPANY, customer

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "i18n" / "maintenance-golden"
NO_CONTACT = CompanyConfig(name="Quiet Co")
NAMES = DisplayNames(
    components={"database": "Managed Database", "api": "Public API"},
    regions={"eu-west": "EU West"},
    component_names={"database": {"de": "Verwaltete Datenbank", "ja": "マネージドデータベース"}},
)
START = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    """One window and the notices about it that a company sends."""

    name: str
    company: CompanyConfig
    components: tuple[str, ...]
    regions: tuple[str, ...]
    message: str
    notice_message: str
    hours: int  # how long the window lasts (crossing midnight or not, in the reader's zone)


CASES = [
    Case("full", FULL_COMPANY, ("database", "api"), ("eu-west",),
         "Expect a short read-only period.", "", 2),
    Case("email", COMPANY, ("database",), (), "", "Moved at a customer's request & <b>ok</b>.", 30),
    Case("none", NO_CONTACT, ("api",), ("eu-west",), "Nothing to do on your side.",
         "Words of ours.", 1),
]  # fmt: skip

#: the English readers of the golden files
READERS = [
    customer("America/New_York", "en_US", id="c3", name="Acme Logistics",
             components=("database", "api"), regions=("eu-west",)),
    customer("UTC", "en_US", id="c5", name='Tom & Jerry <"Cartoons">', components=(),
             regions=()),
]  # fmt: skip


def window(case: Case) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=7,
        title="Database upgrade",
        message=case.message,
        components=case.components,
        regions=case.regions,
        selector=Selector(components=case.components),
        starts_at=START,
        ends_at=START + timedelta(hours=case.hours),
        status=MaintenanceStatus.SCHEDULED,
        sequence=0,
        remind=(timedelta(days=1),),
        audience_size=2,
        commander="ops",
        created_at=START - timedelta(days=7),
        told_at=START - timedelta(days=7),
    )


def notices(case: Case) -> Iterator[tuple[str, MaintenanceNotice]]:
    """Every kind (an update both with new words and with new times)."""
    w = window(case)
    base = MaintenanceNotice(
        id=1, maintenance_id=w.id, seq=1, key="k", kind=NoticeKind.ANNOUNCEMENT,
        status="queued", message=case.notice_message, detail="", created_at=w.created_at,
        due_at=None, starts_at=w.starts_at, ends_at=w.ends_at, previous_starts_at=None,
        previous_ends_at=None, sequence=0,
    )  # fmt: skip
    for kind in NoticeKind:
        short = kind.value.removeprefix("maintenance_")
        n = replace(base, kind=kind)
        if kind == NoticeKind.REMINDER:
            n = replace(n, created_at=w.starts_at - timedelta(days=1))
        yield short, n
        if kind == NoticeKind.UPDATE:
            moved = replace(
                n,
                starts_at=w.starts_at + timedelta(days=1),
                ends_at=w.ends_at + timedelta(days=1),
                previous_starts_at=w.starts_at,
                previous_ends_at=w.ends_at,
            )
            yield "rescheduled", moved


def renderer(company: CompanyConfig) -> Renderer:
    return Renderer(company=company, names=NAMES)


def rendered(reader: Customer) -> Iterator[tuple[str, str, str]]:
    """(case-kind name, channel set, the parts as one text) for every case, kind and set."""
    for case in CASES:
        r = renderer(case.company)
        w = window(case)
        for kind, notice in notices(case):
            ctx = render.context(r, w, notice, reader)
            for tset in render.TEMPLATE_SETS:
                out = render.render(r, tset, ctx)
                parts = (
                    [f"--- subject\n{out.subject}\n"] if "subject" in PARTS.get(tset, ()) else []
                )
                parts.append(f"--- txt\n{out.text}")
                if out.html is not None:
                    parts.append(f"--- html\n{out.html}")
                yield f"{case.name}-{kind}", tset, "".join(parts)


def renders() -> Iterator[tuple[str, str]]:
    """(golden file name, its text): one file per case and kind, every reader and set in it."""
    files: dict[str, list[str]] = {}
    for reader in READERS:
        for name, tset, text in rendered(reader):
            files.setdefault(f"{name}.txt", []).append(f"=== {tset} customer {reader.id}\n{text}")
    for name, chunks in files.items():
        yield name, "".join(chunks)


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, text in renders():
        (GOLDEN / name).write_text(text, encoding="utf-8")
        print(name, file=sys.stderr)


if __name__ == "__main__":
    main()
