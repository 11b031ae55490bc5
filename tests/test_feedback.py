"""Follow-up feedback: signed NPS link tokens, recording scores, NPS figures, and the daemon's
HTTP endpoint answering real requests (issue 4, part 5: "NPS links")."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from outagecomms.app import App
from outagecomms.directory.importer import import_file
from outagecomms.errors import ConfigError, InputError, NotFound
from outagecomms.incidents.lifecycle import commit_declare, plan_declare
from outagecomms.models import Selector
from outagecomms.recovery.feedback import (
    MAX_COMMENT,
    FeedbackTokenError,
    feedback_links,
    feedback_secret,
    make_token,
    nps,
    nps_from_scores,
    read_token,
    record_feedback,
)
from outagecomms.store import incidents as incidents_db
from outagecomms.store import tables as t
from outagecomms.web.server import parse_bind, serve_http
from tests.fakes.asgi import free_port
from tests.fakes.clock import FakeClock
from tests.support.data import sample_csv
from tests.support.web import serve_web

SECRET = b"k3y-for-tests-0123456789abcdef"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EXPIRES = T0 + timedelta(days=30)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --- tokens ---------------------------------------------------------------------------------


def test_token_round_trip_is_compact_and_url_safe() -> None:
    token = make_token(SECRET, 42, "c0000007", EXPIRES)
    assert read_token(SECRET, token, T0) == (42, "c0000007")
    assert set(token) <= set(ALPHABET)
    assert len(token) < 64
    # A non-ASCII customer id survives the trip too.
    assert read_token(SECRET, make_token(SECRET, 7, "kunde-ß-東京", EXPIRES), T0) == (
        7,
        "kunde-ß-東京",
    )


def test_every_single_character_change_is_refused_as_tampered() -> None:
    token = make_token(SECRET, 42, "c0000007", EXPIRES)
    for i, ch in enumerate(token):
        for other in (
            ALPHABET[(ALPHABET.index(ch) + 1) % 64],
            ALPHABET[(ALPHABET.index(ch) + 32) % 64],
        ):
            changed = token[:i] + other + token[i + 1 :]
            with pytest.raises(FeedbackTokenError) as err:
                read_token(SECRET, changed, T0)
            assert err.value.reason == "tampered", (i, other)
    assert "not valid" in str(err.value)


def test_a_token_signed_with_another_secret_is_tampered() -> None:
    token = make_token(b"someone-else's-secret", 42, "c0000007", EXPIRES)
    with pytest.raises(FeedbackTokenError) as err:
        read_token(SECRET, token, T0)
    assert err.value.reason == "tampered"


def test_a_token_is_valid_until_its_expiry_and_refused_from_then_on() -> None:
    token = make_token(SECRET, 42, "c0000007", EXPIRES)
    assert read_token(SECRET, token, EXPIRES - timedelta(seconds=1)) == (42, "c0000007")
    for now in (EXPIRES, EXPIRES + timedelta(days=400)):
        with pytest.raises(FeedbackTokenError) as err:
            read_token(SECRET, token, now)
        assert err.value.reason == "expired"
        assert "expired" in str(err.value)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "!!!!", "A" * 5, "A" * 5000, "not a token at all", "abc+def/ghi=", "é" * 40],
    ids=["empty", "short", "punctuation", "bad-length", "huge", "spaces", "std-b64", "non-ascii"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(FeedbackTokenError) as err:
        read_token(SECRET, token, T0)
    assert err.value.reason == "malformed"


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (1, "tampered"),  # still base64 of enough bytes: the signature no longer matches
        (2, "malformed"),  # 53 characters are no base64 (a length of 1 mod 4)
        (4, "tampered"),
        (27, "malformed"),  # half a token: too short for its header and signature
        (51, "malformed"),
    ],
)
def test_a_truncated_token_is_refused(cut: int, reason: str) -> None:
    token = make_token(SECRET, 42, "c0000007", EXPIRES)
    assert len(token) == 55  # 17 bytes of header, 8 of customer id, 16 of signature
    with pytest.raises(FeedbackTokenError) as err:
        read_token(SECRET, token[:-cut], T0)
    assert err.value.reason == reason


def test_feedback_links_are_eleven_scores_sharing_one_token() -> None:
    links = feedback_links("https://status.example.com/oc/", SECRET, 42, "c0000007", EXPIRES)
    assert len(links) == 11
    assert len(set(links)) == 11
    tokens = set()
    for score, link in enumerate(links):
        parts = urlsplit(link)
        assert link.startswith("https://status.example.com/oc/feedback/")
        assert parse_qs(parts.query) == {"score": [str(score)]}
        token = parts.path.rsplit("/", 1)[1]
        tokens.add(token)
        assert read_token(SECRET, token, T0) == (42, "c0000007")
    assert len(tokens) == 1
    with pytest.raises(ConfigError) as err:
        feedback_links("", SECRET, 42, "c0000007", EXPIRES)
    assert err.value.key == "daemon.public_url"


# --- the store ------------------------------------------------------------------------------


@dataclass
class World:
    app: App
    clock: FakeClock
    incident_id: int
    customers: list[str]  # the incident's audience, sorted


def build_world(config: Path) -> World:
    clock = FakeClock(T0)
    app = App.open(config, clock=clock)
    import_file(app, sample_csv())
    plan = plan_declare(
        app,
        title="Database <primary> unavailable",
        severity="sev2",
        selector=Selector(components=("database",)),
        started_at=T0 - timedelta(hours=1),
    )
    incident = commit_declare(app, plan, send=False).incident
    with app.store.read() as conn:
        customers = sorted(incidents_db.audience_customer_ids(conn, incident.id))
    assert len(customers) >= 6
    return World(app, clock, incident.id, customers)


@pytest.fixture
def world(make_config: Callable[..., Path]) -> Iterator[World]:
    w = build_world(make_config())
    try:
        yield w
    finally:
        w.app.close()


def feedback_rows(app: App, incident_id: int) -> list[dict[str, object]]:
    with app.store.read() as conn:
        rows = conn.execute(
            select(t.feedback)
            .where(t.feedback.c.incident_id == incident_id)
            .order_by(t.feedback.c.customer_id)
        ).all()
    return [dict(r._mapping) for r in rows]


def test_feedback_secret_comes_from_the_named_variable(
    make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with App.open(make_config(extra='secret_env = "MY_FEEDBACK_KEY"\n')) as app:
        with pytest.raises(ConfigError) as err:
            feedback_secret(app)
        assert err.value.key == "daemon.secret_env"
        assert "MY_FEEDBACK_KEY" in str(err.value)
        monkeypatch.setenv("MY_FEEDBACK_KEY", "")
        with pytest.raises(ConfigError):
            feedback_secret(app)
        monkeypatch.setenv("MY_FEEDBACK_KEY", "s3cret-value")
        assert feedback_secret(app) == b"s3cret-value"


def test_record_feedback_upserts_one_row_per_customer(world: World) -> None:
    app, inc, cust = world.app, world.incident_id, world.customers[0]
    record_feedback(app, inc, cust, 4, comment="  slow  updates \r\n")
    world.clock.now = T0 + timedelta(minutes=5)
    record_feedback(app, inc, cust, 8)  # a None comment keeps the comment
    rows = feedback_rows(app, inc)
    assert len(rows) == 1
    row = rows[0]
    assert (row["customer_id"], row["score"], row["comment"], row["source"]) == (
        cust,
        8,
        "slow  updates",
        "manual",
    )
    assert row["received_at"].replace(tzinfo=UTC) == T0 + timedelta(minutes=5)  # type: ignore[union-attr]
    record_feedback(app, inc, cust, 10, comment="better now", source="link")
    rows = feedback_rows(app, inc)
    assert [(r["score"], r["comment"], r["source"]) for r in rows] == [(10, "better now", "link")]


@pytest.mark.parametrize("score", [-1, 11, 7.5, True, "ten", None])
def test_record_feedback_rejects_a_bad_score(world: World, score: object) -> None:
    with pytest.raises(InputError) as err:
        record_feedback(world.app, world.incident_id, world.customers[0], score)  # type: ignore[arg-type]
    assert err.value.field == "score"
    assert feedback_rows(world.app, world.incident_id) == []


def test_record_feedback_needs_the_incident_and_an_affected_customer(world: World) -> None:
    with pytest.raises(NotFound) as err:
        record_feedback(world.app, world.incident_id + 99, world.customers[0], 9)
    assert f"INC-{world.incident_id + 99}" in str(err.value)
    with pytest.raises(NotFound) as err:
        record_feedback(world.app, world.incident_id, "nobody-at-all", 9)
    assert "nobody-at-all" in str(err.value)
    with pytest.raises(InputError):
        record_feedback(world.app, world.incident_id, world.customers[0], 9, comment="x" * 4001)
    assert feedback_rows(world.app, world.incident_id) == []


def test_record_feedback_on_postgresql(make_config: Callable[..., Path], pg_url: str) -> None:
    w = build_world(make_config(store_url=pg_url))
    try:
        cust = w.customers[1]
        record_feedback(w.app, w.incident_id, cust, 3, comment="first")
        record_feedback(w.app, w.incident_id, cust, 9)
        record_feedback(w.app, w.incident_id, w.customers[2], 10)
        rows = feedback_rows(w.app, w.incident_id)
        assert [(r["customer_id"], r["score"], r["comment"]) for r in rows] == [
            (cust, 9, "first"),
            (w.customers[2], 10, ""),
        ]
        assert nps(w.app, w.incident_id)["nps"] == 100.0
    finally:
        w.app.close()


# --- NPS ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "promoters", "passives", "detractors", "expected"),
    [
        ([10, 9, 8, 7, 6, 0], 2, 2, 2, 0.0),
        ([], 0, 0, 0, None),
        ([10, 10, 10], 3, 0, 0, 100.0),
        ([0], 0, 0, 1, -100.0),
        ([9, 9, 0], 2, 0, 1, 33.3),  # (2 - 1) / 3 = 33.33
        ([10, 9, 8], 2, 1, 0, 66.7),  # 2 / 3 = 66.67
        ([7, 8], 0, 2, 0, 0.0),
        ([6, 7, 8, 9], 1, 2, 1, 0.0),  # 6 is a detractor, 9 a promoter: the boundaries
        ([10] + [8] * 399, 1, 399, 0, 0.3),  # 1 / 400 = 0.25: half-up, not to even
        ([0] + [8] * 399, 0, 399, 1, -0.3),  # -0.25: half away from zero
        ([10] * 7 + [3] * 2 + [8] * 3, 7, 3, 2, 41.7),  # (7 - 2) / 12 = 41.67
    ],
    ids=[
        "ten-to-zero",
        "none",
        "all-promoters",
        "one-detractor",
        "third",
        "two-thirds",
        "passives",
        "boundaries",
        "quarter-up",
        "quarter-down",
        "twelve",
    ],
)
def test_nps_math(
    scores: list[int], promoters: int, passives: int, detractors: int, expected: float | None
) -> None:
    assert nps_from_scores(scores) == {
        "responses": len(scores),
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
        "nps": expected,
    }


def test_nps_of_an_incident_from_the_store(world: World, make_config: Callable[..., Path]) -> None:
    scores = [10, 9, 8, 7, 6, 0]
    for cust, score in zip(world.customers, scores, strict=False):
        record_feedback(world.app, world.incident_id, cust, score)
    record_feedback(world.app, world.incident_id, world.customers[5], 0, comment="Too late <b>")
    report = nps(world.app, world.incident_id)
    assert report == {
        "incident": f"INC-{world.incident_id}",
        "responses": 6,
        "promoters": 2,
        "passives": 2,
        "detractors": 2,
        "nps": 0.0,
        "comments": [{"customer": world.customers[5], "score": 0, "comment": "Too late <b>"}],
    }
    everything = nps(world.app)
    assert everything["incident"] is None
    assert everything["responses"] == 6
    with pytest.raises(NotFound):
        nps(world.app, world.incident_id + 1)


# --- the HTTP endpoint ----------------------------------------------------------------------


@dataclass
class Site:
    world: World
    base: str
    client: httpx.Client

    def token(self, customer: str, expires_at: datetime = EXPIRES) -> str:
        return make_token(SECRET, self.world.incident_id, customer, expires_at)


@pytest.fixture
def site(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET.decode())
    port = free_port()
    with serve_web(world.app, port=port, bind=f":{port}") as client:
        yield Site(world, f"http://127.0.0.1:{port}", client)


def test_a_scanner_fetching_every_link_records_nothing(site: Site) -> None:
    """Mail systems (Microsoft Safe Links and the like) fetch every link in a message within
    seconds: GET and HEAD on all eleven links record no score; the person's POST does."""
    w = site.world
    cust = w.customers[0]
    links = feedback_links(site.base, SECRET, w.incident_id, cust, EXPIRES)
    for link in links:
        assert httpx.get(link, timeout=10).status_code == 200
        assert httpx.head(link, timeout=10).status_code == 200
    assert feedback_rows(w.app, w.incident_id) == []
    res = httpx.post(f"{site.base}/feedback/{site.token(cust)}", data={"score": "4"}, timeout=10)
    assert res.status_code == 200 and "4 out of 10" in res.text
    assert [(r["customer_id"], r["score"]) for r in feedback_rows(w.app, w.incident_id)] == [
        (cust, 4)
    ]


