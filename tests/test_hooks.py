"""Incidents from alerts: the Alertmanager (v4) and generic payloads, the [hooks] rules, the
drafts they make (one per alert, however often it repeats), the HTTP hooks on a real loopback
server, ``drafts`` and ``declare --from-draft`` on the command line, and PostgreSQL."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from outagecomms.app import App
from outagecomms.config.loader import load_config, parse_config
from outagecomms.config.model import DEFAULT_HOOK_RULE, HookRule
from outagecomms.directory.importer import import_file
from outagecomms.errors import ConfigError, InputError, StateError
from outagecomms.intake.alerts import (
    AlertGroup,
    load_json,
    parse_alertmanager,
    parse_generic,
    propose,
    render_title,
)
from outagecomms.intake.drafts import dismiss, ingest, list_drafts
from outagecomms.models import AlertState, DraftStatus
from outagecomms.store import incidents as incidents_db
from outagecomms.store import outbox as outbox_db
from outagecomms.store import tables as t
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.data import REPO, expected_ids, migrations_head, sample_csv
from tests.support.web import serve_web

TOKEN = "hook-token-0123456789abcdef"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def am_payload(
    *,
    status: str = "firing",
    group: str = '{}:{alertname="SearchDown"}',
    alerts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Alertmanager's documented webhook body, version 4, every field present."""
    if alerts is None:
        alerts = [am_alert(status=status)]
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "outagecomms",
        "groupLabels": {"alertname": "SearchDown"},
        "commonLabels": {"alertname": "SearchDown", "service": "search"},
        "commonAnnotations": {"summary": "Search is failing"},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": alerts,
    }


def am_alert(
    *,
    status: str = "firing",
    service: str = "search",
    region: str = "eu-west",
    severity: str = "critical",
    starts: str = "2026-03-02T09:12:03.739266876Z",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "SearchDown",
            "service": service,
            "region": region,
            "severity": severity,
            **labels,
        },
        "annotations": {"summary": "Search is failing", "description": "5xx above 50%"},
        "startsAt": starts,
        "endsAt": "2026-03-02T09:40:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up",
        "fingerprint": f"fp-{service}-{region}",
    }


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


# --- parsing ----------------------------------------------------------------------------------


def test_the_documented_version_4_payload_parses() -> None:
    group = parse_alertmanager(am_payload())
    assert group.source == "alertmanager"
    assert group.key == '{}:{alertname="SearchDown"}'
    assert group.url == "http://alertmanager.example.com:9093"
    (alert,) = group.alerts
    assert alert.status == AlertState.FIRING
    assert alert.labels["service"] == "search"
    assert alert.annotations["summary"] == "Search is failing"
    # nanoseconds (Go's RFC 3339) are read; Go's zero time means "no end yet"
    assert alert.starts_at == datetime(2026, 3, 2, 9, 12, 3, 739266, tzinfo=UTC)
    assert alert.ends_at is None
    assert alert.fingerprint == "fp-search-eu-west"
    assert alert.url.startswith("http://prometheus.example.com:9090/")


def test_optional_parts_of_the_payload_may_be_absent() -> None:
    data = am_payload()
    for k in ("truncatedAlerts", "receiver", "groupLabels", "commonLabels", "commonAnnotations"):
        del data[k]
    for k in ("annotations", "endsAt", "generatorURL", "fingerprint"):
        del data["alerts"][0][k]
    group = parse_alertmanager(data)
    assert group.alerts[0].annotations == {} and group.truncated == 0


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return apply


AM_BAD: dict[str, tuple[Callable[[dict[str, Any]], None], list[str]]] = {
    "no version": (_set("version", KeyError), ["'version'", "version 4"]),
    "version 3": (_set("version", "3"), ["'version' = '3'", "version 4"]),
    "version as a number": (_set("version", 4), ["'version' = 4"]),
    "no groupKey": (_set("groupKey", KeyError), ["'groupKey'", "must be a string"]),
    "empty groupKey": (_set("groupKey", " "), ["'groupKey'", "empty"]),
    "bad status": (_set("status", "firin"), ["'status'", "firing or resolved"]),
    "negative truncatedAlerts": (_set("truncatedAlerts", -1), ["'truncatedAlerts'"]),
    "commonLabels a list": (_set("commonLabels", ["a"]), ["'commonLabels'", "object"]),
    "no alerts": (_set("alerts", KeyError), ["'alerts'", "list"]),
    "alerts empty": (_set("alerts", []), ["'alerts'", "empty"]),
    "alert not an object": (_set("alerts", ["x"]), ["'alerts[0]'", "object"]),
    "alert status bad": (_set("alerts.0.status", "ok"), ["'alerts[0].status'"]),
    "labels missing": (_set("alerts.0.labels", KeyError), ["'alerts[0].labels'", "object"]),
    "label not a string": (_set("alerts.0.labels.severity", 2), ["'alerts[0].labels.severity'"]),
    "annotation null": (_set("alerts.0.annotations.summary", None), ["annotations.summary"]),
    "startsAt not a time": (_set("alerts.0.startsAt", "yesterday"), ["'alerts[0].startsAt'"]),
    "startsAt without zone": (
        _set("alerts.0.startsAt", "2026-03-02T09:12:03"),
        ["'alerts[0].startsAt'", "time zone"],
    ),
    "endsAt a number": (_set("alerts.0.endsAt", 5), ["'alerts[0].endsAt'"]),
}


