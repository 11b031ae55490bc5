"""The configuration's typed, frozen objects (what ``config.loader`` builds from TOML)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import platformdirs

APP = "outagecomms"


_CTRL = re.compile(r"[\x00-\x1f\x7f]")


SEVERITIES = ("sev1", "sev2", "sev3", "sev4")


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def user_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "outagecomms.toml"


@dataclass(frozen=True, kw_only=True)
class CompanyConfig:
    name: str = "Example Co"
    status_page_url: str = ""
    support_email: str = ""
    support_phone: str = ""
    #: the language a customer reads when theirs has no catalog (rendering.i18n)
    language: str = "en"


@dataclass(frozen=True, kw_only=True)
class DisplayNames:
    """``[components]`` and ``[regions]``: the names customers read for the directory's keys
    (``database = "Managed Database"``); a key without one is shown as it is."""

    components: Mapping[str, str] = field(default_factory=dict)
    regions: Mapping[str, str] = field(default_factory=dict)
    #: per language (``[components.database] names = { de = "Verwaltete Datenbank" }``):
    #: key -> language -> name
    component_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    region_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def component(self, key: str, language: str = "") -> str:
        """The name a reader of ``language`` (a catalog name: ``de``, ``fr_CA``) reads."""
        return _named(self.component_names.get(key), language) or self.components.get(key, key)

    def region(self, key: str, language: str = "") -> str:
        return _named(self.region_names.get(key), language) or self.regions.get(key, key)


def _named(names: Mapping[str, str] | None, language: str) -> str | None:
    """``fr_CA``'s name, else ``fr``'s."""
    if not names or not language:
        return None
    return names.get(language) or names.get(language.split("_")[0])


@dataclass(frozen=True, kw_only=True)
class PolicyConfig:
    update_every: timedelta = timedelta(minutes=30)
    #: the shortest cadence ``--every`` may set without ``--allow-short-cadence`` (customers
    #: told every 2 minutes get a message every 30-60 s); ``update_every`` may not go below it
    min_update_every: timedelta = timedelta(minutes=5)
    ack_within: timedelta = timedelta(minutes=10)
    remind_before: timedelta = timedelta(minutes=5)
    follow_up_after: timedelta = timedelta(hours=24)
    channels: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {"default": ("email",)})
    #: tiers whose ``account_manager`` gets a copy of every notice (internal template)
    account_manager_tiers: tuple[str, ...] = ()
    #: the email-kind channel that sends those copies
    account_manager_channel: str = "email"
    #: where a message that bounced for good goes next, in order (``()``: every configured
    #: channel of the kinds sms, slack, teams, webhook, in that order); the first for which the
    #: customer has a contact and no message of that round yet
    fallback: tuple[str, ...] = ()
    #: scheduled maintenance's reminders by tier (``"default"``: the other tiers), before the
    #: start; empty: ``[maintenance] remind`` for everyone (read from ``[policy.default]``)
    maintenance_remind: Mapping[str, tuple[timedelta, ...]] = field(default_factory=dict)

    def channels_for_tier(self, tier: str) -> tuple[str, ...]:
        return self.channels.get(tier) or self.channels.get("default") or ()


@dataclass(frozen=True, kw_only=True)
class ChannelConfig:
    """One ``[channels.<name>]`` table; ``settings`` holds the kind-specific keys."""

    name: str
    kind: str
    max_connections: int
    rate_per_second: float
    settings: Mapping[str, Any]
    source: str = ""

    def secret(self, key: str) -> str | None:
        """Read the environment variable that ``<key>_env`` names (None when unset/empty)."""
        var = self.settings.get(f"{key}_env") or ""
        if not var:
            return None
        return os.environ.get(var) or None

    def __repr__(self) -> str:  # never print secrets; *_env keys only name variables anyway
        return f"ChannelConfig(name={self.name!r}, kind={self.kind!r})"


@dataclass(frozen=True, kw_only=True)
class DispatchConfig:
    batch_size: int = 500
    #: a sender renews its claims every lease/3; a dead sender's claims are free after this
    lease: timedelta = timedelta(seconds=15)
    max_attempts: int = 5
    retry_base: timedelta = timedelta(seconds=5)
    processes: int = 0  # sender processes for a large fan-out; 0 = one per CPU (at most 4)
    parallel_min: int = 2000  # a fan-out this large uses several processes


@dataclass(frozen=True, kw_only=True)
class DaemonConfig:
    http: str = ""
    public_url: str = ""
    secret_env: str = "OUTAGECOMMS_SECRET"
    reconcile_every: timedelta = timedelta(seconds=2)
    # more than one cron minute, so a `tick` every minute keeps every promise
    min_margin: timedelta = timedelta(seconds=90)
    commander_channel: str = "email"  # internal channel for reminders to the commander
    #: for a chat-kind commander channel (slack, teams, webhook): the environment variable
    #: holding the incident room's webhook URL
    commander_webhook_env: str = ""
    leader_lease: timedelta = timedelta(seconds=15)  # PostgreSQL: max time to a new leader


@dataclass(frozen=True, kw_only=True)
class IncidentPageConfig:
    """``[incident_page]``: each customer's own incident page (``GET /i/<token>``), linked
    from every message once ``[daemon] public_url`` and the daemon secret are set."""

    enabled: bool = True
    #: how long a link works after the message carrying it was sent (the page shows the
    #: credit and the survey after resolution, so weeks, not hours)
    link_lifetime: timedelta = timedelta(days=30)
    #: how often an open page checks the store for news (server-sent events)
    refresh: timedelta = timedelta(seconds=5)
    #: how long the page's form stays valid after the page was shown (its CSRF token)
    form_lifetime: timedelta = timedelta(hours=12)


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """``[web]``: how the HTTP listener (``[daemon] http``) treats slow or numerous clients."""

    #: a request's line and headers must have arrived this long after the connection opened
    #: (or the previous response ended); else the connection is closed (408)
    header_timeout: timedelta = timedelta(seconds=10)
    #: a request's body must have arrived this long after its headers; else the connection is
    #: closed
    body_timeout: timedelta = timedelta(seconds=30)
    #: open connections at once; one more is answered 503 and closed at once
    max_connections: int = 100


@dataclass(frozen=True, kw_only=True)
class TemplateLimits:
    """``[templates]``: how much one template part may build and compute (a hostile override
    must not hang or flood a sender; see ``rendering.sandbox``)."""

    #: characters of a subject (after its whitespace is collapsed): RFC 5322's line limit
    max_subject: int = 998
    #: characters of any other part (text, HTML) and of any value a template builds
    max_body: int = 256 * 1024
    #: loop iterations, calls, filters and operators in one render of one part
    max_steps: int = 200_000
    #: wall-clock time one render of one part may take
    render_timeout: timedelta = timedelta(seconds=5)


#: Alert severity label values understood without configuration (a rule's severity_map is
#: merged over this; sev1..sev4 are always taken as they are).
DEFAULT_SEVERITY_MAP: Mapping[str, str] = {
    "critical": "sev1",
    "page": "sev1",
    "error": "sev2",
    "major": "sev2",
    "high": "sev2",
    "warning": "sev3",
    "minor": "sev3",
    "medium": "sev3",
    "info": "sev4",
    "low": "sev4",
}


@dataclass(frozen=True, kw_only=True)
class HookRule:
    """One ``[[hooks.rules]]`` entry: which alerts it takes and how their labels become an
    incident's components, regions and severity. The first rule that matches an alert wins."""

    name: str
    match: Mapping[str, str] = field(default_factory=dict)  # label equals value
    match_re: Mapping[str, re.Pattern[str]] = field(default_factory=dict)  # label matches, whole
    title: str = ""  # "{service} is unavailable in {region}"; "" = the alert's summary/name
    components_from: tuple[str, ...] = ("service", "component")
    components: tuple[str, ...] = ()
    regions_from: tuple[str, ...] = ("region",)
    regions: tuple[str, ...] = ()
    severity_from: str = "severity"
    severity_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY_MAP))
    severity: str = "sev3"  # when the label is missing or not in the map
    auto_declare: bool = False
    every: timedelta | None = None
    commander: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match.items()) and all(
            p.fullmatch(labels.get(k, "")) is not None for k, p in self.match_re.items()
        )


