"""Monitoring alerts in, incident proposals out: the payloads ``POST /hooks/...`` accepts and
the ``[[hooks.rules]]`` that map alert labels to components, regions and severity.

Two payloads are understood (``docs/hooks.md`` documents both):

- ``alertmanager``: Prometheus Alertmanager's webhook, version 4 (``version``, ``groupKey``,
  ``truncatedAlerts``, ``status``, ``receiver``, ``groupLabels``, ``commonLabels``,
  ``commonAnnotations``, ``externalURL``, ``alerts[]`` with ``status``, ``labels``,
  ``annotations``, ``startsAt``, ``endsAt``, ``generatorURL``, ``fingerprint``). One
  notification is one alert group; its ``groupKey`` identifies it across repeats.
- ``generic``: ``{"alerts": [{"key", "status", "title", "labels", "annotations", "startsAt",
  "url"}]}`` for any other sender; each alert's ``key`` identifies it across repeats.

Each alert is mapped by the first rule that matches its labels (alerts no rule matches are
ignored). The alerts of one group that share a rule become one :class:`Proposal`, which the
service layer (``outagecomms.intake.drafts``) turns into a new or refreshed draft. Everything here is
pure: no store, no clock (``now`` is passed in). A payload of the wrong shape raises
``InputError`` naming the field, e.g. ``alerts[2].labels``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from outagecomms.config.model import SEVERITIES, HookRule
from outagecomms.errors import InputError
from outagecomms.models import AlertState
from outagecomms.store.drafts import dedup_key

SOURCES = ("alertmanager", "generic")
MAX_ALERTS = 1000  # per notification; Alertmanager's max_alerts keeps groups smaller
MAX_KEY = 2000
MAX_TITLE = 200
MAX_VALUE = 2000  # one label or annotation value, as stored
_CTRL = re.compile(r"[\x00-\x1f\x7f]+")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_GO_ZERO_TIME = datetime.fromisoformat("0001-01-01T00:00:00+00:00")


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One alert as the sender describes it."""

    status: AlertState
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    url: str = ""
    fingerprint: str = ""
    title: str = ""  # generic payloads may name it


@dataclass(frozen=True, kw_only=True)
class AlertGroup:
    """What one key identifies across repeats: an Alertmanager group or one generic alert."""

    source: str
    key: str
    alerts: tuple[Alert, ...]
    url: str = ""
    truncated: int = 0  # alerts Alertmanager left out (max_alerts)


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """The alerts of one group that one rule took: the facts of one draft."""

    source: str
    group_key: str
    rule: HookRule
    state: AlertState
    title: str
    severity: str
    components: tuple[str, ...]
    regions: tuple[str, ...]
    labels: dict[str, str]
    annotations: dict[str, str]
    url: str
    started_at: datetime
    resolved_at: datetime | None
    alerts: int

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.source, self.group_key, self.rule.name)


@dataclass(frozen=True, kw_only=True)
class Ignored:
    """An alert no draft came from, and why."""

    key: str
    reason: str


# --- parsing ----------------------------------------------------------------------------------


def load_json(body: bytes) -> Any:
    """The request body as JSON; InputError with the parser's reason when it is not."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except UnicodeDecodeError:
        raise InputError("the body is not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError included
        raise InputError(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise InputError("the body nests JSON too deeply") from None


def _obj(value: Any, path: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"must be an object, got {_kind(value)}", field=path)
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__.replace("dict", "object")


def _strings(value: Any, path: str, *, required: bool = True) -> dict[str, str]:
    """A JSON object of string values (labels, annotations)."""
    obj = _obj(value, path, required=required)
    for k, v in obj.items():
        if not isinstance(v, str):
            raise InputError(f"must be a string, got {_kind(v)}", field=f"{path}.{k}")
    return {str(k): v for k, v in obj.items()}


def _str(value: Any, path: str, *, required: bool = False, default: str = "") -> str:
    if value is None and not required:
        return default
    if not isinstance(value, str):
        raise InputError(f"must be a string, got {_kind(value)}", field=path)
    return value


def _state(value: Any, path: str, default: AlertState | None = None) -> AlertState:
    if value is None and default is not None:
        return default
    try:
        return AlertState(value)
    except ValueError:
        raise InputError("must be firing or resolved", field=path, value=value) from None


def _time(value: Any, path: str) -> datetime | None:
    """An RFC 3339 time; Go's zero time (Alertmanager's "no end yet") is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"must be an RFC 3339 time, got {_kind(value)}", field=path)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InputError("must be an RFC 3339 time", field=path, value=value) from None
    if at.tzinfo is None:
        raise InputError("must be an RFC 3339 time with a time zone", field=path, value=value)
    return None if at <= _GO_ZERO_TIME else at


