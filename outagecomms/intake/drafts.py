"""Drafts: incidents that monitoring alerts propose and the commander confirms.

``ingest`` takes a hook's payload (``outagecomms.intake.alerts`` parses and maps it) and creates or
refreshes drafts; ``declare --from-draft`` (``plan_from_draft`` + ``commit_from_draft``) turns a
draft into an incident through the same ``plan_declare`` / ``commit_declare`` path as
``declare``; a rule with ``auto_declare = true`` does that at once, queueing the
acknowledgement for the daemon (like ``declare --queue-only``).

The life of a draft: an alert **fires** → an *open* draft. The same alert again (Alertmanager
repeats a group's notification; a sender retries) refreshes that draft (``times_seen``,
``last_seen``) and never adds a second one, also after the draft was declared or dismissed,
until the alert **resolves**. A resolved alert is shown on its draft (``drafts list``) and
recorded as an event; if the draft was declared, on the incident too (the commander decides
when to resolve: customers read their words). An alert that fires again after resolving opens
a new draft, unless its incident is still open, which it then joins again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from outagecomms.app import App
from outagecomms.errors import DuplicateIncident, InputError, OutageCommsError, StateError
from outagecomms.incidents.lifecycle import (
    DeclarePlan,
    RoundCreated,
    check_message,
    commit_declare,
    plan_declare,
)
from outagecomms.intake.alerts import Ignored, Proposal, load_json, parse, propose
from outagecomms.models import AlertState, Draft, DraftStatus, IncidentRef, Selector
from outagecomms.store import drafts as store
from outagecomms.store import incidents as incidents_db
from outagecomms.values import iso

log = logging.getLogger("outagecomms.hooks")
AUTO_FAILED = "auto-declare failed"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one alert (group, rule) did: ``created``, ``refreshed``, ``resolved``, ``ignored``."""

    action: str
    draft: int | None = None
    rule: str = ""
    alert: str = ""  # firing | resolved
    incident: str | None = None  # set when the draft is (or just was) declared
    error: str | None = None  # e.g. why an auto-declare did not happen
    reason: str = ""  # why an alert was ignored
    declared: bool = False  # this request declared the incident (an auto-declaring rule)
    attached: bool = False  # an auto-declare found the outage open already: the draft joined it

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "draft": self.draft,
            "rule": self.rule or None,
            "alert": self.alert or None,
            "incident": self.incident,
            "error": self.error,
            **({"reason": self.reason} if self.reason else {}),
            **({"attached": True} if self.attached else {}),
        }


@dataclass(frozen=True, kw_only=True)
class IngestReport:
    source: str
    outcomes: list[Outcome] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        drafts = list(dict.fromkeys(o.draft for o in self.outcomes if o.draft is not None))
        declared = [o.incident for o in self.outcomes if o.declared and o.incident]
        return {
            "source": self.source,
            "drafts": drafts,
            "declared": declared,
            "ignored": sum(o.action == "ignored" for o in self.outcomes),
            "results": [o.to_json() for o in self.outcomes],
        }


# --- ingest -----------------------------------------------------------------------------------


def ingest(app: App, source: str, body: bytes) -> IngestReport:
    """Parse a hook's body and apply it. Raises ``InputError`` (nothing written) when the body
    is not JSON or not the documented shape."""
    groups = parse(source, load_json(body))
    now = app.clock()
    proposals, ignored = propose(groups, app.config.hooks.effective_rules, now)
    outcomes = [_ignored(x) for x in ignored]
    for p in proposals:
        outcome, declare_now = _apply(app, p, now)
        if declare_now and p.rule.auto_declare:
            outcome = _auto_declare(app, outcome)
        outcomes.append(outcome)
        log.info(
            "%s alert %s: draft %s %s%s%s",
            source, p.rule.name, outcome.draft, outcome.action,
            f", {outcome.incident}" if outcome.incident else "",
            f" ({outcome.error})" if outcome.error else "",
        )  # fmt: skip
    return IngestReport(source=source, outcomes=outcomes)


def _ignored(x: Ignored) -> Outcome:
    return Outcome(action="ignored", reason=f"{x.key}: {x.reason}")