#: With no [[hooks.rules]]: every alert becomes a draft; components from the ``service`` or
#: ``component`` label, regions from ``region``, severity from ``severity``; never auto-declared.
DEFAULT_HOOK_RULE = HookRule(name="default")


@dataclass(frozen=True, kw_only=True)
class HooksConfig:
    """``[hooks]``: monitoring alerts that propose (or declare) incidents."""

    token_env: str = "OUTAGECOMMS_HOOKS_TOKEN"
    max_body: int = 1024 * 1024
    rules: tuple[HookRule, ...] = ()

    def token(self) -> str | None:
        """The bearer token senders must present (None when the variable is unset or empty:
        the hooks then refuse every request)."""
        if not self.token_env:
            return None
        return os.environ.get(self.token_env) or None

    @property
    def effective_rules(self) -> tuple[HookRule, ...]:
        return self.rules or (DEFAULT_HOOK_RULE,)


#: words that send a customer's reply to a person whatever its score (``[[escalation]] words``)
DEFAULT_ESCALATION_WORDS: tuple[str, ...] = (
    "cancel",
    "cancelling",
    "canceling",
    "cancellation",
    "refund",
    "lawyer",
    "legal",
    "contract",
    "again",
    "third time",
    "unacceptable",
    "switch provider",
    "kündigen",
    "kündigung",
    "anwalt",
    "vertrag",
    "schon wieder",
    "résilier",
    "résiliation",
    "remboursement",
    "avocat",
    "contrat",
    "encore",
    "解約",
    "返金",
    "弁護士",
    "契約",
    "また",
)


