"""The public status page's data: each public component's state now, the incidents people
should see with the commander's public words, and an uptime bar per component.

Read from the store (``store.status``) at ``app.clock()``'s now and kept for ``[status_page]
cache`` (:class:`StatusCache`): a page served is never older than that. No customer data is
read or kept here: no audience, no deliveries, no credits. See ``docs/status-page.md``.

States use Statuspage's vocabulary, so the JSON summary reads like one (``pages.feeds``):

=============================  ====================================================
incident (open, not voided)    component state
=============================  ====================================================
sev1                           ``major_outage``
sev2                           ``partial_outage``
sev3, sev4                     ``degraded_performance``
status ``monitoring``          at most ``degraded_performance``
none                           ``operational``
=============================  ====================================================

The worst incident touching a component wins. A component with no open incident is
``under_maintenance`` while a maintenance window on it is in progress (issue 15); the open
windows are :attr:`StatusData.maintenance`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from outagecomms.app import App
from outagecomms.models import (
    Incident,
    IncidentStatus,
    MaintenanceStatus,
    MaintenanceWindow,
    Round,
)
from outagecomms.rendering.templates import STATUS_LABELS
from outagecomms.store import incidents as incidents_db
from outagecomms.store import maintenance as maintenance_db
from outagecomms.store import status as status_db

OPERATIONAL = "operational"
DEGRADED = "degraded_performance"
PARTIAL = "partial_outage"
MAJOR = "major_outage"
MAINTENANCE = "under_maintenance"
#: the outage states, best first (a state's index is its rank: the worst wins)
RANKED = (OPERATIONAL, DEGRADED, PARTIAL, MAJOR)
STATE_LABELS = {
    OPERATIONAL: "Operational",
    DEGRADED: "Degraded performance",
    PARTIAL: "Partial outage",
    MAJOR: "Major outage",
    MAINTENANCE: "Under maintenance",
}
SEVERITY_STATE = {"sev1": MAJOR, "sev2": PARTIAL, "sev3": DEGRADED, "sev4": DEGRADED}
#: Statuspage's weighting of downtime in its uptime figure: a major outage counts in full, a
#: partial outage 30%, degraded performance not at all (the day is still coloured)
WEIGHTS = {MAJOR: 1.0, PARTIAL: 0.3, DEGRADED: 0.0}
#: how long a resolved incident stays listed on the page
RECENT = timedelta(days=7)
#: the Atom feed's length
FEED_ENTRIES = 50


def incident_state(incident: Incident) -> str:
    """The state an open incident puts its components in (the table in the module doc)."""
    state = SEVERITY_STATE.get(incident.severity, DEGRADED)
    if incident.status == IncidentStatus.MONITORING and RANKED.index(state) > 1:
        return DEGRADED
    return state


def touched(incident: Incident) -> tuple[str, ...]:
    """The components an incident is about, publicly: those the commander named (``-c``); a
    region-wide outage (regions only) touches the components its customers use. One chosen by
    customers, tiers or tags only is about those customers: it touches nothing public."""
    sel = incident.selector
    if sel.components:
        return sel.components
    if sel.regions and not (sel.tiers or sel.tags):
        return incident.components
    return ()


def worst(states: Sequence[str]) -> str:
    return max(states, key=RANKED.index, default=OPERATIONAL)


@dataclass(frozen=True, kw_only=True)
class PublicUpdate:
    """One round of the commander's words: what everyone was told."""

    incident_id: int
    seq: int
    kind: str
    status: str
    message: str
    created_at: datetime

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True, kw_only=True)
class PublicIncident:
    """An incident as the public sees it: no audience, no credits, no selector."""

    id: int
    title: str
    severity: str
    status: str
    state: str  # what it does to its components now (operational once resolved)
    components: tuple[str, ...]  # its public components' keys
    started_at: datetime
    declared_at: datetime  # never edited: the feed's entry ids are built from it
    resolved_at: datetime | None
    updates: tuple[PublicUpdate, ...]  # oldest first

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def updated_at(self) -> datetime:
        return self.updates[-1].created_at if self.updates else self.started_at

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True, kw_only=True)
class Day:
    """One day of a component's uptime bar (a day in ``[status_page] timezone``)."""

    date: date
    state: str  # the worst state of the day (operational: nothing recorded)
    seconds: Mapping[str, float]  # seconds in each outage state (merged, so never counted twice)

    @property
    def downtime(self) -> float:
        """Seconds of downtime, weighted as :data:`WEIGHTS` says."""
        return sum(WEIGHTS[s] * v for s, v in self.seconds.items())

    @property
    def label(self) -> str:
        """``No downtime recorded`` or ``1 h 12 min major outage, 20 min partial outage``."""
        parts = [
            f"{span_text(self.seconds[s])} {STATE_LABELS[s].lower()}"
            for s in (MAJOR, PARTIAL, DEGRADED)
            if self.seconds.get(s, 0) > 0
        ]
        return ", ".join(parts) if parts else "No downtime recorded"