@pytest.mark.parametrize("case", list(AM_BAD), ids=list(AM_BAD))
def test_a_malformed_alertmanager_payload_names_the_field(case: str) -> None:
    mutate, fragments = AM_BAD[case]
    data = copy.deepcopy(am_payload())
    mutate(data)
    with pytest.raises(InputError) as err:
        parse_alertmanager(data)
    for f in fragments:
        assert f in str(err.value), str(err.value)


def test_the_body_must_be_an_object() -> None:
    with pytest.raises(InputError, match="must be an object, got list"):
        parse_alertmanager([])


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{", "not JSON"),
        (b"", "not JSON"),
        (b'{"version": NaN}', "NaN is not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000, "too deeply"),
    ],
)
def test_a_body_that_is_not_json_is_refused_with_the_reason(raw: bytes, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        load_json(raw)


def test_the_generic_shape() -> None:
    groups = parse_generic(
        {
            "alerts": [
                {"key": "db-primary", "labels": {"service": "database"}},
                {
                    "key": "search-eu",
                    "status": "resolved",
                    "title": "Search is slow",
                    "labels": {"service": "search", "region": "eu-west"},
                    "annotations": {"runbook": "https://wiki/search"},
                    "startsAt": "2026-03-02T09:00:00+01:00",
                    "url": "https://grafana.example.com/d/search",
                },
            ]
        }
    )
    assert [g.key for g in groups] == ["db-primary", "search-eu"]
    first, second = (g.alerts[0] for g in groups)
    assert first.status == AlertState.FIRING  # the default
    assert first.starts_at is None
    assert second.status == AlertState.RESOLVED
    assert second.title == "Search is slow"
    assert second.starts_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert groups[1].url == "https://grafana.example.com/d/search"


GENERIC_BAD: dict[str, tuple[Any, list[str]]] = {
    "no alerts": ({}, ["'alerts'"]),
    "unknown top-level field": ({"alerts": [{"key": "a"}], "x": 1}, ["'x'", "unknown"]),
    "no key": ({"alerts": [{"labels": {}}]}, ["'alerts[0].key'"]),
    "blank key": ({"alerts": [{"key": "  "}]}, ["'alerts[0].key'", "empty"]),
    "key twice": ({"alerts": [{"key": "a"}, {"key": "a"}]}, ["'alerts[1].key'", "twice"]),
    "unknown alert field": ({"alerts": [{"key": "a", "sevrity": "x"}]}, ["alerts[0].sevrity"]),
    "labels a string": ({"alerts": [{"key": "a", "labels": "x"}]}, ["'alerts[0].labels'"]),
    "status bad": ({"alerts": [{"key": "a", "status": "down"}]}, ["'alerts[0].status'"]),
}


@pytest.mark.parametrize("case", list(GENERIC_BAD), ids=list(GENERIC_BAD))
def test_a_malformed_generic_payload_names_the_field(case: str) -> None:
    data, fragments = GENERIC_BAD[case]
    with pytest.raises(InputError) as err:
        parse_generic(data)
    for f in fragments:
        assert f in str(err.value), str(err.value)


# --- rules ------------------------------------------------------------------------------------


def rules_from(toml_rules: list[dict[str, Any]]) -> tuple[HookRule, ...]:
    return parse_config({"hooks": {"rules": toml_rules}}, None).hooks.rules


def test_without_rules_every_alert_makes_a_draft_from_the_usual_labels() -> None:
    group = parse_alertmanager(am_payload())
    (p,), ignored = propose([group], (DEFAULT_HOOK_RULE,), NOW)
    assert ignored == []
    assert p.rule.name == "default" and not p.rule.auto_declare
    assert (p.title, p.severity, p.components, p.regions) == (
        "Search is failing",
        "sev1",
        ("search",),
        ("eu-west",),
    )
    assert p.state == AlertState.FIRING
    assert p.started_at == datetime(2026, 3, 2, 9, 12, 3, 739266, tzinfo=UTC)
    assert p.labels["service"] == "search" and p.annotations["description"] == "5xx above 50%"
    assert p.url.startswith("http://prometheus.example.com")


@pytest.mark.parametrize(
    ("label", "rule", "expected"),
    [
        ("critical", {}, "sev1"),
        ("WARNING", {}, "sev3"),
        ("info", {}, "sev4"),
        ("sev2", {}, "sev2"),  # taken as it is
        ("P1", {"severity_map": {"P1": "sev1"}}, "sev1"),
        ("weird", {}, "sev3"),  # not in the map: the rule's default
        ("weird", {"severity": "sev2"}, "sev2"),
        ("critical", {"severity_map": {"critical": "sev2"}}, "sev2"),  # overrides the default
    ],
)
def test_severity_mapping(label: str, rule: dict[str, Any], expected: str) -> None:
    (r,) = rules_from([rule])
    group = parse_alertmanager(am_payload(alerts=[am_alert(severity=label)]))
    (p,), _ = propose([group], (r,), NOW)
    assert p.severity == expected


def test_the_first_matching_rule_takes_each_alert_and_a_group_splits_by_rule() -> None:
    rules = rules_from(
        [
            {"name": "db", "match": {"service": "database"}, "components": ["database"]},
            {"name": "web", "match_re": {"service": "search|auth"}, "regions": ["global"]},
        ]
    )
    group = parse_alertmanager(
        am_payload(
            alerts=[
                am_alert(service="search", region="eu-west", severity="warning"),
                am_alert(service="auth", region="us-east", severity="critical"),
                am_alert(service="database", region="eu-west"),
                am_alert(service="searchx"),  # the regex matches whole values only
                am_alert(service="queue"),
            ]
        )
    )
    proposals, ignored = propose([group], rules, NOW)
    by = {p.rule.name: p for p in proposals}
    assert set(by) == {"db", "web"}
    assert by["db"].components == ("database",)  # the fixed list only: no labels then
    assert by["db"].regions == ("eu-west",)
    assert by["web"].components == ("auth", "search")
    assert by["web"].regions == ("global",)
    assert by["web"].severity == "sev1"  # the most severe of its alerts
    assert by["web"].alerts == 2
    assert by["db"].dedup_key != by["web"].dedup_key
    assert [i.key for i in ignored] == ["fp-searchx-eu-west", "fp-queue-eu-west"]


def test_labels_and_fixed_lists_combine_and_comma_separated_values_split() -> None:
    (r,) = rules_from(
        [{"components_from": ["service", "extra"], "components": ["api"], "regions_from": "dc"}]
    )
    group = parse_alertmanager(
        am_payload(alerts=[am_alert(service="search, auth", extra="storage", dc="eu-west,us-east")])
    )
    (p,), _ = propose([group], (r,), NOW)
    assert p.components == ("api", "auth", "search", "storage")
    assert p.regions == ("eu-west", "us-east")


def test_title_placeholders_take_every_distinct_value() -> None:
    group = parse_alertmanager(
        am_payload(alerts=[am_alert(region="us-east"), am_alert(region="eu-west")])
    )
    assert (
        render_title("{service} unavailable in {region}{nope}", group.alerts)
        == "search unavailable in eu-west, us-east"
    )
    evil = am_alert(service="search\r\nBcc: x@example.net")
    assert render_title(
        "{service} down", (parse_alertmanager(am_payload(alerts=[evil])).alerts)
    ) == ("search Bcc: x@example.net down")


def test_resolved_groups_and_the_default_title_when_summaries_differ() -> None:
    a = am_alert(status="resolved")
    b = am_alert(status="resolved", service="auth")
    b["annotations"]["summary"] = "Auth is failing"
    group = parse_alertmanager(am_payload(status="resolved", alerts=[a, b]))
    (p,), _ = propose([group], (DEFAULT_HOOK_RULE,), NOW + timedelta(hours=1))
    assert p.state == AlertState.RESOLVED
    assert p.resolved_at == datetime(2026, 3, 2, 9, 40, tzinfo=UTC)
    assert p.title == "Auth is failing (and 1 more)"


def test_a_start_in_the_senders_future_is_now() -> None:
    group = AlertGroup(
        source="generic",
        key="k",
        alerts=parse_generic({"alerts": [{"key": "k", "startsAt": "2030-01-01T00:00:00Z"}]})[
            0
        ].alerts,
    )
    (p,), _ = propose([group], (DEFAULT_HOOK_RULE,), NOW)
    assert p.started_at == NOW
    assert p.title == "k"  # nothing better to call it


RULE_BAD: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown key": ({"mach": {}}, "hooks.rules[0].mach", "unknown key"),
    "bad regex": ({"match_re": {"service": "("}}, "hooks.rules[0].match_re.service", "regular"),
    "match value not a string": ({"match": {"a": 1}}, "hooks.rules[0].match.a", "string"),
    "severity map value": (
        {"severity_map": {"p1": "critical"}},
        "hooks.rules[0].severity_map.p1",
        "sev1",
    ),
    "default severity": ({"severity": "high"}, "hooks.rules[0].severity", "sev1"),
    "auto without title": ({"auto_declare": True}, "hooks.rules[0].title", "required"),
    "auto not a bool": ({"auto_declare": "yes"}, "hooks.rules[0].auto_declare", "true or false"),
    "bad every": ({"every": "soon"}, "hooks.rules[0].every", "duration"),
    "components_from": ({"components_from": ["a b"]}, "hooks.rules[0].components_from", "label"),
    "components": ({"components": "api"}, "hooks.rules[0].components", "list"),
    "title placeholder": ({"title": "{a.b} down"}, "hooks.rules[0].title", "placeholder"),
    "two severity labels": (
        {"severity_from": ["a", "b"]},
        "hooks.rules[0].severity_from",
        "one label",
    ),
}


