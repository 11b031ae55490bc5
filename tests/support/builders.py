"""Domain objects to render and send: one incident (INC-42, declared 13:00 UTC on a winter
day), its rounds, a customer, and the company that speaks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from outagecomms.config.model import CompanyConfig
from outagecomms.models import Customer, Incident, IncidentStatus, Round, RoundKind, Selector
from outagecomms.rendering.templates import Renderer

COMPANY = CompanyConfig(
    name="S1 Technology",
    status_page_url="https://status.example.com",
    support_email="support@example.com",
)
#: the company with every contact detail a template may print
FULL_COMPANY = replace(COMPANY, support_phone="+15550100100")
WINTER = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 13, 0, tzinfo=UTC)
#: the round kinds a customer is told about while an incident is open, and its resolution
KINDS = [RoundKind.ACKNOWLEDGEMENT, RoundKind.UPDATE, RoundKind.HOLDING, RoundKind.RESOLUTION]
UPDATE = "A database failover is in progress."
ZONES = [
    ("Europe/Berlin", "de_DE"),
    ("Asia/Tokyo", "ja_JP"),
    ("America/New_York", "en_US"),
    ("Australia/Sydney", "en_AU"),
    ("Asia/Kolkata", "en_IN"),
    ("Europe/London", "en_GB"),
    ("Europe/Paris", "fr_FR"),
    ("UTC", "en_US"),
]


def renderer(company: CompanyConfig = COMPANY) -> Renderer:
    return Renderer(company=company)


def customer(tz: str = "Europe/Berlin", locale: str = "de_DE", **kw: object) -> Customer:
    base: dict[str, object] = {
        "id": "c1",
        "name": "Acme Logistics",
        "email": "ops@acme.example.com",
        "components": ("auth",),
        "regions": ("eu-west",),
        "timezone": tz,
        "locale": locale,
    }
    base.update(kw)
    return Customer(**base)  # type: ignore[arg-type]


def incident(
    at: datetime = WINTER, *, title: str = "Sign-in failures", resolved: bool = False
) -> Incident:
    return Incident(
        id=42,
        title=title,
        severity="sev2",
        status=IncidentStatus.RESOLVED if resolved else IncidentStatus.INVESTIGATING,
        components=("api", "auth"),
        regions=("eu-west", "us-east"),
        selector=Selector(components=("api", "auth")),
        started_at=at - timedelta(minutes=12),
        declared_at=at,
        resolved_at=at + timedelta(minutes=50) if resolved else None,
        commander="alice",
        update_every=timedelta(minutes=30),
        next_update_due=None if resolved else at + timedelta(minutes=30),
        ack_due=at - timedelta(minutes=2),
    )


def done(kind: RoundKind) -> bool:
    """No promise follows this round."""
    return kind in (RoundKind.RESOLUTION, RoundKind.FOLLOW_UP, RoundKind.CREDIT, RoundKind.VOID)


def round_(
    kind: RoundKind,
    at: datetime = WINTER,
    *,
    promise: datetime | None = None,
    message: str = UPDATE,
    seq: int | None = None,
) -> Round:
    """Round ``seq`` (by default: its place in :data:`KINDS`, or in :class:`RoundKind`) of
    INC-42, promising the next round half an hour on unless it is the last."""
    if seq is None:
        seq = KINDS.index(kind) + 1 if kind in KINDS else list(RoundKind).index(kind) + 1
    last = done(kind)
    return Round(
        id=1,
        incident_id=42,
        seq=seq,
        kind=kind,
        message=message,
        status=IncidentStatus.RESOLVED if last else IncidentStatus.IDENTIFIED,
        created_at=at,
        due_by=at,
        promised_next_by=None if last else (promise or at + timedelta(minutes=30)),
    )


def context(
    kind: RoundKind,
    c: Customer,
    *,
    r: Renderer | None = None,
    title: str = "Sign-in failures",
    message: str = UPDATE,
    **extras: object,
) -> dict[str, object]:
    """The template context of round ``kind`` of INC-42 for ``c``."""
    r = r or renderer()
    if kind == RoundKind.CREDIT and "credit" not in extras:  # a credit notice has its credit
        from outagecomms.incidents.preflight import SAMPLE_CREDIT_NOTICE

        extras = {**extras, "credit": SAMPLE_CREDIT_NOTICE}
    inc = incident(resolved=done(kind), title=title)
    return r.context(incident=inc, round=round_(kind, message=message), customer=c, **extras)  # type: ignore[arg-type]


#: eleven feedback links (scores 0 to 10) as a follow-up carries them
FEEDBACK_LINKS = [f"https://oc.example.com/f/abcdef0123456789/{n}" for n in range(11)]
CREDIT = {"amount": "12,00 €", "reason": "10 % of the monthly fee"}
GOODWILL = "a month of premium support"


def extras(kind: RoundKind, *, credit: dict[str, str] = CREDIT) -> dict[str, object]:
    """What a resolution (a credit, a goodwill offer) or a follow-up (the feedback links)
    carries besides the round."""
    if kind == RoundKind.RESOLUTION:
        return {"credit": credit, "goodwill": GOODWILL}
    if kind == RoundKind.FOLLOW_UP:
        return {"feedback_links": FEEDBACK_LINKS}
    if kind == RoundKind.CREDIT:  # the credit notice: the amount, its reasons, the offer
        from outagecomms.incidents.preflight import SAMPLE_CREDIT_NOTICE

        return {"credit": {**SAMPLE_CREDIT_NOTICE, **credit}, "goodwill": GOODWILL}
    return {}


def round_data(**changes: object) -> dict[str, object]:
    """``OutboundMessage.data`` as dispatch builds it: the acknowledgement of INC-42 for c1
    (``changes`` replace fields)."""
    data: dict[str, object] = {
        "incident": "INC-42",
        "title": "Sign-in failures",
        "severity": "sev2",
        "status": "investigating",
        "kind": "acknowledgement",
        "round": 1,
        "message": UPDATE,
        "customer": "c1",
        "components": ["auth"],
        "regions": ["eu-west"],
        "started_at": "2026-01-15T12:48:00+00:00",
        "promised_next_by": "2026-01-15T13:30:00+00:00",
    }
    data.update(changes)
    return data