@dataclass(frozen=True, kw_only=True)
class ComponentStatus:
    key: str
    name: str  # the display name ([components])
    state: str
    days: tuple[Day, ...]  # oldest first; the last is today
    uptime: float  # percent over the window, two decimals

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


@dataclass(frozen=True, kw_only=True)
class StatusData:
    """What every view of the page is made from (HTML, Atom, JSON), computed at ``now``."""

    now: datetime
    window_start: datetime  # midnight (page zone) ``history_days - 1`` days before today
    timezone: str
    components: tuple[ComponentStatus, ...]
    #: open incidents, then those resolved within :data:`RECENT`, touching a public component
    incidents: tuple[PublicIncident, ...]
    #: every incident of the window touching a public component (the feed's entries)
    history: tuple[PublicIncident, ...]
    #: scheduled maintenance touching a public component, soonest first (public fields only:
    #: ``id``, ``name``, ``status``, ``scheduled_for``, ``scheduled_until``, ``components``);
    #: a running window's components are under_maintenance unless an incident does worse
    maintenance: tuple[Any, ...] = field(default=())

    @property
    def state(self) -> str:
        """The worst component state; under_maintenance only when nothing is worse."""
        states = [c.state for c in self.components]
        state = worst([s for s in states if s != MAINTENANCE])
        return MAINTENANCE if state == OPERATIONAL and MAINTENANCE in states else state

    @property
    def updates(self) -> list[PublicUpdate]:
        """The feed: every public update of the window, newest first, at most 50."""
        every = [u for inc in self.history for u in inc.updates]
        every.sort(key=lambda u: (u.created_at, u.incident_id, u.seq), reverse=True)
        return every[:FEED_ENTRIES]

    @property
    def updated_at(self) -> datetime:
        """When something shown last changed: the newest public update (else the window)."""
        times = [inc.updated_at for inc in self.history]
        return max(times, default=self.window_start)


def span_text(seconds: float) -> str:
    """``1 h 12 min``, ``45 min``, ``under 1 min``: to the nearest minute."""
    minutes = round(seconds / 60)
    if minutes == 0:
        return "under 1 min" if seconds > 0 else "0 min"
    hours, mins = divmod(minutes, 60)
    return " ".join(p for p in (f"{hours} h" if hours else "", f"{mins} min" if mins else "") if p)


def public_components(app: App, directory: Sequence[str]) -> list[str]:
    """``[status_page] components``, else the ``[components]`` table's keys, else every
    component of the directory."""
    cfg = app.config
    if cfg.status_page.components is not None:
        return list(cfg.status_page.components)
    if cfg.names.components:
        return list(cfg.names.components)
    return list(directory)