@pytest.mark.parametrize("case", list(RULE_BAD), ids=list(RULE_BAD))
def test_a_bad_rule_names_its_key(case: str) -> None:
    rule, key, fragment = RULE_BAD[case]
    with pytest.raises(ConfigError) as err:
        parse_config({"hooks": {"rules": [rule]}}, Path("oc.toml"))
    assert err.value.key == key
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("hooks", "key"),
    [
        ({"max_body": 10}, "hooks.max_body"),
        ({"token": "inline"}, "hooks.token"),
        ({"rules": {"name": "x"}}, "hooks.rules"),
        ({"rules": [{"name": "a"}, {"name": "a"}]}, "hooks.rules[1].name"),
    ],
)
def test_bad_hooks_section(hooks: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"hooks": hooks}, Path("oc.toml"))
    assert err.value.key == key


def test_the_example_documents_the_hooks_section() -> None:
    cfg = load_config(REPO / "config.example.toml")
    assert cfg.hooks.token_env == "OUTAGECOMMS_HOOKS_TOKEN"
    assert cfg.hooks.max_body == 1024 * 1024
    (rule,) = cfg.hooks.rules
    assert rule.name == "api-outage" and rule.every == timedelta(minutes=15)
    assert rule.matches({"env": "production", "service": "auth"})
    assert not rule.matches({"env": "production", "service": "authx"})
    import tomllib

    data = tomllib.loads((REPO / "config.example.toml").read_text())
    from outagecomms.config.loader import _RULE_KEYS

    assert set(data["hooks"]["rules"][0]) == _RULE_KEYS
    assert set(data["hooks"]) == {"token_env", "max_body", "rules"}


