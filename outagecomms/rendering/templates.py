"""Templates: a sandboxed Jinja2 environment with StrictUndefined and autoescaped HTML.

Templates are looked up as ``<kind>/<channel>.<part>.j2`` (e.g. ``holding/email.subject.j2``),
first in the user's override folder, then in the packaged defaults. Every template a round needs
is pre-flighted (rendered once per locale/timezone/channel in the audience) before anything is
queued, so a broken template sends nothing and says which template and line.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time, get_datetime_format
from babel.support import NullTranslations
from jinja2 import (
    ChoiceLoader,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
)
from jinja2 import TemplateError as JinjaTemplateError
from markupsafe import escape

from outagecomms.config.model import CompanyConfig, DisplayNames, TemplateLimits
from outagecomms.errors import TemplateError
from outagecomms.incidents.messages import translations_of
from outagecomms.models import Customer, Incident, Round, RoundKind
from outagecomms.rendering.durations import human_duration, shows_seconds, to_minute
from outagecomms.rendering.i18n import CALLABLES, Catalogs, newstyle
from outagecomms.rendering.i18n import noop_pgettext as pgettext
from outagecomms.rendering.sandbox import CODE_VERSION, LimitedSandbox, budget

PARTS = {
    "email": ("subject", "txt", "html"),
    "slack": ("subject", "txt"),
    "teams": ("subject", "txt"),
    "webhook": ("subject", "txt"),
    "sms": ("txt",),
    "account_manager": ("subject", "txt"),
    "statuspage": ("txt",),  # the page incident's name is the incident title
    "apprise": ("subject", "txt"),
}
#: the internal template set of the copy an account manager gets
ACCOUNT_MANAGER_TEMPLATES = "account_manager"
#: what the company's own people read (the account manager's copy, the escalation of a reply
#: to the commander): in the company's default language, whatever the customer's
INTERNAL_TEMPLATES = {ACCOUNT_MANAGER_TEMPLATES, "inbound/escalation"}
#: the English labels (msgids, context "status"): customers read them in their language
STATUS_LABELS = {
    "investigating": pgettext("status", "Investigating"),
    "identified": pgettext("status", "Identified"),
    "monitoring": pgettext("status", "Monitoring"),
    "resolved": pgettext("status", "Resolved"),
    "voided": pgettext("status", "Withdrawn"),
}


def default_templates_dir() -> Path:
    """The packaged templates (wheel) or the repository's ``templates/`` (editable install)."""
    packaged = resources.files("outagecomms") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=256)
def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name)
    except Exception:
        return Locale.parse("en_US")


@lru_cache(maxsize=65536)
def local_time(
    dt: datetime, tz: str, locale: str, *, with_date: bool = False, exact: bool = True
) -> str:
    """``14:30 CET`` (or with the date) in the customer's zone and locale.

    ``exact``: with the seconds when ``dt`` is not on a whole minute. Otherwise the time is
    shown to the minute (``dt`` already on one: see :func:`to_minute`), as people read a
    clock."""
    zone = _zone(tz)
    loc = _locale(locale)
    local = dt.astimezone(zone)
    abbrev = local.tzname() or tz
    whole = local.second == 0 and local.microsecond == 0
    if with_date:
        if exact and not whole:
            return f"{format_datetime(local, 'medium', tzinfo=zone, locale=loc)} {abbrev}"
        # the locale's own "date, time" pattern, with the time to the minute
        pattern = str(get_datetime_format("medium", locale=loc)).replace("'", "")
        clock = format_time(local, "short", tzinfo=zone, locale=loc)
        day = format_date(local, "medium", locale=loc)
        return f"{pattern.replace('{0}', clock).replace('{1}', day)} {abbrev}"
    # A promise is shown exactly: with seconds when it is not on a whole minute.
    fmt = "short" if whole or not exact else "medium"
    return f"{format_time(local, fmt, tzinfo=zone, locale=loc)} {abbrev}"