@dataclass(frozen=True, kw_only=True)
class EscalationRule:
    """One ``[[escalation]]`` entry. Its conditions all hold (none: every reply from a person),
    the first rule that holds wins and its ``notify`` targets are told, with the customer's
    words and who they are."""

    name: str
    labels: tuple[str, ...] = ()  # the reply's label is one of these
    score_below: float | None = None  # sentiment below this (a scored reply)
    #: False: only replies that could not be scored (another language: a person reads them)
    scored: bool | None = None
    words: tuple[str, ...] = ()  # any of these words or phrases (whole words, any case)
    tiers: tuple[str, ...] = ()  # the customer's tier is one of these
    #: repeat hurt: the customer was in at least ``incidents_at_least`` incidents declared in
    #: the last ``incidents_within`` (this one included)
    incidents_at_least: int = 0
    incidents_within: timedelta = timedelta(days=90)
    credit_at_least: Any = None  # Decimal: their credit for this incident, in their currency
    #: "account_manager", "commander", an email address, or an https:// webhook URL
    notify: tuple[str, ...] = ("account_manager", "commander")


#: With no [[escalation]] rules: every match of the default words, every negative reply, and
#: every reply that could not be scored (a language the scorer does not read: "marked for a
#: person") goes to the account manager (if any) and the commander.
DEFAULT_ESCALATION: tuple[EscalationRule, ...] = (
    EscalationRule(name="words", words=DEFAULT_ESCALATION_WORDS),
    EscalationRule(name="negative", labels=("negative",)),
    EscalationRule(name="not scored", scored=False),
)


@dataclass(frozen=True, kw_only=True)
class InboundConfig:
    """``[inbound]``: how replies, bounces and texts come back (see ``docs/inbound.md``)."""

    smtp: str = ""  # HOST:PORT of the daemon's SMTP listener ("" = none)
    lmtp: str = ""  # HOST:PORT of its LMTP listener (a Postfix transport_maps hand-off)
    #: the environment variable holding ``imaps://user:password@host[:port]/FOLDER``
    imap_url_env: str = ""
    imap_processed: str = "Processed"  # where a stored message is moved
    imap_poll: timedelta = timedelta(seconds=30)  # without IDLE: how often to look
    #: ``replies@status.example.com``: every email we send carries
    #: ``Reply-To: replies+<token>@status.example.com`` ("" = no Reply-To of ours)
    reply_to: str = ""
    max_size: int = 10 * 1024 * 1024  # bytes of one message; larger: refused (552)
    max_depth: int = 20  # MIME nesting that is descended
    max_headers: int = 500
    keep_attachments: bool = False
    keep: timedelta = timedelta(days=180)  # `db prune` deletes what is older
    scorer: str = "vader"  # or "package.module:attr" (an operator's own)
    acknowledge: bool = True  # thank a person who wrote, once per round
    escalation: tuple[EscalationRule, ...] = DEFAULT_ESCALATION

    @property
    def enabled(self) -> bool:
        return bool(self.smtp or self.lmtp or self.imap_url_env)