def test_no_hooks_section_means_defaults() -> None:
    hooks = parse_config({}, None).hooks
    assert hooks.token_env == "OUTAGECOMMS_HOOKS_TOKEN" and hooks.rules == ()
    assert hooks.effective_rules == (DEFAULT_HOOK_RULE,)


# --- drafts in the store ----------------------------------------------------------------------


HOOKS = """
[hooks]
[[hooks.rules]]
name = "auto"
match = { page = "yes" }
title = "{service} is unavailable in {region}"
auto_declare = true
every = "20m"
commander = "oncall@example.com"

[[hooks.rules]]
name = "drafts"
"""


@pytest.fixture
def app(make_config: Callable[..., Path], smtp_server: SmtpServer) -> Iterator[App]:
    with App.open(make_config(smtp_server, extra=HOOKS), clock=FakeClock(NOW)) as a:
        import_file(a, sample_csv())
        yield a


def drafts_of(a: App, *, closed: bool = True) -> list[Any]:
    return list_drafts(a, include_closed=closed)


def events(a: App, incident_id: int | None = None) -> list[tuple[str, str]]:
    with a.store.read() as conn:
        q = select(t.events.c.kind, t.events.c.detail).order_by(t.events.c.id)
        q = q.where(
            t.events.c.incident_id.is_(None)
            if incident_id is None
            else t.events.c.incident_id == incident_id
        )
        return [(r[0], r[1]) for r in conn.execute(q)]


def test_a_repeated_alert_refreshes_one_draft(app: App) -> None:
    first = ingest(app, "alertmanager", body(am_payload())).to_json()
    assert first["drafts"] == [1] and first["results"][0]["action"] == "created"
    app.clock.now = NOW + timedelta(minutes=5)  # type: ignore[attr-defined]
    # the group grew: a second region now fails
    grown = am_payload(alerts=[am_alert(), am_alert(region="us-east")])
    again = ingest(app, "alertmanager", body(grown)).to_json()
    assert again["drafts"] == [1] and again["results"][0]["action"] == "refreshed"
    (d,) = drafts_of(app)
    assert d.times_seen == 2 and d.alerts == 2
    assert d.first_seen == NOW and d.last_seen == NOW + timedelta(minutes=5)
    assert d.regions == ("eu-west", "us-east")  # an open draft says what the latest says
    assert d.status == DraftStatus.OPEN and d.alert_state == AlertState.FIRING
    assert events(app) == [
        ("draft", "draft 1 from alertmanager (drafts): Search is failing [sev1]")
    ]


def test_a_resolved_alert_is_shown_on_its_draft_and_logged(app: App) -> None:
    ingest(app, "alertmanager", body(am_payload()))
    app.clock.now = NOW + timedelta(minutes=15)  # type: ignore[attr-defined]
    res = ingest(app, "alertmanager", body(am_payload(status="resolved"))).to_json()
    assert res["results"][0]["action"] == "resolved"
    (d,) = drafts_of(app, closed=False)  # still open: the commander decides
    assert d.alert_state == AlertState.RESOLVED
    assert d.resolved_at == datetime(2026, 3, 2, 9, 40, tzinfo=UTC)
    assert events(app)[-1] == ("draft", "draft 1: alert resolved at 2026-03-02 09:40 UTC")
    # it fires again: the same open draft, firing again
    again = ingest(app, "alertmanager", body(am_payload())).to_json()
    assert again["drafts"] == [1]
    (d,) = drafts_of(app)
    assert d.alert_state == AlertState.FIRING and d.resolved_at is None and d.times_seen == 3