def _facts(p: Proposal) -> dict[str, Any]:
    return {
        "title": p.title,
        "severity": p.severity,
        "components": list(p.components),
        "regions": list(p.regions),
        "labels": p.labels,
        "annotations": p.annotations,
        "url": p.url,
        "alert_state": p.state.value,
        "resolved_at": p.resolved_at,
        "update_every_s": p.rule.every.total_seconds() if p.rule.every else None,
        "commander": p.rule.commander,
        "alerts": p.alerts,
    }


def _incident_open(conn: Connection, incident_id: int | None) -> bool:
    if incident_id is None:
        return False
    return bool(incidents_db.get_incident(conn, incident_id).incident.is_open)


def _apply(app: App, p: Proposal, now: datetime) -> tuple[Outcome, bool]:
    """Create or refresh the draft for one proposal, in one transaction holding its key.
    Returns the outcome and whether an auto-declaring rule should declare the draft now: when
    this request created it, or when an earlier attempt failed (the directory may have
    changed since). Repeats leave it to the first, so concurrent repeats do not all plan."""
    key = p.dedup_key
    with app.store.write() as conn:
        store.lock_key(conn, key)
        latest = store.latest_by_key(conn, key)
        base = Outcome(action="refreshed", rule=p.rule.name, alert=p.state.value)
        if p.state == AlertState.RESOLVED:
            return _resolve(conn, p, latest, now, base), False
        if latest is not None and latest.status == DraftStatus.OPEN:
            store.refresh(conn, latest.id, now, facts=_facts(p))
            if latest.alert_state == AlertState.RESOLVED:
                incidents_db.add_event(
                    conn, None, now, "draft", f"draft {latest.id}: alert firing again"
                )
            return replace(base, draft=latest.id), latest.note.startswith(AUTO_FAILED)
        if latest is not None and (
            latest.alert_state == AlertState.FIRING or _incident_open(conn, latest.incident_id)
        ):
            # Still the same episode: the commander has seen it (declared or dismissed).
            store.refresh(
                conn,
                latest.id,
                now,
                facts={"alert_state": AlertState.FIRING.value, "resolved_at": None},
            )
            if latest.alert_state == AlertState.RESOLVED and latest.incident_id is not None:
                incidents_db.add_event(
                    conn, latest.incident_id, now, "alert",
                    f"the alert behind draft {latest.id} is firing again",
                )  # fmt: skip
            return replace(base, draft=latest.id, incident=latest.incident_ref), False
        draft_id, created = store.insert_or_refresh_open(
            conn,
            {
                **_facts(p),
                "source": p.source,
                "dedup_key": key,
                "group_key": p.group_key,
                "rule": p.rule.name,
                "status": DraftStatus.OPEN.value,
                "started_at": p.started_at,
                "first_seen": now,
                "last_seen": now,
                "times_seen": 1,
                "incident_id": None,
                "note": "",
            },
        )
        if created:
            incidents_db.add_event(
                conn, None, now, "draft",
                f"draft {draft_id} from {p.source} ({p.rule.name}): {p.title} [{p.severity}]",
            )  # fmt: skip
        return replace(base, action="created" if created else "refreshed", draft=draft_id), created


def _resolve(
    conn: Connection, p: Proposal, latest: Draft | None, now: datetime, base: Outcome
) -> Outcome:
    if latest is None:
        return replace(base, action="ignored", reason="resolved, and no draft was made for it")
    if latest.alert_state == AlertState.RESOLVED:
        store.refresh(conn, latest.id, now)
        return replace(base, draft=latest.id, incident=latest.incident_ref)
    store.refresh(
        conn,
        latest.id,
        now,
        facts={"alert_state": AlertState.RESOLVED.value, "resolved_at": p.resolved_at or now},
    )
    at = f"{(p.resolved_at or now):%Y-%m-%d %H:%M} UTC"
    if latest.incident_id is not None:
        incidents_db.add_event(
            conn, latest.incident_id, now, "alert_resolved",
            f"the alert behind draft {latest.id} resolved at {at}; once service is restored "
            f"for customers: outagecomms resolve {latest.incident_ref} MESSAGE",
        )  # fmt: skip
    else:
        incidents_db.add_event(
            conn, None, now, "draft", f"draft {latest.id}: alert resolved at {at}"
        )
    return replace(base, action="resolved", draft=latest.id, incident=latest.incident_ref)


