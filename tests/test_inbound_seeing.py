"""Seeing what customers sent back: ``show`` (counts by kind and label, ``--customer``),
``watch`` (the Replies panel), ``/metrics``, the post-incident report's "What customers told
us" and ``db prune``. The messages are written into ``inbound``/``inbound_sends`` through the
store's own functions, as the pipeline writes them."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.incidents.lifecycle import commit_declare, plan_declare, post_update
from outagecomms.models import Selector
from outagecomms.store import inbound as inbound_db
from outagecomms.store import incidents as incidents_db
from outagecomms.store import tables as t
from outagecomms.values import as_utc
from tests.fakes.clock import FakeClock
from tests.support.data import sample_csv
from tests.support.processes import CliResult

START = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
_serial = itertools.count(1)


@dataclass
class Incident:
    id: int
    customers: list[str]
    rounds: list[int]  # round ids, in order


def declare(app: App, clock: FakeClock, *, updates: int = 1) -> Incident:
    """An incident recorded without sending (its audience, acknowledgement and ``updates``
    commander's updates, a few minutes apart)."""
    plan = plan_declare(
        app,
        title="Checkout errors",
        severity="sev2",
        selector=Selector(tiers=("enterprise", "business", "standard")),
        started_at=clock.now - timedelta(minutes=3),
        message="We are investigating checkout errors.",
    )
    iid = commit_declare(app, plan, send=False).incident.id
    for n in range(updates):
        clock.now += timedelta(minutes=10)
        post_update(app, iid, f"Update {n + 1}: still working on it.", send=False)
    with app.store.read() as conn:
        customers = incidents_db.audience_customer_ids(conn, iid)
        rounds = [r.id for r in incidents_db.list_rounds(conn, iid)]
    return Incident(iid, customers, rounds)


def add_message(
    app: App,
    inc: Incident | None,
    customer: str | None,
    *,
    kind: str = "reply",
    label: str | None = None,
    sentiment: float | None = None,
    text: str = "",
    received_at: datetime = START,
    round_no: int = 0,
    channel: str = "email",
    escalated_at: datetime | None = None,
    responded_at: datetime | None = None,
    bounce: dict[str, Any] | None = None,
    sender: str = "someone@example.net",
) -> int:
    """One processed message, as the pipeline stores it."""
    raw = f"Message-ID: <{next(_serial)}@example.net>\n\n{text}".encode()
    row = {
        "received_at": received_at,
        "source": "smtp" if channel == "email" else "twilio",
        "channel": channel,
        "digest": hashlib.sha256(raw).hexdigest(),
        "sender": sender,
        "recipients": ["replies@status.example.com"],
        "raw": raw,
        "size": len(raw),
        "status": "processed",
        "kind": kind,
        "incident_id": inc.id if inc else None,
        "round_id": inc.rounds[round_no] if inc else None,
        "customer_id": customer,
        "text": text,
        "language": "en",
        "sentiment": sentiment,
        "label": label,
        "escalated_at": escalated_at,
        "responded_at": responded_at,
        "bounce": bounce,
        "processed_at": received_at,
    }
    with app.store.write() as conn:
        new_id, duplicate = inbound_db.insert_message(conn, row)
    assert not duplicate
    return new_id


def add_send(
    app: App,
    inc: Incident,
    customer: str,
    inbound_id: int,
    *,
    kind: str = "escalation",
    created_at: datetime = START,
    sent_at: datetime | None = None,
    to: str = "am@example.com",
    text: str = "Please call them.",
) -> int:
    row = {
        "inbound_id": inbound_id,
        "incident_id": inc.id,
        "customer_id": customer,
        "kind": kind,
        "channel": "email",
        "to": to,
        "subject": "escalation",
        "text": text,
        "created_at": created_at,
        "status": "sent" if sent_at else "pending",
        "sent_at": sent_at,
        "dedup": f"{kind}:{inbound_id}:{to}",
    }
    with app.store.write() as conn:
        send_id = inbound_db.queue_send(conn, row)
    assert send_id is not None
    return send_id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["sqlite", "postgresql"])
