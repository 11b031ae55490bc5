"""One incident per outage, and mistakes can be undone: a declare that repeats an open incident
is refused (``--new`` declares anyway), an alert for an open outage joins it, ``void`` takes
back a false alarm and ``reopen`` brings a resolved outage back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
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
from tests.support.data import expected_ids, sample_csv, step_rule
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
    env.ok("resolve", "INC-1", "Fixed.", "--yes")
    env.ok("resolve", "INC-4", "Fixed.", "--yes")
    env.ok("resolve", "INC-5", "Fixed.", "--no-send", "--yes")
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


# --- 2. void ----------------------------------------------------------------------------------


def test_void_tells_those_told_to_disregard_it_and_stops_every_promise(env: Env) -> None:
    env.ok("declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes")
    told = sorted(expected_ids("database", "eu-west"))
    reason = "A monitoring probe failed; the database was fine."
    res = env.ok("void", "INC-1", "--reason", reason, "--yes")
    assert res == {
        "incident": "INC-1", "status": "voided", "round": 2, "kind": "void", "queued": len(told),
        "audience": len(told), "promised_next_by": None, "resolved_at": None, "reason": reason,
        "sent": len(told), "failed": 0, "retry": 0, "dead": 0, "errors": {},
    }  # fmt: skip
    notices = [m for m in env.smtp.handler.snapshot() if m.kind == "void"]
    assert sorted(m.customer for m in notices) == told
    text = notices[0].text()
    assert "Please disregard" in text and reason in text and "INC-1" in text
    # the notice continues the customer's thread
    ack = next(
        m for m in env.smtp.handler.snapshot()
        if m.kind == "acknowledgement" and m.customer == notices[0].customer
    )  # fmt: skip
    assert notices[0].message["In-Reply-To"] == ack.message_id
    # over: not listed as open, shown as voided with its notice and why
    assert env.ok("list")["incidents"] == []
    assert [i["status"] for i in env.ok("list", "--all")["incidents"]] == ["voided"]
    shown = env.ok("show", "INC-1")
    assert shown["status"] == "voided" and shown["next_update_due"] is None
    assert [r["kind"] for r in shown["rounds"]] == ["acknowledgement", "void"]
    assert any(e["kind"] == "voided" and reason in e["detail"] for e in shown["events"])
    human = env.run("show", "INC-1")
    assert "voided" in human.stdout and reason in human.stdout
    report = env.run("report", "INC-1")
    assert report.exit_code == 0 and "void" in report.stdout and "never: voided" in report.stdout
    # nothing more happens for it: no update, no resolve, no second void, no holding round
    for args, said in (
        (("update", "INC-1", "More news"), "error: INC-1 is voided"),
        (("resolve", "INC-1", "Fixed"), "error: INC-1 is voided"),
        (("void", "INC-1", "--reason", "again", "--yes"), "error: INC-1 is voided"),
        (("update", "INC-2", "x", "--status", "voided"), "error: field '--status'"),
    ):
        bad = env.run(*args)
        assert bad.exit_code == 2 and bad.stderr.startswith(said), (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1
    assert env.ok("tick")["holding"] == []
    # the outage can be declared (for real) again: a voided incident is not open
    assert (
        env.ok("declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes")[
            "incident"
        ]
        == "INC-2"
    )


def test_void_with_no_send_tells_nobody_and_cancels_what_was_queued(env: Env) -> None:
    env.ok("declare", "DB down", "-s", "sev2", "-c", "database", "--yes", "--queue-only")
    res = env.ok("void", "INC-1", "--reason", "Duplicate of INC-7.", "--no-send")
    assert res["status"] == "voided" and res["queued"] == 0 and res["sent"] == 0
    assert env.ok("tick")["sent"] == 0
    assert env.smtp.handler.snapshot() == []
    statuses = {d["status"] for d in env.ok("deliveries", "INC-1")["deliveries"]}
    assert statuses == {"superseded"}


REPEAT = f"""
{step_rule()}
[[credits.rules]]
kind = "repeat"
window = "30d"
min_incidents = 2
percent = 10
"""


@pytest.fixture
def money(cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer) -> Env:
    e = Env(cli, make_config(smtp_server, extra=REPEAT), smtp_server)
    assert e.run("customers", "import", str(sample_csv())).exit_code == 0
    return e


def rules_of(env: Env, incident: str) -> set[str]:
    return {ln["rule"] for c in env.ok("credits", incident)["credits"] for ln in c["lines"]}


def test_a_voided_incident_earns_no_credit_and_counts_for_no_repeat_rule(money: Env) -> None:
    args = ("-s", "sev2", "-c", "database", "-r", "eu-west", "--yes")
    money.ok("declare", "DB down", *args, "--started-at", "-3h")
    money.ok("resolve", "INC-1", "Fixed.", "--at", "-2h", "--yes")
    assert money.ok("credits", "INC-1")["customers_credited"] > 0
    money.ok("declare", "DB down again", *args, "--started-at", "-1h")
    money.ok("resolve", "INC-2", "Fixed.", "--yes")
    assert rules_of(money, "INC-2") == {"downtime_step", "repeat"}  # the second within 30 days
    # INC-1 was a false alarm after all: its credits go, and INC-2 is no repeat any more
    assert follow_up_due(money, 1) is not None
    money.ok("void", "INC-1", "--reason", "Our probe was wrong.", "--yes")
    assert money.ok("credits", "INC-1")["credits"] == []
    assert follow_up_due(money, 1) is None  # no "how did we do?" for a false alarm
    money.ok("edit", "INC-2", "--title", "DB down (recomputed)")
    assert rules_of(money, "INC-2") == {"downtime_step"}
    # editing the voided one proposes nothing either
    money.ok("edit", "INC-1", "--title", "Probe glitch")
    assert money.ok("credits", "INC-1")["credits"] == []


def test_void_refuses_once_credits_are_approved(money: Env) -> None:
    money.ok("declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes",
             "--started-at", "-1h")  # fmt: skip
    money.ok("resolve", "INC-1", "Fixed.", "--yes")
    money.ok("credits", "INC-1", "--approve", "--yes")
    res = money.run("void", "INC-1", "--reason", "Oops.", "--yes")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: INC-1 has credits already approved for ")
    assert money.ok("show", "INC-1")["status"] == "resolved"


# --- 3. reopen --------------------------------------------------------------------------------

STEP = """
[[credits.rules]]
kind = "downtime_step"
percent_per_block = 5
block = "30m"
rounding = "ceil"
"""


@pytest.fixture
def stepped(cli: Cli, make_config: Callable[..., Path], smtp_server: SmtpServer) -> Env:
    e = Env(cli, make_config(smtp_server, extra=STEP), smtp_server)
    assert e.run("customers", "import", str(sample_csv())).exit_code == 0
    return e


def follow_up_due(env: Env, incident_id: int) -> datetime | None:
    with App.open(env.cfg) as a, a.store.read() as conn:
        return incidents_db.get_incident(conn, incident_id).incident.follow_up_due


def test_reopen_tells_everyone_it_is_back_resumes_the_cadence_and_counts_both_spans(
    stepped: Env,
) -> None:
    env = stepped
    now = datetime.now(UTC).replace(microsecond=0)
    started, restored, back, fixed = (now - timedelta(minutes=m) for m in (180, 120, 30, 10))
    told = sorted(expected_ids("database", "eu-west"))
    env.ok("declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes",
           "--started-at", started.isoformat())  # fmt: skip
    env.ok("resolve", "INC-1", "Fixed.", "--at", restored.isoformat(), "--yes")
    assert follow_up_due(env, 1) is not None
    # not yet: an open incident is updated, not reopened
    for args, said in (
        (("reopen", "INC-1", "Back", "--at", (restored - timedelta(minutes=1)).isoformat()),
         "error: field '--at'"),
        (("reopen", "INC-9", "Back"), "error: incident INC-9 does not exist"),
    ):  # fmt: skip
        bad = env.run(*args, "--yes")
        assert bad.exit_code == 2 and bad.stderr.startswith(said), bad.stderr
    res = env.ok("reopen", "INC-1", "The database is failing again.", "--at", back.isoformat(),
                 "--yes")  # fmt: skip
    assert res["incident"] == "INC-1" and res["status"] == "investigating"
    assert res["kind"] == "reopened" and res["round"] == 3 and res["sent"] == len(told)
    assert res["promised_next_by"] is not None and res["resolved_at"] is None
    assert datetime.fromisoformat(res["reopened_at"]) == back
    assert [(s["resolved_at"] is None) for s in res["spans"]] == [False, True]
    back_msgs = [m for m in env.smtp.handler.snapshot() if m.kind == "reopened"]
    assert sorted(m.customer for m in back_msgs) == told
    assert "is back" in back_msgs[0].text() and "failing again" in back_msgs[0].text()
    # the follow-up waits for the next resolution; the incident is open, with a promise
    assert follow_up_due(env, 1) is None
    shown = env.ok("show", "INC-1")
    assert (
        shown["status"] == "investigating" and shown["next_update_due"] == res["promised_next_by"]
    )
    assert len(shown["downtime_spans"]) == 2
    assert any(e["kind"] == "reopened" for e in shown["events"])
    assert "downtime spans (reopened)" in env.run("show", "INC-1").stdout
    assert [i["incident"] for i in env.ok("list")["incidents"]] == ["INC-1"]
    # an open one cannot be reopened again
    again = env.run("reopen", "INC-1", "Back", "--yes")
    assert again.exit_code == 2 and again.stderr == (
        "error: INC-1 is open (investigating); post an update with "
        "`outagecomms update INC-1 MESSAGE`\n"
    )
    # a resolution cannot end before it came back
    early = env.run("resolve", "INC-1", "Fixed", "--at", (back - timedelta(minutes=1)).isoformat())
    assert early.exit_code == 2 and early.stderr.startswith("error: field '--at'")
    env.ok("resolve", "INC-1", "Fixed again.", "--at", fixed.isoformat(), "--yes")
    assert follow_up_due(env, 1) is not None
    # downtime is the two spans (60 + 20 min: 3 started half-hours), not the 170 minutes
    # from the start to the end
    lines = [ln["detail"] for c in env.ok("credits", "INC-1")["credits"] for ln in c["lines"]]
    assert len(lines) == len(told) and all(": 3 started " in ln for ln in lines), lines
    assert env.ok("report", "INC-1")["text"].count("reopened") >= 1


def test_reopen_refuses_a_voided_incident(env: Env) -> None:
    env.ok("declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes")
    env.ok("void", "INC-1", "--reason", "Duplicate of INC-7.", "--yes")
    res = env.run("reopen", "INC-1", "Back", "--yes")
    assert res.exit_code == 2 and res.stderr.startswith("error: INC-1 is voided; declare")


def test_the_scheduler_keeps_the_promise_of_a_reopened_incident(env: Env) -> None:
    from outagecomms.scheduler.due import run_due

    env.ok("declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes")
    env.ok("resolve", "INC-1", "Fixed.", "--yes")
    res = env.ok("reopen", "INC-1", "Back.", "--every", "20m", "--yes")
    due = datetime.fromisoformat(res["promised_next_by"])
    with App.open(env.cfg) as a:
        done = run_due(a, now=due)
    assert done.holding == ["INC-1 round 4"]


def test_a_reopened_incident_whose_follow_up_went_out_is_not_asked_again(env: Env) -> None:
    from outagecomms.scheduler.due import run_due

    env.ok("declare", "DB down", "-s", "sev2", "-c", "database", "-r", "eu-west", "--yes")
    env.ok("resolve", "INC-1", "Fixed.", "--yes")
    due = follow_up_due(env, 1)
    assert due is not None
    with App.open(env.cfg) as a:
        assert run_due(a, now=due).follow_ups == ["INC-1 round 3"]
    env.ok("reopen", "INC-1", "Back.", "--yes")
    env.ok("resolve", "INC-1", "Fixed again.", "--yes")
    assert follow_up_due(env, 1) is None  # they were asked how we did once already


def test_the_python_api_refuses_a_repeat_with_the_open_incident_named(
    make_config: Callable[..., Path], smtp_server: SmtpServer, store_url: str
) -> None:
    """On each store: the overlap query, the declare lock, the void's queue to those told."""
    import outagecomms

    with outagecomms.App.open(make_config(smtp_server, store_url=store_url)) as app:
        app.import_customers(sample_csv())
        first = app.declare("Search down", severity="sev2", components=["search"], send="queue")
        with pytest.raises(outagecomms.DuplicateIncident) as exc:
            app.declare("Search errors", severity="sev2", components=["search"], send="queue")
        assert exc.value.incident == "INC-1" and exc.value.covered == exc.value.of > 0
        assert "use `update INC-1`, or new to declare anyway" in str(exc.value)
        again = app.declare(
            "Search errors", severity="sev2", components=["search"], send="queue", new=True
        )
        assert again.incident.id == first.incident.id + 1
        app.send(first.incident)
        voided = app.void(first.incident, "A duplicate of INC-2.", send="queue")
        assert voided.incident.status == outagecomms.IncidentStatus.VOIDED
        assert voided.queued == first.queued  # those told: every acknowledgement was sent
        app.resolve(again.incident, "Fixed.", send="queue")
        back = app.reopen(again.incident, "Back.", send="queue")
        assert back.round.kind == outagecomms.RoundKind.REOPENED and back.incident.is_open
