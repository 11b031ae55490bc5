"""The channel contract, asserted once for every registered channel kind.

Every kind in ``registry.names()`` has a :class:`Harness` here: how to stand up a real local
endpoint for it (aiosmtpd for ``smtp``, a temp dir for ``maildir``, captured stderr for
``console``, the Starlette fakes of ``tests/fakes/`` for ``slack``, ``teams``, ``webhook``,
``twilio`` and ``statuspage``, Apprise's ``json://`` to the local JSON endpoint for
``apprise``), how to make that endpoint fail transiently or permanently, how to point the channel
where nothing listens, and how to read back what arrived. The tests below are generated per
kind, only for what the kind supports: a harness says ``permanent=None`` when the kind has no
permanent failure (Apprise cannot tell one from a transient failure; a console cannot fail),
and no test is generated for that pair. A kind without a harness fails every test loudly.

What the contract is (``channels/base.py``):

1. the class attributes are well formed, the kind's templates exist for every round kind it
   receives, and every config key is documented in ``config.example.toml``;
2. a delivered message is ``sent`` and arrives with its text and, where the medium carries one,
   its stable id (Message-ID, Idempotency-Key, the page incident's metadata), the same on a
   resend;
3. a transient failure is ``retry`` (with ``Retry-After`` honoured), a permanent one ``failed``
   with a one-line error naming the provider, an unreachable endpoint ``retry``;
4. ``deliver()`` never raises for a delivery problem (every call goes through :func:`deliver`);
5. ``open()``/``close()`` are idempotent, ``close()`` without ``open()`` is safe, and nothing
   (task, thread, socket) outlives ``close()``;
6. ``check_config`` rejects a bad value with a message naming the key;
7. 20 deliveries at once through one instance are each sent and arrive exactly once, over no
   more connections than ``max_connections``.

The per-channel test modules hold only what is particular to one channel: none repeats an
item of this contract. The fakes' servers (fixtures of ``conftest.py``) each run behind a
:class:`~tests.fakes.asgi.Gauge` that counts the connections and the requests in flight.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
import os
import re
import shutil
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from outagecomms.channels import registry
from outagecomms.channels.base import Channel, DeliveryResult, OutboundMessage, Outcome
from outagecomms.config.loader import parse_config
from outagecomms.config.model import CompanyConfig
from outagecomms.errors import ConfigError
from outagecomms.models import Customer, RoundKind
from outagecomms.rendering.templates import PARTS, Renderer
from tests.fakes.apprise import JsonEndpoint
from tests.fakes.asgi import Fake, Gauge, Reply, free_port
from tests.fakes.providers import FakeProviders
from tests.fakes.slack import PATH as SLACK_PATH
from tests.fakes.smtp import RecordingHandler, running_smtp
from tests.fakes.statuspage import PAGE, FakeStatuspage
from tests.fakes.teams import PATH as TEAMS_PATH
from tests.fakes.teams import QUERY as TEAMS_QUERY
from tests.fakes.twilio import FROM as TWILIO_FROM
from tests.fakes.twilio import FakeTwilio, twilio_error
from tests.fakes.webhook import PATH as HOOK_PATH
from tests.support.builders import round_data
from tests.support.data import REPO
from tests.support.toml import toml_table

#: what every channel table may hold besides its kind's config_keys
GENERIC_KEYS = {"kind", "max_connections", "rate_per_second"}
#: a config key's type, as ``config.parse_config`` understands it (a tuple: one of its choices)
KEY_TYPES: tuple[Any, ...] = (str, int, bool, "path", list, dict)
RETRY_AFTER = 30.0  # what the HTTP fakes announce when they fail transiently
BURST = 20  # deliveries at once through one instance
BURST_CONNECTIONS = 3  # the max_connections the burst runs under
COMPANY = {"name": "S1 Technology", "support_email": "support@example.com"}


# --- endpoints ----------------------------------------------------------------------------------


@pytest.fixture
def smtp_endpoint() -> Iterator[tuple[int, RecordingHandler]]:
    with running_smtp() as server:
        yield server.port, server.handler


@dataclass
class Arrival:
    """One message as the endpoint got it: its text and the id a receiver deduplicates on."""

    text: str
    id: str | None = None


@dataclass
class Endpoint:
    """A live endpoint for one test, and the channel table pointing at it."""

    table: dict[str, Any]
    #: the message's ``to`` for delivery ``i`` ("" for a once-per-round kind)
    contact: Callable[[int], str]
    arrivals: Callable[[], list[Arrival]]
    #: what the fake found wrong in the requests (the provider's documented shape)
    problems: Callable[[], list[str]] = list
    #: the most connections (or, for Apprise, notifications) the endpoint had at once
    connections: Callable[[], int] | None = None
    #: the TCP port the channel talks to: its client sockets must be gone after close()
    port: int | None = None
    fake: Any = None
    #: the gauge in front of the fake's server (None: not an HTTP fake)
    gauge: Gauge | None = None


@dataclass
class Env:
    request: pytest.FixtureRequest
    tmp_path: Path

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)


Failure = Callable[[Endpoint, OutboundMessage], None]


@dataclass(frozen=True)
class Harness:
    kind: str
    #: the word every error of this kind names, so an operator knows whom to ask
    provider: str
    #: a live endpoint that accepts everything
    endpoint: Callable[[Env], Endpoint]
    #: the smallest valid table (no endpoint needed) and one bad value in it: (changes, key)
    minimal: dict[str, Any]
    bad: tuple[dict[str, Any], str] | None
    #: make the endpoint fail the message transiently / permanently, once the channel is open
    #: (None: it cannot fail that way)
    transient: Failure | None
    permanent: Failure | None
    #: an endpoint where nothing listens (None: the kind has no remote end)
    unreachable: Callable[[Env], Endpoint] | None
    #: the id the endpoint must see for a message (None: the medium carries none)
    stable_id: Callable[[OutboundMessage], str] | None = None
    #: the transient failure announces Retry-After: RETRY_AFTER seconds
    retry_after: bool = False


def _peers(gauge: Gauge) -> Callable[[], int]:
    return lambda: len(gauge.peers)


def on_fake(
    fake: Fake,
    table: dict[str, Any],
    contact: Callable[[int], str],
    arrivals: Callable[[], list[Arrival]],
    connections: Callable[[], int] | None = None,
) -> Endpoint:
    """An endpoint served by an HTTP fake: its problems, its gauge (by default, connections
    are the client connections the gauge saw), its port."""
    return Endpoint(
        table=table,
        contact=contact,
        arrivals=arrivals,
        problems=lambda: list(fake.problems),
        connections=connections or _peers(fake.gauge),
        port=fake.port,
        fake=fake,
        gauge=fake.gauge,
    )


# smtp -------------------------------------------------------------------------------------------


def smtp_endpoint_for(env: Env) -> Endpoint:
    port, handler = env.fixture("smtp_endpoint")
    return Endpoint(
        table={"kind": "smtp", "host": "127.0.0.1", "port": port, "timeout": 5},
        contact=lambda i: f"c{i}@example.com",
        arrivals=lambda: [Arrival(r.text(), r.message_id) for r in handler.snapshot()],
        connections=lambda: len(handler.peers),
        port=port,
        fake=handler,
    )


def smtp_unreachable(env: Env) -> Endpoint:
    port = free_port()
    table = {"kind": "smtp", "host": "127.0.0.1", "port": port, "timeout": 5}
    return Endpoint(table=table, contact=lambda i: f"c{i}@example.com", arrivals=list, port=port)


def smtp_refuse(reply: str) -> Failure:
    def fail(ep: Endpoint, msg: OutboundMessage) -> None:
        ep.fake.reject[msg.to] = reply

    return fail


# maildir ----------------------------------------------------------------------------------------


def read_maildir(path: Path) -> list[Arrival]:
    out = []
    for raw in mailbox.Maildir(path, factory=None, create=False):
        parsed = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        body = parsed.get_body(("plain",))
        assert body is not None, "a notice without a text part"
        out.append(Arrival(str(body.get_content()), str(parsed["Message-ID"])))
    return out


def maildir_endpoint(env: Env) -> Endpoint:
    path = env.tmp_path / "maildir"
    return Endpoint(
        table={"kind": "maildir", "path": str(path)},
        contact=lambda i: f"c{i}@example.com",
        arrivals=lambda: read_maildir(path),
        fake=path,
    )


def maildir_unreachable(env: Env) -> Endpoint:
    blocker = env.tmp_path / "not-a-directory"
    blocker.write_text("a file where the maildir's parent should be\n")
    return Endpoint(
        table={"kind": "maildir", "path": str(blocker / "maildir")},
        contact=lambda i: f"c{i}@example.com",
        arrivals=list,
    )


def maildir_disk_trouble(ep: Endpoint, msg: OutboundMessage) -> None:
    """The folder mail is moved into is gone, a file in its place: writing fails with an
    OSError, as on a full or read-only disk (which a test run as root cannot fake)."""
    new = ep.fake / "new"
    shutil.rmtree(new)
    new.write_text("")


# console ----------------------------------------------------------------------------------------


def console_endpoint(env: Env) -> Endpoint:
    capsys = env.fixture("capsys")
    seen: list[str] = []

    def arrivals() -> list[Arrival]:
        seen.append(capsys.readouterr().err)
        blocks = re.split(r"^--- to .* ---\n", "".join(seen), flags=re.M)
        return [Arrival(b) for b in blocks[1:]]

    return Endpoint(
        table={"kind": "console"}, contact=lambda i: f"c{i}@example.com", arrivals=arrivals
    )


# slack, teams, webhook (one fake plays all three) -----------------------------------------------


def _http(env: Env, kind: str, path: str, query: str = "") -> Endpoint:
    fake: FakeProviders = env.fixture("providers")
    if kind == "webhook":
        env.fixture("secret")
    url = fake.base + path + (f"?{query}" if query else "")
    table: dict[str, Any] = {"kind": kind, "timeout": 5, "rate_per_second": 0}
    if kind == "webhook":
        table["secret_env"] = "TEST_WEBHOOK_SECRET"

    def arrivals() -> list[Arrival]:
        return [_http_arrival(kind, r.json(), r.headers) for r in fake.recorded(path)]

    return on_fake(fake, table, lambda i: url, arrivals)


def _http_arrival(kind: str, doc: Any, headers: dict[str, str]) -> Arrival:
    if kind == "slack":
        return Arrival(" ".join(b["text"]["text"] for b in doc["blocks"] if b["type"] == "section"))
    if kind == "teams":
        card = doc["attachments"][0]["content"]
        return Arrival("\n\n".join(b["text"] for b in card["body"][1:]))
    return Arrival(doc["text"], headers.get("idempotency-key"))


def _nowhere(env: Env, kind: str, path: str) -> Endpoint:
    port = free_port()
    ep = _http(env, kind, path)
    return Endpoint(
        table=ep.table,
        contact=lambda i: f"http://127.0.0.1:{port}{path}",
        arrivals=list,
        port=port,
    )


def scripted(path: str, reply: Reply) -> Failure:
    def fail(ep: Endpoint, msg: OutboundMessage) -> None:
        ep.fake.script(path, reply)

    return fail


# twilio -----------------------------------------------------------------------------------------


def twilio_endpoint(env: Env, base: str | None = None) -> Endpoint:
    fake: FakeTwilio = env.fixture("twilio")
    table = {
        "kind": "twilio",
        "account_sid_env": "TEST_TWILIO_SID",
        "auth_token_env": "TEST_TWILIO_TOKEN",
        "from": TWILIO_FROM,
        "base_url": base or fake.base,
        "timeout": 5,
    }

    def arrivals() -> list[Arrival]:
        with fake.lock:
            return [Arrival(r.form.get("Body", "")) for r in fake.requests]

    return on_fake(fake, table, lambda i: f"+1555010{i:04d}", arrivals)


def twilio_unreachable(env: Env) -> Endpoint:
    port = free_port()
    ep = twilio_endpoint(env, base=f"http://127.0.0.1:{port}")
    return Endpoint(table=ep.table, contact=ep.contact, arrivals=list, port=port)


def twilio_answers(reply: Reply) -> Failure:
    def fail(ep: Endpoint, msg: OutboundMessage) -> None:
        ep.fake.script(reply)

    return fail


# statuspage -------------------------------------------------------------------------------------


def statuspage_endpoint(env: Env, base: str | None = None) -> Endpoint:
    fake: FakeStatuspage = env.fixture("page")
    table = {
        "kind": "statuspage",
        "page_id": PAGE,
        "api_key_env": "TEST_STATUSPAGE_KEY",
        "base_url": base or fake.base,
        "rate_per_second": 0,  # the per-key limit is test_statuspage's business
        "timeout": 5,
    }

    def arrivals() -> list[Arrival]:
        """Every incident update on the page, keyed by the metadata that names our round."""
        with fake.lock:
            out = []
            for inc in fake.incidents.values():
                ours = inc["metadata"].get("outagecomms", {})
                key = f"{ours.get('incident')}#r{ours.get('round')}"
                out += [Arrival(u["body"], key) for u in inc["incident_updates"]]
            return out

    return on_fake(fake, table, lambda i: "", arrivals)


def statuspage_unreachable(env: Env) -> Endpoint:
    port = free_port()
    ep = statuspage_endpoint(env, base=f"http://127.0.0.1:{port}/v1")
    return Endpoint(table=ep.table, contact=ep.contact, arrivals=list, port=port)


def page_answers(method: str, reply: Reply) -> Failure:
    def fail(ep: Endpoint, msg: OutboundMessage) -> None:
        ep.fake.script(method, reply)

    return fail


# apprise ----------------------------------------------------------------------------------------

APPRISE_PATH = "/contract"


def apprise_endpoint(env: Env) -> Endpoint:
    fake: JsonEndpoint = env.fixture("endpoint")
    return on_fake(
        fake,
        {"kind": "apprise", "urls": [fake.url(APPRISE_PATH)], "timeout": 5},
        lambda i: "",
        lambda: [Arrival(h.json()["message"]) for h in fake.recorded(APPRISE_PATH)],
        # Apprise opens a connection per notification: what max_connections bounds is how
        # many notifications run at once (worker threads)
        connections=lambda: fake.gauge.peak,
    )


def apprise_unreachable(env: Env) -> Endpoint:
    port = free_port()
    table = {"kind": "apprise", "urls": [f"json://127.0.0.1:{port}{APPRISE_PATH}"], "timeout": 5}
    return Endpoint(table=table, contact=lambda i: "", arrivals=list, port=port)


def apprise_fails(ep: Endpoint, msg: OutboundMessage) -> None:
    ep.fake.script(APPRISE_PATH, Reply(500, '{"error": "busy"}'))


def bare_id(msg: OutboundMessage) -> str:
    return msg.message_id.strip("<>")


HARNESSES: dict[str, Harness] = {
    h.kind: h
    for h in [
        Harness(
            kind="smtp",
            provider="SMTP",
            endpoint=smtp_endpoint_for,
            minimal={},
            bad=({"port": 70000}, "port"),
            transient=smtp_refuse("451 4.3.0 Try again later"),
            # multi-line, as Gmail refuses an unknown recipient
            permanent=smtp_refuse(
                "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
                "550 5.1.1 Please try double-checking the recipient's email address."
            ),
            unreachable=smtp_unreachable,
            stable_id=lambda m: m.message_id,
        ),
        Harness(
            kind="maildir",
            provider="maildir",
            endpoint=maildir_endpoint,
            minimal={},
            bad=({"from": "nobody"}, "from"),
            transient=maildir_disk_trouble,
            permanent=None,  # a local folder has no "never" answer; a full disk may clear
            unreachable=maildir_unreachable,
            stable_id=lambda m: m.message_id,
        ),
        Harness(
            kind="console",
            provider="console",
            endpoint=console_endpoint,
            minimal={},
            bad=None,  # no settings to get wrong
            transient=None,  # standard error does not fail
            permanent=None,
            unreachable=None,
        ),
        Harness(
            kind="slack",
            provider="Slack",
            endpoint=lambda env: _http(env, "slack", SLACK_PATH),
            minimal={},
            bad=({"timeout": 0}, "timeout"),
            transient=scripted(SLACK_PATH, Reply(429, "rate_limited", {"Retry-After": "30"})),
            permanent=scripted(SLACK_PATH, Reply(404, "channel_not_found")),
            unreachable=lambda env: _nowhere(env, "slack", SLACK_PATH),
            retry_after=True,
        ),
        Harness(
            kind="teams",
            provider="Teams",
            endpoint=lambda env: _http(env, "teams", TEAMS_PATH, TEAMS_QUERY),
            minimal={},
            bad=({"timeout": 0}, "timeout"),
            transient=scripted(
                TEAMS_PATH,
                Reply(
                    429, '{"error":{"code":"WorkflowTriggerIsThrottled"}}', {"Retry-After": "30"}
                ),
            ),
            permanent=scripted(
                TEAMS_PATH, Reply(404, '{"error":{"code":"WorkflowNotFound","message":"gone"}}')
            ),
            unreachable=lambda env: _nowhere(env, "teams", TEAMS_PATH),
            retry_after=True,
        ),
        Harness(
            kind="webhook",
            provider="webhook",
            endpoint=lambda env: _http(env, "webhook", HOOK_PATH),
            minimal={"secret_env": "HOOK_SECRET"},
            bad=({"signature_header": "Bad Name"}, "signature_header"),
            transient=scripted(HOOK_PATH, Reply(503, "busy", {"Retry-After": "30"})),
            permanent=scripted(HOOK_PATH, Reply(410, "gone")),
            unreachable=lambda env: _nowhere(env, "webhook", HOOK_PATH),
            stable_id=bare_id,
            retry_after=True,
        ),
        Harness(
            kind="twilio",
            provider="Twilio",
            endpoint=twilio_endpoint,
            minimal={"from": TWILIO_FROM},
            bad=({"from": "12345"}, "from"),
            transient=twilio_answers(
                Reply(429, twilio_error(20429, 429, "Too Many Requests"), {"Retry-After": "30"})
            ),
            permanent=twilio_answers(
                Reply(400, twilio_error(21211, 400, "The 'To' number is not valid."))
            ),
            unreachable=twilio_unreachable,
            retry_after=True,
        ),
        Harness(
            kind="statuspage",
            provider="Statuspage",
            endpoint=statuspage_endpoint,
            minimal={"page_id": PAGE},
            bad=({"page_id": "abc/../x"}, "page_id"),
            transient=page_answers(
                "POST", Reply(429, '{"error":"Rate limited"}', {"Retry-After": "30"})
            ),
            permanent=page_answers("POST", Reply(422, '{"error":["Name is too long"]}')),
            unreachable=statuspage_unreachable,
            # the page incident's metadata names our incident and round: a resend finds it
            stable_id=lambda m: f"{m.data['incident']}#r{m.data['round']}",
            retry_after=True,
        ),
        Harness(
            kind="apprise",
            provider="Apprise",
            endpoint=apprise_endpoint,
            minimal={"urls": ["json://127.0.0.1/x"]},
            bad=({"urls": ["nope://user:pw@example.com"]}, "urls[0]"),
            transient=apprise_fails,
            permanent=None,  # Apprise says only "did not work": every failure is retried
            unreachable=apprise_unreachable,
        ),
    ]
}


# --- helpers ------------------------------------------------------------------------------------


def harness(kind: str) -> Harness:
    found = HARNESSES.get(kind)
    if found is None:
        pytest.fail(
            f"channel kind {kind!r} has no contract harness: add one to HARNESSES in "
            "tests/test_channel_contract.py",
            pytrace=False,
        )
    return found


def kinds(applies: Callable[[Harness], object] | None = None) -> list[str]:
    """Every registered kind for which ``applies(harness)`` holds; a kind without a harness is
    always in (its tests fail, saying so)."""
    return [
        k
        for k in registry.names()
        if applies is None or k not in HARNESSES or applies(HARNESSES[k])
    ]


@pytest.fixture
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    return Env(request, tmp_path)


def build(kind: str, table: dict[str, Any]) -> Channel:
    """A channel configured the way the daemon configures one: through parse_config."""
    cfg = parse_config({"company": COMPANY, "channels": {"contract": table}}, None)
    channel = registry.get(kind)(cfg.channels["contract"], cfg.company)
    assert channel.kind == kind
    return channel


def token(i: int) -> str:
    """A marker unique to delivery ``i`` (and not a prefix of another's)."""
    return f"[t{i:03d}]"


def message(i: int, ep: Endpoint, kind: str) -> OutboundMessage:
    """Delivery ``i`` of the acknowledgement of INC-<i>, as dispatch builds it."""
    email_like = registry.get(kind).template_channel == "email"
    promised = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    return OutboundMessage(
        delivery_id=i,
        to=ep.contact(i),
        to_name=f"Customer {i}",
        subject=f"[Investigating] Sign-in failures: we are on it (INC-{i})",
        text=f"Hello Customer {i}: sign-in is failing in eu-west {token(i)}.\n\n"
        "We are sorry. The next update follows within 30 minutes.\n",
        html=f"<p>Hello Customer {i}: sign-in is failing {token(i)}.</p>" if email_like else None,
        message_id=f"<oc.{i}.inc-{i}.r1@example.com>",
        headers={
            "X-Outagecomms-Incident": f"INC-{i}",
            "X-Outagecomms-Round": "1 acknowledgement",
            "X-Outagecomms-Customer": f"c{i}",
        },
        data=round_data(
            incident=f"INC-{i}", customer=f"c{i}", promised_next_by=promised.isoformat()
        ),
    )


async def deliver(channel: Channel, msg: OutboundMessage) -> DeliveryResult:
    """``channel.deliver(msg)``; an exception fails the test naming the kind (contract 4)."""
    try:
        result = await channel.deliver(msg)
    except Exception as exc:
        pytest.fail(
            f"{channel.kind}: deliver() raised {type(exc).__name__}: {exc} (a delivery problem "
            "must come back as a retry or failed result)",
            pytrace=False,
        )
    assert isinstance(result, DeliveryResult), f"{channel.kind}: deliver() returned {result!r}"
    return result


def deliver_all(
    kind: str,
    table: dict[str, Any],
    *messages: OutboundMessage,
    once_open: Callable[[], None] | None = None,
) -> list[Any]:
    """Open one channel, call ``once_open`` (the endpoint starts failing, say), deliver the
    messages in turn, close the channel."""
    channel = build(kind, table)

    async def go() -> list[DeliveryResult]:
        await channel.open()
        if once_open is not None:
            once_open()
        try:
            return [await deliver(channel, m) for m in messages]
        finally:
            await channel.close()

    return asyncio.run(go())


def words(text: str) -> str:
    return " ".join(text.split())


def assert_explained(h: Harness, result: DeliveryResult, outcome: Outcome) -> None:
    """The outcome, with an error an operator can act on: one line, naming the provider."""
    assert result.outcome == outcome, f"{h.kind}: expected {outcome}, got {result}"
    error = result.error or ""
    assert error.strip(), f"{h.kind}: a {outcome} result must say why"
    assert "\n" not in error and "\r" not in error, f"{h.kind}: error is not one line: {error!r}"
    assert h.provider.lower() in error.lower(), f"{h.kind}: {error!r} does not name {h.provider}"


def client_sockets(port: int) -> int:
    """How many sockets this process holds connected to 127.0.0.1:``port`` (Linux /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since listed
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if int(cols[2].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
                count += 1
    return count


def parse_table(table: dict[str, Any]) -> Any:
    """``[channels.contract]`` holding ``table``, written as TOML and loaded like a config file."""
    return parse_config(tomllib.loads(toml_table("channels.contract", table)), None)


def documented_tables() -> list[dict[str, Any]]:
    """Every ``[channels.<name>]`` table in config.example.toml, live or commented out (a
    commented one runs from ``# [channels.<name>]`` to the next line that is not ``# ...`` or
    that starts another commented table)."""
    lines = (REPO / "config.example.toml").read_text().splitlines()
    tables = []
    for i, line in enumerate(lines):
        commented = line.startswith("# [channels.")
        if not commented and not line.startswith("[channels."):
            continue
        block = [line[2:] if commented else line]
        for nxt in lines[i + 1 :]:
            if commented and (not nxt.startswith("# ") or nxt.startswith("# [")):
                break
            if not commented and (not nxt.strip() or nxt.startswith("[")):
                break
            block.append(nxt[2:] if commented else nxt)
        (table,) = tomllib.loads("\n".join(block))["channels"].values()
        tables.append(table)
    return tables


# --- 1. class attributes ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_has_a_harness(kind: str) -> None:
    assert harness(kind).kind == kind


@pytest.mark.parametrize("kind", kinds())
def test_class_attributes_are_well_formed(kind: str) -> None:
    cls = registry.get(kind)
    assert issubclass(cls, Channel)
    assert cls.kind == kind
    assert cls.template_channel in PARTS, f"{kind}: no template set {cls.template_channel!r}"
    customer_fields = {f.name for f in fields(Customer)}
    assert cls.contact_field is None or cls.contact_field in customer_fields, cls.contact_field
    # a once-per-round channel (no contact) gets no follow-up: that asks each customer
    assert cls.delivers(RoundKind.FOLLOW_UP.value) == (cls.contact_field is not None)
    assert isinstance(cls.max_connections, int) and cls.max_connections >= 1
    assert cls.rate_per_second >= 0  # 0 = no limit of ours
    assert cls.max_body_len is None or cls.max_body_len > 0
    for key, (typ, default) in cls.config_keys.items():
        assert key not in GENERIC_KEYS, f"{kind}: {key} is a key every channel has"
        if isinstance(typ, tuple):
            assert default in typ, f"{kind}.{key}: default {default!r} is not a choice"
            continue
        assert typ in KEY_TYPES, f"{kind}.{key}: unknown key type {typ!r}"
        expected = str if typ == "path" else typ
        assert isinstance(default, expected), f"{kind}.{key}: default {default!r} is no {typ}"
    # the defaults (plus the least a kind needs) make a valid channel
    parse_table({"kind": kind, **harness(kind).minimal})


@pytest.mark.parametrize("kind", kinds())
def test_default_templates_exist_for_every_round_it_receives(kind: str) -> None:
    cls = registry.get(kind)
    renderer = Renderer(company=CompanyConfig())
    loader = renderer.env.loader
    assert loader is not None
    missing = []
    for rk in RoundKind:
        if not cls.delivers(rk.value):
            continue
        for part in PARTS[cls.template_channel]:
            name = renderer.template_name(rk, cls.template_channel, part)
            try:
                loader.get_source(renderer.env, name)
            except Exception:
                missing.append(name)
    assert missing == [], f"{kind}: default templates missing: {missing}"


@pytest.mark.parametrize("kind", kinds())
def test_every_config_key_is_documented_in_the_example(kind: str) -> None:
    """The one check that config.example.toml documents each kind's keys (a live or
    commented-out ``[channels.<name>]`` block of that kind), and that each such block is a
    valid channel. test_config.py checks the example's other sections."""
    keys = set(registry.get(kind).config_keys)
    tables = [t for t in documented_tables() if t.get("kind") == kind]
    if keys:
        assert tables, f"config.example.toml has no [channels.<name>] block of kind {kind!r}"
    documented = {k for t in tables for k in t} - GENERIC_KEYS
    assert sorted(keys - documented) == [], f"{kind}: keys missing from config.example.toml"
    for table in tables:
        parse_config({"channels": {"documented": table}}, None)


