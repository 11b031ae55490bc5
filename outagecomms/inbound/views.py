"""Reading what came back, for the CLI and the library (``replies``)."""

from __future__ import annotations

from typing import Any

from outagecomms.app import App
from outagecomms.errors import InputError
from outagecomms.models import IncidentRef, RefLike
from outagecomms.store import inbound as inbound_db
from outagecomms.store import incidents as incidents_db

KINDS = ("reply", "auto_reply", "bounce")
LABELS = ("negative", "neutral", "positive")


def list_replies(
    app: App,
    incident: RefLike | None,
    *,
    label: str | None = None,
    kind: str | None = None,
    unmatched: bool = False,
    customer_id: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """An incident's messages (or the unmatched ones), oldest first, and the incident's ref."""
    if label is not None and label not in LABELS:
        raise InputError(f"field 'label' = {label!r}: must be one of {', '.join(LABELS)}")
    if kind is not None and kind not in KINDS:
        raise InputError(f"field 'kind' = {kind!r}: must be one of {', '.join(KINDS)}")
    with app.store.read() as conn:
        if unmatched:
            return inbound_db.replies(conn, None, label=label, kind=kind, unmatched=True), None
        if incident is None:
            raise InputError("name an incident, or ask for the unmatched messages")
        ref = IncidentRef.parse(incident)
        inc = incidents_db.get_incident(conn, ref.id).incident
        rows = inbound_db.replies(conn, inc.id, label=label, kind=kind, customer_id=customer_id)
        return rows, inc.ref
