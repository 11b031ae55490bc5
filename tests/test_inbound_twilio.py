"""``POST /inbound/twilio`` on a real uvicorn server on loopback: requests signed the way Twilio
signs them (the reference below is written from Twilio's "Webhooks security" page, not from our
module), refused with 403 and nothing stored when the signature is missing or wrong, bounded,
and stored (table ``inbound``, source ``twilio``) when valid."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from outagecomms.app import App
from outagecomms.errors import StoreUnavailable
from outagecomms.store import incidents as incidents_db
from outagecomms.store import tables as t
from outagecomms.web.twilio_inbound import MAX_BODY, signature, url_variants
from tests.support.data import sample_csv
from tests.support.web import serve_web

PUBLIC = "https://status.example.com/oc"
TOKEN_A = "auth-token-account-a-0123456789"
TOKEN_B = "auth-token-account-b-9876543210"

CHANNELS = f"""public_url = "{PUBLIC}/"

[channels.sms]
kind = "twilio"
from = "+15550100999"
account_sid_env = "TEST_TWILIO_SID"
auth_token_env = "TEST_TWILIO_TOKEN"

[channels.sms_eu]
kind = "twilio"
from = "+4915550100"
account_sid_env = "TEST_TWILIO_SID"
auth_token_env = "TEST_TWILIO_TOKEN_EU"
"""


def twilio_reference(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented algorithm: take the full URL of the request (with its query string),
    sort the POST parameters alphabetically by name, append each name and its value to the URL
    with no delimiters, sign the string with HMAC-SHA1 keyed by the Auth Token, base64 it."""
    data = url + "".join(key + params[key] for key in sorted(params))
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def sms_form(**extra: str) -> dict[str, str]:
    """An incoming-message webhook as Twilio documents its parameters."""
    return {
        "MessageSid": "SM0123456789abcdef0123456789abcdef",
        "SmsSid": "SM0123456789abcdef0123456789abcdef",
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "MessagingServiceSid": "",
        "From": "+15550100123",
        "To": "+15550100999",
        "Body": "Third outage this month. We are considering cancelling & want a refund!",
        "NumMedia": "0",
        "NumSegments": "1",
        "FromCountry": "US",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def post(
    client: httpx.Client,
    form: dict[str, str],
    *,
    token: str | None = TOKEN_A,
    url: str = f"{PUBLIC}/inbound/twilio",
    path: str = "/inbound/twilio",
    sig: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if sig is None and token is not None:
        sig = twilio_reference(token, url, form)
    if sig is not None:
        headers["X-Twilio-Signature"] = sig
    return client.post(path, content=urlencode(form), headers=headers)


def stored(app: App) -> list[dict[str, Any]]:
    i = t.inbound
    with app.store.read() as conn:
        rows = conn.execute(select(i.c.source, i.c.channel, i.c.sender)).all()
    return [dict(r._mapping) for r in rows]


def count(app: App) -> int:
    with app.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.inbound)).scalar_one())


@pytest.fixture
def app(make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "daemon-secret")
    monkeypatch.setenv("TEST_TWILIO_SID", "AC0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("TEST_TWILIO_TOKEN", TOKEN_A)
    monkeypatch.setenv("TEST_TWILIO_TOKEN_EU", TOKEN_B)
    with App.open(make_config(None, extra=CHANNELS)) as a:
        a.clock = lambda: datetime.now(UTC)
        yield a


@pytest.fixture
def client(app: App) -> Iterator[httpx.Client]:
    with serve_web(app) as c:
        yield c


# --- the signature ---------------------------------------------------------------------------


def test_our_signature_is_twilios() -> None:
    form = sms_form(Body="Grüße, ça marche? 🙂")
    url = f"{PUBLIC}/inbound/twilio?x=1&y=a%20b"
    ours = signature(TOKEN_A, url, {k: [v] for k, v in form.items()})
    assert ours == twilio_reference(TOKEN_A, url, form)
    assert ours != twilio_reference(TOKEN_B, url, form)


def test_the_default_port_is_tried_both_ways() -> None:
    assert url_variants("https://x.example.com/a?b=1") == [
        "https://x.example.com/a?b=1",
        "https://x.example.com:443/a?b=1",
    ]
    assert url_variants("https://x.example.com:443/a")[1] == "https://x.example.com/a"
    assert url_variants("http://x.example.com:8080/a") == ["http://x.example.com:8080/a"]


# --- refused: 403, nothing stored --------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["missing", "other token", "other url", "altered body", "garbage", "empty"],
)
def test_a_missing_or_wrong_signature_is_403_and_nothing_is_stored(
    client: httpx.Client, app: App, how: str
) -> None:
    form = sms_form()
    kwargs: dict[str, Any] = {}
    if how == "missing":
        kwargs["token"] = None
    elif how == "other token":
        kwargs["token"] = "not-the-auth-token"
    elif how == "other url":  # signed for another endpoint
        kwargs["url"] = f"{PUBLIC}/inbound/other"
    elif how == "altered body":
        kwargs["sig"] = twilio_reference(TOKEN_A, f"{PUBLIC}/inbound/twilio", form)
        form = {**form, "Body": "All fine, thanks!"}
    elif how == "garbage":
        kwargs["sig"] = "AAAA" + twilio_reference(TOKEN_A, f"{PUBLIC}/inbound/twilio", form)
    else:
        kwargs["sig"] = ""
    res = post(client, form, **kwargs)
    assert res.status_code == 403
    assert "X-Twilio-Signature" in res.text
    assert count(app) == 0