# --- 2. a delivered message ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_a_delivered_message_arrives_with_its_text_and_id(kind: str, env: Env) -> None:
    h = harness(kind)
    ep = h.endpoint(env)
    msg = message(1, ep, kind)
    (result,) = deliver_all(kind, ep.table, msg)
    assert result.outcome == Outcome.SENT, f"{kind}: {result}"
    assert result.error is None and result.retry_after is None
    assert ep.problems() == [], f"{kind}: the endpoint refused the request's shape"
    (arrived,) = ep.arrivals()
    assert words(msg.text) in words(arrived.text), f"{kind}: {arrived.text!r}"
    if h.stable_id is not None:
        assert arrived.id == h.stable_id(msg)


@pytest.mark.parametrize("kind", kinds(lambda h: h.stable_id))
def test_a_resend_carries_the_same_id(kind: str, env: Env) -> None:
    """Sent twice (a retry after a lost answer, a crash), a message carries the same id both
    times, so the receiver can deduplicate (Statuspage's channel finds its page incident and
    sends nothing the second time); another message carries another id."""
    h = harness(kind)
    assert h.stable_id is not None
    ep = h.endpoint(env)
    msg, other = message(1, ep, kind), message(2, ep, kind)
    results = deliver_all(kind, ep.table, msg, msg, other)
    assert [r.outcome for r in results] == [Outcome.SENT] * 3, f"{kind}: {results}"
    arrived = ep.arrivals()
    first = [a for a in arrived if token(1) in a.text]
    assert 1 <= len(first) <= 2, f"{kind}: {len(first)} arrivals of one message sent twice"
    assert {a.id for a in first} == {h.stable_id(msg)}
    (second,) = [a for a in arrived if token(2) in a.text]
    assert second.id == h.stable_id(other) != h.stable_id(msg)


