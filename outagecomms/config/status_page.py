"""``[status_page]``: the public status page's table (``docs/config.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from outagecomms.config.model import LOGO_TYPES, StatusPageConfig
from outagecomms.values import FieldReader

KEYS = {"enabled", "title", "logo", "components", "history_days", "cache", "timezone"}
MAX_HISTORY_DAYS = 366
#: what a logo file starts with, by its type (an SVG: an XML document whose root is <svg>)
_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",)}


def parse_status_page(ctx: FieldReader, raw: Any, base: Path, company: str) -> StatusPageConfig:
    """Errors name the key: a logo that is missing or not a PNG/SVG/JPEG is
    ``status_page.logo``; an unknown zone ``status_page.timezone``."""
    data = ctx.table(raw, "status_page")
    ctx.known(data, "status_page", KEYS)
    defaults = StatusPageConfig()
    enabled = data.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ctx.err("status_page.enabled", f"must be true or false, got {enabled!r}")
    title = data.get("title", f"{company} status")
    if not isinstance(title, str) or not title.strip() or "\n" in title:
        raise ctx.err("status_page.title", f"must be a one-line, non-empty string, got {title!r}")
    components = None
    if "components" in data:
        value = data["components"]
        if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
            raise ctx.err(
                "status_page.components",
                f'must be a list of component keys, such as ["api", "database"], got {value!r}',
            )
        components = tuple(dict.fromkeys(c.strip() for c in value if c.strip()))
    zone = data.get("timezone", defaults.timezone)
    try:
        if not isinstance(zone, str) or not zone:
            raise ValueError
        ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ctx.err(
            "status_page.timezone", f'must be an IANA zone such as "Europe/Berlin", got {zone!r}'
        ) from None
    return StatusPageConfig(
        enabled=enabled,
        title=title.strip(),
        logo=_logo(ctx, data, base),
        components=components,
        history_days=ctx.integer(
            data,
            "status_page",
            "history_days",
            defaults.history_days,
            minimum=1,
            maximum=MAX_HISTORY_DAYS,
        ),
        cache=ctx.duration(data, "status_page", "cache", defaults.cache, allow_zero=True),
        timezone=zone,
    )


def _logo(ctx: FieldReader, data: dict[str, Any], base: Path) -> Path | None:
    if "logo" not in data:
        return None
    value = data["logo"]
    if not isinstance(value, str) or not value.strip():
        raise ctx.err("status_page.logo", f"must be the path of an image file, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    kind = LOGO_TYPES.get(path.suffix.lower())
    if kind is None:
        raise ctx.err("status_page.logo", f"{path} must be a .png, .svg, .jpg or .jpeg file")
    try:
        head = path.read_bytes()[:4096]
    except OSError as exc:
        raise ctx.err("status_page.logo", f"cannot read {path}: {exc.strerror or exc}") from None
    looks_right = b"<svg" in head if kind == "image/svg+xml" else head.startswith(_MAGIC[kind])
    if not looks_right:
        raise ctx.err("status_page.logo", f"{path} is not a {kind.split('/')[1].upper()} image")
    return path