#: the image types ``[status_page] logo`` may be, by file suffix
LOGO_TYPES: Mapping[str, str] = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


@dataclass(frozen=True, kw_only=True)
class StatusPageConfig:
    """``[status_page]``: the public status page the daemon serves (``GET /status``, its Atom
    feed and its Statuspage-shaped JSON summary; see ``docs/status-page.md``)."""

    enabled: bool = False
    title: str = ""  # "" here; the loader sets "<company name> status"
    #: the logo file (checked at load: it exists and is a PNG, SVG or JPEG); served at
    #: ``/status/logo`` so that the page loads nothing from elsewhere
    logo: Path | None = None
    #: the public components' keys, in the order shown; None: the ``[components]`` table's
    #: keys if any, else every component of the directory
    components: tuple[str, ...] | None = None
    history_days: int = 90
    #: how long the computed page data is reused; never served older than this
    cache: timedelta = timedelta(seconds=5)
    timezone: str = "UTC"

    @property
    def logo_type(self) -> str | None:
        return None if self.logo is None else LOGO_TYPES.get(self.logo.suffix.lower())


#: ``[maintenance] remind``'s default: three days, a day and an hour before the start
DEFAULT_MAINTENANCE_REMIND = (timedelta(hours=72), timedelta(hours=24), timedelta(hours=1))


@dataclass(frozen=True)
class MaintenanceConfig:
    """``[maintenance]``: scheduled maintenance (``docs/maintenance.md``)."""

    #: when reminders go out, before the window starts (longest first); a window's own
    #: ``--remind`` replaces it
    remind: tuple[timedelta, ...] = DEFAULT_MAINTENANCE_REMIND
    #: a window not completed by its end plus this: the commander is reminded (once)
    grace: timedelta = timedelta(minutes=15)
    #: not completed by its end plus this: an incident is declared for the window's audience
    #: (None: never)
    overrun_after: timedelta | None = None
    #: that incident's severity
    overrun_severity: str = "sev3"


@dataclass(frozen=True, kw_only=True)
class Config:
    path: Path | None
    store_url: str
    company: CompanyConfig
    policies: Mapping[str, PolicyConfig]
    channels: Mapping[str, ChannelConfig]
    dispatch: DispatchConfig
    daemon: DaemonConfig
    templates_dir: Path | None
    #: ``[templates] locale_dir``: the user's gettext catalogs, merged over ours
    locale_dir: Path | None = None
    credits: Any = None  # recovery.credits.CreditPolicy (no rules: nobody is credited)
    goodwill: tuple[Any, ...] = ()  # recovery.goodwill.GoodwillRule, tried in order
    hooks: HooksConfig = field(default_factory=HooksConfig)
    names: DisplayNames = field(default_factory=DisplayNames)
    web: WebConfig = field(default_factory=WebConfig)
    template_limits: TemplateLimits = field(default_factory=TemplateLimits)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    status_page: StatusPageConfig = field(default_factory=StatusPageConfig)
    incident_page: IncidentPageConfig = field(default_factory=IncidentPageConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    #: what is odd but not wrong (a ``*_env`` that looks like a pasted secret): one sentence
    #: each, naming the file and key, never the value; the CLI prints them, ``doctor`` too
    warnings: tuple[str, ...] = ()

    def policy(self, severity: str) -> PolicyConfig:
        return self.policies.get(severity) or self.policies["default"]