# --- 3. failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds(lambda h: h.transient))
def test_a_transient_failure_is_retried(kind: str, env: Env) -> None:
    h = harness(kind)
    fail = h.transient
    assert fail is not None
    ep = h.endpoint(env)
    msg = message(1, ep, kind)
    (result,) = deliver_all(kind, ep.table, msg, once_open=lambda: fail(ep, msg))
    assert_explained(h, result, Outcome.RETRY)
    assert result.retry_after == (RETRY_AFTER if h.retry_after else None)


@pytest.mark.parametrize("kind", kinds(lambda h: h.permanent))
def test_a_permanent_failure_fails(kind: str, env: Env) -> None:
    h = harness(kind)
    fail = h.permanent
    assert fail is not None
    ep = h.endpoint(env)
    msg = message(1, ep, kind)
    (result,) = deliver_all(kind, ep.table, msg, once_open=lambda: fail(ep, msg))
    assert_explained(h, result, Outcome.FAILED)
    assert result.retry_after is None


@pytest.mark.parametrize("kind", kinds(lambda h: h.unreachable))
def test_an_unreachable_endpoint_is_retried(kind: str, env: Env) -> None:
    h = harness(kind)
    assert h.unreachable is not None
    ep = h.unreachable(env)
    channel = build(kind, ep.table)

    async def go() -> DeliveryResult:
        try:
            await channel.open()
        except Exception as exc:
            pytest.fail(
                f"{kind}: open() raised {type(exc).__name__}: {exc} for an endpoint that is "
                "not there (that is for deliver() to report, as a retry)",
                pytrace=False,
            )
        try:
            return await deliver(channel, message(1, ep, kind))
        finally:
            await channel.close()

    assert_explained(h, asyncio.run(go()), Outcome.RETRY)
    if ep.port is not None:
        assert client_sockets(ep.port) == 0