def test_a_resolved_alert_without_a_draft_is_ignored(app: App) -> None:
    res = ingest(app, "generic", body({"alerts": [{"key": "x", "status": "resolved"}]}))
    assert res.to_json()["ignored"] == 1 and drafts_of(app) == []


def test_auto_declare_queues_the_acknowledgement_once(app: App) -> None:
    page = am_payload(alerts=[am_alert(page="yes")])
    res = ingest(app, "alertmanager", body(page)).to_json()
    assert res["declared"] == ["INC-1"]
    assert res["results"][0] == {
        "action": "created", "draft": 1, "rule": "auto", "alert": "firing", "incident": "INC-1",
        "error": None,
    }  # fmt: skip
    with app.store.read() as conn:
        inc = incidents_db.get_incident(conn, 1).incident
        pending = outbox_db.count_deliveries(conn, 1)
    assert inc.title == "search is unavailable in eu-west"
    assert inc.severity == "sev1" and inc.commander == "oncall@example.com"
    assert inc.update_every == timedelta(minutes=20)
    assert inc.started_at == datetime(2026, 3, 2, 9, 12, 3, 739266, tzinfo=UTC)
    assert pending == {"pending": len(expected_ids("search", "eu-west"))}  # queued, not sent
    (d,) = drafts_of(app)
    assert d.status == DraftStatus.DECLARED and d.incident_id == 1
    # Alertmanager repeats the group: no second draft, no second incident
    again = ingest(app, "alertmanager", body(page)).to_json()
    assert again["drafts"] == [1] and again["declared"] == []
    assert again["results"][0]["incident"] == "INC-1"
    assert len(drafts_of(app)) == 1
    with app.store.read() as conn:
        assert len(incidents_db.list_incidents(conn)) == 1
    # resolved: recorded on the incident, which stays open for the commander's resolution
    ingest(app, "alertmanager", body(am_payload(status="resolved", alerts=[am_alert(status="resolved", page="yes")])))  # fmt: skip
    kinds = [k for k, _ in events(app, 1)]
    assert kinds == ["declared", "draft", "alert_resolved"]
    assert "outagecomms resolve INC-1" in events(app, 1)[-1][1]
    with app.store.read() as conn:
        assert incidents_db.get_incident(conn, 1).incident.is_open


def test_a_failed_auto_declare_leaves_the_draft_open_with_the_reason(app: App) -> None:
    page = am_payload(alerts=[am_alert(page="yes", service="serch")])
    res = ingest(app, "alertmanager", body(page)).to_json()
    assert res["declared"] == []
    error = res["results"][0]["error"]
    assert error.startswith("auto-declare failed:") and "serch" in error
    (d,) = drafts_of(app)
    assert d.status == DraftStatus.OPEN and d.note == error


def test_a_repeat_retries_a_failed_auto_declare(app: App) -> None:
    ingest(app, "alertmanager", body(am_payload(alerts=[am_alert(page="yes", service="serch")])))
    fixed = ingest(app, "alertmanager", body(am_payload(alerts=[am_alert(page="yes")])))
    assert fixed.to_json()["declared"] == ["INC-1"]
    assert fixed.to_json()["results"][0]["incident"] == "INC-1"
    (d,) = drafts_of(app)
    assert d.status == DraftStatus.DECLARED and d.note == "" and d.times_seen == 2


def test_a_resolved_alert_shows_on_the_live_dashboard(app: App) -> None:
    from outagecomms.incidents.views import watch_snapshot

    ingest(app, "alertmanager", body(am_payload(alerts=[am_alert(page="yes")])))
    ingest(app, "alertmanager", body(am_payload(status="resolved", alerts=[am_alert(status="resolved", page="yes")])))  # fmt: skip
    (row,) = watch_snapshot(app, "INC-1")
    assert row.recent[-1].kind == "alert_resolved"


def test_an_episode_ends_when_the_alert_resolves(app: App) -> None:
    ingest(app, "generic", body({"alerts": [{"key": "k", "labels": {"service": "search"}}]}))
    dismiss(app, 1, note="a test alert")
    # repeats while it still fires stay with the dismissed draft
    ingest(app, "generic", body({"alerts": [{"key": "k", "labels": {"service": "search"}}]}))
    (d,) = drafts_of(app)
    assert d.status == DraftStatus.DISMISSED and d.times_seen == 2 and d.note == "a test alert"
    with pytest.raises(StateError, match="draft 1 was dismissed"):
        dismiss(app, 1)
    ingest(app, "generic", body({"alerts": [{"key": "k", "status": "resolved"}]}))
    # firing after it resolved: a new occurrence, a new draft
    ingest(app, "generic", body({"alerts": [{"key": "k", "labels": {"service": "search"}}]}))
    assert [(x.id, x.status.value) for x in drafts_of(app)] == [(1, "dismissed"), (2, "open")]


