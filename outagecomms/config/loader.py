"""Configuration: one TOML file loaded into frozen, typed objects and validated once.

Where the file is found: ``--config``, ``$OUTAGECOMMS_CONFIG``, ``./outagecomms.toml``, then the
platform's user config dir; with none, ``load_config`` refuses, naming those places (a command
run from the wrong folder would otherwise open another, empty store and report "no open
incidents" in the middle of an outage). A file's missing keys take built-in defaults (a SQLite
store in the user data dir, an SMTP channel on 127.0.0.1:25). ``$OUTAGECOMMS_STORE_URL``
overrides ``[store] url``.
Secrets are never inline: keys ending in ``_env`` name an environment variable."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from outagecomms.config.model import (
    _CTRL,
    DEFAULT_SEVERITY_MAP,
    SEVERITIES,
    ChannelConfig,
    CompanyConfig,
    Config,
    DaemonConfig,
    DispatchConfig,
    HookRule,
    HooksConfig,
    InboundConfig,
    IncidentPageConfig,
    MaintenanceConfig,
    PolicyConfig,
    StatusPageConfig,
    TemplateLimits,
    WebConfig,
    user_config_file,
    user_data_dir,
)
from outagecomms.config.names import parse_display_names
from outagecomms.errors import ConfigError
from outagecomms.values import FieldReader, env_name_problem, format_duration, mask_url

#: the bounds of the keys that take less than ``values.MAX_INTEGER`` (docs/config.md)
MAX_BATCH_SIZE = 100_000
MAX_ATTEMPTS = 1_000
MAX_PROCESSES = 64
MAX_CONNECTIONS = 10_000
MAX_RATE_PER_SECOND = 1_000_000
MAX_HOOK_BODY = 64 * 1024 * 1024


class _Ctx(FieldReader):
    """The config's field reader, plus strings (one line: they end up in headers)."""

    def string(self, data: Mapping[str, Any], prefix: str, key: str, default: str) -> str:
        v = data.get(key, default)
        if not isinstance(v, str):
            raise self.err(f"{prefix}.{key}", f"must be a string, got {v!r}")
        if _CTRL.search(v):  # values end up in headers and messages: one line, no controls
            shown = mask_url(repr(v))  # store.url: its password stays unprinted
            raise self.err(f"{prefix}.{key}", f"must not contain control characters, got {shown}")
        return v


_POLICY_KEYS = {
    "update_every",
    "min_update_every",
    "ack_within",
    "remind_before",
    "follow_up_after",
    "channels",
    "account_manager_tiers",
    "account_manager_channel",
    "fallback",
    "maintenance_remind",
}


_TOP_KEYS = {
    "store",
    "company",
    "policy",
    "channels",
    "dispatch",
    "daemon",
    "templates",
    "credits",
    "goodwill",
    "hooks",
    "components",
    "regions",
    "web",
    "inbound",
    "escalation",
    "status_page",
    "incident_page",
    "maintenance",
}


