"""SMS through Twilio Programmable Messaging.

Each message is one ``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP
Basic auth (Account SID, Auth Token) and a form-encoded body: ``To`` (E.164), ``From`` or
``MessagingServiceSid``, ``Body``, optionally ``StatusCallback``, and ``ValidityPeriod``: the
seconds Twilio may keep the message queued, never longer than the time until the round's next
promise (``promised_next_by``), so a stale "still investigating" text cannot arrive after the
resolution. Twilio accepts 1..36,000 seconds; the value is clamped to that range and left out
when the round promises nothing.

Twilio answers ``201`` with the Message resource (its ``sid`` is our provider id). Errors carry a
JSON body ``{"code": 21211, "message": ..., "status": 400}``:

- 429, or error 20429 (too many requests): ``retry``, honouring ``Retry-After``;
- 21211 (invalid ``To``) and 21610 (recipient opted out, replied STOP): ``failed`` with the error
  prefixed ``twilio 21211:`` / ``twilio 21610:`` so the caller can flag the contact
  (:func:`error_code` reads it back);
- 20003 (HTTP 401: the Account SID and Auth Token do not authenticate) and 20404 (HTTP 404:
  no such account, e.g. a mistyped SID): ``failed``, like every other 4xx: they stay wrong
  until someone changes them, so retrying only delays the news. Pre-flight refuses a round
  whose SID cannot be one (``secret_problem``) before anything is queued;
- other 4xx: ``failed``; 5xx, timeouts, connection errors: ``retry``.

The Account SID and Auth Token are read from the environment variables that ``account_sid_env``
and ``auth_token_env`` name. :func:`sms_segments` counts what a text costs (GSM-7: 160 characters
in one segment, 153 per part of a longer one, the extension characters counting double; UCS-2 as
soon as one character is outside GSM-7: 70, then 67 per part).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import httpx

from outagecomms.channels.base import DeliveryResult, KeySpec, OutboundMessage, ProbeResult
from outagecomms.channels.http_base import (
    HTTP_KEYS,
    HttpChannel,
    body_excerpt,
    classify_status,
    parse_retry_after,
    sent_with_id,
)
from outagecomms.config.model import ChannelConfig, CompanyConfig
from outagecomms.errors import ConfigError

API_VERSION = "2010-04-01"
DEFAULT_BASE_URL = "https://api.twilio.com"
VALIDITY_MIN = 1
VALIDITY_MAX = 36_000  # Twilio's upper bound for ValidityPeriod, in seconds
TOO_MANY_REQUESTS = 20429
INVALID_TO = 21211
OPTED_OUT = 21610

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_ALPHA_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")  # alphanumeric sender ID
_ERROR_PREFIX = re.compile(r"twilio (\d+):")
#: no-break spaces (Babel puts U+202F in "8:30 AM") are not GSM-7: send plain spaces
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})

# --- segments -----------------------------------------------------------------------------------

#: the GSM 03.38 default alphabet (one septet each); ESC (0x1B) is not a character of its own
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: the extension table: ESC + one septet, so two septets each
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def _units(text: str) -> tuple[str, list[int]]:
    """The encoding of ``text`` and the size of each character in that encoding's units."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        return "GSM-7", [2 if c in GSM7_EXTENDED else 1 for c in text]
    # UTF-16 code units: a character outside the BMP is a surrogate pair, never split
    return "UCS-2", [2 if ord(c) > 0xFFFF else 1 for c in text]


def _parts(sizes: list[int], per_part: int) -> int:
    """Parts needed when no character (escape pair, surrogate pair) may straddle two parts."""
    parts, used = 1, 0
    for size in sizes:
        if used + size > per_part:
            parts += 1
            used = 0
        used += size
    return parts


def sms_body(text: str) -> str:
    """A text as it is sent: locale spaces (Babel's no-break and thin ones) made plain, as they
    would force UCS-2 (a segment of 67 characters instead of 153)."""
    return text.translate(_SPACES).strip()