def test_a_click_shows_the_score_and_the_button_records_it(site: Site) -> None:
    w = site.world
    cust = w.customers[0]
    links = feedback_links(site.base, SECRET, w.incident_id, cust, EXPIRES)

    res = httpx.get(links[7], timeout=10)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert "You chose <strong>7 out of 10</strong>" in res.text
    assert "Database &lt;primary&gt; unavailable" in res.text
    assert "<primary>" not in res.text
    assert 'name="comment"' in res.text
    assert '<input type="radio" name="score" value="7" checked>' in res.text
    assert res.text.count('type="radio" name="score"') == 11
    assert feedback_rows(w.app, w.incident_id) == []  # the click alone records nothing
    action = re.search(r'<form method="post" action="([^"]+)"', res.text)
    assert action is not None
    target = urljoin(links[7], action.group(1))
    assert target == f"{site.base}/feedback/{site.token(cust)}"

    # the second click: the page's button posts the chosen score
    res = httpx.post(target, data={"score": "7", "comment": ""}, timeout=10)
    assert res.status_code == 200 and "7 out of 10" in res.text
    assert [
        (r["customer_id"], r["score"], r["source"]) for r in feedback_rows(w.app, w.incident_id)
    ] == [(cust, 7, "link")]

    w.clock.now = T0 + timedelta(minutes=3)
    res = httpx.post(target, data={"score": "10"}, timeout=10)  # changed their mind
    assert res.status_code == 200
    rows = feedback_rows(w.app, w.incident_id)
    assert [(r["customer_id"], r["score"]) for r in rows] == [(cust, 10)]
    with w.app.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.feedback)).scalar_one() == 1
    report = nps(w.app, w.incident_id)
    assert (report["responses"], report["promoters"], report["nps"]) == (1, 1, 100.0)


