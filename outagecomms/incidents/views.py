"""Read models for ``list``, ``show`` and ``watch``: plain JSON-able dicts that the CLI
prints as tables or JSON (the ``--json`` keys are part of the command-line contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from outagecomms.app import App
from outagecomms.models import Incident, RoundStats, incident_id_from_ref
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def incident_dict(inc: Incident) -> dict[str, Any]:
    return {
        "incident": inc.ref,
        "title": inc.title,
        "severity": inc.severity,
        "status": inc.status.value,
        "components": list(inc.components),
        "regions": list(inc.regions),
        "selector": inc.selector.to_json(),
        "commander": inc.commander,
        "started_at": iso(inc.started_at),
        "declared_at": iso(inc.declared_at),
        "resolved_at": iso(inc.resolved_at),
        "update_every_seconds": inc.update_every.total_seconds(),
        "next_update_due": iso(inc.next_update_due),
        "ack_due": iso(inc.ack_due),
        "audience": inc.audience_size,
    }


def round_dict(s: RoundStats) -> dict[str, Any]:
    r = s.round
    return {
        "round": r.seq,
        "kind": r.kind.value,
        "status": r.status.value,
        "message": r.message,
        "created_at": iso(r.created_at),
        "due_by": iso(r.due_by),
        "promised_next_by": iso(r.promised_next_by),
        "owed": s.owed,
        "sent": s.sent,
        "failed": s.failed,
        "pending": s.pending,
        "retrying": s.retrying,
        "on_time": s.on_time,
        "first_sent_at": iso(s.first_sent_at),
        "last_sent_at": iso(s.last_sent_at),
        "deliveries": s.by_status,
    }


def promises_kept(stats: list[RoundStats]) -> dict[str, Any]:
    """The headline figure: on-time deliveries / deliveries owed, over the rounds that keep a
    promise (not the follow-up, not rounds recorded without sending)."""
    kept = [s for s in stats if s.round.due_by is not None]
    owed = sum(s.owed for s in kept)
    on_time = sum(s.on_time for s in kept)
    return {"on_time": on_time, "owed": owed, "ratio": (on_time / owed) if owed else None}


def list_incidents(app: App, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    with app.store.read() as conn:
        return [
            incident_dict(i)
            for i in incidents_db.list_incidents(conn, include_resolved=include_resolved)
        ]


def show_incident(app: App, ref: str, *, customer: str | None = None) -> dict[str, Any]:
    iid = incident_id_from_ref(ref)
    with app.store.read() as conn:
        row = incidents_db.get_incident(conn, iid)
        stats = outbox_db.round_stats(conn, iid)
        events = incidents_db.list_events(conn, iid)
        channels = incidents_db.audience_channels(conn, iid)
        flags = customers_db.incident_contact_flags(conn, iid)
        out = incident_dict(row.incident)
        out.update(
            {
                "channels": channels,
                "skipped": row.skipped,
                # contacts a provider refused for good: later rounds skip them until the
                # customer's contact changes (re-import)
                "flagged_contacts": [
                    {
                        "customer": f["customer_id"],
                        "channel": f["channel"],
                        "contact": f["contact"],
                        "reason": f["reason"],
                        "flagged_at": iso(f["flagged_at"]),
                    }
                    for f in flags
                ],
                "rounds": [round_dict(s) for s in stats],
                "promises_kept": promises_kept(stats),
                "events": [
                    {"at": iso(e["at"]), "kind": e["kind"], "detail": e["detail"]} for e in events
                ],
            }
        )
        if customer is not None:
            found = customers_db.get_customers(conn, [customer])
            rows = outbox_db.customer_deliveries(conn, iid, customer)
            if customer not in found and not rows:
                from outagecomms.errors import NotFound

                raise NotFound(
                    f"customer {customer!r} is not in the audience of {row.incident.ref}"
                )
            out["customer"] = {
                "id": customer,
                "deliveries": [
                    {
                        "round": r["seq"],
                        "kind": r["kind"],
                        "channel": r["channel"],
                        "status": r["status"],
                        "attempts": r["attempts"],
                        "sent_at": iso(r["sent_at"]),
                        "due_by": iso(r["due_by"]),
                        "on_time": bool(
                            r["sent_at"] and r["due_by"] and r["sent_at"] <= r["due_by"]
                        ),
                        "provider_id": r["provider_id"],
                        "last_error": r["last_error"],
                        "message": r["content"],
                    }
                    for r in rows
                ],
            }
    return out


def watch_snapshot(app: App, ref: str | None = None) -> list[dict[str, Any]]:
    """What the live dashboard shows: for each open incident (or the one named) its latest
    round's fan-out progress, deliveries by outcome, the next promise and recent problems."""
    now = app.clock()
    with app.store.read() as conn:
        if ref is not None:
            incidents = [incidents_db.get_incident(conn, incident_id_from_ref(ref)).incident]
        else:
            incidents = incidents_db.list_incidents(conn)
        out = []
        for inc in incidents:
            stats = outbox_db.round_stats(conn, inc.id)
            events = incidents_db.list_events(conn, inc.id)
            totals = outbox_db.count_deliveries(conn, inc.id)
            last = stats[-1] if stats else None
            out.append(
                {
                    "incident": inc.ref,
                    "title": inc.title,
                    "severity": inc.severity,
                    "status": inc.status.value,
                    "audience": inc.audience_size,
                    "latest_round": round_dict(last) if last else None,
                    "deliveries": totals,
                    "next_update_due": iso(inc.next_update_due),
                    "seconds_to_promise": (inc.next_update_due - now).total_seconds()
                    if inc.next_update_due
                    else None,
                    "recent": [
                        {"at": iso(e["at"]), "kind": e["kind"], "detail": e["detail"]}
                        for e in events[-5:]
                        if e["kind"]
                        in ("reminder", "error", "holding", "update", "follow_up", "alert_resolved")
                    ],
                }
            )
    return out