def sms_segments(text: str) -> tuple[str, int]:
    """``(encoding, segments)`` for one SMS body: ``"GSM-7"`` or ``"UCS-2"`` and how many
    segments the carrier bills. An empty body is one (empty) segment."""
    encoding, sizes = _units(text)
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_PART)
    if sum(sizes) <= single:
        return encoding, 1
    return encoding, _parts(sizes, part)


# --- outcomes -----------------------------------------------------------------------------------


def error_code(error: str | None) -> int | None:
    """The Twilio error code at the start of a result's error (``"twilio 21610: ..."``)."""
    if not error:
        return None
    m = _ERROR_PREFIX.match(error)
    return int(m.group(1)) if m else None


def validity_period(promised_next_by: str | datetime | None, now: float) -> int | None:
    """Seconds from ``now`` (a Unix time) until the next promise, clamped to 1..36,000; None
    when nothing is promised (or the promise cannot be read)."""
    if promised_next_by is None or promised_next_by == "":
        return None
    if isinstance(promised_next_by, datetime):
        when = promised_next_by
    else:
        try:
            when = datetime.fromisoformat(str(promised_next_by))
        except ValueError:
            return None
    if when.tzinfo is None:  # our promises are stored in UTC
        return None
    seconds = math.floor(when.timestamp() - now)
    return max(VALIDITY_MIN, min(VALIDITY_MAX, seconds))


def _twilio_error(response: httpx.Response) -> tuple[int | None, str]:
    """The error code and message of a Twilio error body (None, excerpt when not JSON)."""
    try:
        doc = response.json()
    except ValueError:
        return None, body_excerpt(response)
    if not isinstance(doc, dict):
        return None, body_excerpt(response)
    code = doc.get("code")
    text = " ".join(str(doc.get("message") or "").split())[:200]
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), text