def test_concurrent_identical_alerts_make_one_draft_and_one_incident(app: App) -> None:
    page = body(am_payload(alerts=[am_alert(page="yes")]))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ingest(app, "alertmanager", page), range(16)))
    assert {r.to_json()["drafts"][0] for r in results} == {1}
    assert sum(r.to_json()["declared"] != [] for r in results) == 1
    (d,) = drafts_of(app)
    assert d.times_seen == 16 and d.status == DraftStatus.DECLARED
    with app.store.read() as conn:
        assert len(incidents_db.list_incidents(conn)) == 1


def test_the_migration_builds_the_tables_the_code_describes(app: App) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with app.store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []  # every table and index, not only the drafts
    assert app.store.current_revision() == migrations_head()


def test_drafts_on_postgresql(
    make_config: Callable[..., Path], smtp_server: SmtpServer, pg_url: str
) -> None:
    """The same guarantees where several daemons share a PostgreSQL store."""
    cfg = make_config(smtp_server, extra=HOOKS, store_url=pg_url)
    with App.open(cfg, clock=FakeClock(NOW)) as a:
        import_file(a, sample_csv())
        page = body(am_payload(alerts=[am_alert(page="yes")]))
        plain = body(am_payload(group="other", alerts=[am_alert(service="auth")]))
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda i: ingest(a, "alertmanager", page if i % 2 else plain), range(24))
            )
        declared = [x for r in results for x in r.to_json()["declared"]]
        assert declared == ["INC-1"]
        drafts = drafts_of(a)
        assert sorted((d.status.value, d.times_seen) for d in drafts) == [
            ("declared", 12),
            ("open", 12),
        ]
        with a.store.read() as conn:
            assert len(incidents_db.list_incidents(conn)) == 1
            n = conn.execute(select(func.count()).select_from(t.deliveries)).scalar_one()
        assert n == len(expected_ids("search", "eu-west"))
        ingest(a, "alertmanager", body(am_payload(group="other", status="resolved", alerts=[am_alert(status="resolved", service="auth")])))  # fmt: skip
        other = next(d for d in drafts_of(a) if d.status == DraftStatus.OPEN)
        assert other.alert_state == AlertState.RESOLVED
        dismiss(a, other.id)


# --- HTTP: the hooks on a real loopback server -------------------------------------------------


@pytest.fixture
def server(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "feedback-secret")
    monkeypatch.setenv("OUTAGECOMMS_HOOKS_TOKEN", TOKEN)
    app.clock = lambda: datetime.now(UTC)  # the server runs in real time
    with serve_web(app) as client:
        yield client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_hooks_are_off_until_the_token_is_set(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "feedback-secret")
    monkeypatch.delenv("OUTAGECOMMS_HOOKS_TOKEN", raising=False)
    with serve_web(app) as client:
        res = client.post("/hooks/alertmanager", json=am_payload(), headers=AUTH)
    assert res.status_code == 503
    assert "OUTAGECOMMS_HOOKS_TOKEN" in res.json()["error"]
    assert drafts_of(app) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "longer", "not bearer", "empty"],
)
def test_a_missing_or_wrong_token_is_401(
    server: httpx.Client, app: App, headers: dict[str, str]
) -> None:
    res = server.post("/hooks/alertmanager", json=am_payload(), headers=headers)
    assert res.status_code == 401
    assert res.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token" in res.json()["error"]
    assert drafts_of(app) == []