def compute_status(app: App) -> StatusData:
    """The page's data, read from the store now (uncached: :class:`StatusCache` caches)."""
    cfg = app.config.status_page
    zone = ZoneInfo(cfg.timezone)
    now = app.clock()
    today = now.astimezone(zone).date()
    dates = [today - timedelta(days=n) for n in range(cfg.history_days - 1, -1, -1)]
    window_start = _midnight(dates[0], zone)
    with app.store.read() as conn:
        configured = app.config.status_page.components is not None or app.config.names.components
        directory = [] if configured else status_db.directory_components(conn)
        keys = public_components(app, directory)
        incidents = status_db.incidents_since(conn, min(window_start, now - RECENT))
        public = set(keys)
        incidents = [i for i in incidents if public.intersection(touched(i))]
        rounds = status_db.public_rounds(conn, [i.id for i in incidents])
        gaps = incidents_db.incident_gaps(conn, [i.id for i in incidents])
        windows = maintenance_db.list_windows(conn)
    shown = [_public(i, keys, rounds.get(i.id, [])) for i in incidents]
    components = tuple(
        _component(app, key, incidents, gaps, dates, zone, window_start, now) for key in keys
    )
    planned, running = _maintenance(app, windows, keys)
    components = tuple(
        replace(c, state=MAINTENANCE) if c.state == OPERATIONAL and c.key in running else c
        for c in components
    )
    in_window = [p for p, i in zip(shown, incidents, strict=True) if _ends(i, now) >= window_start]
    listed = [p for p in shown if p.is_open or (p.resolved_at and p.resolved_at >= now - RECENT)]
    listed.sort(key=lambda p: (not p.is_open, -(p.resolved_at or p.started_at).timestamp()))
    return StatusData(
        now=now,
        window_start=window_start,
        timezone=cfg.timezone,
        components=components,
        incidents=tuple(listed),
        history=tuple(in_window),
        maintenance=tuple(planned),
    )


