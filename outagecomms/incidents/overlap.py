"""One incident per outage: does a declare repeat an open incident?

The rule (``find_overlaps``): a new declaration **overlaps** an open incident when

* their components overlap: both name components (``--component``) and share one, or either
  names none (it is about every component of its customers); and
* their regions overlap in the same way (``--region``); and
* at least one of the customers it selects is already in the open incident's audience.

So "database in eu-west" repeats an open "database" (any region) and an open "database in
eu-west, us-east", but not an open "database in us-east" or an open "api in eu-west" (another
outage, even for the same customers). A declaration by tier, tag or customer ids only names
no component or region, so any open incident with some of its customers overlaps it.

``declare`` refuses an overlap (``DuplicateIncident``, exit 2) unless told ``new``: a second
acknowledgement to the same customers and a second cadence is the mistake it prevents. A
record-only declare (``--no-send``: history) tells nobody and is not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from outagecomms.errors import DuplicateIncident
from outagecomms.models import Incident, Selector
from outagecomms.store import incidents as incidents_db


@dataclass(frozen=True)
class Overlap:
    """An open incident a new declaration repeats: ``covered`` of its ``of`` customers are
    already in that incident's audience."""

    incident: Incident
    covered: int
    of: int

    def to_json(self) -> dict[str, Any]:
        inc = self.incident
        return {
            "incident": inc.ref,
            "title": inc.title,
            "components": list(inc.selector.components),
            "regions": list(inc.selector.regions),
            "covered": self.covered,
            "of": self.of,
        }


def _meets(a: Sequence[str], b: Sequence[str]) -> bool:
    """Two facets (components or regions) overlap; none named means every one."""
    return not a or not b or bool(set(a) & set(b))


def find_overlaps(
    conn: Connection, selector: Selector, customer_ids: Sequence[str]
) -> list[Overlap]:
    """The open incidents a declaration with ``selector`` for ``customer_ids`` repeats, the
    one covering most of them first."""
    found = [
        Overlap(inc, n, len(customer_ids))
        for inc, n in incidents_db.open_overlaps(conn, customer_ids)
        if _meets(inc.selector.components, selector.components)
        and _meets(inc.selector.regions, selector.regions)
    ]
    return sorted(found, key=lambda o: (-o.covered, o.incident.id))


def _names(values: Sequence[str], limit: int = 3) -> str:
    shown = list(values[:limit])
    more = len(values) - len(shown)
    if more:
        return ", ".join(shown) + f" and {more} more"
    return " and ".join([", ".join(shown[:-1]), shown[-1]]) if len(shown) > 1 else shown[0]


def _scope(inc: Incident) -> str:
    comps, regions = inc.selector.components, inc.selector.regions
    if not comps and not regions:
        return f"is open ({inc.title})"
    where = _names(comps) if comps else "every component"
    return f"is open for {where}" + (f" in {_names(regions)}" if regions else "")


def duplicate_error(overlaps: Sequence[Overlap]) -> DuplicateIncident:
    """The refusal, naming the open incident that covers most of the selection and the overlap:
    "INC-1 is open for database in eu-west and already covers 37 of these 40 customers; use
    `update INC-1`, or new to declare anyway"."""
    first = overlaps[0]
    ref = first.incident.ref
    if first.of == 1:
        covers = "already covers this customer"
    else:
        covers = f"already covers {first.covered} of these {first.of} customers"
    also = ""
    if len(overlaps) > 1:
        also = (
            " (also open for some of them: " + ", ".join(o.incident.ref for o in overlaps[1:]) + ")"
        )
    return DuplicateIncident(
        f"{ref} {_scope(first.incident)} and {covers}{also}; use {{command:update {ref}}}, "
        "or {field:new} to declare anyway",
        incident=ref,
        covered=first.covered,
        of=first.of,
    )
