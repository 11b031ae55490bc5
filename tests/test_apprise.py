"""The apprise channel against real local endpoints: Apprise's ``json://`` plugin posting to
the JSON endpoint of :mod:`tests.fakes.apprise` (which checks the payload Apprise documents for
it), and ``mailto://`` to the aiosmtpd server (plain SMTP on a loopback port). What every
channel must do is asserted once for all kinds in ``test_channel_contract.py``."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from importlib.util import find_spec
from typing import Any

import pytest

from outagecomms.channels import registry
from outagecomms.channels.apprise import AppriseChannel, notify_type
from outagecomms.channels.base import DeliveryResult, OutboundMessage, Outcome
from outagecomms.config.loader import parse_config
from outagecomms.config.model import CompanyConfig
from outagecomms.errors import ConfigError
from outagecomms.models import Customer, RoundKind
from outagecomms.rendering.templates import PARTS
from tests.fakes.apprise import JsonEndpoint
from tests.fakes.asgi import Reply
from tests.fakes.smtp import SmtpServer
from tests.support.builders import CREDIT, context, renderer, round_data
from tests.support.channels import deliver_each, refused_at_open
from tests.support.data import REPO

# The test extra installs Apprise; CI runs these. A mark rather than importorskip keeps the
# module importable: without Apprise the contract suite's apprise tests fail (loudly) instead
# of the whole suite being skipped.
pytestmark = pytest.mark.skipif(find_spec("apprise") is None, reason="apprise is not installed")

SUBJECT = "[Investigating] Sign-in failures: we are on it (INC-12)"
TEXT = "Since 12:48 UTC, api in eu-west is not working as it should.\n\nReference: INC-12\n"


# --- helpers ------------------------------------------------------------------------------------


def make(**table: Any) -> AppriseChannel:
    cfg = parse_config({"channels": {"ops": {"kind": "apprise", **table}}}, None)
    ch = registry.get("apprise")(cfg.channels["ops"], cfg.company)
    assert isinstance(ch, AppriseChannel)
    return ch


def message(
    delivery_id: int = 7, kind: str = "acknowledgement", status: str = "investigating"
) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=delivery_id,
        to="",
        to_name="S1 Technology",
        subject=SUBJECT,
        text=TEXT,
        html=None,
        message_id=f"<oc.{delivery_id}.inc-12.r1@example.com>",
        data=round_data(
            incident="INC-12",
            status=status,
            kind=kind,
            message="",
            customer="*",
            components=["api"],
            promised_next_by=None,
        ),
    )


# --- registry and config ------------------------------------------------------------------------


def test_registered_once_per_round() -> None:
    cls = registry.get("apprise")
    assert cls is AppriseChannel
    assert cls.contact_field is None
    assert cls.template_channel == "apprise"
    assert PARTS["apprise"] == ("subject", "txt")
    assert not cls.delivers("follow_up")


# That config.example.toml documents every key (and that its URLs are usable) is checked for
# every kind by test_channel_contract.py::test_every_config_key_is_documented_in_the_example.


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"urls": ["nope://user:topsecret@example.com"]}, "urls[0] Apprise cannot use nope://…"),
        ({"urls": ["json://127.0.0.1/x", "mailto://"]}, "urls[1] Apprise cannot use mailto://…"),
        ({"urls": ["not a url"]}, "urls[0] Apprise cannot use a text without '://'"),
        ({"urls": [""]}, "urls[0] must be an Apprise URL"),
        ({"urls": "json://127.0.0.1/x"}, "urls must be a list"),
        ({}, "set urls"),
        ({"urls": ["json://127.0.0.1/x"], "timeout": 0}, "timeout"),
    ],
)
def test_config_errors_name_the_key(table: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        make(**table)
    assert err.value.key == "channels.ops"
    assert words in str(err.value)
    assert "topsecret" not in str(err.value)  # an unparseable URL is shown by its scheme only


def test_unknown_key_and_bad_format() -> None:
    with pytest.raises(ConfigError, match=r"channels\.ops\.url:"):
        make(url="json://127.0.0.1/x")
    with pytest.raises(ConfigError, match=r"channels\.ops\.body_format: must be one of"):
        make(urls=["json://127.0.0.1/x"], body_format="rtf")


def test_without_apprise_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(
        {"channels": {"ops": {"kind": "apprise", "urls": ["json://127.0.0.1/x"]}}}, None
    )
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise -> ImportError
    with pytest.raises(ConfigError) as err:
        parse_config({"channels": {"ops": {"kind": "apprise", "urls": ["json://x/y"]}}}, None)
    assert "pip install 'outagecomms[apprise]'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        AppriseChannel(cfg.channels["ops"], CompanyConfig())
    assert err.value.key == "channels.ops.kind"
    assert "pip install 'outagecomms[apprise]'" in str(err.value)


def test_apprise_is_imported_only_for_an_apprise_channel() -> None:
    import subprocess

    code = (
        "import sys; from outagecomms.config.loader import parse_config; "
        "parse_config({'channels': {'chat': {'kind': 'slack'}}}, None); "
        "print('apprise' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_notify_type() -> None:
    assert notify_type({"kind": "acknowledgement", "status": "investigating"}) == "failure"
    assert notify_type({"kind": "update", "status": "monitoring"}) == "warning"
    assert notify_type({"kind": "update", "status": "identified", "severity": "sev4"}) == "warning"
    assert notify_type({"kind": "resolution", "status": "resolved"}) == "success"


# --- sending ------------------------------------------------------------------------------------


def test_json_endpoint_gets_the_documented_payload(endpoint: JsonEndpoint) -> None:
    ch = make(urls=[endpoint.url("/hooks/a")])
    ack, resolved = deliver_each(ch, message(1), message(2, "resolution", "resolved"))
    assert ack.outcome == resolved.outcome == Outcome.SENT, (ack, resolved)
    assert endpoint.problems == []
    first, second = endpoint.recorded("/hooks/a")
    assert first.json() == {
        "version": "1.0",
        "title": SUBJECT,
        "message": TEXT.strip(),
        "attachments": [],
        "type": "failure",
    }
    assert second.json()["type"] == "success"
    assert first.headers["user-agent"] == "outagecomms"


def test_email_through_mailto(smtp_server: SmtpServer) -> None:
    url = (
        f"mailto://{smtp_server.host}:{smtp_server.port}"
        "?from=status@s1.example.com&to=ops@example.com&name=S1 Status"
    )
    (result,) = deliver_each(make(urls=[url]), message())
    assert result.outcome == Outcome.SENT, result
    (got,) = smtp_server.handler.wait_for(lambda ms: len(ms) == 1)
    assert got.rcpt_tos == ["ops@example.com"]
    assert got.mail_from == "status@s1.example.com"
    assert str(got.message["Subject"]) == SUBJECT
    assert got.text().replace("\r\n", "\n").strip() == TEXT.strip()


def test_a_failing_url_retries_naming_it_masked(endpoint: JsonEndpoint) -> None:
    endpoint.script("/hooks/b", Reply(500, '{"error": "down"}'))
    good = endpoint.url("/hooks/a")
    bad = endpoint.url("/hooks/b", auth="bot:s3cret-token")
    ch = make(urls=[good, bad])
    first, second = deliver_each(ch, message(9), message(9))
    assert first.outcome == Outcome.RETRY
    assert first.error is not None
    assert f"JSON json://bot:****@127.0.0.1:{endpoint.port}/hooks/b failed" in first.error
    assert "s3cret-token" not in first.error
    assert "1 of 2 URLs delivered" in first.error
    assert second.outcome == Outcome.SENT
    # the retry went only to the URL that had failed
    assert len(endpoint.recorded("/hooks/a")) == 1
    assert len(endpoint.recorded("/hooks/b")) == 2
    assert endpoint.problems == []


def test_urls_from_the_environment(endpoint: JsonEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TEST_APPRISE_URLS",
        f"{endpoint.url('/hooks/x', auth='u:pw')}\n  {endpoint.url('/hooks/y')}",
    )
    ch = make(urls=[endpoint.url("/hooks/a")], urls_env="TEST_APPRISE_URLS")
    (result,) = deliver_each(ch, message())
    assert result.outcome == Outcome.SENT, result
    assert {h.path for h in endpoint.requests} == {"/hooks/a", "/hooks/x", "/hooks/y"}
    (x,) = endpoint.recorded("/hooks/x")
    assert x.headers["authorization"].startswith("Basic ")


def test_environment_problems_stop_at_open(monkeypatch: pytest.MonkeyPatch) -> None:
    ch = make(urls_env="TEST_APPRISE_URLS")
    monkeypatch.delenv("TEST_APPRISE_URLS", raising=False)
    err = refused_at_open(ch)
    assert err.key == "channels.ops.urls_env"
    assert "TEST_APPRISE_URLS is not set" in str(err)
    monkeypatch.setenv("TEST_APPRISE_URLS", "json://127.0.0.1/ok nope://user:hush@x")
    err = refused_at_open(make(urls_env="TEST_APPRISE_URLS"))
    assert err.key == "channels.ops.urls_env"
    assert "URL 2 in $TEST_APPRISE_URLS" in str(err)
    assert "hush" not in str(err)


def test_the_event_loop_keeps_running_while_apprise_sends(endpoint: JsonEndpoint) -> None:
    """Apprise blocks (requests): it runs in a thread, so the loop is free meanwhile. Were it
    run on the loop, the held request would block the loop until the server gave up."""
    endpoint.script("/hooks/slow", Reply(slow=True))
    ch = make(urls=[endpoint.url("/hooks/slow")], timeout=15)

    async def go() -> tuple[bool, DeliveryResult]:
        await ch.open()
        task = asyncio.create_task(ch.deliver(message()))
        arrived = await asyncio.to_thread(endpoint.arrived.wait, 5)
        await asyncio.sleep(0.05)  # the loop runs other work while the request is held
        still_waiting = arrived and not task.done()
        endpoint.release.set()
        return still_waiting, await task

    still_waiting, result = asyncio.run(go())
    assert still_waiting
    assert result.outcome == Outcome.SENT


def test_slow_endpoint_times_out_and_retries(endpoint: JsonEndpoint) -> None:
    endpoint.script("/hooks/slow", Reply(slow=True))
    (result,) = deliver_each(make(urls=[endpoint.url("/hooks/slow")], timeout=1), message())
    endpoint.release.set()
    assert result.outcome == Outcome.RETRY
    assert result.error is not None and "/hooks/slow failed" in result.error


# --- templates ----------------------------------------------------------------------------------


# once per round: no follow-up, no credit notice (each customer's own)
@pytest.mark.parametrize(
    "kind", [k for k in RoundKind if k not in (RoundKind.FOLLOW_UP, RoundKind.CREDIT)]
)
def test_templates(kind: RoundKind) -> None:
    r = renderer()
    more = {"credit": CREDIT} if kind == RoundKind.RESOLUTION else {}
    out = r.render(
        kind, "apprise", context(kind, Customer(id="*", name="Acme Logistics"), r=r, **more)
    )
    assert out.subject and "\n" not in out.subject and "INC-42" in out.subject
    text = out.text
    assert "{{" not in text and "\n\n\n" not in text
    assert "Acme" not in text and "12,00" not in text  # not one customer's message
    assert "support@example.com" in text and "https://status.example.com" in text
    assert ("sorry" in text.lower()) == (kind in (RoundKind.ACKNOWLEDGEMENT, RoundKind.RESOLUTION))
    assert len(text) < 1000


# --- the benchmark baseline ---------------------------------------------------------------------


def test_benchmark_baseline_sends_one_personalised_email_per_customer(
    smtp_server: SmtpServer,
) -> None:
    spec = importlib.util.spec_from_file_location(
        "apprise_baseline", REPO / "benchmarks" / "apprise_baseline.py"
    )
    assert spec is not None and spec.loader is not None
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    rate = baseline.apprise_rate(
        smtp_server.host, smtp_server.port, 3, from_addr="support@example.com"
    )
    assert rate > 0
    got = smtp_server.handler.wait_for(lambda ms: len(ms) == 3)
    assert sorted(r.rcpt_tos[0] for r in got) == [f"c{i:05d}@example.com" for i in range(3)]
    assert {r.text().splitlines()[0] for r in got} == {f"Hello Customer {i}," for i in range(3)}