def _alerts(value: Any, path: str = "alerts") -> list[Any]:
    if not isinstance(value, list):
        raise InputError(f"must be a list of alerts, got {_kind(value)}", field=path)
    if not value:
        raise InputError("is empty: there is no alert to take", field=path)
    if len(value) > MAX_ALERTS:
        raise InputError(f"has {len(value)} alerts; at most {MAX_ALERTS} are taken", field=path)
    return value


def parse_alertmanager(data: Any) -> AlertGroup:
    """Alertmanager's webhook payload, version 4."""
    top = _obj(data, "body")
    version = top.get("version")
    if version != "4":
        raise InputError(
            "this endpoint reads Alertmanager's webhook payload version 4", field="version",
            value=version,
        )  # fmt: skip
    key = _str(top.get("groupKey"), "groupKey", required=True)
    if not key.strip():
        raise InputError("must not be empty", field="groupKey")
    if len(key) > MAX_KEY:
        raise InputError(f"is longer than {MAX_KEY} characters", field="groupKey")
    truncated = top.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise InputError("must be a whole number >= 0", field="truncatedAlerts", value=truncated)
    _state(top.get("status"), "status")
    _str(top.get("receiver"), "receiver")
    for name in ("groupLabels", "commonLabels", "commonAnnotations"):
        _strings(top.get(name), name, required=False)
    external = _str(top.get("externalURL"), "externalURL")
    alerts = []
    for i, raw in enumerate(_alerts(top.get("alerts"))):
        p = f"alerts[{i}]"
        a = _obj(raw, p)
        alerts.append(
            Alert(
                status=_state(a.get("status"), f"{p}.status"),
                labels=_strings(a.get("labels"), f"{p}.labels"),
                annotations=_strings(a.get("annotations"), f"{p}.annotations", required=False),
                starts_at=_time(a.get("startsAt"), f"{p}.startsAt"),
                ends_at=_time(a.get("endsAt"), f"{p}.endsAt"),
                url=_str(a.get("generatorURL"), f"{p}.generatorURL"),
                fingerprint=_str(a.get("fingerprint"), f"{p}.fingerprint"),
            )
        )
    return AlertGroup(
        source="alertmanager", key=key, alerts=tuple(alerts), url=external, truncated=truncated
    )


_GENERIC_KEYS = {"key", "status", "title", "labels", "annotations", "startsAt", "url"}


def parse_generic(data: Any) -> list[AlertGroup]:
    """The generic shape: ``{"alerts": [{"key": ..., ...}]}``; each alert is its own group."""
    top = _obj(data, "body")
    unknown = sorted(set(top) - {"alerts"})
    if unknown:
        raise InputError("unknown field; the body holds only `alerts`", field=unknown[0])
    groups = []
    seen: set[str] = set()
    for i, raw in enumerate(_alerts(top.get("alerts"))):
        p = f"alerts[{i}]"
        a = _obj(raw, p)
        extra = sorted(set(a) - _GENERIC_KEYS)
        if extra:
            raise InputError(
                "unknown field; an alert has " + ", ".join(sorted(_GENERIC_KEYS)),
                field=f"{p}.{extra[0]}",
            )
        key = _str(a.get("key"), f"{p}.key", required=True).strip()
        if not key:
            raise InputError("must not be empty: it identifies the alert across repeats", field=f"{p}.key")  # fmt: skip
        if len(key) > MAX_KEY:
            raise InputError(f"is longer than {MAX_KEY} characters", field=f"{p}.key")
        if key in seen:
            raise InputError("appears twice in one request", field=f"{p}.key", value=key)
        seen.add(key)
        alert = Alert(
            status=_state(a.get("status"), f"{p}.status", AlertState.FIRING),
            labels=_strings(a.get("labels"), f"{p}.labels", required=False),
            annotations=_strings(a.get("annotations"), f"{p}.annotations", required=False),
            starts_at=_time(a.get("startsAt"), f"{p}.startsAt"),
            url=_str(a.get("url"), f"{p}.url"),
            title=_str(a.get("title"), f"{p}.title"),
        )
        groups.append(AlertGroup(source="generic", key=key, alerts=(alert,), url=alert.url))
    return groups


def parse(source: str, data: Any) -> list[AlertGroup]:
    if source == "alertmanager":
        return [parse_alertmanager(data)]
    if source == "generic":
        return parse_generic(data)
    raise InputError(f"unknown alert source; use one of {', '.join(SOURCES)}", value=source)