def config(request: pytest.FixtureRequest, make_config: Callable[..., Path]) -> Path:
    """The store on SQLite and on PostgreSQL (every count and time is computed by the
    database, so both must agree)."""
    url = str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else None
    return make_config(None, store_url=url)


@pytest.fixture
def app(config: Path, clock: FakeClock) -> Iterator[App]:
    with App.open(config, clock=clock) as a:
        import_file(a, sample_csv())
        yield a


def run(cli: Callable[..., CliResult], config: Path, *args: str, input: str | None = None) -> Any:
    res = cli("--config", str(config), *args, input=input)
    assert res.exit_code == 0, res.stderr
    return res


def run_json(cli: Callable[..., CliResult], config: Path, *args: str) -> Any:
    return json.loads(run(cli, config, *args, "--json").stdout)


# --- show -------------------------------------------------------------------------------------


def test_show_counts_replies_by_kind_and_label(
    app: App, clock: FakeClock, config: Path, cli: Callable[..., CliResult]
) -> None:
    inc = declare(app, clock)
    a, b, c = inc.customers[:3]
    add_message(app, inc, a, label="negative", sentiment=-0.7, text="Third outage!")
    add_message(app, inc, a, label="negative", sentiment=-0.4, text="Still down.")
    add_message(app, inc, b, label="positive", sentiment=0.6, text="Thanks, great updates")
    add_message(app, inc, c, label=None, text="Das ist schon wieder passiert.")
    add_message(app, inc, b, kind="auto_reply")
    add_message(app, inc, c, kind="bounce", bounce={"permanent": True, "status": "5.1.1"})
    add_message(app, None, None, label="negative", text="unmatched: not counted")
    other = declare(app, clock)
    add_message(app, other, other.customers[0], label="neutral", text="other incident")

    data = run_json(cli, config, "show", f"INC-{inc.id}")
    assert data["replies"] == {
        "reply": {"negative": 2, "neutral": 0, "positive": 1, "unscored": 1},
        "auto_reply": 1,
        "bounce": 1,
    }
    human = run(cli, config, "show", f"INC-{inc.id}").stdout
    assert "replies: 4 (negative 2, positive 1, unscored 1); auto-replies 1; bounces 1" in human


def test_show_of_an_incident_without_replies_says_none(
    app: App, clock: FakeClock, config: Path, cli: Callable[..., CliResult]
) -> None:
    inc = declare(app, clock, updates=0)
    data = run_json(cli, config, "show", f"INC-{inc.id}")
    assert data["replies"] == {
        "reply": {"negative": 0, "neutral": 0, "positive": 0},
        "auto_reply": 0,
        "bounce": 0,
    }
    assert "replies: none" in run(cli, config, "show", f"INC-{inc.id}").stdout


