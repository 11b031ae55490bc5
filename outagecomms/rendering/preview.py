"""``preview``: render a template kind for a sample or a real incident and customer, without sending."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from outagecomms.app import App
from outagecomms.errors import InputError, NotFound
from outagecomms.incidents.preflight import SAMPLE_CREDIT_NOTICE
from outagecomms.incidents.promises import promise_after
from outagecomms.models import (
    Incident,
    IncidentStatus,
    Round,
    RoundKind,
    Selector,
    incident_id_from_ref,
)
from outagecomms.rendering.templates import Rendered
from outagecomms.store import customers as customers_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import threads as threads_db


def _sample_incident(app: App) -> tuple[Incident, dict[RoundKind, Round]]:
    now = app.clock()
    every = app.config.policy("sev2").update_every
    inc = Incident(
        id=0,
        title="Elevated error rates on the API",
        severity="sev2",
        status=IncidentStatus.IDENTIFIED,
        components=("api",),
        regions=("eu-west",),
        selector=Selector(components=("api",)),
        started_at=now - timedelta(minutes=20),
        declared_at=now - timedelta(minutes=18),
        resolved_at=now,
        commander="",
        update_every=every,
        next_update_due=promise_after(now, every),
        ack_due=now,
        audience_size=1,
    )
    rounds = {
        kind: Round(
            id=0,
            incident_id=0,
            seq=i + 1,
            kind=kind,
            message="A database failover is in progress.",
            status=IncidentStatus.RESOLVED
            if kind in (RoundKind.RESOLUTION, RoundKind.CREDIT)
            else IncidentStatus.IDENTIFIED,
            created_at=now,
            due_by=now,
            promised_next_by=None
            if kind in (RoundKind.RESOLUTION, RoundKind.FOLLOW_UP, RoundKind.CREDIT)
            else promise_after(now, every),
        )
        for i, kind in enumerate(
            (
                RoundKind.ACKNOWLEDGEMENT,
                RoundKind.UPDATE,
                RoundKind.HOLDING,
                RoundKind.RESOLUTION,
                RoundKind.FOLLOW_UP,
                RoundKind.CREDIT,
            )
        )
    }
    return inc, rounds


def preview(
    app: App,
    kind: str,
    *,
    customer_id: str,
    channel: str = "email",
    incident: str | None = None,
    message: str = "",
) -> Rendered:
    try:
        rk = RoundKind(kind)
    except ValueError:
        raise InputError(
            "unknown kind; use " + ", ".join(k.value for k in RoundKind),
            field="kind",
            value=kind,
        ) from None
    with app.store.read() as conn:
        found = customers_db.get_customers(conn, [customer_id])
        if customer_id not in found:
            raise NotFound(f"customer {customer_id!r} is not in the directory")
        inc, rounds = _sample_incident(app)
        # what a holding update restates: the sample's update, or the incident's latest news
        latest: Round | None = replace(
            rounds[RoundKind.UPDATE], created_at=app.clock() - timedelta(minutes=10)
        )
        if incident is not None:
            inc = incidents_db.get_incident(conn, incident_id_from_ref(incident)).incident
            latest = threads_db.latest_news(conn, inc.id)
    rnd = rounds.get(rk) or rounds[RoundKind.UPDATE]
    rnd = replace(rnd, message=message)
    ctx = app.renderer.context(
        incident=inc,
        round=rnd,
        customer=found[customer_id],
        latest=latest if rk == RoundKind.HOLDING else None,
        # a credit notice shows a sample credit (its amount comes from the ledger when sent)
        credit={**SAMPLE_CREDIT_NOTICE, "correction": False} if rk == RoundKind.CREDIT else None,
    )
    return app.renderer.render(rk, channel, ctx)