def _parse_policy(
    ctx: _Ctx, data: Mapping[str, Any], prefix: str, base: PolicyConfig, channel_names: set[str]
) -> PolicyConfig:
    ctx.known(data, prefix, _POLICY_KEYS)
    channels: dict[str, tuple[str, ...]] = dict(base.channels)
    if "channels" in data:
        raw = ctx.table(data["channels"], f"{prefix}.channels")
        channels = {}
        for tier, names in raw.items():
            key = f"{prefix}.channels.{tier}"
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ctx.err(key, f"must be a list of channel names, got {names!r}")
            for n in names:
                if n not in channel_names:
                    raise ctx.err(
                        key,
                        f"channel {n!r} is not configured; configured channels: "
                        + (", ".join(sorted(channel_names)) or "none")
                        + " (add a [channels."
                        + n
                        + "] table)",
                    )
            channels[tier] = tuple(names)
    am_tiers = base.account_manager_tiers
    if "account_manager_tiers" in data:
        raw_tiers = data["account_manager_tiers"]
        if not isinstance(raw_tiers, list) or not all(isinstance(n, str) for n in raw_tiers):
            raise ctx.err(
                f"{prefix}.account_manager_tiers", f"must be a list of tiers, got {raw_tiers!r}"
            )
        am_tiers = tuple(raw_tiers)
    am_channel = ctx.string(data, prefix, "account_manager_channel", base.account_manager_channel)
    if am_tiers and am_channel not in channel_names:
        raise ctx.err(
            f"{prefix}.account_manager_channel",
            f"channel {am_channel!r} is not configured; configured channels: "
            + (", ".join(sorted(channel_names)) or "none"),
        )
    fallback = base.fallback
    if "fallback" in data:
        raw_fb = data["fallback"]
        if not isinstance(raw_fb, list) or not all(isinstance(n, str) for n in raw_fb):
            raise ctx.err(f"{prefix}.fallback", f"must be a list of channel names, got {raw_fb!r}")
        for n in raw_fb:
            if n not in channel_names:
                raise ctx.err(
                    f"{prefix}.fallback",
                    f"channel {n!r} is not configured; configured channels: "
                    + (", ".join(sorted(channel_names)) or "none"),
                )
        fallback = tuple(raw_fb)
    update_every = ctx.duration(data, prefix, "update_every", base.update_every)
    floor = ctx.duration(data, prefix, "min_update_every", base.min_update_every)
    if update_every < floor:
        key = (
            "update_every"
            if "update_every" in data or "min_update_every" not in data
            else ("min_update_every")
        )
        raise ctx.err(
            f"{prefix}.{key}",
            f"update_every ({format_duration(update_every)}) is below min_update_every "
            f"({format_duration(floor)}): customers would hear from us that often; raise "
            "update_every or lower min_update_every",
        )
    remind = dict(base.maintenance_remind)
    if "maintenance_remind" in data:
        from outagecomms.config.maintenance import reminder_offsets
        from outagecomms.errors import InputError

        raw_remind = ctx.table(data["maintenance_remind"], f"{prefix}.maintenance_remind")
        remind = {}
        for tier, offsets in raw_remind.items():
            key = f"{prefix}.maintenance_remind.{tier}"
            if not isinstance(offsets, list) or not all(isinstance(o, str) for o in offsets):
                raise ctx.err(
                    key, f'must be a list of durations such as ["24h", "1h"], got {offsets!r}'
                )
            try:
                remind[tier] = reminder_offsets(offsets, field=key)
            except InputError as exc:
                raise ctx.err(key, exc.text) from None
    return PolicyConfig(
        maintenance_remind=remind,
        update_every=update_every,
        min_update_every=floor,
        ack_within=ctx.duration(data, prefix, "ack_within", base.ack_within),
        remind_before=ctx.duration(data, prefix, "remind_before", base.remind_before),
        follow_up_after=ctx.duration(data, prefix, "follow_up_after", base.follow_up_after),
        channels=channels,
        account_manager_tiers=am_tiers,
        account_manager_channel=am_channel,
        fallback=fallback,
    )


_HOOKS_KEYS = {"token_env", "max_body", "rules"}


_WEB_KEYS = {"header_timeout", "body_timeout", "max_connections"}
_MAX_WEB_TIMEOUT = timedelta(hours=1)
_MAX_WEB_CONNECTIONS = 10_000


_INCIDENT_PAGE_KEYS = {"enabled", "link_lifetime", "refresh", "form_lifetime"}


def _parse_incident_page(ctx: _Ctx, data: Any) -> IncidentPageConfig:
    table = ctx.table(data, "incident_page")
    ctx.known(table, "incident_page", _INCIDENT_PAGE_KEYS)
    base = IncidentPageConfig()
    enabled = table.get("enabled", base.enabled)
    if not isinstance(enabled, bool):
        raise ctx.err("incident_page.enabled", f"must be true or false, got {enabled!r}")

    def span(key: str, default: timedelta, low: timedelta, high: timedelta) -> timedelta:
        value = ctx.duration(table, "incident_page", key, default)
        if not low <= value <= high:
            raise ctx.err(
                f"incident_page.{key}",
                f"must be from {format_duration(low)} to {format_duration(high)}, "
                f"got {table[key]!r}",
            )
        return value

    return IncidentPageConfig(
        enabled=enabled,
        link_lifetime=span(
            "link_lifetime", base.link_lifetime, timedelta(hours=1), timedelta(days=365)
        ),
        refresh=span("refresh", base.refresh, timedelta(seconds=1), timedelta(minutes=10)),
        form_lifetime=span(
            "form_lifetime", base.form_lifetime, timedelta(minutes=5), timedelta(days=7)
        ),
    )


