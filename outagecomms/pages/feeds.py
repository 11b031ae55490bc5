"""The status page's machine-readable views: an Atom 1.0 feed (RFC 4287) and a JSON summary
shaped like Atlassian Statuspage's public ``/api/v2/summary.json`` (``page``, ``status``,
``components``, ``incidents`` with ``incident_updates``, ``scheduled_maintenances``), so the
widgets and bots that read Statuspage read ours. Both are built from
:class:`~outagecomms.pages.status.StatusData`; neither carries customer data.

The Atom XML is built with ``xml.etree`` (text is escaped by the serializer, never pasted).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from outagecomms.pages.status import (
    DEGRADED,
    MAINTENANCE,
    MAJOR,
    OPERATIONAL,
    PARTIAL,
    PublicIncident,
    PublicUpdate,
    StatusData,
)

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml; charset=utf-8"

#: Statuspage's page indicator and its description, by the worst component state
INDICATORS = {
    OPERATIONAL: ("none", "All Systems Operational"),
    DEGRADED: ("minor", "Minor Service Outage"),
    PARTIAL: ("major", "Partial System Outage"),
    MAJOR: ("critical", "Major System Outage"),
    MAINTENANCE: ("maintenance", "Service Under Maintenance"),
}
#: Statuspage's incident ``impact``, by severity
IMPACTS = {"sev1": "critical", "sev2": "major", "sev3": "minor", "sev4": "minor"}


def iso(dt: datetime) -> str:
    """``2026-11-25T13:00:07.000Z``: UTC with milliseconds, as Statuspage writes times."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def indicator(data: StatusData) -> dict[str, str]:
    ind, description = INDICATORS[data.state]
    return {"indicator": ind, "description": description}


def page_id(page_url: str) -> str:
    """A stable, opaque page id (Statuspage's are 12 characters), from the page's URL."""
    return hashlib.sha256(page_url.encode()).hexdigest()[:12]


def _page(data: StatusData, title: str, page_url: str) -> dict[str, Any]:
    return {
        "id": page_id(page_url),
        "name": title,
        "url": page_url,
        "time_zone": data.timezone,
        "updated_at": iso(data.updated_at),
    }


def _update(u: PublicUpdate) -> dict[str, Any]:
    at = iso(u.created_at)
    return {
        "id": f"INC-{u.incident_id}-{u.seq}",
        "incident_id": f"INC-{u.incident_id}",
        "status": u.status,
        "body": u.message or u.status_label,
        "created_at": at,
        "updated_at": at,
        "display_at": at,
        "affected_components": None,
        "deliver_notifications": True,
    }


def _incident(
    inc: PublicIncident, pid: str, page_url: str, names: dict[str, str]
) -> dict[str, Any]:
    monitoring = next((u.created_at for u in inc.updates if u.status == "monitoring"), None)
    return {
        "id": inc.ref,
        "name": inc.title,
        "status": inc.status,
        "impact": IMPACTS.get(inc.severity, "minor"),
        "created_at": iso(inc.started_at),
        "started_at": iso(inc.started_at),
        "updated_at": iso(inc.updated_at),
        "monitoring_at": iso(monitoring) if monitoring else None,
        "resolved_at": iso(inc.resolved_at) if inc.resolved_at else None,
        "shortlink": f"{page_url}#{inc.ref}",
        "page_id": pid,
        "incident_updates": [_update(u) for u in reversed(inc.updates)],  # newest first
        "components": [{"id": k, "name": names[k]} for k in inc.components if k in names],
    }


def summary_json(data: StatusData, *, title: str, page_url: str) -> dict[str, Any]:
    """Statuspage's ``summary.json``: unresolved incidents only, as Statuspage lists them."""
    pid = page_id(page_url)
    names = {c.key: c.name for c in data.components}
    updated = iso(data.updated_at)
    return {
        "page": _page(data, title, page_url),
        "status": indicator(data),
        "components": [
            {
                "id": c.key,
                "name": c.name,
                "status": c.state,
                "created_at": iso(data.window_start),
                "updated_at": updated,
                "position": n,
                "description": None,
                "showcase": True,
                "start_date": None,
                "group_id": None,
                "page_id": pid,
                "group": False,
                "only_show_if_degraded": False,
            }
            for n, c in enumerate(data.components, start=1)
        ],
        "incidents": [_incident(i, pid, page_url, names) for i in data.incidents if i.is_open],
        "scheduled_maintenances": list(data.maintenance),
    }


def status_json(data: StatusData, *, title: str, page_url: str) -> dict[str, Any]:
    """Statuspage's ``status.json``: the page and its indicator."""
    return {"page": _page(data, title, page_url), "status": indicator(data)}


def _tag_base(page_url: str) -> str | None:
    host = urlsplit(page_url).hostname
    return host if host and "." in host else None


def entry_id(page_url: str, u: PublicUpdate, declared: datetime) -> str:
    """A stable entry id: ``tag:<host>,<YYYY-MM-DD>:INC-12/3`` (RFC 4151, the day the
    incident was declared: never edited), or a ``urn:uuid`` derived from the page URL and the update when the URL
    has no host name."""
    host = _tag_base(page_url)
    if host:
        return f"tag:{host},{declared.astimezone(UTC):%Y-%m-%d}:INC-{u.incident_id}/{u.seq}"
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{page_url}#INC-{u.incident_id}/{u.seq}").urn


def atom_feed(data: StatusData, *, title: str, author: str, page_url: str, feed_url: str) -> bytes:
    """The Atom 1.0 document: one entry per public update, newest first, at most 50."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", uuid.uuid5(uuid.NAMESPACE_URL, feed_url).urn)
    sub(feed, "title", title)
    updates = data.updates
    sub(feed, "updated", iso(updates[0].created_at if updates else data.updated_at))
    sub(sub(feed, "author"), "name", author)
    sub(feed, "link", rel="self", type="application/atom+xml", href=feed_url)
    sub(feed, "link", rel="alternate", type="text/html", href=page_url)
    sub(feed, "generator", "outagecomms")
    by_id = {inc.id: inc for inc in data.history}
    for u in updates:
        inc = by_id[u.incident_id]
        entry = sub(feed, "entry")
        sub(entry, "id", entry_id(page_url, u, inc.declared_at))
        sub(entry, "title", f"{inc.ref} {inc.title}: {u.status_label}")
        sub(entry, "updated", iso(u.created_at))
        sub(entry, "published", iso(u.created_at))
        sub(entry, "link", rel="alternate", type="text/html", href=f"{page_url}#{inc.ref}")
        sub(entry, "content", u.message or u.status_label, type="text")
    out: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return out