def test_the_scheme_is_case_insensitive(server: httpx.Client) -> None:
    res = server.post(
        "/hooks/alertmanager", json=am_payload(), headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert res.status_code == 200


def test_an_oversized_body_is_413(server: httpx.Client, app: App) -> None:
    big = am_payload()
    big["commonAnnotations"]["description"] = "x" * (1024 * 1024)
    res = server.post("/hooks/alertmanager", json=big, headers=AUTH)
    assert res.status_code == 413
    assert "[hooks] max_body" in res.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"version": "4", "x": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    res = server.post("/hooks/generic", content=chunks(), headers=AUTH)
    assert res.status_code == 413
    assert drafts_of(app) == []


@pytest.mark.parametrize(
    ("path", "content", "fragment"),
    [
        ("/hooks/alertmanager", b"{not json", "the body is not JSON"),
        ("/hooks/alertmanager", body({"version": "3"}), "version 4"),
        (
            "/hooks/alertmanager",
            body(am_payload(alerts=[{"status": "firing"}])),
            "alerts[0].labels",
        ),
        ("/hooks/generic", body({"alerts": [{"labels": {}}]}), "alerts[0].key"),
        ("/hooks/generic", body(am_payload()), "unknown field"),
    ],
)
def test_a_malformed_payload_is_400_with_the_reason(
    server: httpx.Client, app: App, path: str, content: bytes, fragment: str
) -> None:
    res = server.post(path, content=content, headers={**AUTH, "Content-Type": "application/json"})
    assert res.status_code == 400
    assert fragment in res.json()["error"]
    assert drafts_of(app) == []


def test_unknown_hooks_and_methods(server: httpx.Client) -> None:
    assert server.post("/hooks/nagios", json={}, headers=AUTH).status_code == 404
    assert server.get("/hooks/alertmanager", headers=AUTH).status_code == 405


def test_alerts_over_http_repeat_resolve_and_auto_declare(
    server: httpx.Client, app: App, smtp_server: SmtpServer, make_config: Callable[..., Path], cli
) -> None:
    res = server.post("/hooks/alertmanager", json=am_payload(), headers=AUTH)
    assert res.status_code == 200, res.text
    assert res.json()["drafts"] == [1] and res.headers["cache-control"] == "no-store"
    res = server.post("/hooks/alertmanager", json=am_payload(), headers=AUTH)
    assert res.json()["results"][0]["action"] == "refreshed"
    (d,) = drafts_of(app)
    assert d.times_seen == 2

    res = server.post("/hooks/alertmanager", json=am_payload(status="resolved"), headers=AUTH)
    assert res.json()["results"][0]["action"] == "resolved"
    listed = cli("--config", str(app.config.path), "drafts", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["drafts"]
    assert (row["id"], row["status"], row["alert"], row["times_seen"]) == (1, "open", "resolved", 3)

    generic = {"alerts": [{"key": "db", "title": "Database down", "labels": {"service": "database", "page": "yes", "region": "us-east"}}]}  # fmt: skip
    res = server.post("/hooks/generic", json=generic, headers=AUTH)
    assert res.status_code == 200, res.text
    assert res.json()["declared"] == ["INC-1"]
    with app.store.read() as conn:
        owed = outbox_db.count_deliveries(conn, 1)
    assert owed == {"pending": len(expected_ids("database", "us-east"))}
    # the daemon (here: tick) sends what the hook queued
    tick = cli("--config", str(app.config.path), "tick", "--json")
    assert tick.exit_code == 0, tick.stderr
    msgs = smtp_server.handler.wait_for(lambda m: len(m) >= owed["pending"])
    assert {m.customer for m in msgs} == expected_ids("database", "us-east")
    assert all(m.kind == "acknowledgement" for m in msgs)
    assert "database is unavailable in us-east" in str(msgs[0].message["Subject"])


def test_concurrent_identical_posts_make_one_draft(server: httpx.Client, app: App) -> None:
    payload = body(am_payload(group="burst"))
    barrier = threading.Barrier(8)

    def post(_: int) -> int:
        barrier.wait()
        r = server.post("/hooks/alertmanager", content=payload, headers=AUTH)
        assert r.status_code == 200, r.text
        return int(r.json()["drafts"][0])

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(post, range(8)))
    assert ids == {1}
    (d,) = drafts_of(app)
    assert d.times_seen == 8


# --- the command line -------------------------------------------------------------------------


@pytest.fixture
def cfg(make_config: Callable[..., Path], smtp_server: SmtpServer, cli) -> Path:
    path = make_config(smtp_server, extra=HOOKS)
    assert cli("--config", str(path), "customers", "import", str(sample_csv())).exit_code == 0
    return path


def post(cfg: Path, source: str, data: Any) -> dict[str, Any]:
    with App.open(cfg) as a:
        return ingest(a, source, body(data)).to_json()


def test_drafts_list_and_declare_from_draft(cfg: Path, cli, smtp_server: SmtpServer) -> None:
    post(cfg, "alertmanager", am_payload())
    post(cfg, "generic", {"alerts": [{"key": "x", "labels": {}}]})  # no components or regions
    res = cli("--config", str(cfg), "drafts", "list", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["count"] == 2
    first = data["drafts"][0]
    expected = {
        "id": 1, "status": "open", "alert": "firing", "source": "alertmanager", "rule": "drafts",
        "title": "Search is failing", "severity": "sev1", "components": ["search"],
        "regions": ["eu-west"], "incident": None, "times_seen": 1,
    }  # fmt: skip
    assert {k: first[k] for k in expected} == expected
    assert first["labels"]["alertname"] == "SearchDown"
    table = cli("--config", str(cfg), "drafts", "list")
    assert "Search is failing" in table.stdout and "firing" in table.stdout

    dry = cli("--config", str(cfg), "declare", "--from-draft", "1", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["audience"] == len(expected_ids("search", "eu-west"))

    res = cli("--config", str(cfg), "declare", "--from-draft", "1", "--yes", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["incident"] == "INC-1" and out["draft"] == 1
    assert out["title"] == "Search is failing" and out["severity"] == "sev1"
    assert out["sent"] == out["audience"] == len(expected_ids("search", "eu-west"))
    msgs = smtp_server.handler.wait_for(lambda m: len(m) >= out["sent"])
    assert {m.customer for m in msgs} == expected_ids("search", "eu-west")

    again = cli("--config", str(cfg), "declare", "--from-draft", "1", "--yes")
    assert again.exit_code == 2
    assert again.stderr.strip() == "error: draft 1 was already declared as INC-1"
    listed = json.loads(cli("--config", str(cfg), "drafts", "list", "--json").stdout)
    assert [d["id"] for d in listed["drafts"]] == [2]  # open ones only
    every = json.loads(cli("--config", str(cfg), "drafts", "list", "--all", "--json").stdout)
    assert [(d["id"], d["status"], d["incident"]) for d in every["drafts"]] == [
        (1, "declared", "INC-1"),
        (2, "open", None),
    ]

    nothing = cli("--config", str(cfg), "declare", "--from-draft", "2", "--yes")
    assert nothing.exit_code == 2 and "--component" in nothing.stderr
    assert len(nothing.stderr.strip().splitlines()) == 1
    # flags override and complete the draft
    res = cli(
        "--config", str(cfg), "declare", "Payments are slow", "--from-draft", "2", "-s", "sev3",
        "-c", "database", "--region", "us-east", "--yes", "--queue-only", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["incident"], out["title"], out["severity"], out["draft"]) == (
        "INC-2",
        "Payments are slow",
        "sev3",
        2,
    )
    assert out["queued"] == len(expected_ids("database", "us-east")) and out["sent"] == 0


def test_drafts_dismiss_and_errors(cfg: Path, cli) -> None:
    post(cfg, "alertmanager", am_payload())
    res = cli("--config", str(cfg), "drafts", "dismiss", "1", "--note", "planned work", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "dismissed"
    assert json.loads(res.stdout)["note"] == "planned work"
    twice = cli("--config", str(cfg), "drafts", "dismiss", "1")
    assert twice.exit_code == 2 and "draft 1 was dismissed" in twice.stderr
    declared = cli("--config", str(cfg), "declare", "--from-draft", "1", "--yes")
    assert declared.exit_code == 2 and "draft 1 was dismissed" in declared.stderr
    missing = cli("--config", str(cfg), "drafts", "dismiss", "7")
    assert missing.exit_code == 2 and "draft 7 does not exist" in missing.stderr
    bad_id = cli("--config", str(cfg), "declare", "--from-draft", "x", "--yes")
    assert bad_id.exit_code == 2
    no_title = cli("--config", str(cfg), "declare", "-s", "sev2", "-c", "search", "--yes")
    assert no_title.exit_code == 2 and "TITLE" in no_title.stderr
    no_sev = cli("--config", str(cfg), "declare", "Down", "-c", "search", "--yes")
    assert no_sev.exit_code == 2 and "--severity" in no_sev.stderr
    empty = cli("--config", str(cfg), "drafts", "list", "--json")
    assert json.loads(empty.stdout) == {"count": 0, "drafts": []}
    human = cli("--config", str(cfg), "drafts", "list")
    assert human.exit_code == 0 and human.stdout == "" and "no open drafts" in human.stderr


def test_declaring_a_draft_whose_alert_resolved_says_so(cfg: Path, cli) -> None:
    post(cfg, "alertmanager", am_payload())
    post(cfg, "alertmanager", am_payload(status="resolved"))
    res = cli("--config", str(cfg), "declare", "--from-draft", "1", "--yes", "--no-send")
    assert res.exit_code == 0, res.stderr
    assert "alert resolved at 09:40 UTC" in res.stderr
    with App.open(cfg) as a:
        # --no-send: history, so no credits unless --credits (the event says why)
        assert [k for k, _ in events(a, 1)] == [
            "declared", "credits_waived", "draft", "alert_resolved",
        ]  # fmt: skip


def test_declare_and_auto_declare_race_for_one_draft(cfg: Path) -> None:
    """The commander's declare and an auto-declare may both plan; only one incident is made."""
    from outagecomms.intake.drafts import commit_from_draft, plan_from_draft
    from outagecomms.models import Selector

    post(cfg, "alertmanager", am_payload())
    with App.open(cfg) as a:
        p1, d1 = plan_from_draft(a, 1, selector=Selector())
        p2, d2 = plan_from_draft(a, 1, selector=Selector())
        commit_from_draft(a, p1, d1, send=False)
        with pytest.raises(StateError, match="already declared as INC-1"):
            commit_from_draft(a, p2, d2, send=False)
        with a.store.read() as conn:
            assert [i.id for i in incidents_db.list_incidents(conn)] == [1]


def test_doctor_reports_the_hooks(make_config: Callable[..., Path], cli) -> None:
    extra = '[hooks]\n[[hooks.rules]]\nname = "x"\ncomponents = ["search", "payments"]\n'
    cfg = make_config(extra=extra)
    assert cli("--config", str(cfg), "customers", "import", str(sample_csv())).exit_code == 0
    res = cli("--config", str(cfg), "doctor", "--no-probe")
    assert res.exit_code == 0, res.stderr
    assert "hooks: off ($OUTAGECOMMS_HOOKS_TOKEN is not set); 1 rules" in res.stderr
    assert "hooks.rules[0] (x): no customer has the component 'payments'" in res.stderr
    assert "'search'" not in res.stderr