def test_a_body_over_the_limit_is_413(client: httpx.Client, app: App) -> None:
    form = sms_form(Body="x" * (MAX_BODY + 1))
    res = post(client, form)
    assert res.status_code == 413
    assert count(app) == 0


def test_only_a_form_is_taken(client: httpx.Client, app: App) -> None:
    res = client.post(
        "/inbound/twilio",
        json=sms_form(),
        headers={"X-Twilio-Signature": twilio_reference(TOKEN_A, f"{PUBLIC}/inbound/twilio", {})},
    )
    assert res.status_code == 415
    assert count(app) == 0


def test_without_public_url_nothing_can_be_checked(
    make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTAGECOMMS_SECRET", "daemon-secret")
    monkeypatch.setenv("TEST_TWILIO_TOKEN", TOKEN_A)
    extra = CHANNELS.split("\n", 1)[1]  # no public_url
    with App.open(make_config(None, extra=extra)) as a, serve_web(a) as c:
        res = post(c, sms_form())
        assert res.status_code == 503
        assert "public_url" in res.text
        assert count(a) == 0


# --- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN_A, TOKEN_B], ids=["first account", "second account"])
def test_a_valid_text_is_stored_and_answered_with_empty_twiml(
    client: httpx.Client, app: App, token: str
) -> None:
    res = post(client, sms_form(), token=token)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/xml")
    assert res.text.endswith("<Response/>")
    assert stored(app) == [{"source": "twilio", "channel": "sms", "sender": "+15550100123"}]


def test_the_signature_covers_the_query_string_and_the_port(client: httpx.Client, app: App) -> None:
    query = "account=eu&note=a%20b"
    res = post(
        client,
        sms_form(),
        url=f"https://status.example.com:443/oc/inbound/twilio?{query}",
        path=f"/inbound/twilio?{query}",
    )
    assert res.status_code == 200, res.text
    assert count(app) == 1
    # the same request signed without its query string is someone else's
    res = post(client, sms_form(MessageSid="SM" + "1" * 32), path=f"/inbound/twilio?{query}")
    assert res.status_code == 403
    assert count(app) == 1


def test_a_store_that_is_down_is_503(
    client: httpx.Client, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outagecomms.inbound import pipeline

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the database is locked")

    monkeypatch.setattr(pipeline, "ingest_sms", down)
    res = post(client, sms_form())
    assert res.status_code == 503
    assert count(app) == 0


def test_a_customers_text_reaches_their_open_incident_and_show_counts_it(
    client: httpx.Client, app: App
) -> None:
    from outagecomms.directory.importer import import_file
    from outagecomms.incidents.lifecycle import commit_declare, plan_declare
    from outagecomms.incidents.views import show_incident
    from outagecomms.models import Selector
    from tests.support.data import sample_rows

    import_file(app, sample_csv())
    plan = plan_declare(
        app, title="Auth errors", severity="sev2", selector=Selector(components=("auth",)),
        message="We are investigating.",
    )  # fmt: skip
    iid = commit_declare(app, plan, send=False).incident.id
    with app.store.read() as conn:
        audience = set(incidents_db.audience_customer_ids(conn, iid))
    who = next(r for r in sample_rows() if r["id"] in audience and r["phone"])
    text = "Third outage this month, we are considering cancelling."
    res = post(client, sms_form(From=who["phone"], Body=text))
    assert res.status_code == 200, res.text
    i = t.inbound
    with app.store.read() as conn:
        row = conn.execute(select(i.c.customer_id, i.c.incident_id, i.c.text)).one()
    assert (row.customer_id, row.incident_id, row.text) == (who["id"], iid, text)
    detail = show_incident(app, iid, customer=who["id"]).to_json()
    assert sum(detail["replies"]["reply"].values()) == 1
    assert [r["text"] for r in detail["customer"]["replies"]] == [text]


def test_a_repeated_parameter_is_signed_value_by_value() -> None:
    """Twilio's helper libraries append a repeated name once per (distinct, sorted) value."""
    url = f"{PUBLIC}/inbound/twilio"
    ours = signature(TOKEN_A, url, {"MediaUrl": ["b", "a", "b"], "From": ["+1555"]})
    data = url + "From+1555" + "MediaUrla" + "MediaUrlb"
    mac = hmac.new(TOKEN_A.encode(), data.encode(), hashlib.sha1)
    assert ours == base64.b64encode(mac.digest()).decode()
