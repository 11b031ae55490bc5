"""``doctor``'s check of the maintenance templates: every notice kind on every configured
channel, for one customer per locale and time zone, with a sample window (a broken override
says so here, not when the work is announced)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from outagecomms.app import App
from outagecomms.channels import registry
from outagecomms.maintenance import render
from outagecomms.models import (
    Customer,
    MaintenanceNotice,
    MaintenanceStatus,
    MaintenanceWindow,
    NoticeKind,
    Selector,
)


def doctor_lines(app: App, reps: Sequence[Customer]) -> list[str]:
    """Raises ``TemplateError`` naming the template, as the incident templates' check does."""
    now = app.clock()
    start, end = now + timedelta(days=3), now + timedelta(days=3, hours=2)
    comps = tuple(sorted({c for r in reps for c in r.components}))[:2] or ("api",)
    window = MaintenanceWindow(
        id=1, title="Sample maintenance", message="What will change.", components=comps,
        regions=(), selector=Selector(components=comps), starts_at=start, ends_at=end,
        status=MaintenanceStatus.SCHEDULED, sequence=0, remind=(), audience_size=len(reps),
        commander="", created_at=now, told_at=now,
    )  # fmt: skip
    sets = sorted(
        {registry.get(ch.kind).template_channel for ch in app.config.channels.values()} | {"email"}
    )
    for kind in NoticeKind:
        notice = MaintenanceNotice(
            id=1, maintenance_id=1, seq=1, key="", kind=kind, status="queued",
            message="Sample words.", detail="", created_at=now, due_at=None, starts_at=start,
            ends_at=end, previous_starts_at=start - timedelta(days=1),
            previous_ends_at=end - timedelta(days=1), sequence=0,
        )  # fmt: skip
        for customer in reps:
            ctx = render.context(app.renderer, window, notice, customer)
            for tset in sets:
                render.render(app.renderer, tset, ctx)
    return [
        f"templates maintenance: ok ({len(NoticeKind)} notices, {', '.join(sets)}) "
        f"for {len(reps)} locale/timezone combinations"
    ]