def _maintenance(
    app: App, windows: Sequence[MaintenanceWindow], keys: Sequence[str]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The open windows touching a public component, as the page and the JSON show them, and
    the public components under maintenance now (a window in progress)."""
    public = set(keys)
    shown, running = [], set()
    for w in windows:
        touched = [k for k in w.components if k in public]
        if not touched:
            continue
        if w.status == MaintenanceStatus.IN_PROGRESS:
            running.update(touched)
        shown.append(
            {
                "id": w.ref,
                "name": w.title,
                "status": w.status.value,
                "scheduled_for": w.starts_at.isoformat(),
                "scheduled_until": w.ends_at.isoformat(),
                "components": [app.config.names.component(k) for k in touched],
            }
        )
    return shown, running


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _ends(incident: Incident, now: datetime) -> datetime:
    return incident.resolved_at or now


def _public(incident: Incident, keys: Sequence[str], rounds: Sequence[Round]) -> PublicIncident:
    updates = tuple(
        PublicUpdate(
            incident_id=incident.id,
            seq=r.seq,
            kind=r.kind.value,
            status=r.status.value,
            message=r.message,
            created_at=r.created_at,
        )
        for r in rounds
    )
    return PublicIncident(
        id=incident.id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status.value,
        state=incident_state(incident) if incident.is_open else OPERATIONAL,
        components=tuple(k for k in keys if k in touched(incident)),
        started_at=incident.started_at,
        declared_at=incident.declared_at,
        resolved_at=None if incident.is_open else incident.resolved_at,
        updates=updates,
    )


def _component(
    app: App,
    key: str,
    incidents: Sequence[Incident],
    gaps: Mapping[int, Sequence[tuple[datetime, datetime]]],
    dates: Sequence[date],
    zone: ZoneInfo,
    window_start: datetime,
    now: datetime,
) -> ComponentStatus:
    touching = [i for i in incidents if key in touched(i)]
    state = worst([incident_state(i) for i in touching if i.is_open])
    spans = [
        (
            max(a, window_start),
            min(b or now, now),
            RANKED.index(SEVERITY_STATE.get(i.severity, DEGRADED)),
        )
        for i in touching
        for a, b in incidents_db.downtime_spans(i, gaps.get(i.id, ()))
    ]
    merged = _merge([s for s in spans if s[0] < s[1]])
    days: list[Day] = []
    for d in dates:
        start, end = _midnight(d, zone), min(_midnight(d + timedelta(days=1), zone), now)
        seconds: dict[str, float] = {}
        for a, b, rank in merged:
            overlap = (min(b, end) - max(a, start)).total_seconds()
            if overlap > 0:
                seconds[RANKED[rank]] = seconds.get(RANKED[rank], 0.0) + overlap
        days.append(Day(date=d, state=worst(list(seconds)), seconds=seconds))
    window = (now - window_start).total_seconds()
    down = sum(d.downtime for d in days)
    uptime = round(100.0 * (1 - down / window), 2) if window > 0 else 100.0
    return ComponentStatus(
        key=key, name=app.config.names.component(key), state=state, days=tuple(days), uptime=uptime
    )


def _merge(spans: Sequence[tuple[datetime, datetime, int]]) -> list[tuple[datetime, datetime, int]]:
    """Overlapping spans as disjoint pieces, each at the worst rank covering it: two incidents
    at once count once, at the worse one's state."""
    cuts = sorted({t for a, b, _ in spans for t in (a, b)})
    out: list[tuple[datetime, datetime, int]] = []
    for a, b in itertools.pairwise(cuts):
        ranks = [r for s, e, r in spans if s <= a and e >= b]
        if not ranks:
            continue
        rank = max(ranks)
        if out and out[-1][1] == a and out[-1][2] == rank:
            out[-1] = (out[-1][0], b, rank)
        else:
            out.append((a, b, rank))
    return out


class StatusCache:
    """The computed data, reused for ``[status_page] cache`` by the app's clock: what is served
    was read from the store less than that long ago. One computation at a time (the others
    wait for it rather than all reading the store at once)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._data: StatusData | None = None

    def peek(self) -> StatusData | None:
        """The data if it is still fresh, else None (never reads the store)."""
        return self._fresh()

    def _fresh(self) -> StatusData | None:
        data, ttl = self._data, self.app.config.status_page.cache
        if data is None or ttl <= timedelta(0):
            return None
        age = self.app.clock() - data.now
        return data if timedelta(0) <= age < ttl else None

    def get(self) -> StatusData:
        data = self._fresh()
        if data is not None:
            return data
        with self._lock:
            data = self._fresh()
            if data is None:
                data = self._data = compute_status(self.app)
            return data


# --- the HTML page's template context --------------------------------------------------------


def shown_time(dt: datetime, zone: str) -> str:
    """``25 Nov 2026, 14:00 CET``: in the page's zone, to the minute."""
    local = dt.astimezone(ZoneInfo(zone))
    return f"{local:%d %b %Y, %H:%M} {local.tzname() or zone}"


def page_context(app: App, data: StatusData, *, nonce: str, logo: bool) -> dict[str, Any]:
    """What ``templates/pages/status.html.j2`` is given (docs/status-page.md lists it): plain
    values only, times already shown in ``[status_page] timezone``."""
    from outagecomms.pages.feeds import INDICATORS

    cfg = app.config.status_page
    zone = data.timezone
    names = {c.key: c.name for c in data.components}
    indicator, description = INDICATORS[data.state]
    return {
        "title": cfg.title,
        "company": {"name": app.config.company.name},
        "logo_url": "/status/logo" if logo else None,
        "nonce": nonce,
        "refresh": 60,
        "feed_url": "/status/feed.atom",
        "summary_url": "/status/summary.json",
        "timezone": zone,
        "history_days": cfg.history_days,
        "generated_at": shown_time(data.now, zone),
        "overall": {"state": data.state, "indicator": indicator, "description": description},
        "components": [
            {
                "key": c.key,
                "name": c.name,
                "state": c.state,
                "state_label": c.state_label,
                "uptime": f"{c.uptime:.2f}",
                "days": [
                    {
                        "date": f"{d.date:%d %b %Y}",
                        "iso": d.date.isoformat(),
                        "state": d.state,
                        "label": d.label,
                    }
                    for d in c.days
                ],
            }
            for c in data.components
        ],
        "incidents": [
            {
                "ref": i.ref,
                "title": i.title,
                "status": i.status,
                "status_label": i.status_label,
                "state": i.state,
                "state_label": STATE_LABELS[i.state],
                "is_open": i.is_open,
                "components": [names[k] for k in i.components if k in names],
                "started_at": shown_time(i.started_at, zone),
                "resolved_at": shown_time(i.resolved_at, zone) if i.resolved_at else None,
                "updates": [
                    {
                        "status": u.status,
                        "status_label": u.status_label,
                        "message": u.message,
                        "at": shown_time(u.created_at, zone),
                        "at_iso": u.created_at.isoformat(),
                    }
                    for u in reversed(i.updates)  # newest first, as status pages read
                ],
            }
            for i in data.incidents
        ],
        "maintenance": list(data.maintenance),
    }