# --- 5. open and close --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_close_without_open_is_safe(kind: str, env: Env) -> None:
    channel = build(kind, harness(kind).endpoint(env).table)

    async def go() -> set[asyncio.Task[Any]]:
        await channel.close()
        await channel.close()
        return asyncio.all_tasks() - {asyncio.current_task()}

    assert asyncio.run(go()) == set()


@pytest.mark.parametrize("kind", kinds())
def test_open_and_close_are_idempotent_and_leave_nothing_behind(kind: str, env: Env) -> None:
    ep = harness(kind).endpoint(env)
    channel = build(kind, ep.table)
    threads = set(threading.enumerate())

    async def go() -> tuple[DeliveryResult, set[asyncio.Task[Any]]]:
        await channel.open()
        await channel.open()
        result = await deliver(channel, message(1, ep, kind))
        await channel.close()
        await channel.close()
        return result, asyncio.all_tasks() - {asyncio.current_task()}

    result, tasks = asyncio.run(go())
    assert result.outcome == Outcome.SENT, f"{kind}: {result}"
    assert tasks == set(), f"{kind}: tasks still running after close(): {tasks}"
    assert [t.name for t in threading.enumerate() if t not in threads] == []
    if ep.port is not None:
        assert client_sockets(ep.port) == 0, f"{kind}: sockets still open after close()"
    assert len(ep.arrivals()) == 1


