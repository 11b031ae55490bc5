"""One incident per outage, and mistakes can be undone: a declare that repeats an open incident
is refused (``--new`` declares anyway), an alert for an open outage joins it, ``void`` takes
back a false alarm and ``reopen`` brings a resolved outage back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.intake.drafts import ingest, list_drafts
from outagecomms.models import DraftStatus
from outagecomms.store import incidents as incidents_db
from tests.fakes.clock import FakeClock
from tests.fakes.smtp import SmtpServer
from tests.support.data import expected_ids, sample_csv
from tests.support.processes import CliResult

Cli = Callable[..., CliResult]


class Env:
    """The CLI on a config that mails the test's SMTP server, the sample customers imported."""

    def __init__(self, cli: Cli, cfg: Path, smtp: SmtpServer) -> None:
        self.cli, self.cfg, self.smtp = cli, cfg, smtp

    def run(self, *args: str) -> CliResult:
        return self.cli("--config", str(self.cfg), *args)

    def ok(self, *args: str) -> dict[str, Any]:
        res = self.run(*args, "--json")
        assert res.exit_code == 0, res.stderr
        data: dict[str, Any] = json.loads(res.stdout)
        return data

    def kinds(self) -> list[str]:
        return [m.kind for m in self.smtp.handler.snapshot()]


@pytest.fixture
def env(cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer) -> Env:
    e = Env(cli, make_config(smtp_server), smtp_server)
    assert e.run("customers", "import", str(sample_csv())).exit_code == 0
    return e


# --- 1. duplicate refusal ---------------------------------------------------------------------


def test_declaring_an_open_outage_again_is_refused_naming_the_incident_and_the_overlap(
    env: Env,
) -> None:
    first = env.ok("declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes")
    told = len(expected_ids("database", "eu-west"))
    assert first["incident"] == "INC-1" and first["sent"] == told
    every_db = int(env.ok("customers", "list", "--component", "database")["count"])
    res = env.run("declare", "Database errors", "-s", "sev2", "-c", "database", "--yes")
    assert res.exit_code == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert lines == [
        f"error: INC-1 is open for database in eu-west and already covers {told} of these "
        f"{every_db} customers; use `outagecomms update INC-1`, or --new to declare anyway"
    ]
    # nothing written, nobody told twice
    assert [i["incident"] for i in env.ok("list")["incidents"]] == ["INC-1"]
    assert env.kinds().count("acknowledgement") == told
    # --json: the same one line on stderr, stdout empty
    res = env.run(
        "declare", "DB again", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes", "--json"
    )
    assert res.exit_code == 2 and res.stdout == "" and "already covers" in res.stderr
    # the dry run says so, and changes nothing
    dry = env.ok(
        "declare", "DB again", "-s", "sev2", "-c", "database", "-r", "eu-west", "--dry-run"
    )
    assert dry["overlaps"] == [
        {"incident": "INC-1", "title": "DB down", "components": ["database"],
         "regions": ["eu-west"], "covered": told, "of": told},
    ]  # fmt: skip
    # another outage: a different component in the same region, the same component elsewhere
    assert (
        env.ok("declare", "API slow", "-s", "sev3", "-c", "api", "-r", "eu-west", "--yes")[
            "incident"
        ]
        == "INC-2"
    )
    assert (
        env.ok("declare", "DB us", "-s", "sev3", "-c", "database", "-r", "us-east", "--yes")[
            "incident"
        ]
        == "INC-3"
    )
    # the commander says it is another outage
    again = env.ok("declare", "Database errors", "-s", "sev2", "-c", "database", "--new", "--yes")
    assert again["incident"] == "INC-4"
    # history (nothing sent) is not checked
    rec = env.ok("declare", "Last week", "-s", "sev2", "-c", "database", "--no-send", "--yes")
    assert rec["incident"] == "INC-5"
    # once resolved, the outage can be declared again
    env.ok("resolve", "INC-1", "Fixed.")
    env.ok("resolve", "INC-4", "Fixed.")
    env.ok("resolve", "INC-5", "Fixed.", "--no-send")
    assert (
        env.ok(
            "declare", "DB down again", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes"
        )["incident"]
        == "INC-6"
    )


HOOKS = """
[hooks]
[[hooks.rules]]
name = "auto"
match = { page = "yes" }
title = "{service} is unavailable in {region}"
auto_declare = true
"""
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def alert(group: str, name: str) -> bytes:
    """An Alertmanager notification (version 4) of one firing alert for search in eu-west."""
    labels = {"alertname": name, "service": "search", "region": "eu-west", "page": "yes"}
    return json.dumps(
        {
            "version": "4", "groupKey": group, "status": "firing", "receiver": "oc",
            "groupLabels": {"alertname": name}, "commonLabels": labels,
            "commonAnnotations": {}, "externalURL": "http://am.example.com",
            "alerts": [{
                "status": "firing", "labels": labels, "annotations": {},
                "startsAt": "2026-03-02T09:12:03Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom.example.com", "fingerprint": f"fp-{name}",
            }],
        }
    ).encode()  # fmt: skip


@pytest.fixture
def hooks_app(make_config: Callable[..., Path], smtp_server: SmtpServer) -> Iterator[App]:
    with App.open(make_config(smtp_server, extra=HOOKS), clock=FakeClock(NOW)) as a:
        import_file(a, sample_csv())
        yield a


def test_an_alert_for_an_open_outage_joins_it_instead_of_declaring_another(hooks_app: App) -> None:
    first = ingest(hooks_app, "alertmanager", alert("g1", "SearchDown")).to_json()
    assert first["declared"] == ["INC-1"]
    second = ingest(hooks_app, "alertmanager", alert("g2", "SearchErrors")).to_json()
    assert second["declared"] == []
    assert second["results"][0] == {
        "action": "created", "draft": 2, "rule": "auto", "alert": "firing", "incident": "INC-1",
        "error": None, "attached": True,
    }  # fmt: skip
    with hooks_app.store.read() as conn:
        assert [i.ref for i in incidents_db.list_incidents(conn)] == ["INC-1"]
        events = incidents_db.list_events(conn, 1)
    assert any(
        e["kind"] == "draft" and "draft 2" in e["detail"] and "joined" in e["detail"]
        for e in events
    )
    d2 = next(d for d in list_drafts(hooks_app, include_closed=True) if d.id == 2)
    assert d2.status == DraftStatus.DECLARED and d2.incident_id == 1
    assert d2.note.startswith("joined INC-1")
