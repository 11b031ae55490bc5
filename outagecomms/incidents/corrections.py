"""Undoing mistakes: ``void`` (a false alarm or a duplicate, taken back) and ``reopen`` (the
outage came back after ``resolve``).

``void``: open or resolved → ``voided``. Nothing more is promised (no holding update, no
follow-up, no reminder); every message of it not yet sent is superseded; those already told
anything (a delivery sent, or being sent, on a channel) get one short "please disregard" round
(kind ``void``) on those same channels, unless ``send=False``; its proposed credits are removed
and it proposes none later; it counts for no monthly-uptime or repeat rule
(``store.credits.resolved_incidents`` leaves it out). Refused for an incident already voided,
and for one with approved or exported credits (money customers were told about stays a person's
decision).

``reopen``: resolved → ``investigating``. The whole audience hears the outage is back (kind
``reopened``), the cadence resumes, a follow-up not yet sent waits for the next resolution, and
the time it was resolved (from its resolution to when it came back) is recorded as a gap
(``store.incidents.DOWNTIME_GAP`` events: no migration, the ``events`` table holds them): its
downtime is the sum of its spans, and the next ``resolve`` recomputes its credits over them.
Refused for an open or a voided incident.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from outagecomms.app import App
from outagecomms.errors import InputError, StateError
from outagecomms.incidents.lifecycle import RoundCreated, check_cadence, check_message
from outagecomms.incidents.preflight import check_secrets, preflight
from outagecomms.incidents.promises import promise_after
from outagecomms.logs import log_event
from outagecomms.models import Incident, IncidentRef, IncidentStatus, RefLike, Round, RoundKind
from outagecomms.store import credits as credits_db
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db

log = logging.getLogger(__name__)


def _voided_error(inc: Incident, what: str) -> StateError:
    return StateError(f"{inc.ref} is voided; {what}")


def void(
    app: App,
    incident: RefLike,
    reason: str,
    *,
    send: bool = True,
    verify_secrets: bool = True,
) -> RoundCreated:
    """Take back a false alarm or a duplicate (see the module's docstring). ``reason`` is told
    to the customers in the notice (e.g. "This was a duplicate of INC-4, where updates
    continue."). ``send=False`` tells nobody (the notice round is recorded only)."""
    incident_id = IncidentRef.parse(incident).id
    text = check_message(reason, field="reason")
    now = app.clock()
    with app.store.read() as conn:
        row = incidents_db.get_incident(conn, incident_id)
        reps = customers_db.locale_representatives(conn, incident_id)
        told = outbox_db.told_channels(conn, incident_id)
        frozen = credits_db.frozen_customers(conn, incident_id)
    inc = row.incident
    if inc.status == IncidentStatus.VOIDED:
        raise _voided_error(inc, "there is nothing more to take back")
    if frozen:
        raise StateError(
            f"{inc.ref} has credits already approved for {len(frozen)} customer(s); void removes "
            "only proposed credits, so it changes nothing while those stand"
        )
    rnd = Round(
        id=0, incident_id=incident_id, seq=0, kind=RoundKind.VOID, message=text,
        status=IncidentStatus.VOIDED, created_at=now, due_by=None, promised_next_by=None,
    )  # fmt: skip
    channels = sorted(told)
    if send and channels:
        preflight(app, inc, rnd, reps, channels)
        if verify_secrets:
            check_secrets(app, channels)
    with app.store.write() as conn:
        fresh = incidents_db.get_incident(conn, incident_id)
        if fresh.version != row.version or not incidents_db.update_incident(
            conn, incident_id, fresh.version, status=IncidentStatus.VOIDED.value,
            next_update_due=None, follow_up_due=None, reminded_for=None,
        ):  # fmt: skip
            raise StateError(f"{inc.ref} changed while this command ran; try again")
        credits_db.replace_proposed(conn, incident_id, [])
        superseded = outbox_db.supersede_all_pending(conn, incident_id, "voided before it was sent")
        written = outbox_db.insert_round_with_deliveries(
            conn, incident_id=incident_id, kind=RoundKind.VOID, message=text,
            status=IncidentStatus.VOIDED, created_at=now, due_by=None, promised_next_by=None,
            queue=False,
        )  # fmt: skip
        queued = outbox_db.queue_to_told(conn, written) if send else 0
        note = "" if send else ", nothing sent"
        incidents_db.add_event(
            conn, incident_id, now, "voided",
            f"round {written.seq}: {text} ({queued} told to disregard, {superseded} unsent "
            f"messages cancelled{note})",
        )  # fmt: skip
        final = incidents_db.get_incident(conn, incident_id).incident
    log_event(log, "voided", f"{inc.ref} voided", incident=inc.ref, queued=queued)
    return RoundCreated(final, written, queued)


def told_channels(app: App, incident: RefLike) -> dict[str, int]:
    """channel -> how many recipients of the incident were told anything on it: whom ``void``
    would ask to disregard it (for a confirmation prompt)."""
    with app.store.read() as conn:
        return outbox_db.told_channels(conn, IncidentRef.parse(incident).id)


def incident_spans(app: App, incident: RefLike) -> list[tuple[datetime, datetime | None]]:
    """``downtime_spans`` of an incident in the store."""
    iid = IncidentRef.parse(incident).id
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, iid).incident
        gaps = incidents_db.incident_gaps(conn, [iid]).get(iid, ())
    return incidents_db.downtime_spans(inc, gaps)


def reopen(
    app: App,
    incident: RefLike,
    message: str,
    *,
    every: timedelta | None = None,
    back_at: datetime | None = None,
    send: bool = True,
    verify_secrets: bool = True,
    allow_short_cadence: bool = False,
) -> RoundCreated:
    """The outage came back after ``resolve``: the whole audience hears it is back (a round
    of kind ``reopened``, which promises the next update), the cadence resumes from now
    (``every``, else the incident's), the follow-up waits for the next resolution, and the
    time between the resolution and ``back_at`` (default now) is recorded as a gap in its
    downtime, so the next ``resolve`` computes downtime and credits over both spans. Only a
    resolved incident can be reopened. ``send=False`` records it without telling anyone (the
    incident is open again, with no promise)."""
    incident_id = IncidentRef.parse(incident).id
    text = check_message(message)
    now = app.clock()
    back = back_at or now
    with app.store.read() as conn:
        row = incidents_db.get_incident(conn, incident_id)
        reps = customers_db.locale_representatives(conn, incident_id)
        channels = sorted(incidents_db.audience_channels(conn, incident_id))
    inc = row.incident
    if inc.status == IncidentStatus.VOIDED:
        raise _voided_error(inc, "declare the outage as a new incident with {command:declare}")
    if inc.status != IncidentStatus.RESOLVED or inc.resolved_at is None:
        raise StateError(
            f"{inc.ref} is open ({inc.status.value}); post an update with "
            f"{{command:update {inc.ref} MESSAGE}}"
        )
    restored = inc.resolved_at
    if back < restored:
        raise InputError(
            f"is before {inc.ref} was resolved ({restored:%Y-%m-%d %H:%M} UTC)",
            field="back_at",
            value=back.isoformat(),
        )
    if back > now + timedelta(seconds=5):
        raise InputError("is in the future", field="back_at", value=back.isoformat())
    check_cadence(app, inc.severity, every, allow_short_cadence=allow_short_cadence)
    cadence = every or inc.update_every
    promised = promise_after(now, cadence) if send else None
    status = IncidentStatus.INVESTIGATING
    reopened = replace(inc, status=status, resolved_at=None, update_every=cadence)
    rnd = Round(
        id=0, incident_id=incident_id, seq=0, kind=RoundKind.REOPENED, message=text,
        status=status, created_at=now, due_by=None, promised_next_by=promised,
    )  # fmt: skip
    preflight(app, reopened, rnd, reps, channels)
    if send and verify_secrets:
        check_secrets(app, channels)
    with app.store.write() as conn:
        fresh = incidents_db.get_incident(conn, incident_id)
        if fresh.version != row.version or not incidents_db.update_incident(
            conn, incident_id, fresh.version, status=status.value, resolved_at=None,
            next_update_due=promised, update_every_s=cadence.total_seconds(),
            follow_up_due=None, reminded_for=None,
        ):  # fmt: skip
            raise StateError(f"{inc.ref} changed while this command ran; try again")
        incidents_db.add_gap(conn, incident_id, now, restored, back)
        # a resolution or follow-up still waiting to go out would now contradict this news
        superseded = (
            outbox_db.supersede_all_pending(conn, incident_id, "superseded: the outage is back")
            if send
            else 0
        )
        written = outbox_db.insert_round_with_deliveries(
            conn, incident_id=incident_id, kind=RoundKind.REOPENED, message=text,
            status=status, created_at=now, due_by=None, promised_next_by=promised, queue=send,
        )  # fmt: skip
        queued = outbox_db.count_round_deliveries(conn, incident_id, written.id) if send else 0
        note = "" if send else " (recorded, nothing sent)"
        cancelled = f"; {superseded} unsent messages cancelled" if superseded else ""
        incidents_db.add_event(
            conn, incident_id, now, "reopened",
            f"round {written.seq}: back since {back:%Y-%m-%d %H:%M:%S} UTC after it was resolved "
            f"at {restored:%Y-%m-%d %H:%M:%S} UTC; that gap is not downtime{cancelled}{note}",
        )  # fmt: skip
        final = incidents_db.get_incident(conn, incident_id).incident
    log_event(log, "reopened", f"{inc.ref} reopened", incident=inc.ref, queued=queued)
    return RoundCreated(final, written, queued)