def _auto_declare(app: App, outcome: Outcome) -> Outcome:
    """Declare the draft now; the acknowledgement is queued for the daemon. A failure (e.g.
    the labels name no known component) leaves the draft open with the reason as its note."""
    assert outcome.draft is not None
    try:
        plan, draft = plan_from_draft(app, outcome.draft, selector=Selector())
        created = commit_from_draft(app, plan, draft, send=True)
    except DuplicateIncident as dup:  # an open incident covers this outage already: join it
        return _attach(app, outcome, dup)
    except StateError:  # a concurrent request (or the commander) declared it first
        with app.store.read() as conn:
            d = store.get_draft(conn, outcome.draft)
        return replace(outcome, incident=d.incident_ref)
    except OutageCommsError as exc:
        reason = f"{AUTO_FAILED}: {exc}"
        with app.store.write() as conn:
            store.set_note(conn, outcome.draft, reason)
            incidents_db.add_event(
                conn, None, app.clock(), "error", f"draft {outcome.draft}: {reason}"
            )
        log.warning("draft %s: %s", outcome.draft, reason)
        return replace(outcome, error=reason)
    return replace(outcome, incident=created.incident.ref, declared=True)


def _attach(app: App, outcome: Outcome, dup: DuplicateIncident) -> Outcome:
    """An auto-declaring alert for an outage an open incident already covers: the draft joins
    that incident (as declared from it: later repeats and its resolution are recorded there)
    instead of acknowledging the same customers twice."""
    assert outcome.draft is not None
    iid = IncidentRef.parse(dup.incident).id
    now = app.clock()
    with app.store.write() as conn:
        d = store.get_draft(conn, outcome.draft)
        store.lock_key(conn, d.dedup_key)
        note = f"joined {dup.incident}: {dup}"
        if not store.change_status(
            conn, d.id, expect=DraftStatus.OPEN, to=DraftStatus.DECLARED, incident_id=iid,
            note=note,
        ):  # fmt: skip
            return replace(outcome, incident=store.get_draft(conn, d.id).incident_ref)
        incidents_db.add_event(
            conn, iid, now, "draft",
            f"draft {d.id} ({d.source} alert, rule {d.rule}: {d.title}) joined this incident "
            "instead of declaring another",
        )  # fmt: skip
    log.info("draft %s joined %s instead of declaring another incident", d.id, dup.incident)
    return replace(outcome, incident=dup.incident, attached=True)


# --- the commander's side ---------------------------------------------------------------------


def list_drafts(app: App, *, include_closed: bool = False) -> list[Draft]:
    with app.store.read() as conn:
        return store.list_drafts(conn, include_closed=include_closed)


def get_draft(app: App, draft_id: int) -> Draft:
    with app.store.read() as conn:
        return store.get_draft(conn, draft_id)


def _not_open(d: Draft) -> StateError:
    if d.status == DraftStatus.DECLARED:
        return StateError(f"draft {d.id} was already declared as {d.incident_ref}")
    return StateError(f"draft {d.id} was dismissed; {{command:drafts list --all}} shows it")


def dismiss(app: App, draft_id: int, note: str = "") -> Draft:
    """The commander decides an open draft is not an incident."""
    note = check_message(note, field="note", required=False)
    now = app.clock()
    with app.store.write() as conn:
        d = store.get_draft(conn, draft_id)
        store.lock_key(conn, d.dedup_key)
        if not store.change_status(
            conn, draft_id, expect=DraftStatus.OPEN, to=DraftStatus.DISMISSED, note=note or None
        ):
            raise _not_open(d)
        incidents_db.add_event(conn, None, now, "draft", f"draft {draft_id} dismissed")
        return store.get_draft(conn, draft_id)