# --- rules ------------------------------------------------------------------------------------


def first_rule(rules: Sequence[HookRule], labels: Mapping[str, str]) -> HookRule | None:
    return next((r for r in rules if r.matches(labels)), None)


def clean(text: str, limit: int) -> str:
    """One line, no control characters, at most ``limit`` characters."""
    return " ".join(_CTRL.sub(" ", text).split())[:limit].strip()


def _split(value: str) -> list[str]:
    return [clean(x, 200) for x in value.split(",") if x.strip()]


def _distinct(values: Sequence[str]) -> list[str]:
    return sorted({v for v in values if v})


def severity_of(rule: HookRule, labels: Mapping[str, str]) -> str:
    raw = labels.get(rule.severity_from, "").strip().lower()
    if raw in SEVERITIES:
        return raw
    return rule.severity_map.get(raw, rule.severity)


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The entries every map has with the same value."""
    if not maps:
        return {}
    first = maps[0]
    return {
        k: clean(v, MAX_VALUE) for k, v in first.items() if all(m.get(k) == v for m in maps[1:])
    }


def render_title(template: str, alerts: Sequence[Alert]) -> str:
    """``{label}`` placeholders: the label's distinct values across the alerts (then the
    annotation's), joined with ", "; a name no alert has becomes empty."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        vals = _distinct([a.labels.get(name, "") for a in alerts]) or _distinct(
            [a.annotations.get(name, "") for a in alerts]
        )
        return ", ".join(vals)

    return clean(_PLACEHOLDER.sub(value, template), MAX_TITLE)


def _default_title(group: AlertGroup, alerts: Sequence[Alert]) -> str:
    for candidates in (
        [a.title for a in alerts],
        [a.annotations.get("summary", "") for a in alerts],
        [a.labels.get("alertname", "") for a in alerts],
    ):
        vals = _distinct([clean(v, MAX_TITLE) for v in candidates])
        if len(vals) == 1:
            return vals[0]
        if vals:
            return clean(f"{vals[0]} (and {len(vals) - 1} more)", MAX_TITLE)
    return clean(group.key, MAX_TITLE) or "Alert"


def propose(
    groups: Sequence[AlertGroup], rules: Sequence[HookRule], now: datetime
) -> tuple[list[Proposal], list[Ignored]]:
    """Map each alert by its first matching rule; one proposal per (group, rule)."""
    proposals: list[Proposal] = []
    ignored: list[Ignored] = []
    for group in groups:
        by_rule: dict[str, tuple[HookRule, list[Alert]]] = {}
        for alert in group.alerts:
            rule = first_rule(rules, alert.labels)
            if rule is None:
                name = alert.fingerprint or alert.labels.get("alertname", "") or group.key
                ignored.append(Ignored(key=name, reason="no [[hooks.rules]] entry matches its labels"))  # fmt: skip
                continue
            by_rule.setdefault(rule.name, (rule, []))[1].append(alert)
        for rule, alerts in by_rule.values():
            proposals.append(_proposal(group, rule, alerts, now))
    return proposals, ignored


def _proposal(group: AlertGroup, rule: HookRule, alerts: list[Alert], now: datetime) -> Proposal:
    firing = [a for a in alerts if a.status == AlertState.FIRING]
    state = AlertState.FIRING if firing else AlertState.RESOLVED
    counted = firing or alerts  # what a still-firing group says now; else the whole story
    comps = list(rule.components)
    regions = list(rule.regions)
    for a in counted:
        for name in rule.components_from:
            comps.extend(_split(a.labels.get(name, "")))
        for name in rule.regions_from:
            regions.extend(_split(a.labels.get(name, "")))
    severity = min(severity_of(rule, a.labels) for a in counted)  # sev1 sorts first
    title = render_title(rule.title, counted) if rule.title else ""
    starts = [a.starts_at for a in alerts if a.starts_at is not None]
    ends = [a.ends_at for a in alerts if a.ends_at is not None]
    first_url = next((a.url for a in counted if a.url), "")
    return Proposal(
        source=group.source,
        group_key=group.key,
        rule=rule,
        state=state,
        title=title or _default_title(group, counted),
        severity=severity,
        components=tuple(_distinct(comps)),
        regions=tuple(_distinct(regions)),
        labels=_common([a.labels for a in counted]),
        annotations=_common([a.annotations for a in counted]),
        url=clean(first_url or group.url, MAX_VALUE),
        started_at=min([*starts, now]),  # a sender's clock ahead of ours is not the future
        resolved_at=None if firing else min(max(ends, default=now), now),
        alerts=len(alerts),
    )