def _parse_web(ctx: _Ctx, data: Any) -> WebConfig:
    web = ctx.table(data, "web")
    ctx.known(web, "web", _WEB_KEYS)
    base = WebConfig()

    def timeout(key: str, default: timedelta) -> timedelta:
        value = ctx.duration(web, "web", key, default)
        if not timedelta(0) < value <= _MAX_WEB_TIMEOUT:
            raise ctx.err(f"web.{key}", f"must be more than 0s and at most 1h, got {web[key]!r}")
        return value

    header_timeout = timeout("header_timeout", base.header_timeout)
    body_timeout = timeout("body_timeout", base.body_timeout)
    conns = ctx.integer(web, "web", "max_connections", base.max_connections, minimum=1)
    if conns > _MAX_WEB_CONNECTIONS:
        raise ctx.err("web.max_connections", f"must be at most {_MAX_WEB_CONNECTIONS}, got {conns}")
    return WebConfig(
        header_timeout=header_timeout, body_timeout=body_timeout, max_connections=conns
    )


_TEMPLATE_LIMIT_KEYS = {"max_subject", "max_body", "max_steps", "render_timeout"}
#: the bounds of [templates]' limits (docs/config.md)
MAX_SUBJECT = 998  # RFC 5322: a header line is at most 998 characters
MIN_BODY, MAX_BODY = 1024, 16 * 1024 * 1024
MIN_STEPS, MAX_STEPS = 1_000, 100_000_000
MAX_RENDER_TIMEOUT = timedelta(seconds=60)