def plan_from_draft(
    app: App,
    draft_id: int,
    *,
    selector: Selector,
    title: str | None = None,
    severity: str | None = None,
    every: timedelta | None = None,
    message: str = "",
    started_at: datetime | None = None,
    commander: str | None = None,
    allow_short_cadence: bool = False,
) -> tuple[DeclarePlan, Draft]:
    """``declare --from-draft``: the draft's title, severity, components and regions unless
    given; tiers, tags, customers and exclusions from ``selector``."""
    with app.store.read() as conn:
        d = store.get_draft(conn, draft_id)
    if d.status != DraftStatus.OPEN:
        raise _not_open(d)
    from_draft = not selector.components and not selector.regions
    sel = replace(
        selector,
        components=selector.components or d.components,
        regions=selector.regions or d.regions,
    )
    if not sel.has_filters and not sel.customers:
        raise InputError(
            f"draft {d.id} names no components or regions (its alert has no such labels); "
            "select the affected customers with {field:components}, {field:regions}, {field:tiers} "
            "or {field:customers}",
            field="from_draft",
        )
    now = app.clock()
    try:
        plan = plan_declare(
            app,
            title=title if title is not None else d.title,
            severity=severity if severity is not None else d.severity,
            selector=sel,
            every=every or d.update_every,
            # the rule's own cadence was checked against the floor when the config loaded
            allow_short_cadence=allow_short_cadence or every is None,
            message=message,
            started_at=started_at or min(d.started_at, now),
            commander=commander if commander is not None else d.commander,
        )
    except InputError as exc:
        if from_draft and exc.field in ("components", "regions", "selector"):
            raise InputError(
                f"{exc.text} (from draft {d.id}: components {', '.join(d.components) or '-'}, "
                f"regions {', '.join(d.regions) or '-'}; override with {{field:components}}/"
                "{field:regions})",
                field=exc.field,
                value=exc.value,
            ) from None
        raise
    return plan, d


def commit_from_draft(
    app: App,
    plan: DeclarePlan,
    draft: Draft,
    *,
    send: bool,
    verify_secrets: bool = False,
    new: bool = False,
    credits: bool = False,
) -> RoundCreated:
    """Declare, and mark the draft declared, in one transaction: a draft becomes at most one
    incident even when the commander and an auto-declare race. ``verify_secrets`` and ``new``
    (declare even if an open incident covers the outage): as for ``commit_declare`` (the
    commander's declare; an auto-declare queues whatever happens)."""
    now = app.clock()

    def mark(conn: Connection, incident_id: int) -> None:
        store.lock_key(conn, draft.dedup_key)
        if not store.change_status(
            conn, draft.id, expect=DraftStatus.OPEN, to=DraftStatus.DECLARED,
            incident_id=incident_id, note="",
        ):  # fmt: skip
            raise _not_open(store.get_draft(conn, draft.id))
        incidents_db.add_event(
            conn, incident_id, now, "draft",
            f"declared from draft {draft.id} ({draft.source} alert, rule {draft.rule})",
        )  # fmt: skip
        if draft.alert_state == AlertState.RESOLVED:
            incidents_db.add_event(conn, incident_id, now, "alert_resolved", "its alert had already resolved")  # fmt: skip

    return commit_declare(
        app,
        plan,
        send=send,
        on_commit=mark,
        verify_secrets=verify_secrets,
        new=new,
        credits=credits,
    )


def draft_dict(d: Draft) -> dict[str, Any]:
    """A draft for ``drafts list --json`` (the keys are part of the command-line contract)."""
    return {
        "id": d.id,
        "status": d.status.value,
        "alert": d.alert_state.value,
        "source": d.source,
        "rule": d.rule,
        "title": d.title,
        "severity": d.severity,
        "components": list(d.components),
        "regions": list(d.regions),
        "incident": d.incident_ref,
        "times_seen": d.times_seen,
        "alerts": d.alerts,
        "started_at": iso(d.started_at),
        "first_seen": iso(d.first_seen),
        "last_seen": iso(d.last_seen),
        "resolved_at": iso(d.resolved_at),
        "every_seconds": d.update_every.total_seconds() if d.update_every else None,
        "commander": d.commander or None,
        "group_key": d.group_key,
        "labels": d.labels,
        "annotations": d.annotations,
        "url": d.url or None,
        "note": d.note or None,
    }
