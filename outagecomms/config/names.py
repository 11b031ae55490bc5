"""``[components]`` and ``[regions]``: display names customers read instead of the directory's
keys (``database = "Managed Database"``, ``eu-west = "Europe (Ireland)"``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from outagecomms.config.model import DisplayNames
from outagecomms.values import FieldReader

_CTRL = re.compile(r"[\x00-\x1f\x7f]")
#: the top-level tables of display names
TABLES = ("components", "regions")


def parse_display_names(ctx: FieldReader, data: Mapping[str, Any]) -> DisplayNames:
    """Each table maps a key to a one-line, non-empty name; errors name the file and key."""
    out: dict[str, dict[str, str]] = {}
    for table in TABLES:
        names: dict[str, str] = {}
        for key, value in ctx.table(data.get(table, {}), table).items():
            where = f"{table}.{key}"
            if not isinstance(value, str) or not value.strip():
                raise ctx.err(where, f"must be the name customers read (a string), got {value!r}")
            if _CTRL.search(value):
                raise ctx.err(where, f"must be one line without control characters, got {value!r}")
            names[key] = value.strip()
        out[table] = names
    return DisplayNames(components=out["components"], regions=out["regions"])
