"""``respond``: a person's answer to a customer who wrote, on the channel they wrote from,
threaded to their message, recorded in the ledger (events) and shown in ``show --customer``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from outagecomms.app import App
from outagecomms.errors import InputError, NotFound, StateError
from outagecomms.inbound import pipeline
from outagecomms.incidents.lifecycle import check_message
from outagecomms.models import IncidentRef, RefLike
from outagecomms.store import customers as customers_db
from outagecomms.store import inbound as inbound_db
from outagecomms.store import incidents as incidents_db

MAX_RESPONSE = 10_000


@dataclass(frozen=True)
class Response:
    send_id: int
    incident_ref: str
    customer_id: str
    channel: str
    to: str
    subject: str
    text: str
    answers: int  # the customer's message id this answers

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.send_id,
            "incident": self.incident_ref,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "to": self.to,
            "subject": self.subject,
            "answers": self.answers,
        }


def plan_response(
    app: App, incident: RefLike, customer_id: str, message: str, *, by: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the send row, the reply it answers), checked; nothing written."""
    ref = IncidentRef.parse(incident)
    text = check_message(message, field="message")
    if len(text) > MAX_RESPONSE:
        raise InputError(f"field 'message': {len(text)} characters, at most {MAX_RESPONSE}")
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, ref.id).incident
        customer = customers_db.get_customers(conn, [customer_id]).get(customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id!r} is not in the directory")
        reply = inbound_db.latest_from(conn, inc.id, customer_id)
    if reply is None:
        raise StateError(
            f"{customer_id} has not written about {inc.ref}; {{command:replies {inc.ref}}} "
            "lists who did"
        )
    ctx = {"message": text, "company": app.config.company, "by_name": by, "incident": inc}
    rendered = app.renderer.render_inbound("response", ctx)
    headers: dict[str, str] = {
        "X-Outagecomms-Incident": inc.ref,
        "X-Outagecomms-Customer": customer_id,
    }
    if reply["channel"] == "sms":
        channel = pipeline.channel_of_kind(app, "sms")
        to = customer.phone
        subject = ""
    else:
        channel = pipeline.channel_of_kind(app, "email")
        to = (
            reply["sender"]
            if reply["matched_by"] == "token" and reply["sender"]
            else customer.email
        )
        subject = reply["subject"] or f"[{inc.ref}] {inc.title}"
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}"
        if reply["message_id"]:
            headers["In-Reply-To"] = reply["message_id"]
            headers["References"] = reply["message_id"]
    if channel is None or not to:
        raise StateError(
            f"cannot answer {customer_id} on {reply['channel']}: no such channel configured or "
            "no contact for them"
        )
    row = {
        "inbound_id": reply["id"],
        "incident_id": inc.id,
        "customer_id": customer_id,
        "kind": "response",
        "channel": channel,
        "to": to,
        "subject": subject,
        "text": rendered.text,
        "headers": headers,
        "created_by": by[:200],
    }
    return row, reply


def respond(
    app: App, incident: RefLike, customer_id: str, message: str, *, by: str = ""
) -> Response:
    """Queue the answer (the caller sends it: ``inbound.sender``) and record it."""
    row, reply = plan_response(app, incident, customer_id, message, by=by)
    now = app.clock()
    with app.store.write() as conn:
        send_id = inbound_db.queue_send(conn, {**row, "created_at": now})
        assert send_id is not None
        answered = [
            r["id"]
            for r in inbound_db.replies(conn, row["incident_id"], customer_id=customer_id)
            if r["responded_at"] is None and r["kind"] == "reply"
        ]
        inbound_db.set_times(conn, answered, responded_at=now)
        who = f" by {by}" if by else ""
        incidents_db.add_event(
            conn, row["incident_id"], now, "responded", f"{customer_id} on {row['channel']}{who}"
        )
    return Response(
        send_id=send_id,
        incident_ref=f"INC-{row['incident_id']}",
        customer_id=customer_id,
        channel=row["channel"],
        to=row["to"],
        subject=row["subject"],
        text=row["text"],
        answers=reply["id"],
    )
