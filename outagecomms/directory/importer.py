"""Importing the customer directory: all rows or none."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from outagecomms.app import App
from outagecomms.directory.parse import parse_directory
from outagecomms.errors import InputError
from outagecomms.store import customers as customers_db
from outagecomms.values import JsonModel


@dataclass(frozen=True, kw_only=True)
class ImportResult(JsonModel):
    """What an import changed; ``to_json()`` is ``customers import --json``."""

    file: str
    rows: int
    created: int
    updated: int
    removed: int  # with ``replace``: customers that were not in the file


def import_file(
    app: App, path: Path | str, *, fmt: str | None = None, replace: bool = False
) -> ImportResult:
    """Validate the whole file first, then write it in one transaction: a bad row imports
    nothing."""
    parsed = parse_directory(Path(path), fmt)
    if not parsed.customers:
        raise InputError("contains no customers", file=path)
    with app.store.write() as conn:
        created, updated, removed = customers_db.upsert_customers(
            conn, parsed.customers, app.clock(), replace=replace
        )
    return ImportResult(
        file=str(path), rows=len(parsed.customers), created=created, updated=updated,
        removed=removed,
    )  # fmt: skip
