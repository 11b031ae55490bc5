"""A maintenance notice as one customer reads it: ``templates/maintenance/<channel>.<part>.j2``
(one set for every notice kind; the templates branch on ``notice.kind``), rendered in the
notices' own sandbox with the window's times in the customer's zone and locale and the
components and regions by their display names."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateError as JinjaTemplateError

from outagecomms.errors import TemplateError
from outagecomms.models import Customer, MaintenanceNotice, MaintenanceWindow, NoticeKind
from outagecomms.rendering.durations import human_duration
from outagecomms.rendering.sandbox import budget
from outagecomms.rendering.templates import PARTS, Rendered, Renderer, local_time

#: the template sets maintenance notices have (a channel whose set is not here gets email's
#: words as plain text: apprise's subject and body)
TEMPLATE_SETS = ("email", "sms", "slack", "teams", "webhook")
FALLBACK = {"apprise": "slack", "account_manager": "email"}


def template_set(channel_set: str) -> str:
    return channel_set if channel_set in TEMPLATE_SETS else FALLBACK.get(channel_set, "email")


def context(
    renderer: Renderer,
    window: MaintenanceWindow,
    notice: MaintenanceNotice,
    customer: Customer,
) -> dict[str, Any]:
    tz, loc = customer.timezone, customer.locale
    # the catalog the customer reads (fr_CA, else fr, else the company default, else English)
    language = renderer.catalogs.resolve(loc)
    comps = [c for c in window.components if c in customer.components] or list(window.components)
    regions = [r for r in window.regions if r in customer.regions] or list(window.regions)

    def when(dt: Any) -> str:
        return local_time(dt, tz, loc, with_date=True, exact=False)

    zone = ZoneInfo(tz)
    same_day = notice.starts_at.astimezone(zone).date() == notice.ends_at.astimezone(zone).date()
    until = local_time(notice.ends_at, tz, loc, exact=False) if same_day else when(notice.ends_at)

    previous = None
    if notice.previous_starts_at is not None and notice.previous_ends_at is not None:
        previous = {
            "starts_at": when(notice.previous_starts_at),
            "ends_at": when(notice.previous_ends_at),
        }
    before = None
    if notice.kind == NoticeKind.REMINDER:
        before = human_duration(notice.starts_at - notice.created_at, loc)
    company = renderer.company
    return {
        "company": {
            "name": company.name,
            "status_page_url": company.status_page_url,
            "support_email": company.support_email,
            "support_phone": company.support_phone,
        },
        "maintenance": {
            "ref": window.ref,
            "title": window.title,
            "message": window.message,
            "status": window.status.value,
            "components": [renderer.names.component(c, language) for c in comps],
            "regions": [renderer.names.region(r, language) for r in regions],
            "component_keys": comps,
            "region_keys": regions,
            "starts_at": when(notice.starts_at),
            "ends_at": when(notice.ends_at),
            # the end as read after the start: the time alone on the same local day
            "until": until,
            "starts_at_utc": notice.starts_at.isoformat(),
            "ends_at_utc": notice.ends_at.isoformat(),
            "duration": human_duration(notice.ends_at - notice.starts_at, loc),
        },
        "notice": {
            "kind": notice.kind.value.removeprefix("maintenance_"),
            "seq": notice.seq,
            "message": notice.message,
            "rescheduled": previous is not None,
            "previous": previous,
            "starts_in": before,
            "sent_at": when(notice.created_at),
        },
        "thread": {"subject": f"[{window.ref}] {window.title}"},
        "customer": {
            "id": customer.id,
            "name": customer.name,
            "tier": customer.tier,
            "timezone": tz,
            "locale": loc,
        },
        "status_page_url": company.status_page_url,
        "language": language,
        # gettext, ngettext, pgettext, npgettext for the {% trans %} blocks, in their language
        **renderer.catalogs.callables(language),
    }


def render(renderer: Renderer, channel_set: str, ctx: dict[str, Any]) -> Rendered:
    """Every part of the channel's set; a broken template is a ``TemplateError`` naming it."""
    tset = template_set(channel_set)
    out: dict[str, str] = {}
    for part in PARTS.get(tset, ("txt",)):
        name = f"maintenance/{tset}.{part}.j2"
        try:
            tpl = renderer.env.get_template(name)
            with budget(renderer.limits):
                out[part] = tpl.render(ctx)
        except JinjaTemplateError as exc:
            raise TemplateError(
                str(getattr(exc, "message", None) or exc),
                template=name,
                line=getattr(exc, "lineno", None),
            ) from None
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(f"{type(exc).__name__}: {exc}", template=name) from None
    subject = " ".join(out.get("subject", "").split())
    if len(subject) > renderer.limits.max_subject:
        raise TemplateError(
            f"the subject is {len(subject)} characters long, more than [templates] max_subject"
            f" ({renderer.limits.max_subject}) allows",
            template=f"maintenance/{tset}.subject.j2",
        )
    return Rendered(subject=subject, text=out.get("txt", "").strip() + "\n", html=out.get("html"))


def describe(
    renderer: Renderer, window: MaintenanceWindow, notice: MaintenanceNotice, customer: Customer
) -> str:
    """The invitation's DESCRIPTION: the window in the customer's own zone, what it touches and
    the commander's words (a calendar shows DTSTART/DTEND in its user's zone; this says which
    zone we meant)."""
    tz, loc = customer.timezone, customer.locale
    language = renderer.catalogs.resolve(loc)
    words = renderer.catalogs.translations(language)
    start = local_time(notice.starts_at, tz, loc, with_date=True, exact=False)
    end = local_time(notice.ends_at, tz, loc, with_date=True, exact=False)
    lines = [f"{window.title} ({window.ref})", f"{start} - {end} ({tz})"]
    names = renderer.names
    touched = [names.component(c, language) for c in window.components]
    touched += [names.region(r, language) for r in window.regions]
    if touched:
        # Translators: a calendar invitation's description: what a maintenance window touches
        lines.append(words.gettext("Affects: %(what)s") % {"what": ", ".join(touched)})
    if notice.message or window.message:
        lines += ["", notice.message or window.message]
    return "\n".join(lines)