def test_show_customer_lists_their_messages_and_what_we_sent_because_of_them(
    app: App, clock: FakeClock, config: Path, cli: Callable[..., CliResult]
) -> None:
    inc = declare(app, clock)
    who, someone_else = inc.customers[:2]
    long_text = "We are considering cancelling. " + "x" * 400
    first = add_message(
        app, inc, who, label="negative", sentiment=-0.8, text=long_text,
        escalated_at=START + timedelta(seconds=2), responded_at=START + timedelta(minutes=7),
    )  # fmt: skip
    second = add_message(
        app, inc, who, kind="auto_reply", received_at=START + timedelta(minutes=1),
        text="I am out of the office.",
    )  # fmt: skip
    add_message(app, inc, someone_else, label="positive", text="not theirs")
    add_send(app, inc, who, first, sent_at=START + timedelta(seconds=2))
    add_send(
        app, inc, who, first, kind="response", to="them@example.com",
        created_at=START + timedelta(minutes=7), sent_at=START + timedelta(minutes=7),
    )  # fmt: skip
    add_send(app, inc, someone_else, first + 2, kind="acknowledgement", to="else@example.com")

    data = run_json(cli, config, "show", f"INC-{inc.id}", "--customer", who)["customer"]
    assert [r["id"] for r in data["replies"]] == [first, second]
    r = data["replies"][0]
    assert r["kind"] == "reply" and r["label"] == "negative" and r["channel"] == "email"
    assert r["received_at"] == "2026-11-25T13:00:00Z"
    assert len(r["text"]) == 200 and r["text"].startswith("We are considering cancelling.")
    assert r["escalated"] is True and r["responded"] is True
    assert data["replies"][1]["escalated"] is False and data["replies"][1]["responded"] is False
    assert [(s["kind"], s["to"], s["status"], s["reply_id"]) for s in data["reply_sends"]] == [
        ("escalation", "am@example.com", "sent", first),
        ("response", "them@example.com", "sent", first),
    ]
    human = run(cli, config, "show", f"INC-{inc.id}", "--customer", who).stdout
    assert f"what {who} sent us: 2" in human
    assert "reply negative via email; escalated 2026-11-25 13:00:02, responded" in human
    assert "auto_reply via email; no response" in human
    assert "not theirs" not in human
    assert "response for #" in human and "to them@example.com: sent" in human


# --- watch ------------------------------------------------------------------------------------


def test_watch_shows_the_newest_replies_negative_ones_highlighted(
    app: App, clock: FakeClock, config: Path, cli: Callable[..., CliResult]
) -> None:
    inc = declare(app, clock)
    for n in range(10):
        add_message(
            app, inc, inc.customers[n % 3], label="neutral", text=f"reply number {n}",
            received_at=START + timedelta(minutes=n),
        )  # fmt: skip
    add_message(
        app, inc, inc.customers[0], label="negative", sentiment=-0.9,
        text="This is unacceptable", received_at=START + timedelta(minutes=11),
    )  # fmt: skip
    frame = run(cli, config, "watch", "--once").stdout
    assert "Replies" in frame
    assert "This is unacceptable" in frame
    assert "reply number 9" in frame and "reply number 3" in frame  # the newest 8 in all
    assert "reply number 2" not in frame
    assert "11 (1 neg)" in frame  # the incident's row

    from rich.console import Console

    from outagecomms.cli.reply_output import replies_panel
    from outagecomms.incidents.views import watch_replies, watch_snapshot

    lines = [x.to_json() for x in watch_replies(app, watch_snapshot(app))]
    assert [x["text"] for x in lines][:2] == ["This is unacceptable", "reply number 9"]
    assert len(lines) == 8
    # the next frame has the reply that came in since, on top
    add_message(app, inc, inc.customers[5], label="positive", text="Back up, thanks!")
    newer = [x.to_json() for x in watch_replies(app, watch_snapshot(app))]
    assert [x["text"] for x in newer][:2] == ["Back up, thanks!", "This is unacceptable"]
    console = Console(record=True, width=200, force_terminal=True, color_system="standard")
    console.print(replies_panel(lines))
    styled = console.export_text(styles=True)
    negative = next(x for x in styled.splitlines() if "unacceptable" in x)
    neutral = next(x for x in styled.splitlines() if "reply number 9" in x)
    assert "\x1b[1;31m" in negative  # bold red
    assert "\x1b[1;31m" not in neutral


# --- /metrics ---------------------------------------------------------------------------------