class TwilioChannel(HttpChannel):
    kind = "twilio"
    template_channel = "sms"
    contact_field = "phone"
    provider = "Twilio"
    max_connections = 8
    rate_per_second = 0.0  # for the whole account; 0 = let Twilio queue
    config_keys: ClassVar[dict[str, KeySpec]] = {
        **HTTP_KEYS,
        "account_sid_env": (str, "TWILIO_ACCOUNT_SID"),
        "auth_token_env": (str, "TWILIO_AUTH_TOKEN"),
        "from": (str, ""),
        "messaging_service_sid": (str, ""),
        "base_url": (str, DEFAULT_BASE_URL),
        "status_callback": (str, ""),
    }

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        problem = super().check_config(settings)
        if problem:
            return problem
        for key in ("account_sid_env", "auth_token_env"):
            if not settings.get(key):
                return f"{key} must name the environment variable holding the Twilio credential"
        sender = settings.get("from") or ""
        service = settings.get("messaging_service_sid") or ""
        if bool(sender) == bool(service):
            return "set exactly one of from (a phone number) and messaging_service_sid"
        if sender and not (_E164.fullmatch(sender) or _ALPHA_SENDER.fullmatch(sender)):
            return (
                f"from must be an E.164 number like +15550100123 or an alphanumeric sender ID "
                f"of at most 11 characters, got {sender!r}"
            )
        if service and not _SERVICE_SID.fullmatch(service):
            return f"messaging_service_sid must look like MG followed by 32 hex digits, got {service!r}"
        for key in ("base_url", "status_callback"):
            value = settings.get(key) or ""
            if key == "status_callback" and not value:
                continue
            try:
                url = httpx.URL(value)
            except (httpx.InvalidURL, TypeError):
                return f"{key} is not a valid URL: {value!r}"
            if url.scheme not in ("https", "http") or not url.host:
                return f"{key} must be an http(s) URL, got {value!r}"
        return None

    @classmethod
    def secret_problem(cls, key: str, value: str) -> str | None:
        if key == "account_sid" and not _ACCOUNT_SID.fullmatch(value.strip()):
            return "does not hold a Twilio Account SID (AC followed by 32 hex digits)"
        return None

    def __init__(self, config: ChannelConfig, company: CompanyConfig, **kwargs: Any):
        super().__init__(config, company, **kwargs)
        self.base_url = str(self.settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self._auth: tuple[str, str] | None = None  # (url, Authorization header)

    def _credentials(self) -> tuple[str, str]:
        """The Messages URL and the Basic ``Authorization`` header, read once."""
        if self._auth is None:
            sid = self.required_secret("account_sid", "the Twilio Account SID")
            token = self.required_secret("auth_token", "the Twilio Auth Token")
            if not _ACCOUNT_SID.fullmatch(sid):
                raise ConfigError(
                    "the Twilio Account SID must be AC followed by 32 hex digits",
                    key=f"channels.{self.config.name}.account_sid_env",
                )
            basic = base64.b64encode(f"{sid}:{token}".encode()).decode("ascii")
            url = f"{self.base_url}/{API_VERSION}/Accounts/{quote(sid)}/Messages.json"
            self._auth = (url, f"Basic {basic}")
        return self._auth

    async def open(self) -> None:
        self._credentials()  # missing credentials stop here, before anything is sent
        await super().open()

    async def probe(self, contacts: Sequence[str] = ()) -> list[ProbeResult]:
        """Fetch the Account resource (``GET /2010-04-01/Accounts/{Sid}.json``, read-only): the
        credentials work and the account is ``active`` (not ``suspended`` or ``closed``)."""
        messages_url, authorization = self._credentials()
        url = messages_url.removesuffix("/Messages.json") + ".json"
        sid = url.rsplit("/", 1)[1].removesuffix(".json")
        shown = f"{self.base_url}/{API_VERSION}/Accounts/{sid[:6]}….json"

        def active(response: httpx.Response) -> tuple[bool, str]:
            try:
                doc = response.json()
            except ValueError:
                doc = None
            status = doc.get("status") if isinstance(doc, dict) else None
            if status == "active":
                return True, "account active"
            return False, f"the account is {status or 'of unknown status'}, not active"

        return [await self.probe_get(url, {"Authorization": authorization}, shown, active)]

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Send honouring the rate limit of the account (one limiter for the channel)."""
        url, _ = self._credentials()
        lim = self.limiter_for(url)
        if lim is not None:
            await lim.acquire()
        return await self.send(message)

    def form(self, message: OutboundMessage) -> dict[str, str]:
        """The form fields of one message."""
        body = sms_body(message.text)
        fields = {"To": message.to.replace(" ", ""), "Body": body}
        if self.settings.get("messaging_service_sid"):
            fields["MessagingServiceSid"] = str(self.settings["messaging_service_sid"])
        else:
            fields["From"] = str(self.settings["from"])
        if self.settings.get("status_callback"):
            fields["StatusCallback"] = str(self.settings["status_callback"])
        validity = validity_period(message.data.get("promised_next_by"), self.clock())
        if validity is not None:
            fields["ValidityPeriod"] = str(validity)
        return fields

    def payload(self, message: OutboundMessage) -> bytes:
        return urlencode(self.form(message)).encode("ascii")

    def result(self, response: httpx.Response) -> DeliveryResult:
        status = response.status_code
        if 200 <= status < 300:
            return sent_with_id(response, "sid", provider="Twilio", what="a Message sid")
        code, text = _twilio_error(response)
        if code is None:
            return classify_status(response, provider=self.provider)
        error = f"twilio {code}: {text or 'no message'} (HTTP {status})"
        if code == TOO_MANY_REQUESTS or status == 429 or status >= 500:
            wait = parse_retry_after(response.headers.get("retry-after"))
            return DeliveryResult.retry(error, retry_after=wait)
        return DeliveryResult.failed(error, flag_contact=code in (INVALID_TO, OPTED_OUT))

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        to = message.to.replace(" ", "")
        if not _E164.fullmatch(to):
            return DeliveryResult.failed(
                f"twilio {INVALID_TO}: {to!r} is not an E.164 phone number (not sent)",
                flag_contact=True,
            )
        if not message.text.strip():
            return DeliveryResult.failed("Twilio: the rendered SMS body is empty")
        url, authorization = self._credentials()
        body = self.payload(message)
        answer = await self.post(
            url,
            body,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": authorization,
                "Accept": "application/json",
            },
        )
        if isinstance(answer, DeliveryResult):
            return answer
        return self.result(answer)
