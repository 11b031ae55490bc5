"""Email over SMTP: a bounded pool of reused connections.

aiosmtplib opens each connection (STARTTLS/TLS, AUTH); when the server offers PIPELINING the
connection is then driven by :mod:`outagecomms.channels.smtp_pipeline` (two round trips per
message), otherwise by aiosmtplib's ``sendmail``. SMTP 4xx and connection problems are
transient (``retry``); 5xx is permanent (``failed``), a refused login (``535``) included:
retrying bad credentials only delays the moment someone fixes them. An internationalised
address goes with its domain in IDNA form (``mime.wire_address``); one whose part before the @
is not ASCII needs SMTPUTF8 and fails for good (with that reason) on a server that does not
offer it. Every error is one line that says
``SMTP``: servers answer in several lines (Gmail refuses an unknown address in two), and an
error is shown in tables and logs next to those of the other channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

if TYPE_CHECKING:  # imported when a channel is built: loading the config must stay cheap
    import aiosmtplib

from outagecomms.channels.base import DeliveryResult, KeySpec, OutboundMessage, ProbeResult
from outagecomms.channels.email_base import EmailChannel
from outagecomms.channels.smtp_pipeline import PipelinedSession, SessionLost
from outagecomms.errors import ConfigError
from outagecomms.rendering.mime import builder, wire_address
from outagecomms.values import shown_env

Session: TypeAlias = "aiosmtplib.SMTP | PipelinedSession"


class SmtpChannel(EmailChannel):
    kind = "smtp"
    max_connections = 8
    config_keys: ClassVar[dict[str, KeySpec]] = {
        "host": (str, "127.0.0.1"),
        "port": (int, 25),
        "tls": (("none", "starttls", "tls"), "none"),
        "username": (str, ""),
        "password_env": (str, ""),
        **EmailChannel.from_key,
        "timeout": (int, 30),
        "validate_certs": (bool, True),
        "pipelining": (bool, True),  # use PIPELINING when the server offers it
    }

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        if settings["username"] and not settings["password_env"]:
            return "username is set, so password_env must name the variable holding the password"
        if not 0 < settings["port"] < 65536:
            return f"port must be 1..65535, got {settings['port']}"
        return super().check_config(settings)

    @classmethod
    def required_secrets(cls, settings: Mapping[str, Any]) -> tuple[str, ...]:
        """The password, when the channel logs in (``username``)."""
        return ("password",) if settings.get("username") and settings.get("password_env") else ()

    def __init__(self, *args: Any, **kwargs: Any):
        import aiosmtplib

        super().__init__(*args, **kwargs)
        self._idle: asyncio.LifoQueue[Session] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(self.config.max_connections)
        self._all: set[Session] = set()
        self.sender = self.settings["from"]
        self.envelope_from = aiosmtplib.email.parse_address(self.sender)
        self.builder = builder(self.sender, self.company.support_email)

    def _password(self) -> str | None:
        if not self.settings["username"]:
            return None
        pw = self.config.secret("password")
        if pw is None and self.settings["password_env"]:
            raise ConfigError(
                f"environment variable {shown_env(self.settings['password_env'])} is not set",
                key=f"channels.{self.config.name}.password_env",
            )
        return pw

    def _client(self) -> aiosmtplib.SMTP:
        """A new, unconnected client with the configured TLS (and certificate checks)."""
        import aiosmtplib

        s = self.settings
        ctx = None if s["validate_certs"] else ssl._create_unverified_context()
        return aiosmtplib.SMTP(
            hostname=s["host"],
            port=s["port"],
            timeout=s["timeout"],
            use_tls=s["tls"] == "tls",
            start_tls=s["tls"] == "starttls",
            validate_certs=s["validate_certs"],
            tls_context=ctx,
        )

    async def _connect(self) -> Session:
        s = self.settings
        client = self._client()
        await client.connect()
        if s["username"]:
            await client.login(s["username"], self._password() or "")
        session: Session = client
        if s["pipelining"]:
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            if client.supports_extension("pipelining") and isinstance(
                client.transport, asyncio.Transport
            ):
                session = PipelinedSession(
                    client.transport,
                    timeout=float(s["timeout"]),
                    offers_smtputf8=client.supports_extension("smtputf8"),
                )
        self._all.add(session)
        return session

    async def probe(self, contacts: Sequence[str] = ()) -> list[ProbeResult]:
        """Connect, EHLO, STARTTLS (or TLS) and AUTH as configured, then QUIT: no MAIL FROM,
        so no message is ever started."""
        import aiosmtplib

        from outagecomms.channels.probing import describe

        s = self.settings
        target = f"smtp {s['host']}:{s['port']}"
        timeout = float(s["timeout"])
        client = self._client()
        done = []
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            done += {"tls": ["TLS", "EHLO"], "starttls": ["EHLO", "STARTTLS"]}.get(
                s["tls"], ["EHLO"]
            )
            if s["username"]:
                await _auth_once(client, s["username"], self._password() or "")
                done.append("AUTH")
        except aiosmtplib.SMTPAuthenticationError as exc:
            why = _one_line(f"AUTH refused: {exc.code} {exc.message}")
            return [ProbeResult(target=target, ok=False, detail=why)]
        except aiosmtplib.SMTPResponseException as exc:
            why = _one_line(f"{exc.code} {exc.message}")
            return [ProbeResult(target=target, ok=False, detail=why)]
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return [ProbeResult(target=target, ok=False, detail=describe(exc, timeout=timeout))]
        finally:
            if client.is_connected:
                try:
                    await asyncio.wait_for(client.quit(), 2)
                except Exception:
                    client.close()
        return [ProbeResult(target=target, ok=True, detail=", ".join(done) + " ok")]

    def _take_idle(self) -> Session | None:
        """A pooled connection that is still open, or None. Servers close connections left idle
        (their idle timeout); the daemon keeps its pool between rounds, and sending on a closed
        one would turn a good delivery into a retry, late by the backoff."""
        while True:
            try:
                client = self._idle.get_nowait()
            except asyncio.QueueEmpty:
                return None
            if client.is_connected:
                return client
            self._all.discard(client)
            with contextlib.suppress(Exception):
                client.close()

    async def _discard(self, client: Session) -> None:
        self._all.discard(client)
        with contextlib.suppress(Exception):
            client.close()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        import aiosmtplib

        try:
            rcpt, smtputf8 = wire_address(message.to)
            data = self.builder.build(message)
        except ValueError as exc:
            return DeliveryResult.failed(str(exc))
        async with self._slots:
            client = self._take_idle()
            if client is None:
                try:
                    client = await self._connect()
                except aiosmtplib.SMTPAuthenticationError as exc:
                    # 535 (bad credentials) and other 5xx: permanent until the config changes;
                    # 454 (temporary authentication failure) and other 4xx: a retry
                    return self._by_code(exc.code, f"SMTP login failed: {exc.code} {exc.message}")
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    return DeliveryResult.retry(_one_line(f"cannot connect to SMTP server: {exc}"))
            try:
                refuse = smtputf8 and not await _offers_smtputf8(client)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._discard(client)
                return DeliveryResult.retry(_one_line(f"SMTP connection failed: {exc}"))
            if refuse:
                self._idle.put_nowait(client)
                return DeliveryResult.failed(
                    f"SMTP server does not offer SMTPUTF8, which the internationalised address "
                    f"{message.to[:80]!r} needs (its part before the @ is not ASCII); ask for an "
                    "ASCII address or send through a server that offers SMTPUTF8"
                )
            if isinstance(client, PipelinedSession):
                return await self._send_pipelined(client, rcpt, data, smtputf8)
            try:
                _errors, response = await client.sendmail(
                    self.envelope_from, [rcpt], data, mail_options=["SMTPUTF8"] if smtputf8 else []
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refusal = exc.recipients[0] if exc.recipients else None
                code = refusal.code if refusal else 550
                await self._reset(client)
                why = refusal.message if refusal else str(exc)
                return self._by_code(code, f"SMTP recipient refused: {code} {why}")
            except aiosmtplib.SMTPResponseException as exc:
                await self._reset(client)
                return self._by_code(exc.code, f"SMTP {exc.code} {exc.message}")
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._discard(client)
                return DeliveryResult.retry(_one_line(f"SMTP connection failed: {exc}"))
            self._idle.put_nowait(client)
            return DeliveryResult.sent(response.strip()[:200] or None)

    async def _send_pipelined(
        self, session: PipelinedSession, rcpt: str, data: bytes, smtputf8: bool
    ) -> DeliveryResult:
        try:
            reply = await session.sendmail(self.envelope_from, rcpt, data, smtputf8=smtputf8)
        except ValueError as exc:
            self._idle.put_nowait(session)
            return DeliveryResult.failed(str(exc))
        except SessionLost as exc:
            await self._discard(session)
            return DeliveryResult.retry(_one_line(f"SMTP connection failed: {exc}"))
        self._idle.put_nowait(session)
        if reply.ok:
            return DeliveryResult.sent(reply.text.strip()[:200] or None)
        if reply.step == "RCPT":
            return self._by_code(reply.code, f"SMTP recipient refused: {reply.code} {reply.text}")
        return self._by_code(reply.code, f"SMTP {reply.code} {reply.text}")

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
        except Exception:
            await self._discard(client)
            return
        self._idle.put_nowait(client)

    @staticmethod
    def _by_code(code: int, error: str) -> DeliveryResult:
        error = _one_line(error)
        if 400 <= code < 500:
            return DeliveryResult.retry(error)
        return DeliveryResult.failed(error)

    async def close(self) -> None:
        clients = list(self._all)
        self._all.clear()
        while not self._idle.empty():
            self._idle.get_nowait()

        async def _quit(c: Session) -> None:
            if isinstance(c, PipelinedSession):
                await c.quit()
                return
            try:
                await asyncio.wait_for(c.quit(), 2)
            except Exception:
                c.close()

        await asyncio.gather(*(_quit(c) for c in clients))


async def _auth_once(client: aiosmtplib.SMTP, username: str, password: str) -> None:
    """AUTH with the first method the server offers, in aiosmtplib's order of preference
    (``login()`` tries the next after a refusal: for a probe the first refusal is the answer)."""
    offered = client.server_auth_methods
    if "cram-md5" in offered:
        await client.auth_crammd5(username, password)
    elif "plain" in offered:
        await client.auth_plain(username, password)
    elif "login" in offered:
        await client.auth_login(username, password)
    else:
        await client.login(username, password)  # says the server offers no AUTH we know


async def _offers_smtputf8(client: Session) -> bool:
    if isinstance(client, PipelinedSession):
        return client.offers_smtputf8
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    return bool(client.supports_extension("smtputf8"))


def _one_line(text: str) -> str:
    """A server's (possibly multi-line) words on one line."""
    return " ".join(text.split())