def test_the_comment_form_stores_the_comment_and_keeps_the_score(site: Site) -> None:
    w = site.world
    cust = w.customers[1]
    token = site.token(cust)
    assert site.client.get(f"/feedback/{token}", params={"score": "3"}).status_code == 200

    text = "<script>alert(1)</script> Updates came late & said little."
    res = site.client.post(
        f"/feedback/{token}/comment", data={"comment": f"  {text}\r\n", "score": "3"}
    )
    assert res.status_code == 200
    assert "<script>" not in res.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Updates came late &amp; said little." in res.text
    rows = feedback_rows(w.app, w.incident_id)
    assert [(r["score"], r["comment"], r["source"]) for r in rows] == [(3, text, "link")]

    # Another click changes the score, not the comment; an empty comment keeps it too.
    assert site.client.get(f"/feedback/{token}?score=6").status_code == 200
    res = site.client.post(f"/feedback/{token}/comment", data={"comment": " ", "score": "6"})
    assert res.status_code == 200
    assert [(r["score"], r["comment"]) for r in feedback_rows(w.app, w.incident_id)] == [(6, text)]

    # A long comment is capped.
    res = site.client.post(
        f"/feedback/{token}/comment", data={"comment": "é" * (MAX_COMMENT + 500), "score": "6"}
    )
    assert res.status_code == 200
    assert feedback_rows(w.app, w.incident_id)[0]["comment"] == "é" * MAX_COMMENT


