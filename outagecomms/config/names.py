"""``[components]`` and ``[regions]``: display names customers read instead of the directory's
keys (``database = "Managed Database"``, ``eu-west = "Europe (Ireland)"``), optionally per
language (``[components.database] name = "Managed Database"``, ``names = { de = "Verwaltete
Datenbank" }``): a customer reads the name in the language of their messages."""

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
    """Each table maps a key to a one-line, non-empty name, or to a table with ``name`` and
    ``names`` (language -> name); errors name the file and key."""
    out: dict[str, dict[str, str]] = {}
    per_language: dict[str, dict[str, dict[str, str]]] = {}
    for table in TABLES:
        names: dict[str, str] = {}
        translated: dict[str, dict[str, str]] = {}
        for key, value in ctx.table(data.get(table, {}), table).items():
            where = f"{table}.{key}"
            if isinstance(value, Mapping):
                unknown = sorted(set(value) - {"name", "names"})
                if unknown:
                    raise ctx.err(f"{where}.{unknown[0]}", "unknown key (known: name, names)")
                if "name" in value:
                    names[key] = _name(ctx, f"{where}.name", value["name"])
                raw = value.get("names", {})
                if not isinstance(raw, Mapping):
                    raise ctx.err(
                        f"{where}.names", f'must be a table like {{ de = "..." }}, got {raw!r}'
                    )
                translated[key] = {
                    _language(ctx, f"{where}.names.{lang}", lang): _name(
                        ctx, f"{where}.names.{lang}", text
                    )
                    for lang, text in raw.items()
                }
                continue
            names[key] = _name(ctx, where, value)
        out[table] = names
        per_language[table] = translated
    return DisplayNames(
        components=out["components"],
        regions=out["regions"],
        component_names=per_language["components"],
        region_names=per_language["regions"],
    )


def _name(ctx: FieldReader, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.err(where, f"must be the name customers read (a string), got {value!r}")
    if _CTRL.search(value):
        raise ctx.err(where, f"must be one line without control characters, got {value!r}")
    return value.strip()


def _language(ctx: FieldReader, where: str, lang: str) -> str:
    """A language (``de``) or locale (``fr_CA``) as the catalogs are named."""
    from babel import Locale, UnknownLocaleError

    norm = lang.replace("-", "_")
    try:
        Locale.parse(norm)
    except (ValueError, UnknownLocaleError):
        raise ctx.err(where, f'{lang!r} is not a language code like "de" or "fr_CA"') from None
    return norm
