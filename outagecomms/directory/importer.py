"""Importing the customer directory: all rows or none."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from outagecomms.app import App
from outagecomms.directory.parse import parse_directory
from outagecomms.errors import InputError, StateError, quote
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.values import JsonModel


@dataclass(frozen=True, kw_only=True)
class ImportResult(JsonModel):
    """What an import changed; ``to_json()`` is ``customers import --json``."""

    file: str
    rows: int
    created: int
    updated: int
    removed: int  # with ``replace``: customers that were not in the file
    #: of those, the ones in the audience of an open incident (its rounds still reach them)
    kept_for_open_incidents: int = 0


def import_file(
    app: App,
    path: Path | str,
    *,
    fmt: str | None = None,
    replace: bool = False,
    allow_mixed_script: bool = False,
    yes: bool = False,
) -> ImportResult:
    """Validate the whole file first, then write it in one transaction: a bad row imports
    nothing.

    ``replace`` removes the customers not in the file. When some of them are in the audience
    of an open incident it is refused unless ``yes``; with ``yes`` each such incident keeps
    their details, so its later rounds (update, resolution, follow-up) still reach them."""
    parsed = parse_directory(Path(path), fmt, allow_mixed_script=allow_mixed_script)
    if not parsed.customers:
        raise InputError("contains no customers", file=path)
    kept = 0
    with app.store.write() as conn:
        if replace:
            leaving = customers_db.open_audiences_leaving(conn, (c.id for c in parsed.customers))
            if leaving and not yes:
                titles = {i: incidents_db.get_incident(conn, i).incident.title for i in leaving}
                raise StateError(_leaving_message(leaving, titles))
            kept = customers_db.keep_departing(conn, leaving, app.clock())
        created, updated, removed = customers_db.upsert_customers(
            conn, parsed.customers, app.clock(), replace=replace
        )
    return ImportResult(
        file=str(path), rows=len(parsed.customers), created=created, updated=updated,
        removed=removed, kept_for_open_incidents=kept,
    )  # fmt: skip


def _leaving_message(leaving: dict[int, list[str]], titles: dict[int, str]) -> str:
    parts = [
        f"INC-{iid} {quote(titles[iid], 60)} ({len(ids)} customers)"
        for iid, ids in sorted(leaving.items())
    ]
    total = len({cid for ids in leaving.values() for cid in ids})
    return (
        f"the file leaves out {total} customers in the audience of open incident(s) "
        f"{', '.join(parts)}; {{field:replace}} would remove them from the directory. Pass "
        "{field:yes} to remove them anyway (those incidents keep their contact details until "
        "their last round), or import without {field:replace}"
    )