def test_tampered_and_expired_links_are_refused_and_record_nothing(site: Site) -> None:
    w = site.world
    cust = w.customers[2]
    good = site.token(cust)
    i = len(good) // 2
    tampered = good[:i] + ("A" if good[i] != "A" else "B") + good[i + 1 :]

    res = site.client.get(f"/feedback/{tampered}?score=9")
    assert res.status_code == 403
    assert "not valid" in res.text
    assert "Traceback" not in res.text

    forged = make_token(b"attacker", w.incident_id, cust, EXPIRES)
    assert site.client.get(f"/feedback/{forged}?score=0").status_code == 403

    expired = site.token(cust, expires_at=T0 - timedelta(seconds=1))
    res = site.client.get(f"/feedback/{expired}?score=9")
    assert res.status_code == 410
    assert "expired" in res.text
    assert "Traceback" not in res.text

    res = site.client.get("/feedback/not-a-token?score=9")
    assert res.status_code == 400
    assert "not valid" in res.text

    for bad in (tampered, expired):
        for path in (f"/feedback/{bad}", f"/feedback/{bad}/comment"):
            res = site.client.post(path, data={"comment": "hi", "score": "9"})
            assert res.status_code in {403, 410}
    assert feedback_rows(w.app, w.incident_id) == []

    # The app's clock decides expiry: the good token expires when the clock passes it.
    w.clock.now = EXPIRES
    assert site.client.get(f"/feedback/{good}?score=9").status_code == 410
    assert feedback_rows(w.app, w.incident_id) == []