# --- 6. config validation -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds(lambda h: h.bad))
def test_a_bad_value_is_refused_naming_the_key(kind: str) -> None:
    h = harness(kind)
    assert h.bad is not None
    changes, key = h.bad
    table = {"kind": kind, **h.minimal}
    parse_table(table)  # the table without the bad value is fine
    with pytest.raises(ConfigError) as err:
        parse_table({**table, **changes})
    assert err.value.key is not None and err.value.key.startswith("channels.contract")
    assert key in str(err.value), f"{kind}: {err.value} does not name {key}"


# --- 7. concurrency -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", kinds())
def test_deliveries_at_once_each_arrive_once_within_max_connections(kind: str, env: Env) -> None:
    ep = harness(kind).endpoint(env)
    channel = build(kind, {**ep.table, "max_connections": BURST_CONNECTIONS})
    assert channel.config.max_connections == BURST_CONNECTIONS
    messages = [message(i, ep, kind) for i in range(1, BURST + 1)]

    async def go() -> list[DeliveryResult]:
        await channel.open()
        try:
            return list(await asyncio.gather(*(deliver(channel, m) for m in messages)))
        finally:
            await channel.close()

    gauge = ep.gauge
    if gauge is not None:
        gauge.hold = BURST_CONNECTIONS  # the requests wait until they are that many at once
    results = asyncio.run(go())
    assert [r for r in results if r.outcome != Outcome.SENT] == []
    assert ep.problems() == []
    arrived = ep.arrivals()
    times = {m.delivery_id: sum(token(m.delivery_id) in a.text for a in arrived) for m in messages}
    assert {i: n for i, n in times.items() if n != 1} == {}, f"{kind}: arrivals per delivery"
    assert len(arrived) == BURST
    if ep.connections is not None:
        assert 1 <= ep.connections() <= BURST_CONNECTIONS, f"{kind}: {ep.connections()} at once"
    if gauge is not None:
        assert not gauge.held_too_long, f"{kind}: never {BURST_CONNECTIONS} requests at once"
        assert gauge.peak == BURST_CONNECTIONS, f"{kind}: {gauge.peak} requests at once"