def _parse_language(ctx: _Ctx, value: str) -> str:
    """``[company] language``: a language (``de``) or locale (``de_AT``) Babel knows."""
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(value.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise ctx.err(
            "company.language", f'{value!r} is not a language code like "en" or "de"'
        ) from None
    return value.replace("-", "_")


def _parse_template_limits(ctx: _Ctx, tpl: Mapping[str, Any]) -> TemplateLimits:
    base = TemplateLimits()
    timeout = ctx.duration(tpl, "templates", "render_timeout", base.render_timeout)
    if not timedelta(milliseconds=10) <= timeout <= MAX_RENDER_TIMEOUT:
        raise ctx.err(
            "templates.render_timeout",
            f"must be from 10ms to 60s, got {tpl['render_timeout']!r}",
        )
    return TemplateLimits(
        max_subject=ctx.integer(
            tpl, "templates", "max_subject", base.max_subject, minimum=1, maximum=MAX_SUBJECT
        ),
        max_body=ctx.integer(
            tpl, "templates", "max_body", base.max_body, minimum=MIN_BODY, maximum=MAX_BODY
        ),
        max_steps=ctx.integer(
            tpl, "templates", "max_steps", base.max_steps, minimum=MIN_STEPS, maximum=MAX_STEPS
        ),
        render_timeout=timeout,
    )


_RULE_KEYS = {
    "name",
    "match",
    "match_re",
    "title",
    "components_from",
    "components",
    "regions_from",
    "regions",
    "severity_from",
    "severity_map",
    "severity",
    "auto_declare",
    "every",
    "commander",
}


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _parse_hooks(ctx: _Ctx, data: Any) -> HooksConfig:
    hooks = ctx.table(data, "hooks")
    ctx.known(hooks, "hooks", _HOOKS_KEYS)
    token_env = ctx.string(hooks, "hooks", "token_env", "OUTAGECOMMS_HOOKS_TOKEN")
    max_body = ctx.integer(
        hooks, "hooks", "max_body", 1024 * 1024, minimum=1024, maximum=MAX_HOOK_BODY
    )
    raw_rules = hooks.get("rules", [])
    if not isinstance(raw_rules, list):
        raise ctx.err("hooks.rules", "must be an array of tables ([[hooks.rules]])")
    rules = tuple(_parse_rule(ctx, raw, i) for i, raw in enumerate(raw_rules))
    names = [r.name for r in rules]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ctx.err(f"hooks.rules[{i}].name", f"{n!r} is used by an earlier rule")
    return HooksConfig(token_env=token_env, max_body=max_body, rules=rules)


def _parse_rule(ctx: _Ctx, raw: Any, i: int) -> HookRule:
    prefix = f"hooks.rules[{i}]"
    data = ctx.table(raw, prefix)
    ctx.known(data, prefix, _RULE_KEYS)

    def names(key: str) -> tuple[str, ...] | None:
        """A label name or a list of them (None when the key is absent)."""
        if key not in data:
            return None
        v = data[key]
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not all(
            isinstance(x, str) and _LABEL_NAME.fullmatch(x) for x in items
        ):
            raise ctx.err(f"{prefix}.{key}", f"must be a label name or a list of them, got {v!r}")
        return tuple(items)

    def values(key: str) -> tuple[str, ...]:
        v = data.get(key, [])
        if not isinstance(v, list) or not all(
            isinstance(x, str) and x.strip() and not _CTRL.search(x) for x in v
        ):
            raise ctx.err(f"{prefix}.{key}", f"must be a list of names, got {v!r}")
        return tuple(x.strip() for x in v)

    def sev(key: str, value: object) -> str:
        if not isinstance(value, str) or value.strip().lower() not in SEVERITIES:
            raise ctx.err(key, f"must be one of {', '.join(SEVERITIES)}, got {value!r}")
        return value.strip().lower()

    match = ctx.table(data.get("match", {}), f"{prefix}.match")
    for k, v in match.items():
        if not isinstance(v, str):
            raise ctx.err(f"{prefix}.match.{k}", f"must be a string (the label's value), got {v!r}")
    match_re: dict[str, re.Pattern[str]] = {}
    for k, v in ctx.table(data.get("match_re", {}), f"{prefix}.match_re").items():
        if not isinstance(v, str):
            raise ctx.err(f"{prefix}.match_re.{k}", f"must be a regular expression, got {v!r}")
        try:
            match_re[k] = re.compile(v)
        except re.error as exc:
            raise ctx.err(f"{prefix}.match_re.{k}", f"not a regular expression: {exc}") from None
    title = ctx.string(data, prefix, "title", "").strip()
    for m in _PLACEHOLDER.finditer(title):
        if not _LABEL_NAME.fullmatch(m.group(1)):
            raise ctx.err(
                f"{prefix}.title",
                f"placeholder {m.group(0)!r} is not a label name; use e.g. {{service}}",
            )
    severity_map = dict(DEFAULT_SEVERITY_MAP)
    for k, v in ctx.table(data.get("severity_map", {}), f"{prefix}.severity_map").items():
        severity_map[k.lower()] = sev(f"{prefix}.severity_map.{k}", v)
    auto = data.get("auto_declare", False)
    if not isinstance(auto, bool):
        raise ctx.err(f"{prefix}.auto_declare", f"must be true or false, got {auto!r}")
    if auto and not title:
        raise ctx.err(
            f"{prefix}.title",
            "is required when auto_declare = true: customers read it as the subject",
        )
    fixed_c, fixed_r = values("components"), values("regions")
    # Label names given, or a fixed list given, or by default the usual labels.
    comp_from = names("components_from")
    reg_from = names("regions_from")
    every = ctx.duration(data, prefix, "every") if "every" in data else None
    severity_from = names("severity_from")
    if severity_from is not None and len(severity_from) != 1:
        raise ctx.err(f"{prefix}.severity_from", "must be one label name")
    return HookRule(
        name=ctx.string(data, prefix, "name", f"rule-{i + 1}").strip() or f"rule-{i + 1}",
        match=dict(match),
        match_re=match_re,
        title=title,
        components_from=comp_from
        if comp_from is not None
        else (() if fixed_c else ("service", "component")),
        components=fixed_c,
        regions_from=reg_from if reg_from is not None else (() if fixed_r else ("region",)),
        regions=fixed_r,
        severity_from=severity_from[0] if severity_from else "severity",
        severity_map=severity_map,
        severity=sev(f"{prefix}.severity", data.get("severity", "sev3")),
        auto_declare=auto,
        every=every,
        commander=ctx.string(data, prefix, "commander", "").strip(),
    )


def _resolve_path(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p


def resolve_store_url(url: str, base: Path) -> str:
    """Make a relative ``sqlite:///file.db`` URL relative to ``base`` (the config's folder)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("file:"):
            return prefix + str(_resolve_path(base, rest))
    return url


_MEMORY_STORE = re.compile(
    r"sqlite(\+\w+)?://(/(:memory:)?)?(\?.*)?|.*mode=memory.*", re.IGNORECASE
)


def _check_store_url(ctx: _Ctx, url: str, key: str) -> None:
    """An in-memory SQLite database is gone when the command ends: a store keeps nothing in
    it (``customers import`` would say "imported 40" and the next command find none)."""
    if _MEMORY_STORE.fullmatch(url.strip()) or ":memory:" in url:
        raise ctx.err(
            key,
            "an in-memory SQLite database keeps nothing between commands; "
            'use a file, e.g. url = "sqlite:///outagecomms.db"',
        )


def _env_name_warnings(
    ctx: _Ctx, channels: Mapping[str, ChannelConfig], daemon: DaemonConfig, hooks: HooksConfig
) -> tuple[str, ...]:
    """A warning for each ``*_env`` key whose value is not a variable's name (a pasted token,
    say): the file and key, never the value."""
    named: list[tuple[str, str]] = [
        (f"channels.{n}.{k}", str(v))
        for n, ch in channels.items()
        for k, v in ch.settings.items()
        if k.endswith("_env")
    ]
    named += [
        ("daemon.secret_env", daemon.secret_env),
        ("daemon.commander_webhook_env", daemon.commander_webhook_env),
        ("hooks.token_env", hooks.token_env),
    ]
    where = f"{ctx.source}: " if ctx.source else ""
    return tuple(
        f"{where}{key}: {problem}"
        for key, name in named
        if name and (problem := env_name_problem(name)) is not None
    )


def default_store_url() -> str:
    return "sqlite:///" + str(user_data_dir() / "outagecomms.db")


def parse_config(data: Mapping[str, Any], path: Path | None) -> Config:
    """Validate a parsed TOML document. Raises ConfigError naming the key and the file."""
    from outagecomms.channels import registry

    ctx = _Ctx(path)
    base = path.parent if path else Path.cwd()
    ctx.known(data, "", _TOP_KEYS)

    store = ctx.table(data.get("store", {}), "store")
    ctx.known(store, "store", {"url"})
    store_url = ctx.string(store, "store", "url", "")
    store_url = resolve_store_url(store_url, base) if store_url else default_store_url()
    _check_store_url(ctx, store_url, "store.url")
    env_url = os.environ.get("OUTAGECOMMS_STORE_URL")
    if env_url:
        store_url = resolve_store_url(env_url, Path.cwd())
        _check_store_url(ctx, store_url, "$OUTAGECOMMS_STORE_URL")

    comp = ctx.table(data.get("company", {}), "company")
    ctx.known(
        comp, "company", {"name", "status_page_url", "support_email", "support_phone", "language"}
    )
    company = CompanyConfig(
        language=_parse_language(ctx, ctx.string(comp, "company", "language", "en")),
        name=ctx.string(comp, "company", "name", "Example Co"),
        status_page_url=ctx.string(comp, "company", "status_page_url", ""),
        support_email=ctx.string(comp, "company", "support_email", ""),
        support_phone=ctx.string(comp, "company", "support_phone", ""),
    )

    channels: dict[str, ChannelConfig] = {}
    raw_channels = ctx.table(data.get("channels", {}), "channels")
    if "channels" not in data:
        raw_channels = {"email": {"kind": "smtp"}}
    for name, raw in raw_channels.items():
        prefix = f"channels.{name}"
        table = ctx.table(raw, prefix)
        kind = table.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ctx.err(f"{prefix}.kind", "is required: the channel implementation")
        try:
            cls = registry.get(kind)
        except KeyError:
            raise ctx.err(
                f"{prefix}.kind",
                f"unknown channel kind {kind!r}; known kinds: " + ", ".join(registry.names()),
            ) from None
        allowed = {"kind", "max_connections", "rate_per_second", *cls.config_keys}
        ctx.known(table, prefix, allowed)
        settings: dict[str, Any] = {}
        for key, (typ, default) in cls.config_keys.items():
            value = table.get(key, default)
            if typ is int:
                value = ctx.integer(table, prefix, key, default)
            elif typ is bool:
                if not isinstance(value, bool):
                    raise ctx.err(f"{prefix}.{key}", f"must be true or false, got {value!r}")
            elif typ is str:
                value = ctx.string(table, prefix, key, default)
            elif typ == "path":
                value = str(_resolve_path(base, ctx.string(table, prefix, key, default)))
            elif isinstance(typ, tuple) and value not in typ:
                raise ctx.err(f"{prefix}.{key}", f"must be one of {', '.join(typ)}, got {value!r}")
            settings[key] = value
        check: Callable[[Mapping[str, Any]], str | None] | None = getattr(cls, "check_config", None)
        problem = check(settings) if check else None
        if problem:
            raise ctx.err(prefix, problem)
        channels[name] = ChannelConfig(
            name=name,
            kind=kind,
            max_connections=ctx.integer(
                table,
                prefix,
                "max_connections",
                cls.max_connections,
                minimum=1,
                maximum=MAX_CONNECTIONS,
            ),
            rate_per_second=ctx.number(
                table, prefix, "rate_per_second", cls.rate_per_second, maximum=MAX_RATE_PER_SECOND
            ),
            settings=settings,
            source=str(path or "<defaults>"),
        )

    raw_policy = ctx.table(data.get("policy", {}), "policy")
    for k in raw_policy:
        if k != "default" and k not in SEVERITIES:
            raise ctx.err(
                f"policy.{k}", "unknown policy; use policy.default or policy.sev1 .. policy.sev4"
            )
    default_in = ctx.table(raw_policy.get("default", {}), "policy.default")
    names = set(channels)
    start = PolicyConfig(channels={"default": tuple(n for n in ("email",) if n in names)})
    default = _parse_policy(ctx, default_in, "policy.default", start, names)
    policies = {"default": default}
    for sev in SEVERITIES:
        raw = ctx.table(raw_policy.get(sev, {}), f"policy.{sev}")
        policies[sev] = _parse_policy(ctx, raw, f"policy.{sev}", default, names)

    disp = ctx.table(data.get("dispatch", {}), "dispatch")
    ctx.known(
        disp,
        "dispatch",
        {"batch_size", "lease", "max_attempts", "retry_base", "processes", "parallel_min"},
    )
    dispatch = DispatchConfig(
        batch_size=ctx.integer(
            disp, "dispatch", "batch_size", 500, minimum=1, maximum=MAX_BATCH_SIZE
        ),
        lease=ctx.duration(disp, "dispatch", "lease", timedelta(seconds=15)),
        max_attempts=ctx.integer(
            disp, "dispatch", "max_attempts", 5, minimum=1, maximum=MAX_ATTEMPTS
        ),
        retry_base=ctx.duration(disp, "dispatch", "retry_base", timedelta(seconds=5)),
        processes=ctx.integer(disp, "dispatch", "processes", 0, minimum=0, maximum=MAX_PROCESSES),
        parallel_min=ctx.integer(disp, "dispatch", "parallel_min", 2000, minimum=1),
    )

    dmn = ctx.table(data.get("daemon", {}), "daemon")
    ctx.known(
        dmn,
        "daemon",
        {
            "http",
            "public_url",
            "secret_env",
            "reconcile_every",
            "min_margin",
            "commander_channel",
            "commander_webhook_env",
            "leader_lease",
        },
    )
    daemon = DaemonConfig(
        http=ctx.string(dmn, "daemon", "http", ""),
        public_url=ctx.string(dmn, "daemon", "public_url", ""),
        secret_env=ctx.string(dmn, "daemon", "secret_env", "OUTAGECOMMS_SECRET"),
        reconcile_every=ctx.duration(dmn, "daemon", "reconcile_every", timedelta(seconds=2)),
        min_margin=ctx.duration(dmn, "daemon", "min_margin", timedelta(seconds=90)),
        commander_channel=ctx.string(dmn, "daemon", "commander_channel", "email"),
        commander_webhook_env=ctx.string(dmn, "daemon", "commander_webhook_env", ""),
        leader_lease=ctx.duration(dmn, "daemon", "leader_lease", timedelta(seconds=15)),
    )

    tpl = ctx.table(data.get("templates", {}), "templates")
    ctx.known(tpl, "templates", {"dir", "locale_dir", *_TEMPLATE_LIMIT_KEYS})
    template_limits = _parse_template_limits(ctx, tpl)
    templates_dir: Path | None = None
    if "dir" in tpl:
        templates_dir = _resolve_path(base, ctx.string(tpl, "templates", "dir", ""))
        if not templates_dir.is_dir():
            raise ctx.err("templates.dir", f"folder {templates_dir} does not exist")
    elif path and (base / "templates").is_dir():
        templates_dir = base / "templates"
    locale_dir: Path | None = None
    if "locale_dir" in tpl:
        locale_dir = _resolve_path(base, ctx.string(tpl, "templates", "locale_dir", ""))
        if not locale_dir.is_dir():
            raise ctx.err("templates.locale_dir", f"folder {locale_dir} does not exist")

    source = str(path or "<defaults>")
    credits = None  # no [credits]: nobody is credited (and the engine is not even imported)
    if "credits" in data:
        from outagecomms.recovery.credits import parse_credit_policy

        credits = parse_credit_policy(data.get("credits"), source=source)
    goodwill: tuple[Any, ...] = ()
    if "goodwill" in data:
        from outagecomms.recovery.goodwill import parse_goodwill

        goodwill = parse_goodwill(data.get("goodwill"), source=source)

    hooks = _parse_hooks(ctx, data["hooks"]) if "hooks" in data else HooksConfig()
    floor = min(p.min_update_every for p in policies.values())
    for i, rule in enumerate(hooks.rules):
        if rule.every is not None and rule.every < floor:
            raise ctx.err(
                f"hooks.rules[{i}].every",
                f"({format_duration(rule.every)}) is below every policy's min_update_every "
                f"({format_duration(floor)})",
            )
    display_names = parse_display_names(ctx, data)
    web = _parse_web(ctx, data["web"]) if "web" in data else WebConfig()
    inbound = InboundConfig()
    if "inbound" in data or "escalation" in data:
        from outagecomms.config.inbound import parse_inbound

        inbound = parse_inbound(ctx, data.get("inbound"), data.get("escalation"))

    status_page = StatusPageConfig()
    if "status_page" in data:
        from outagecomms.config.status_page import parse_status_page

        status_page = parse_status_page(ctx, data["status_page"], base, company.name)
    if status_page.enabled and not company.status_page_url and daemon.public_url:
        # every notice's status_page_url then points at the page we serve
        company = replace(company, status_page_url=daemon.public_url.rstrip("/") + "/status")

    incident_page = (
        _parse_incident_page(ctx, data["incident_page"])
        if "incident_page" in data
        else IncidentPageConfig()
    )

    maintenance = MaintenanceConfig()
    if "maintenance" in data:
        from outagecomms.config.maintenance import parse_maintenance

        maintenance = parse_maintenance(ctx, data["maintenance"])

    return Config(
        path=path,
        maintenance=maintenance,
        status_page=status_page,
        incident_page=incident_page,
        warnings=_env_name_warnings(ctx, channels, daemon, hooks),
        hooks=hooks,
        names=display_names,
        web=web,
        inbound=inbound,
        credits=credits,
        goodwill=goodwill,
        store_url=store_url,
        company=company,
        policies=policies,
        channels=channels,
        dispatch=dispatch,
        daemon=daemon,
        templates_dir=templates_dir,
        locale_dir=locale_dir,
        template_limits=template_limits,
    )


def config_places() -> list[str]:
    """Where ``find_config_file`` looks when no file is named, in that order."""
    env = os.environ.get("OUTAGECOMMS_CONFIG")
    return [
        f"$OUTAGECOMMS_CONFIG ({env})" if env else "$OUTAGECOMMS_CONFIG (not set)",
        str(Path.cwd() / "outagecomms.toml"),
        str(user_config_file()),
    ]


def no_config_file() -> ConfigError:
    """The error when no config file is named and none is in the usual places."""
    return ConfigError(
        "no config file: looked at "
        + ", ".join(config_places())
        + "; name one with --config FILE or $OUTAGECOMMS_CONFIG, or write one with "
        "{command:init}"
    )


def find_config_file(explicit: str | Path | None = None) -> Path | None:
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError("config file not found", path=p)
        return p.resolve()
    env = os.environ.get("OUTAGECOMMS_CONFIG")
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError("config file named by $OUTAGECOMMS_CONFIG not found", path=p)
        return p.resolve()
    for p in (Path.cwd() / "outagecomms.toml", user_config_file()):
        if p.is_file():
            return p.resolve()
    return None


def load_config(explicit: str | Path | None = None, *, required: bool = True) -> Config:
    """Find, read and validate the config. No file: a ``ConfigError`` naming the places
    looked at (``required=False``: the built-in defaults, for what opens no store)."""
    path = find_config_file(explicit)
    if path is None:
        if required:
            raise no_config_file()
        return parse_config({}, None)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
    return parse_config(data, path)