@pytest.mark.parametrize(
    "query", ["", "?score=", "?score=11", "?score=-1", "?score=abc", "?score=7.5"]
)
def test_a_missing_or_bad_score_is_a_400_page(site: Site, query: str) -> None:
    token = site.token(site.world.customers[3])
    res = site.client.get(f"/feedback/{token}{query}")
    assert res.status_code == 400
    assert "from 0 to 10" in res.text
    assert feedback_rows(site.world.app, site.world.incident_id) == []


def test_head_requests_and_odd_forms_record_nothing(site: Site) -> None:
    token = site.token(site.world.customers[4])
    assert site.client.head(f"/feedback/{token}?score=10").status_code == 200
    res = site.client.post(
        f"/feedback/{token}/comment",
        content=b'{"comment": "x", "score": 5}',
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 415
    res = site.client.post(
        f"/feedback/{token}/comment", data={"comment": "x" * 70_000, "score": "5"}
    )
    assert res.status_code == 413
    res = site.client.post(f"/feedback/{token}/comment", data={"comment": "x"})
    assert res.status_code == 400
    assert feedback_rows(site.world.app, site.world.incident_id) == []


def test_healthz_and_security_headers(site: Site) -> None:
    res = site.client.get("/healthz")
    assert (res.status_code, res.text) == (200, "ok")
    page = site.client.get(f"/feedback/{site.token(site.world.customers[0])}?score=8")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "server" not in page.headers


def test_the_server_stops_on_the_stop_event(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET.decode())
    port = free_port()
    with serve_web(world.app, port=port) as client:  # leaving the block sets the stop event
        assert client.get("/healthz").text == "ok"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_serve_http_needs_the_secret_and_a_good_address(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = asyncio.Event()
    port = free_port()
    with pytest.raises(ConfigError) as err:
        asyncio.run(serve_http(world.app, f"127.0.0.1:{port}", stop))
    assert err.value.key == "daemon.secret_env"
    assert "OUTAGECOMMS_SECRET" in str(err.value)

    monkeypatch.setenv("OUTAGECOMMS_SECRET", SECRET.decode())
    for bind in ("8080", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "::1:80", "[::1:80"):
        with pytest.raises(ConfigError) as err:
            asyncio.run(serve_http(world.app, bind, stop))
        assert err.value.key == "daemon.http", bind

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(ConfigError) as err:
            asyncio.run(serve_http(world.app, f"127.0.0.1:{busy}", stop))
    assert err.value.key == "daemon.http"
    assert "cannot listen" in str(err.value)


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        (":8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("localhost:8443", ("localhost", 8443)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_parse_bind(bind: str, expected: tuple[str, int]) -> None:
    assert parse_bind(bind) == expected