def samples(text: str, name: str) -> dict[str, float]:
    """``{'{labels}': value}`` of one metric in a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key[len(name) :]] = float(value)
    return out


def test_metrics_count_messages_by_kind_and_label_and_time_escalations(
    app: App, clock: FakeClock
) -> None:
    from outagecomms.web.metrics import render_metrics

    inc = declare(app, clock)
    a, b = inc.customers[:2]
    # escalated replies and how long after receipt their first escalation was accepted
    waits = [0.2, 0.5, 1.0, 1.5, 4.999, 5.0, 29.0, 301.0]
    for n, wait in enumerate(waits):
        at = START + timedelta(minutes=n)
        rid = add_message(app, inc, a, label="negative", sentiment=-0.5, received_at=at)
        add_send(app, inc, a, rid, sent_at=at + timedelta(seconds=wait))
        add_send(app, inc, a, rid, to="second@example.com", sent_at=at + timedelta(hours=1))
    pending = add_message(app, inc, a, label="negative", text="not escalated yet")
    add_send(app, inc, a, pending)  # queued, not sent: no latency yet
    add_message(app, inc, b, label="positive")
    add_message(app, inc, b, kind="auto_reply")
    add_message(app, None, None, kind="bounce")

    text = render_metrics(app)
    assert samples(text, "outagecomms_inbound_messages") == {
        '{kind="reply",label="negative"}': 9,
        '{kind="reply",label="positive"}': 1,
        '{kind="auto_reply",label=""}': 1,
        '{kind="bounce",label=""}': 1,
    }
    hist = samples(text, "outagecomms_escalation_latency_seconds_bucket")
    expected = {f'{{le="{b}"}}': sum(w <= float(b) for w in waits) for b in ("0.5", "1", "2", "5")}
    assert {k: hist[k] for k in expected} == expected
    assert hist['{le="5"}'] == 6 and hist['{le="300"}'] == 7 and hist['{le="+Inf"}'] == 8
    assert samples(text, "outagecomms_escalation_latency_seconds_count") == {"": 8}
    total = samples(text, "outagecomms_escalation_latency_seconds_sum")[""]
    assert total == pytest.approx(sum(waits), abs=1e-3)
    assert "# TYPE outagecomms_escalation_latency_seconds histogram" in text
    assert "outagecomms_open_incidents 1" in text  # the rest of the exposition is still there


# --- db prune ---------------------------------------------------------------------------------


def _left(app: App) -> tuple[set[int], int]:
    with app.store.read() as conn:
        ids = set(conn.execute(select(t.inbound.c.id)).scalars())
        sends = conn.execute(select(func.count()).select_from(t.inbound_sends)).scalar_one()
    return ids, int(sends)


def test_db_prune_deletes_what_is_older_than_keep_and_asks_first(
    app: App, clock: FakeClock, config: Path, cli: Callable[..., CliResult]
) -> None:
    inc = declare(app, clock)
    who = inc.customers[0]
    now = datetime.now(UTC)  # the CLI's clock
    old = add_message(app, inc, who, label="negative", received_at=now - timedelta(days=181))
    add_send(app, inc, who, old)
    add_send(app, inc, who, old, kind="acknowledgement", to="them@example.com")
    middle = add_message(app, inc, who, label="neutral", received_at=now - timedelta(days=100))
    add_send(app, inc, who, middle)
    new = add_message(app, inc, who, label="positive", received_at=now - timedelta(hours=1))

    refused = cli("--config", str(config), "db", "prune")  # no terminal to ask on
    assert refused.exit_code == 2 and "pass --yes to delete" in refused.stderr
    assert _left(app) == ({old, middle, new}, 3)

    data = run_json(cli, config, "db", "prune", "--yes")  # [inbound] keep: 180 days
    assert (data["messages"], data["sends"]) == (1, 2)
    cutoff = as_utc(datetime.fromisoformat(data["before"]))
    assert now - timedelta(days=180) <= cutoff <= datetime.now(UTC) - timedelta(days=180)
    assert _left(app) == ({middle, new}, 1)

    res = run(cli, config, "db", "prune", "--before", "30d", "--yes")
    assert "deleted 1 inbound message(s)" in res.stderr
    assert "and 1 message(s) sent because of them" in res.stderr
    assert _left(app) == ({new}, 0)

    again = run_json(cli, config, "db", "prune")  # nothing to delete: nothing to ask
    assert (again["messages"], again["sends"]) == (0, 0)
    assert cli("--config", str(config), "db", "prune", "--before", "soon").exit_code == 2


def test_db_prune_takes_keep_from_the_config(
    make_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    config = make_config(None, extra='\n[inbound]\nkeep = "7d"\n')
    with App.open(config, clock=FakeClock(START)) as a:
        import_file(a, sample_csv())
        inc = declare(a, FakeClock(START), updates=0)
        now = datetime.now(UTC)
        add_message(a, inc, inc.customers[0], received_at=now - timedelta(days=8))
        kept = add_message(a, inc, inc.customers[0], received_at=now - timedelta(days=6))
        assert run_json(cli, config, "db", "prune", "--yes")["messages"] == 1
        assert _left(a) == ({kept}, 0)


# --- the post-incident report -----------------------------------------------------------------

#: (round index, label, score, text); None score: not scored (another language)
REPLIES = [
    (0, "negative", -0.8, "Third outage this month. We are considering cancelling."),
    (0, "negative", -0.4, "Not again."),
    (0, None, None, "Das ist schon wieder passiert."),
    (1, "neutral", 0.0, "Thanks. Will there be a credit for this?"),
    (1, "positive", 0.6, "Great updates, thank you!"),
    (1, "negative", -0.6, "Why is it still down?"),
    (2, "positive", 0.7, "It would help to have an SMS when it is fixed."),
    (2, "positive", 0.9, "All good now, thanks"),
]
#: one reply per language with a suggestion's words, whatever its label; and two that are not
SUGGESTIONS = [
    ("negative", "You should have told us an hour earlier."),
    ("neutral", "Ich schlage vor, dass Sie eine Statusseite auf Deutsch anbieten."),
    ("neutral", "Pourriez-vous envoyer les mises à jour en français ?"),
    ("neutral", "日本語での通知を追加してください。"),
    ("negative", "Why is it down again?"),  # a question, but angry: escalate, not a suggestion
    ("positive", "Thank you for the updates."),
]


def _report_fixture(app: App, clock: FakeClock) -> tuple[Incident, dict[str, int]]:
    inc = declare(app, clock, updates=2)
    cust = inc.customers
    ids: dict[str, int] = {}
    for n, (rnd, label, score, text) in enumerate(REPLIES):
        ids[text] = add_message(
            app, inc, cust[n], label=label, sentiment=score, text=text, round_no=rnd,
            received_at=START + timedelta(minutes=n),
        )  # fmt: skip
    for n, (label, text) in enumerate(SUGGESTIONS):
        ids[text] = add_message(
            app, inc, cust[10 + n], label=label, text=text, round_no=2,
            sentiment={"negative": -0.5, "neutral": 0.0, "positive": 0.5}[label],
            received_at=START + timedelta(minutes=20 + n),
        )  # fmt: skip
    add_message(app, inc, cust[20], kind="auto_reply", text="I am out of the office")
    add_message(
        app, inc, cust[21], kind="bounce", text="550 5.1.1 user unknown",
        bounce={"permanent": True, "status": "5.1.1", "action": "failed",
                "recipients": ["gone@example.org"], "diagnostic": "550 5.1.1 user unknown",
                "resent_on": "sms"},
    )  # fmt: skip
    add_message(
        app, inc, cust[22], kind="bounce", text="451 4.2.2 mailbox full",
        bounce={"permanent": False, "status": "4.2.2", "action": "delayed",
                "recipients": ["full@example.org"], "diagnostic": "451 4.2.2 mailbox full"},
    )  # fmt: skip
    # the first reply: escalated, accepted 1.5 s later (a second escalation later still), and
    # answered by a person after 9 minutes; the second escalated, not yet accepted, not answered
    first = ids[REPLIES[0][3]]
    received = START
    with app.store.write() as conn:
        inbound_db.set_times(conn, [first], escalated_at=received + timedelta(seconds=1))
        inbound_db.set_times(conn, [first], responded_at=received + timedelta(minutes=9))
        inbound_db.set_times(conn, [ids["Not again."]], escalated_at=START + timedelta(minutes=1))
    add_send(app, inc, cust[0], first, sent_at=received + timedelta(seconds=1.5))
    add_send(
        app, inc, cust[0], first, to="cmdr@example.com", sent_at=received + timedelta(seconds=4)
    )
    add_send(app, inc, cust[1], ids["Not again."])
    return inc, ids


def test_the_report_says_what_customers_told_us(app: App, clock: FakeClock) -> None:
    from outagecomms.recovery.report import build_report, render_html, render_markdown

    inc, ids = _report_fixture(app, clock)
    report = build_report(app, inc.id)
    told = report.to_json()["customers_told"]
    assert (told["messages"], told["replies"], told["auto_replies"], told["bounces"]) == (
        len(REPLIES) + len(SUGGESTIONS) + 3, len(REPLIES) + len(SUGGESTIONS), 1, 2,
    )  # fmt: skip

    # sentiment per round, recomputed from the inputs
    expected = []
    for rnd, kind in enumerate(["acknowledgement", "update", "update"]):
        rows = [(lbl, s) for r, lbl, s, _ in REPLIES if r == rnd]
        if rnd == 2:
            rows += [(lbl, {"negative": -0.5, "neutral": 0.0, "positive": 0.5}[lbl])
                     for lbl, _ in SUGGESTIONS]  # fmt: skip
        scores = [s for _, s in rows if s is not None]
        labels = {
            k: sum(1 for lbl, _ in rows if lbl == k) for k in ("negative", "neutral", "positive")
        }
        if any(lbl is None for lbl, _ in rows):
            labels["unscored"] = sum(1 for lbl, _ in rows if lbl is None)
        expected.append({
            "round": rnd + 1, "kind": kind, "replies": len(rows),
            "mean_score": round(sum(scores) / len(scores), 3), "labels": labels,
        })  # fmt: skip
    assert told["per_round"] == expected
    assert expected[0]["mean_score"] == -0.6  # the unscored German reply is not a 0

    (esc, esc2) = told["escalated"]
    assert esc["id"] == ids[REPLIES[0][3]] and esc["escalation_seconds"] == pytest.approx(1.5)
    assert esc["answered_in_seconds"] == 9 * 60
    assert esc2["escalation_seconds"] is None and esc2["answered_in_seconds"] is None

    suggested = {s["text"] for s in told["suggestions"]}
    assert (
        suggested
        == {
            "Thanks. Will there be a credit for this?",  # neutral with a question mark
            "It would help to have an SMS when it is fixed.",
            *(text for _, text in SUGGESTIONS[:4]),
        }
    )
    assert told["bounced_contacts"] == [
        {"customer": inc.customers[21], "contacts": ["gone@example.org"], "status": "5.1.1",
         "diagnostic": "550 5.1.1 user unknown", "received_at": "2026-11-25T13:00:00Z",
         "resent_on": "sms"},
    ]  # fmt: skip

    md = render_markdown(report)
    section = md.split("## What customers told us", 1)[1].split("\n## ", 1)[0]
    assert "| #1 acknowledgement | 3 | -0.60 | 2 | 0 | 0 | 1 |" in section
    assert "| 1.5s | 9m |" in section  # escalation accepted after, answered after
    assert "日本語での通知を追加してください。" in section
    assert "gone@example.org" in section and "full@example.org" not in section

    page = render_html(report)
    told_html = page.split('id="customers-told"', 1)[1].split("<h2", 1)[0]
    svg = told_html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert svg.count('<g class="round"') == 3
    assert 'class="label-negative" data-count="2"' in svg
    assert 'class="score" data-score="-0.600"' in svg
    assert 'class="score-line"' in svg
    assert "<script" not in page


def test_the_report_of_an_incident_without_replies_says_so(app: App, clock: FakeClock) -> None:
    from outagecomms.recovery.report import build_report, render_html, render_markdown

    inc = declare(app, clock, updates=0)
    report = build_report(app, inc.id)
    told = report.to_json()["customers_told"]
    assert told["messages"] == 0 and told["per_round"] == [] and told["escalated"] == []
    md = render_markdown(report)
    assert "## What customers told us\n\nThere were no replies" in md
    assert "There were no replies" in render_html(report)