@lru_cache(maxsize=65536)
def local_promise(dt: datetime, ref: datetime, tz: str, locale: str) -> str:
    """A promise as customers read it: time only when it is the same local day as ``ref``."""
    zone = _zone(tz)
    same_day = dt.astimezone(zone).date() == ref.astimezone(zone).date()
    if same_day:
        return local_time(dt, tz, locale)
    date = format_date(dt.astimezone(zone), "medium", locale=_locale(locale))
    return f"{date}, {local_time(dt, tz, locale)}"


def customer_time(
    dt: datetime, cadence: timedelta, tz: str, locale: str, *, with_date: bool, up: bool = False
) -> str:
    """A time as customers read it: to the minute unless the cadence is under a minute
    (rounded up for a promise, ``up``, so the time read is never earlier than the one kept;
    down for something that happened)."""
    if shows_seconds(cadence):
        return local_time(dt, tz, locale, with_date=with_date)
    return local_time(to_minute(dt, up=up), tz, locale, with_date=with_date, exact=False)


def _bytecode_cache() -> FileSystemBytecodeCache | None:
    """Compiled templates survive the process: a CLI call need not recompile them (keyed by
    the template's source checksum, so an edited override is recompiled)."""
    import platformdirs

    # one folder per version of the generated code: code compiled without the sandbox's
    # limits (by an older outagecomms) must never be loaded
    path = (
        Path(platformdirs.user_cache_dir("outagecomms", appauthor=False)) / "jinja" / CODE_VERSION
    )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return FileSystemBytecodeCache(str(path))


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class Renderer:
    """Renders round messages for customers. Thread-compatible; templates compile once."""

    def __init__(
        self,
        *,
        company: CompanyConfig,
        user_dir: Path | None = None,
        public_url: str = "",
        names: DisplayNames | None = None,
        limits: TemplateLimits | None = None,
        locale_dir: Path | None = None,
        catalogs: Catalogs | None = None,
    ):
        self.company = company
        #: the gettext catalogs (ours, the user's ``[templates] locale_dir`` merged over)
        #: and the language each customer's locale reads (rendering.i18n)
        self.catalogs = catalogs or Catalogs.with_user_dir(locale_dir, default=company.language)
        self.limits = limits or TemplateLimits()
        self.names = names or DisplayNames()
        self.public_url = public_url
        loaders = []
        if user_dir is not None:
            loaders.append(FileSystemLoader(str(user_dir)))
        loaders.append(FileSystemLoader(str(default_templates_dir())))
        self.env = LimitedSandbox(
            limits=self.limits,
            loader=ChoiceLoader(loaders),
            bytecode_cache=_bytecode_cache(),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            keep_trailing_newline=True,  # an include keeps its last line break
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # templates do not change under a running sender
            # {% trans %}: the gettext callables come with each render's context (the
            # customer's language), so one environment serves every language
            extensions=["jinja2.ext.i18n"],
        )
        self.env.newstyle_gettext = True  # type: ignore[attr-defined]
        # English, for a context that brings no callables of its own (a page, a check)
        self.env.globals.update(newstyle(NullTranslations()))
        self.user_dir = user_dir
        self.env.add_filter("localtime", self._localtime_filter)
        # the first letter up, the rest as it is ("Managed Database", not "capitalize"'s
        # "Managed database")
        self.env.add_filter("capfirst", lambda s: str(s)[:1].upper() + str(s)[1:])
        self._templates: dict[str, Any] = {}
        self._safe: dict[tuple[RoundKind, str], bool] = {}
        self._shapes: dict[tuple[Any, ...], dict[str, list[str]]] = {}

    @staticmethod
    def _localtime_filter(dt: datetime, customer: dict[str, Any], with_date: bool = True) -> str:
        return local_time(dt, customer["timezone"], customer["locale"], with_date=with_date)

    def neutral_customer(self) -> Customer:
        """Whom a once-per-round message (a status page) is rendered for: nobody in
        particular, in UTC, in the company's default language (``[company] language``)."""
        lang = self.company.language
        locale = "en_US" if lang in ("", "en") else lang
        return Customer(id="*", name=self.company.name, timezone="UTC", locale=locale)

    def template_name(self, kind: RoundKind | str, channel: str, part: str) -> str:
        return f"{RoundKind(kind).value}/{channel}.{part}.j2"

    def has_templates(self, kind: RoundKind | str) -> bool:
        """Whether any template of ``kind`` is installed (overrides or packaged defaults)."""
        prefix = f"{RoundKind(kind).value}/"
        return any(n.startswith(prefix) for n in self.env.list_templates(extensions=["j2"]))

    def _get(self, name: str) -> Any:
        tpl = self._templates.get(name)
        if tpl is None:
            tpl = self._templates[name] = _load(self.env, name)
        return tpl

    def context(
        self,
        *,
        incident: Incident,
        round: Round,
        customer: Customer,
        credit: Any = None,
        goodwill: str | None = None,
        feedback_links: Sequence[str] = (),
        latest: Round | None = None,
        credit_held_until: datetime | None = None,
        page_url: str = "",
    ) -> dict[str, Any]:
        """The template context. ``latest``: the news a holding round restates (the
        commander's last update or the acknowledgement; see ``store.incidents.latest_news``).
        ``credit``: the credit a notice states (``amount``, ``reason``; in a credit notice also
        ``reasons``, ``correction``, ``previous``); ``credit_held_until``: a credit is being
        applied, its amount not yet approved: the customer hears it by then (``credit_held``
        in the context, ``{"by": ...}`` in their zone). ``page_url``: the customer's own
        incident page (``customer.page_url``; ``incident_page`` says whether there is one)."""
        tz, loc = customer.timezone, customer.locale
        language = self.catalogs.resolve(loc)
        words = self.catalogs.translations(language)
        said, fell_back = self.commander_words(round.message, language)
        affected_components = [c for c in incident.components if c in customer.components] or list(
            incident.components
        )
        affected_regions = [r for r in incident.regions if r in customer.regions] or list(
            incident.regions
        )
        cadence = incident.update_every
        latest_news = self._latest(latest, round, cadence, tz, loc, words, language)
        if latest is not None and self.commander_words(latest.message, language)[1]:
            fell_back = True  # a holding round restates it
        promised = None
        if round.promised_next_by is not None:
            shown = round.promised_next_by
            if not shows_seconds(cadence):
                shown = to_minute(shown, up=True)
            promised = local_promise(shown, round.created_at, tz, loc)

        def when(dt: datetime) -> str:
            return customer_time(dt, cadence, tz, loc, with_date=True)

        return {
            "company": {
                "name": self.company.name,
                "status_page_url": self.company.status_page_url,
                "support_email": self.company.support_email,
                "support_phone": self.company.support_phone,
            },
            "incident": {
                "ref": incident.ref,
                "title": incident.title,
                "severity": incident.severity,
                "status": round.status.value,
                "status_label": _label(words, round.status.value),
                # what customers read: the configured display names ([components], [regions])
                "components": [self.names.component(c, language) for c in affected_components],
                "regions": [self.names.region(r, language) for r in affected_regions],
                "component_keys": affected_components,
                "region_keys": affected_regions,
                "started_at": when(incident.started_at),
                "resolved_at": when(incident.resolved_at) if incident.resolved_at else None,
                "duration": human_duration(
                    (incident.resolved_at or round.created_at) - incident.started_at, loc, cadence
                ),
            },
            "round": {
                "kind": round.kind.value,
                "seq": round.seq,
                "message": said,
                "default_message": str(round.message),
                "sent_at": when(round.created_at),
            },
            "latest": latest_news,
            # the commander's words are in the company's language for lack of theirs: a line
            # (email, chat) says so in their language
            "message_note": self.message_note(language, words) if fell_back else None,
            "thread": {
                # the subject stem every email of the incident keeps, so mail clients group
                # them (with In-Reply-To/References to the acknowledgement)
                "subject": f"[{incident.ref}] {incident.title}",
                "reply": round.kind != RoundKind.ACKNOWLEDGEMENT,
            },
            "customer": {
                "id": customer.id,
                "name": customer.name,
                "tier": customer.tier,
                "timezone": tz,
                "locale": loc,
                "page_url": page_url,
            },
            "incident_page": bool(page_url),
            "promised_next_by": promised,
            "promised_next_by_utc": round.promised_next_by.isoformat()
            if round.promised_next_by
            else None,
            "credit": credit,
            "credit_held": (None if credit_held_until is None else {"by": when(credit_held_until)}),
            "goodwill": goodwill,
            "feedback_links": list(feedback_links),
            "feedback_url": feedback_links[10] if len(feedback_links) > 10 else None,
            "status_page_url": self.company.status_page_url,
            # the catalog the customer reads (``fr_CA``, ``fr``, the company default, ``en``)
            "language": language,
            **self.catalogs.callables(language),
        }

    def commander_words(self, message: str, language: str) -> tuple[str, bool]:
        """What a reader of ``language`` reads of the commander's ``message``, and whether it
        is the default-language text for lack of theirs: their language's text where one was
        given (``incidents.messages``: ``fr_CA``, else ``fr``), else the default text."""
        text = str(message)
        if not text:
            return text, False
        given = translations_of(message)
        base = language.split("_")[0]
        for name in (language, base):
            if given.get(name):
                return given[name], False
        return text, base != self._default_language().split("_")[0]

    def _default_language(self) -> str:
        """The language the commander writes in (``[company] language``), as ``de_AT``."""
        return (self.company.language or "en").replace("-", "_")

    def message_note(self, language: str, words: NullTranslations) -> str:
        """The line that says, in the reader's language, that the commander's words are in
        the company's default language (``commander_words``)."""
        default = self._default_language()
        try:
            shown = Locale.parse(default).get_language_name(_locale(language))
        except Exception:
            shown = default
        note = str(
            words.pgettext(
                "commander",
                "What our team wrote is in %(language)s: we do not have it in your language yet.",
            )
        )
        return note % {"language": shown}

    def internal(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """``ctx`` (of :meth:`context`) as the company's own people read it: the words, the
        status labels and the display names in the company's default language; times, dates
        and amounts stay as the customer reads them (their zone is what the copy is about)."""
        language = self.catalogs.resolve(self.company.language)
        if ctx.get("language") == language:
            return ctx
        words = self.catalogs.translations(language)
        inc = dict(ctx["incident"])
        inc["status_label"] = _label(words, inc["status"])
        inc["components"] = [self.names.component(c, language) for c in inc["component_keys"]]
        inc["regions"] = [self.names.region(r, language) for r in inc["region_keys"]]
        latest = ctx.get("latest")
        if latest is not None:
            latest = {
                **latest,
                "status_label": _label(words, latest["status"]),
                "message": latest.get("default_message", latest["message"]),
            }
        rnd = ctx["round"]
        return {
            **ctx,
            "incident": inc,
            "round": {**rnd, "message": rnd.get("default_message", rnd["message"])},
            "message_note": None,
            "latest": latest,
            "language": language,
            **self.catalogs.callables(language),
        }

    def _latest(
        self,
        latest: Round | None,
        round: Round,
        cadence: timedelta,
        tz: str,
        loc: str,
        words: NullTranslations,
        language: str,
    ) -> dict[str, Any] | None:
        """The latest news as a holding round restates it: what was said (in the reader's
        language where the commander gave it), when (the time alone on the same local day as
        this round, else with the date) and how long ago."""
        if latest is None:
            return None
        same_day = (
            latest.created_at.astimezone(_zone(tz)).date()
            == round.created_at.astimezone(_zone(tz)).date()
        )
        return {
            "kind": latest.kind.value,
            "message": self.commander_words(latest.message, language)[0],
            "default_message": str(latest.message),
            "status": latest.status.value,
            "status_label": _label(words, latest.status.value),
            "posted_at": customer_time(latest.created_at, cadence, tz, loc, with_date=not same_day),
            "ago": human_duration(round.created_at - latest.created_at, loc, cadence),
        }

    def render(self, kind: RoundKind, channel: str, ctx: dict[str, Any]) -> Rendered:
        return self._finish(kind, channel, self._render_parts(kind, channel, ctx))

    def _render_parts(self, kind: RoundKind, channel: str, ctx: dict[str, Any]) -> dict[str, str]:
        parts = PARTS.get(channel, ("txt",))
        if channel in INTERNAL_TEMPLATES:
            ctx = self.internal(ctx)
        out: dict[str, str] = {}
        for part in parts:
            name = self.template_name(kind, channel, part)
            tpl = self._get(name)
            try:
                with budget(self.limits):  # size, steps and time: rendering.sandbox
                    out[part] = tpl.render(ctx)
            except JinjaTemplateError as exc:
                where, line = self._where(exc, name)
                raise TemplateError(
                    str(getattr(exc, "message", None) or exc) + _via(where, name),
                    template=where,
                    line=line,
                ) from None
            except Exception as exc:  # errors raised by template code, e.g. 1/0
                where, line = self._where(exc, name)
                raise TemplateError(
                    f"{type(exc).__name__}: {exc}" + _via(where, name), template=where, line=line
                ) from None
        return out

    def _exists(self, name: str) -> bool:
        """Whether a template is installed (overrides or defaults); the answer is kept."""
        known = self.__dict__.setdefault("_known", {})
        if name not in known:
            try:
                self._get(name)
                known[name] = True
            except TemplateError as exc:
                if "not found" not in str(exc):
                    raise
                known[name] = False
        return bool(known[name])

    def render_inbound(self, name: str, ctx: dict[str, Any]) -> Rendered:
        """``inbound/<name>.subject.j2`` (if there is one) and ``inbound/<name>.txt.j2``:
        what is sent because of a customer's message (an acknowledgement, an escalation), in
        the language of ``ctx["customer"]`` unless ``ctx`` brings its own gettext."""
        if f"inbound/{name}" in INTERNAL_TEMPLATES:
            ctx = {**ctx, **self.catalogs.for_locale(self.company.language)}
        elif "gettext" not in ctx:
            who = ctx.get("customer")
            loc = who.get("locale") if isinstance(who, dict) else getattr(who, "locale", None)
            ctx = {**ctx, **self.catalogs.for_locale(str(loc or "en"))}
        out: dict[str, str] = {}
        for part in ("subject", "txt"):
            tname = f"inbound/{name}.{part}.j2"
            if part == "subject" and not self._exists(tname):
                continue
            tpl = self._get(tname)
            try:
                with budget(self.limits):
                    out[part] = tpl.render(ctx)
            except Exception as exc:
                where, line = self._where(exc, tname)
                raise TemplateError(
                    f"{type(exc).__name__}: {exc}" + _via(where, tname), template=where, line=line
                ) from None
        return _finish(out)

    def _page_env(self) -> LimitedSandbox:
        """The pages' own sandbox: the notices' limits scaled up (``PAGE_SCALE``), since a
        status page with 90 days of history for dozens of components is far larger than a
        message; same loaders, filters and checks. Made once (thread-safe to share)."""
        env = self.__dict__.get("_pages_env")
        if env is None:
            lim = self.limits
            scaled = replace(
                lim,
                max_body=lim.max_body * PAGE_SCALE,
                max_steps=lim.max_steps * PAGE_SCALE,
            )
            env = self.env.overlay()
            env.limits = scaled
            self.__dict__["_pages_env"] = env
        return env

    def render_page(self, name: str, ctx: dict[str, Any]) -> str:
        """``pages/<name>.html.j2``: a web page the daemon serves (a customer's incident page,
        the public status page), sandboxed and bounded like the notices; a user's override
        folder (``[templates] dir``) may replace it. Autoescaped (the name ends in .html.j2).
        ``{% trans %}`` reads ``ctx``'s gettext callables (a customer's page: their language),
        else the company's default language's."""
        tname = f"pages/{name}.html.j2"
        env = self._page_env()
        tpl = _load(env, tname)  # the page environment keeps its compiled templates itself
        if "gettext" not in ctx:  # {% trans %} in the company's language unless ctx says
            ctx = {**ctx, **self.catalogs.for_locale(self.company.language)}
        try:
            with budget(env.limits):
                return str(tpl.render(ctx))
        except Exception as exc:
            where, line = self._where(exc, tname)
            raise TemplateError(
                f"{type(exc).__name__}: {exc}" + _via(where, tname), template=where, line=line
            ) from None

    def render_customer(
        self,
        kind: RoundKind,
        channel: str,
        *,
        incident: Incident,
        round: Round,
        customer: Customer,
        latest: Round | None = None,
        page_url: str = "",
        **extras: Any,
    ) -> Rendered:
        """What ``render(kind, channel, context(...))`` gives, rendered once per *shape*.

        A round's messages differ between customers mostly by name and id; the rest depends
        on a few attributes (zone, locale, tier, affected components and regions). When every
        template of the set prints ``customer.name``/``customer.id`` only as a plain
        ``{{ ... }}`` (checked on the templates' syntax trees, includes too), the set is
        rendered once per shape with markers in their place and each customer's copy is made
        by substitution (HTML-escaped in HTML parts), byte for byte the same as rendering it.
        Per-customer extras (a credit, feedback links) always take the full render; the
        customer's page link (``page_url``) is substituted like their name."""
        if any(extras.values()) or not self._substitutable(kind, channel):
            ctx = self.context(
                incident=incident,
                round=round,
                customer=customer,
                latest=latest,
                page_url=page_url,
                **extras,
            )
            return self.render(kind, channel, ctx)
        comps = tuple(c for c in incident.components if c in customer.components)
        regions = tuple(r for r in incident.regions if r in customer.regions)
        key = (kind, channel, incident, round, latest, customer.timezone, customer.locale,
               customer.tier, comps, regions, bool(page_url))  # fmt: skip
        pieces = self._shapes.get(key)
        if pieces is None:
            if len(self._shapes) >= _MAX_SHAPES:
                self._shapes.clear()
            marked = replace(customer, name=_NAME_MARK, id=_ID_MARK)
            ctx = self.context(
                incident=incident,
                round=round,
                customer=marked,
                latest=latest,
                page_url=_PAGE_MARK if page_url else "",
            )
            raw = self._render_parts(kind, channel, ctx)
            # [text, marker, text, marker, ...]: substituted in one pass, so a name that
            # happens to contain a marker is never substituted again
            pieces = self._shapes[key] = {p: _MARKS.split(v) for p, v in raw.items()}
        plain = {_NAME_MARK: customer.name, _ID_MARK: customer.id, _PAGE_MARK: page_url}
        escaped = {k: str(escape(v)) for k, v in plain.items()} if "html" in pieces else plain
        out = {}
        for part, seq in pieces.items():
            values = escaped if part == "html" else plain
            out[part] = "".join([values[x] if i % 2 else x for i, x in enumerate(seq)])
        return self._finish(kind, channel, out)

    def _finish(self, kind: RoundKind, channel: str, out: dict[str, str]) -> Rendered:
        rendered = _finish(out)
        limit = self.limits.max_subject
        if len(rendered.subject) > limit:
            raise TemplateError(
                f"the subject is {len(rendered.subject)} characters long, more than"
                f" [templates] max_subject ({limit}) allows",
                template=self.template_name(kind, channel, "subject"),
            )
        return rendered

    def _substitutable(self, kind: RoundKind, channel: str) -> bool:
        key = (RoundKind(kind), channel)
        ok = self._safe.get(key)
        if ok is None:
            names = [self.template_name(kind, channel, p) for p in PARTS.get(channel, ("txt",))]
            ok = self._safe[key] = all(self._prints_customer_plainly(n, set()) for n in names)
        return ok

    def _prints_customer_plainly(self, name: str, seen: set[str]) -> bool:
        """True when the template (and whatever it includes) uses ``customer`` only as
        ``{{ customer.name }}``/``{{ customer.id }}`` output, its shape attributes, or the
        ``localtime`` filter's argument."""
        if name in seen:
            return True
        seen.add(name)
        try:
            source, _, _ = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
            tree = self.env.parse(source)
        except Exception:
            return False
        if not _plain_customer_use(tree, ()):
            return False
        for ref in meta.find_referenced_templates(tree):
            if ref is None or not self._prints_customer_plainly(ref, seen):
                return False
        return True

    def _where(self, exc: BaseException, name: str) -> tuple[str, int | None]:
        """The template and line an error happened in: an ``{% include %}``d or extended
        template is named itself, not the template that pulled it in."""
        if isinstance(exc, TemplateSyntaxError) and exc.lineno:
            return exc.name or name, int(exc.lineno)
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith(".j2"):
                return self._name_of(frame.filename) or name, frame.lineno
        lineno = getattr(exc, "lineno", None)
        return name, int(lineno) if lineno else None

    def _name_of(self, filename: str) -> str | None:
        path = Path(filename)
        for root in (self.user_dir, default_templates_dir()):
            if root is not None and path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        return None


def _load(env: LimitedSandbox, name: str) -> Any:
    """``env``'s template ``name``; a missing or broken one is a ``TemplateError`` naming it."""
    try:
        return env.get_template(name)
    except TemplateNotFound:
        raise TemplateError(
            "not found in the override folder or the defaults", template=name
        ) from None
    except JinjaTemplateError as exc:
        raise TemplateError(
            str(getattr(exc, "message", exc)), template=name, line=getattr(exc, "lineno", None)
        ) from None


def _finish(out: dict[str, str]) -> Rendered:
    return Rendered(
        subject=" ".join(out.get("subject", "").split()),
        text=out.get("txt", "").strip() + "\n",
        html=out.get("html"),
    )


# Private-use characters: no template filter or whitespace rule touches them.
_NAME_MARK = "\ue000customer.name\ue001"
_ID_MARK = "\ue000customer.id\ue001"
_PAGE_MARK = "\ue000customer.page_url\ue001"
_MARKS = re.compile(f"({re.escape(_NAME_MARK)}|{re.escape(_ID_MARK)}|{re.escape(_PAGE_MARK)})")
_MAX_SHAPES = 4096
#: a page (``render_page``) may build this many times what one message part may
PAGE_SCALE = 16
_SHAPE_ATTRS = {"tier", "timezone", "locale"}
_PLAIN_ATTRS = {"name", "id", "page_url"}


# Constructs that capture or transform printed output (a ``{% filter upper %}`` block, a macro
# whose result is filtered, ``{% set x %}...{% endset %}``): a marker printed inside them may
# not survive to the output, so a template using any of them is rendered per customer.
_CAPTURING = (
    nodes.FilterBlock,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Import,
    nodes.FromImport,
)


def _plain_customer_use(node: nodes.Node, up: tuple[nodes.Node, ...]) -> bool:
    """``up``: the node's ancestors, nearest first (four are enough)."""
    if isinstance(node, _CAPTURING):
        return False
    if isinstance(node, nodes.Name) and node.name == "self":
        return False
    if isinstance(node, nodes.Name) and node.name in CALLABLES and node.ctx != "load":
        return False  # {% set gettext = ... %}: the trans nodes would call something else
    if isinstance(node, nodes.Name) and node.name == "customer":
        if node.ctx != "load":
            return False
        parent = up[0] if up else None
        if isinstance(parent, nodes.Getattr) and parent.node is node:
            if parent.attr in _SHAPE_ATTRS:
                return True
            return parent.attr in _PLAIN_ATTRS and (
                (len(up) > 1 and isinstance(up[1], nodes.Output)) or _trans_variable(parent, up[1:])
            )
        return (
            isinstance(parent, nodes.Filter) and parent.name == "localtime" and node in parent.args
        )
    chain = (node, *up[:3])
    return all(_plain_customer_use(child, chain) for child in node.iter_child_nodes())


def _trans_variable(value: nodes.Node, up: tuple[nodes.Node, ...]) -> bool:
    """``{% trans name=customer.name %}...{{ name }}...{% endtrans %}``: the value is a
    keyword of a gettext call printed as it is (newstyle gettext puts it in with
    ``%(name)s``, escaped in HTML like a plain ``{{ ... }}``)."""
    if len(up) < 3:
        return False
    keyword, call, output = up[0], up[1], up[2]
    return (
        isinstance(keyword, nodes.Keyword)
        and keyword.value is value
        and isinstance(call, nodes.Call)
        and isinstance(call.node, nodes.Name)
        and call.node.name in CALLABLES
        and keyword in call.kwargs
        and isinstance(output, nodes.Output)
        and call in output.nodes
    )


def _label(words: NullTranslations, status: str) -> str:
    """A status as customers read it ("Investigating", "Untersuchung läuft")."""
    label = STATUS_LABELS.get(status)
    return status if label is None else str(words.pgettext("status", label))


def _via(where: str, name: str) -> str:
    return "" if where == name else f" (while rendering {name})"
