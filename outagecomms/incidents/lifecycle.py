"""The service layer: declare, update, resolve. Each writes its round and all of that round's
deliveries in one transaction (the outbox); sending is a separate step (``dispatch``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Required, TypedDict, Unpack

from sqlalchemy import Connection

from outagecomms.app import App
from outagecomms.config.model import SEVERITIES
from outagecomms.directory import audience as aud
from outagecomms.errors import InputError, StateError
from outagecomms.incidents.messages import translations_of, with_translations
from outagecomms.incidents.overlap import Overlap, duplicate_error, find_overlaps
from outagecomms.incidents.preflight import (
    check_secrets,
    preflight,
    preflight_after_resolution,
    template_channels,
)
from outagecomms.incidents.promises import promise_after
from outagecomms.invisible import find_invisible, invisible_message
from outagecomms.logs import log_event
from outagecomms.models import (
    Customer,
    Incident,
    IncidentRef,
    IncidentStatus,
    RefLike,
    Round,
    RoundKind,
    Selector,
)
from outagecomms.recovery.ledger import CreditChange
from outagecomms.rendering.templates import Rendered
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.terminal import COMMANDER_CONTROLS, LINE_CONTROLS
from outagecomms.values import format_duration

log = logging.getLogger(__name__)
_CTRL = LINE_CONTROLS  # C0 (CR/LF refused first, with their reason), DEL and C1


MAX_TITLE = 200


def closed_error(inc: Incident) -> StateError:
    """Why a round cannot be added to an incident that is over (resolved or voided)."""
    if inc.status == IncidentStatus.VOIDED:
        return StateError(
            f"{inc.ref} is voided (a false alarm or a duplicate); nothing is sent for it"
        )
    at = f" (at {inc.resolved_at:%Y-%m-%d %H:%M} UTC)" if inc.resolved_at else ""
    return StateError(
        f"{inc.ref} is resolved{at}; nothing more is promised "
        f"(if the outage is back: {{command:reopen {inc.ref} MESSAGE}})"
    )


def check_title(title: str) -> str:
    if "\r" in title or "\n" in title:
        raise InputError(
            "must be one line: it becomes an email subject, where CR/LF could inject headers",
            field="title",
            value=title,
        )
    if _CTRL.search(title):
        raise InputError("must not contain control characters", field="title", value=title)
    hidden = find_invisible(title)
    if hidden:
        raise InputError(invisible_message(hidden), field="title", value=title)
    title = title.strip()
    if not title:
        raise InputError("an incident needs a title", field="title")
    if len(title) > MAX_TITLE:
        raise InputError(f"is longer than {MAX_TITLE} characters", field="title")
    return title


def select_customers(app: App, selector: Selector) -> list[Customer]:
    """The directory's customers ``selector`` picks (a declare's, a maintenance window's).
    Raises ``InputError``: an empty directory, no selector, an unknown value (with the
    closest ones), or a selection that matches nobody."""
    with app.store.read() as conn:
        directory = customers_db.all_customers(conn)
    if not directory:
        raise InputError(
            "the customer directory is empty; run {command:customers import FILE} first"
        )
    aud.validate_selector(selector, directory)
    if not selector.has_filters and not selector.customers:
        raise InputError(
            "select the affected customers with {field:components}, {field:regions}, "
            "{field:tiers}, {field:tags} or {field:customers}",
            field="selector",
        )
    chosen = aud.select(selector, directory)
    if not chosen:
        raise InputError(
            "the selection matches no customers; check the selectors with {command:customers list}",
            field="selector",
        )
    return chosen


def check_message(message: str, field: str = "message", *, required: bool = True) -> str:
    """The commander's text, checked and normalised; a :class:`~outagecomms.incidents.messages.
    Message` keeps its translations (each checked the same way, ``message_<lang>``)."""
    translations = translations_of(message)
    text = _check_text(str(message), field, required=required)
    if not translations:
        return text
    return with_translations(
        text,
        {
            lang: _check_text(t, f"{field}_{lang}", required=False)
            for lang, t in translations.items()
        },
    )


def _check_text(message: str, field: str, *, required: bool) -> str:
    if "\x00" in message:
        raise InputError("must not contain NUL characters", field=field)
    bad = COMMANDER_CONTROLS.search(message)
    if bad:
        raise InputError(
            f"must not contain control characters (found {bad.group()!r}): "
            "customers' mail and the operators' terminals would obey them",
            field=field,
        )
    message = message.replace("\r\n", "\n").replace("\r", "\n").strip()
    if required and not message:
        raise InputError("a message is required: tell customers what is going on", field=field)
    return message


def check_commander(commander: str) -> str:
    """The commander's name or address: one line, no control characters."""
    if "\r" in commander or "\n" in commander:
        raise InputError("must be one line", field="commander", value=commander)
    bad = LINE_CONTROLS.search(commander)
    if bad:
        raise InputError(
            f"must not contain control characters (found {bad.group()!r})", field="commander"
        )
    return commander


def check_severity(severity: str) -> str:
    s = severity.strip().lower()
    if s not in SEVERITIES:
        raise InputError(
            f"unknown severity; use one of {', '.join(SEVERITIES)}",
            field="severity",
            value=severity,
        )
    return s


def check_status(status: str | None) -> IncidentStatus | None:
    if status is None:
        return None
    try:
        st = IncidentStatus(status.strip().lower())
    except ValueError:
        raise InputError(
            "unknown status; use investigating, identified or monitoring",
            field="status",
            value=status,
        ) from None
    if st == IncidentStatus.RESOLVED:
        raise InputError(
            "use {command:resolve} to resolve an incident", field="status", value=status
        )
    if st == IncidentStatus.VOIDED:
        raise InputError(
            "use {command:void} to take back a false alarm", field="status", value=status
        )
    return st


def check_cadence(
    app: App, severity: str, every: timedelta | None, *, allow_short_cadence: bool = False
) -> None:
    """A cadence the commander set (``every``) is not below the severity's policy floor
    (``min_update_every``) unless ``allow_short_cadence``: at 2 minutes customers get a
    message every 30-60 s."""
    floor = app.config.policy(severity).min_update_every
    if every is None or allow_short_cadence or every >= floor:
        return
    raise InputError(
        f"is below the floor for {severity} incidents, {format_duration(floor)} (policy "
        "min_update_every); pass {field:allow_short_cadence} to update customers that often",
        field="every",
        value=format_duration(every),
    )


@dataclass(frozen=True)
class DeclarePlan:
    """Everything ``declare`` will do, computed without changing anything (``--dry-run``)."""

    incident: Incident
    round: Round
    audience: aud.Audience
    sample_customer: Customer | None
    sample_channel: str | None
    sample: Rendered | None
    #: open incidents this one would repeat (``overlap.find_overlaps``), most covering first
    overlaps: tuple[Overlap, ...] = ()
    #: what the commander should know before sending, one sentence each (e.g. the response
    #: SLA is already lost: every customer earns its credit)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoundCreated:
    """What ``declare``, ``post_update`` and ``resolve`` wrote: the incident as it now stands,
    the new round, and how many deliveries were queued for it (0 when recorded only)."""

    incident: Incident
    round: Round
    queued: int


class DeclareFacts(TypedDict, total=False):
    """``plan_declare``'s keywords, for the functions that pass them on (``declare``)."""

    title: Required[str]
    severity: Required[str]
    selector: Required[Selector]
    every: timedelta | None
    message: str
    started_at: datetime | None
    commander: str
    allow_short_cadence: bool


def plan_declare(
    app: App,
    *,
    title: str,
    severity: str,
    selector: Selector,
    every: timedelta | None = None,
    message: str = "",
    started_at: datetime | None = None,
    commander: str = "",
    allow_short_cadence: bool = False,
) -> DeclarePlan:
    """Everything ``declare`` would do, checked and rendered, writing nothing. ``every``
    below the policy's ``min_update_every`` needs ``allow_short_cadence``."""
    now = app.clock()
    title = check_title(title)
    severity = check_severity(severity)
    check_cadence(app, severity, every, allow_short_cadence=allow_short_cadence)
    message = check_message(message, required=False)
    check_commander(commander)
    started = started_at or now
    if started > now + timedelta(seconds=5):
        raise InputError(
            "is in the future; customers cannot have been hurt yet",
            field="started_at",
            value=started.isoformat(),
        )
    policy = app.config.policy(severity)
    cadence = every or policy.update_every
    chosen = select_customers(app, selector)
    audience = aud.plan(chosen, app.config, policy)
    if not audience.pairs:
        raise InputError(
            "none of the selected customers can be reached on a configured channel: "
            + ", ".join(f"{k} ({v})" for k, v in audience.skipped.items()),
            field="selector",
        )
    with app.store.read() as conn:
        overlaps = find_overlaps(conn, selector, [c.id for c in audience.customers])
    components = selector.components or tuple(sorted({x for c in chosen for x in c.components}))
    regions = selector.regions or tuple(sorted({x for c in chosen for x in c.regions}))
    promised = promise_after(now, cadence)
    incident = Incident(
        id=0,
        title=title,
        severity=severity,
        status=IncidentStatus.INVESTIGATING,
        components=tuple(components),
        regions=tuple(regions),
        selector=selector,
        started_at=started,
        declared_at=now,
        resolved_at=None,
        commander=commander,
        update_every=cadence,
        next_update_due=promised,
        ack_due=started + policy.ack_within,
        audience_size=audience.size,
    )
    rnd = Round(
        id=0,
        incident_id=0,
        seq=1,
        kind=RoundKind.ACKNOWLEDGEMENT,
        message=message,
        status=IncidentStatus.INVESTIGATING,
        created_at=now,
        due_by=incident.ack_due,
        promised_next_by=promised,
    )
    reached = {cid for cid, _ in audience.pairs}
    reachable = [c for c in chosen if c.id in reached]
    rendered = preflight(app, incident, rnd, reachable, sorted({ch for _, ch in audience.pairs}))
    sample_c = reachable[0] if reachable else None
    sample_ch = next((ch for cid, ch in audience.pairs if sample_c and cid == sample_c.id), None)
    sample = None
    if sample_c and sample_ch:
        tc = template_channels(app, [sample_ch])[sample_ch]
        sample = rendered.get((sample_c.locale, sample_c.timezone, tc))
    from outagecomms.recovery.sla_risk import response_sla_warning

    late = response_sla_warning(app.config, incident, reachable, len(audience.pairs), now)
    from outagecomms.maintenance.conflicts import under_maintenance

    warnings = ((late,) if late else ()) + tuple(
        under_maintenance(app, incident.components, incident.regions, now)
    )
    return DeclarePlan(
        incident, rnd, audience, sample_c, sample_ch, sample, tuple(overlaps), warnings
    )


def refuse_duplicate(plan: DeclarePlan) -> None:
    """Raise ``DuplicateIncident`` when the plan repeats an open incident (see
    ``incidents.overlap``); the front end calls it before asking to send."""
    if plan.overlaps:
        raise duplicate_error(plan.overlaps)


def commit_declare(
    app: App,
    plan: DeclarePlan,
    *,
    send: bool = True,
    on_commit: Callable[[Connection, int], None] | None = None,
    verify_secrets: bool = True,
    new: bool = False,
    credits: bool = False,
) -> RoundCreated:
    """Write the incident, its audience, the acknowledgement round and every delivery at once.

    ``send=False`` records the incident without messaging anyone (e.g. a past incident, for
    history): no delivery is queued and, since nobody was told, nothing is promised; its
    resolution proposes no credits and no goodwill unless ``credits`` (it still counts for
    monthly uptime and repeat rules).
    ``on_commit(conn, incident_id)`` runs inside the same transaction (e.g. marking the draft
    the incident came from); if it raises, nothing is written. ``verify_secrets``: first check
    that every secret the audience's channels send with is set (``check_secrets``); pass False
    when another process (a daemon, with its own environment) will send.

    A declare that sends is refused (``DuplicateIncident``, nothing written) when an open
    incident already covers the outage (``incidents.overlap``), checked again in this
    transaction, unless ``new``: the commander says it is another outage.
    """
    inc = plan.incident
    promise = inc.next_update_due if send else None
    if send and verify_secrets:
        check_secrets(app, sorted({ch for _, ch in plan.audience.pairs}))
    with app.store.write() as conn:
        if send and not new:
            incidents_db.lock_declares(conn)
            ids = [c.id for c in plan.audience.customers]
            overlaps = find_overlaps(conn, plan.incident.selector, ids)
            if overlaps:
                raise duplicate_error(overlaps)
        incident_id = incidents_db.insert_incident(
            conn,
            replace(inc, next_update_due=promise, audience_size=plan.audience.size),
            skipped=plan.audience.skipped,
        )
        incidents_db.insert_audience(conn, incident_id, plan.audience.pairs)
        rnd = outbox_db.insert_round_with_deliveries(
            conn,
            incident_id=incident_id,
            kind=RoundKind.ACKNOWLEDGEMENT,
            message=plan.round.message,
            status=IncidentStatus.INVESTIGATING,
            created_at=plan.round.created_at,
            due_by=plan.round.due_by,
            promised_next_by=promise,
            queue=send,
        )
        note = "" if send else " (recorded, nothing sent)"
        incidents_db.add_event(
            conn,
            incident_id,
            plan.round.created_at,
            "declared",
            f"audience {plan.audience.size}{note}",
        )
        if not send:
            _record_credit_choice(conn, incident_id, plan.round.created_at, wanted=credits)
        if on_commit is not None:
            on_commit(conn, incident_id)
        row = incidents_db.get_incident(conn, incident_id)
        queued = outbox_db.count_round_deliveries(conn, incident_id, rnd.id) if send else 0
    ref = row.incident.ref
    log_event(log, "declared", f"{ref} declared", incident=ref, queued=queued)
    return RoundCreated(row.incident, rnd, queued)


def _record_credit_choice(
    conn: Connection, incident_id: int, at: datetime, *, wanted: bool
) -> None:
    """Whether the incident's resolution proposes credits: recorded history does not unless
    the commander asked (an event, so ``show`` says why there are none)."""
    if wanted:
        incidents_db.add_event(
            conn, incident_id, at, incidents_db.CREDITS_WANTED, "credits asked for (--credits)"
        )
    else:
        incidents_db.add_event(
            conn, incident_id, at, incidents_db.CREDITS_WAIVED,
            "recorded as history: no credits or goodwill proposed (--credits proposes them)",
        )  # fmt: skip


def declare(
    app: App, *, send: bool = True, new: bool = False, **facts: Unpack[DeclareFacts]
) -> RoundCreated:
    """``plan_declare`` then ``commit_declare``: the incident, its acknowledgement round and
    every delivery, queued (sending is ``dispatch``'s job). ``new``: declare even when an
    open incident covers the same outage."""
    return commit_declare(app, plan_declare(app, **facts), send=send, new=new)


@dataclass(frozen=True)
class RoundPlan:
    """A round about to be written for an open incident, pre-flighted: the incident as the
    round sees it, the provisional round, the promise it makes, one customer per locale and
    their templates rendered (``rendered``), and the audience's channels with their counts."""

    incident: Incident
    round: Round
    cadence: timedelta
    promised: datetime | None
    representatives: list[Customer]
    channels: dict[str, int]
    rendered: dict[tuple[str, str, str], Rendered]

    def sample(self, app: App) -> tuple[Customer | None, str | None, Rendered | None]:
        """One recipient's message: the first customer's email when a channel has a subject,
        else the text of another channel (what a confirmation prompt shows)."""
        names = template_channels(app, sorted(self.channels))
        best: tuple[Customer | None, str | None, Rendered | None] = (None, None, None)
        for c in self.representatives:
            for name, tc in names.items():
                r = self.rendered.get((c.locale, c.timezone, tc))
                if r is None or aud.split_channel(name)[1]:
                    continue  # not sent in this round, or an account manager's copy
                if r.subject:
                    return c, name, r
                if best[2] is None:
                    best = (c, name, r)
        return best


def _plan_round(
    app: App,
    incident_id: int,
    *,
    kind: RoundKind,
    message: str,
    status: IncidentStatus | None,
    every: timedelta | None,
    resolved_at: datetime | None = None,
    send: bool = True,
    allow_short_cadence: bool = True,
) -> RoundPlan:
    """Read the incident and pre-flight the round (raises before anything is written).
    A new cadence (``every``) below the policy's floor needs ``allow_short_cadence``."""
    now = app.clock()
    with app.store.read() as conn:
        row = incidents_db.get_incident(conn, incident_id)
        reps = customers_db.locale_representatives(conn, incident_id)
        channel_counts = incidents_db.audience_channels(conn, incident_id)
    channel_names = sorted(channel_counts)
    inc = row.incident
    if not inc.is_open:
        raise closed_error(inc)
    check_cadence(app, inc.severity, every, allow_short_cadence=allow_short_cadence)
    cadence = every or inc.update_every
    new_status = IncidentStatus.RESOLVED if kind == RoundKind.RESOLUTION else (status or inc.status)
    if kind == RoundKind.RESOLUTION:
        promised: datetime | None = None
    elif not send:
        promised = inc.next_update_due  # nobody was told anything new: the promise stands
    elif kind == RoundKind.HOLDING:
        assert inc.next_update_due is not None
        promised = promise_after(max(inc.next_update_due, now), cadence)
    else:
        promised = promise_after(now, cadence)
    if resolved_at is not None:
        inc = replace(inc, resolved_at=resolved_at, status=IncidentStatus.RESOLVED)
    provisional = Round(
        id=0,
        incident_id=incident_id,
        seq=0,
        kind=kind,
        message=message,
        status=new_status,
        created_at=now,
        due_by=inc.next_update_due,
        promised_next_by=promised,
    )
    rendered = preflight(app, inc, provisional, reps, channel_names)
    return RoundPlan(inc, provisional, cadence, promised, reps, channel_counts, rendered)


def _add_round(
    app: App,
    incident_id: int,
    *,
    kind: RoundKind,
    message: str,
    status: IncidentStatus | None,
    every: timedelta | None,
    resolved_at: datetime | None = None,
    expect_due: datetime | None = None,
    send: bool = True,
    also: Callable[[Connection], None] | None = None,
    verify_secrets: bool = False,
    allow_short_cadence: bool = True,
) -> RoundCreated | None:
    """Pre-flight, then write the round, its deliveries and the new promise in one transaction.

    ``expect_due`` (holding rounds) makes the write conditional on the promise still being the
    one the scheduler saw, so two schedulers can never both create it. Returns None then.
    ``also(conn)`` writes more in that same transaction (the resolution's credits), after the
    incident row is updated and before the round: if it raises, nothing is written.
    """
    plan = _plan_round(
        app, incident_id, kind=kind, message=message, status=status, every=every,
        resolved_at=resolved_at, send=send, allow_short_cadence=allow_short_cadence,
    )  # fmt: skip
    now = plan.round.created_at
    inc, cadence, promised = plan.incident, plan.cadence, plan.promised
    new_status = plan.round.status
    if send and verify_secrets:
        check_secrets(app, sorted(plan.channels))
    with app.store.write() as conn:
        fresh = incidents_db.get_incident(conn, incident_id)
        if not fresh.incident.is_open:
            if expect_due is not None:  # a holding round: resolved or voided, nothing is owed
                return None
            raise StateError(
                f"{inc.ref} was {fresh.incident.status.value} meanwhile; nothing more is promised"
            )
        if expect_due is not None and fresh.incident.next_update_due != expect_due:
            return None
        values: dict[str, object] = {
            "status": new_status.value,
            "next_update_due": promised,
            "update_every_s": cadence.total_seconds(),
            "reminded_for": None,
        }
        if kind == RoundKind.RESOLUTION:
            values["resolved_at"] = resolved_at or now
            asked = any(  # reopened after its follow-up went out: customers are asked once
                r.kind == RoundKind.FOLLOW_UP for r in incidents_db.list_rounds(conn, incident_id)
            )
            if send and not asked:  # a recorded (past) incident gets no follow-up
                after = app.config.policy(inc.severity).follow_up_after
                values["follow_up_due"] = max(resolved_at or now, now) + after
        if not incidents_db.update_incident(conn, incident_id, fresh.version, **values):
            if expect_due is not None:
                return None
            raise StateError(f"{inc.ref} changed while this command ran; try again")
        if also is not None:
            also(conn)
        rnd = outbox_db.insert_round_with_deliveries(
            conn,
            incident_id=incident_id,
            kind=kind,
            message=message,
            status=new_status,
            created_at=now,
            due_by=fresh.incident.next_update_due,
            promised_next_by=promised if send else None,
            queue=send,
        )
        note = "" if send else " (recorded, nothing sent)"
        incidents_db.add_event(conn, incident_id, now, kind.value, f"round {rnd.seq}{note}")
        # the audience is fixed at declare; flagged contacts are skipped
        queued = outbox_db.count_round_deliveries(conn, incident_id, rnd.id) if send else 0
        final = incidents_db.get_incident(conn, incident_id).incident
    return RoundCreated(final, rnd, queued)


def post_update(
    app: App,
    incident: RefLike,
    message: str,
    *,
    status: str | None = None,
    every: timedelta | None = None,
    send: bool = True,
    verify_secrets: bool = True,
    allow_short_cadence: bool = False,
) -> RoundCreated:
    """The commander's update: goes to the whole audience at once and restarts the cadence.
    ``send=False`` records it without messaging anyone; the promise in force stands.
    ``verify_secrets``: as for ``commit_declare``. ``every`` below the policy's
    ``min_update_every`` needs ``allow_short_cadence``."""
    incident_id = IncidentRef.parse(incident).id
    msg = check_message(message)
    st = check_status(status)
    created = _add_round(
        app, incident_id, kind=RoundKind.UPDATE, message=msg, status=st, every=every, send=send,
        verify_secrets=verify_secrets, allow_short_cadence=allow_short_cadence,
    )  # fmt: skip
    assert created is not None
    return created


def preview_update(
    app: App,
    incident: RefLike,
    message: str,
    *,
    status: str | None = None,
    every: timedelta | None = None,
    allow_short_cadence: bool = False,
) -> RoundPlan:
    """What ``post_update`` would send, checked and rendered, writing nothing (a prompt)."""
    return _plan_round(
        app, IncidentRef.parse(incident).id, kind=RoundKind.UPDATE, message=check_message(message),
        status=check_status(status), every=every, allow_short_cadence=allow_short_cadence,
    )  # fmt: skip


def preview_resolve(
    app: App, incident: RefLike, message: str, *, resolved_at: datetime | None = None
) -> RoundPlan:
    """What ``resolve`` would send, checked and rendered, writing nothing (a prompt). The
    sample shows no credit: each customer's is computed as the incident is resolved. What the
    incident still needs once resolved (the follow-up, a credit notice) is pre-flighted too, so
    a broken template is said before the question, not after the answer."""
    incident_id = IncidentRef.parse(incident).id
    msg = check_message(message)
    at = _check_resolved_at(app, incident_id, resolved_at)
    plan = _plan_round(
        app, incident_id, kind=RoundKind.RESOLUTION, message=msg, status=None, every=None,
        resolved_at=at,
    )  # fmt: skip
    _preflight_after(app, incident_id, at)
    return plan


def _preflight_after(app: App, incident_id: int, resolved_at: datetime) -> None:
    """Pre-flight what an open incident still needs once resolved: the follow-up, a credit
    notice (``preflight_after_resolution``)."""
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, incident_id).incident
    if inc.is_open:
        preflight_after_resolution(app, inc, resolved_at)


def _check_resolved_at(app: App, incident_id: int, resolved_at: datetime | None) -> datetime:
    """When service was restored (default now): not before the start, not in the future."""
    now = app.clock()
    resolved_at = resolved_at or now
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, incident_id).incident
        gaps = incidents_db.incident_gaps(conn, [incident_id]).get(incident_id, ())
    if resolved_at < inc.started_at:
        raise InputError(
            "is before the incident started", field="resolved_at", value=resolved_at.isoformat()
        )
    if gaps and resolved_at < gaps[-1][1]:
        raise InputError(
            f"is before the outage came back ({gaps[-1][1]:%Y-%m-%d %H:%M:%S} UTC, {{command:reopen}})",
            field="resolved_at",
            value=resolved_at.isoformat(),
        )
    if resolved_at > now + timedelta(seconds=5):
        raise InputError("is in the future", field="resolved_at", value=resolved_at.isoformat())
    return resolved_at


def resolve(
    app: App,
    incident: RefLike,
    message: str,
    *,
    resolved_at: datetime | None = None,
    send: bool = True,
    verify_secrets: bool = True,
    credits: bool = False,
) -> RoundCreated:
    """Send the resolution notice and stop promising updates. Each affected customer's credit
    is proposed in the same transaction as the resolution round (the notice tells them theirs),
    after the templates are pre-flighted: a broken template leaves the incident open and
    credits nothing. ``verify_secrets``: as for ``commit_declare``. Recorded history
    (``send=False``, or an incident declared with ``send=False``) proposes no credits and no
    goodwill unless ``credits``; it still counts for monthly uptime and repeat rules."""
    incident_id = IncidentRef.parse(incident).id
    msg = check_message(message)
    resolved_at = _check_resolved_at(app, incident_id, resolved_at)
    if send:
        _preflight_after(app, incident_id, resolved_at)
    from outagecomms.recovery import ledger

    def propose_credits(conn: Connection) -> None:
        if credits:
            _record_credit_choice(conn, incident_id, app.clock(), wanted=True)
        elif not send and incidents_db.credit_choice(conn, incident_id) is None:
            _record_credit_choice(conn, incident_id, app.clock(), wanted=False)
        if incidents_db.credits_waived(conn, incident_id):
            return
        # approved at or under auto_approve_up_to; what the notice states is recorded as told
        ledger.propose(
            app, incident_id, resolved_at=resolved_at, within=conn, auto_approve=True,
            announce=send,
        )  # fmt: skip

    created = _add_round(
        app,
        incident_id,
        kind=RoundKind.RESOLUTION,
        message=msg,
        status=None,
        every=None,
        resolved_at=resolved_at,
        send=send,
        also=propose_credits,
        verify_secrets=verify_secrets,
    )
    assert created is not None
    return created


def create_follow_up_round(app: App, incident_id: int, expect_due: datetime) -> RoundCreated | None:
    """The follow-up (how did we do?) for a resolved incident, once; None if another
    scheduler already sent it."""
    now = app.clock()
    with app.store.read() as conn:
        row = incidents_db.get_incident(conn, incident_id)
        reps = customers_db.locale_representatives(conn, incident_id)
        channel_counts = incidents_db.audience_channels(conn, incident_id, customers_only=True)
    inc = row.incident
    provisional = Round(
        id=0, incident_id=incident_id, seq=0, kind=RoundKind.FOLLOW_UP, message="",
        status=IncidentStatus.RESOLVED, created_at=now, due_by=None, promised_next_by=None,
    )  # fmt: skip
    preflight(app, inc, provisional, reps, sorted(channel_counts))
    with app.store.write() as conn:
        fresh = incidents_db.get_incident(conn, incident_id)
        if fresh.incident.follow_up_due != expect_due:
            return None
        if not incidents_db.update_incident(conn, incident_id, fresh.version, follow_up_due=None):
            return None
        rnd = outbox_db.insert_round_with_deliveries(
            conn, incident_id=incident_id, kind=RoundKind.FOLLOW_UP, message="",
            status=IncidentStatus.RESOLVED, created_at=now, due_by=None, promised_next_by=None,
        )  # fmt: skip
        incidents_db.add_event(conn, incident_id, now, "follow_up", f"round {rnd.seq}")
        final = incidents_db.get_incident(conn, incident_id).incident
        queued = outbox_db.count_round_deliveries(conn, incident_id, rnd.id)
    return RoundCreated(final, rnd, queued)


def create_holding_round(app: App, incident_id: int, expect_due: datetime) -> RoundCreated | None:
    """The scheduler's holding update for the promise ``expect_due``; None if someone else
    (a commander update, another scheduler) already kept that promise."""
    return _add_round(
        app,
        incident_id,
        kind=RoundKind.HOLDING,
        message="",
        status=None,
        every=None,
        expect_due=expect_due,
    )


@dataclass(frozen=True)
class Edited:
    """What ``edit`` did: the incident as it now stands, the changes to approved or announced
    credits it made (confirmed), and the corrections it queued (``send_corrections``)."""

    incident: Incident
    credit_changes: tuple[CreditChange, ...] = ()
    correction_round: Round | None = None
    corrections_queued: int = 0


def edit_incident(
    app: App,
    incident: RefLike,
    *,
    title: str | None = None,
    severity: str | None = None,
    started_at: datetime | None = None,
    resolved_at: datetime | None = None,
) -> Incident:
    """``edit`` without confirming: refuses (``CreditChangesNeedConfirmation``) a change to an
    approved or announced credit."""
    return edit(
        app, incident, title=title, severity=severity, started_at=started_at,
        resolved_at=resolved_at,
    ).incident  # fmt: skip


def edit(
    app: App,
    incident: RefLike,
    *,
    title: str | None = None,
    severity: str | None = None,
    started_at: datetime | None = None,
    resolved_at: datetime | None = None,
    confirm: bool = False,
    send_corrections: bool = False,
    actor: str = "",
) -> Edited:
    """Correct an incident's facts (e.g. when customers were really first hurt). Proposed
    credits are recomputed in the same transaction. A credit that was approved or that a
    customer was told (amount or offer) changes only with ``confirm``; otherwise
    ``CreditChangesNeedConfirmation`` lists the before/after per customer and nothing is
    written. ``send_corrections`` (with ``confirm``) queues a correction to each customer whose
    announced amount changed; otherwise nothing is sent."""
    from outagecomms.recovery import ledger

    incident_id = IncidentRef.parse(incident).id
    values: dict[str, object] = {}
    with app.store.read() as conn:
        row = incidents_db.get_incident(conn, incident_id)
    inc = row.incident
    if title is not None:
        values["title"] = check_title(title)
    if severity is not None:
        values["severity"] = check_severity(severity)
    start = started_at or inc.started_at
    end = resolved_at or inc.resolved_at
    if resolved_at is not None and inc.is_open:
        raise StateError(f"{inc.ref} is open; resolve it with {{command:resolve}}")
    if end is not None and end < start:
        raise InputError("the incident would end before it started", field="started_at/resolved_at")
    if started_at is not None:
        policy = app.config.policy(str(values.get("severity", inc.severity)))
        values["started_at"] = started_at
        values["ack_due"] = started_at + policy.ack_within
    if resolved_at is not None:
        values["resolved_at"] = resolved_at
    if not values:
        raise InputError(
            "nothing to change: give {field:title}, {field:severity}, {field:started_at} or "
            "{field:resolved_at}"
        )
    if send_corrections and inc.status == IncidentStatus.RESOLVED:
        from outagecomms.incidents.preflight import check_secrets

        with app.store.read() as conn:
            reps = customers_db.locale_representatives(conn, incident_id)
            channels = sorted(
                incidents_db.audience_channels(conn, incident_id, customers_only=True)
            )
        preflight(app, inc, ledger._credit_round(inc, app.clock()), reps, channels)
        check_secrets(app, channels)
    proposal = None
    with app.store.write() as conn:
        if not incidents_db.update_incident(conn, incident_id, row.version, **values):
            raise StateError(f"{inc.ref} changed while this command ran; try again")
        changed = ", ".join(f"{k}={v}" for k, v in values.items() if k != "ack_due")
        incidents_db.add_event(conn, incident_id, app.clock(), "edited", changed)
        # a voided incident is credited nothing; recorded history stays without credits
        if inc.status == IncidentStatus.RESOLVED and not incidents_db.credits_waived(
            conn, incident_id
        ):
            proposal = ledger.propose(
                app, incident_id, within=conn, on_change=ledger.APPLY if confirm else ledger.CONFIRM,
                actor=actor, send_corrections=send_corrections and confirm,
            )  # fmt: skip
        final = incidents_db.get_incident(conn, incident_id).incident
    if proposal is None:
        return Edited(final)
    return Edited(final, proposal.changes, proposal.correction_round, proposal.corrections_queued)
