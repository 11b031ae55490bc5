"""Importing the customer directory: all rows or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from outagecomms.app import App
from outagecomms.directory.parse import parse_directory
from outagecomms.errors import InputError
from outagecomms.store import customers as customers_db


def import_file(
    app: App, path: Path, *, fmt: str | None = None, replace: bool = False
) -> dict[str, Any]:
    """Validate the whole file first, then write it in one transaction: a bad row imports
    nothing."""
    parsed = parse_directory(Path(path), fmt)
    if not parsed.customers:
        raise InputError("contains no customers", file=path)
    with app.store.write() as conn:
        created, updated, removed = customers_db.upsert_customers(
            conn, parsed.customers, app.clock(), replace=replace
        )
    return {
        "file": str(path),
        "rows": len(parsed.customers),
        "created": created,
        "updated": updated,
        "removed": removed,
    }
