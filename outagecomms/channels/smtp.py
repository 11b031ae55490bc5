"""Email over SMTP with aiosmtplib: a bounded pool of reused connections.

SMTP 4xx and connection problems are transient (``retry``); 5xx is permanent (``failed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # imported when a channel is built: loading the config must stay cheap
    import aiosmtplib

from outagecomms.channels.base import Channel, DeliveryResult, KeySpec, OutboundMessage
from outagecomms.errors import ConfigError
from outagecomms.mime import build_email, check_from


class SmtpChannel(Channel):
    kind = "smtp"
    template_channel = "email"
    contact_field = "email"
    max_connections = 8
    config_keys: ClassVar[dict[str, KeySpec]] = {
        "host": (str, "127.0.0.1"),
        "port": (int, 25),
        "tls": (("none", "starttls", "tls"), "none"),
        "username": (str, ""),
        "password_env": (str, ""),
        "from": (str, "Support <support@example.com>"),
        "timeout": (int, 30),
        "validate_certs": (bool, True),
    }

    @classmethod
    def check_config(cls, settings: Mapping[str, Any]) -> str | None:
        if settings["username"] and not settings["password_env"]:
            return "username is set, so password_env must name the variable holding the password"
        if not 0 < settings["port"] < 65536:
            return f"port must be 1..65535, got {settings['port']}"
        return check_from(settings["from"])

    def __init__(self, *args: Any, **kwargs: Any):
        import aiosmtplib

        super().__init__(*args, **kwargs)
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(self.config.max_connections)
        self._all: set[aiosmtplib.SMTP] = set()
        self.sender = self.settings["from"]
        self.envelope_from = aiosmtplib.email.parse_address(self.sender)

    def _password(self) -> str | None:
        if not self.settings["username"]:
            return None
        pw = self.config.secret("password")
        if pw is None and self.settings["password_env"]:
            raise ConfigError(
                f"environment variable {self.settings['password_env']} is not set",
                key=f"channels.{self.config.name}.password_env",
            )
        return pw

    async def _connect(self) -> aiosmtplib.SMTP:
        import aiosmtplib

        s = self.settings
        ctx = None if s["validate_certs"] else ssl._create_unverified_context()
        client = aiosmtplib.SMTP(
            hostname=s["host"],
            port=s["port"],
            timeout=s["timeout"],
            use_tls=s["tls"] == "tls",
            start_tls=s["tls"] == "starttls",
            validate_certs=s["validate_certs"],
            tls_context=ctx,
        )
        await client.connect()
        if s["username"]:
            await client.login(s["username"], self._password() or "")
        self._all.add(client)
        return client

    def _take_idle(self) -> aiosmtplib.SMTP | None:
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

    async def _discard(self, client: aiosmtplib.SMTP) -> None:
        self._all.discard(client)
        with contextlib.suppress(Exception):
            client.close()

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        import aiosmtplib

        try:
            data = build_email(message, from_addr=self.sender, reply_to=self.company.support_email)
        except ValueError as exc:
            return DeliveryResult.failed(str(exc))
        async with self._slots:
            client = self._take_idle()
            if client is None:
                try:
                    client = await self._connect()
                except aiosmtplib.SMTPAuthenticationError as exc:
                    return DeliveryResult.retry(f"SMTP login failed: {exc.code} {exc.message}")
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    return DeliveryResult.retry(f"cannot connect to SMTP server: {exc}")
            try:
                _errors, response = await client.sendmail(self.envelope_from, [message.to], data)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                code = exc.recipients[0].code if exc.recipients else 550
                await self._reset(client)
                return self._by_code(code, f"recipient refused: {exc.recipients[0]}")
            except aiosmtplib.SMTPResponseException as exc:
                await self._reset(client)
                return self._by_code(exc.code, f"SMTP {exc.code} {exc.message}")
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._discard(client)
                return DeliveryResult.retry(f"SMTP connection failed: {exc}")
            self._idle.put_nowait(client)
            return DeliveryResult.sent(response.strip()[:200] or None)

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
        except Exception:
            await self._discard(client)
            return
        self._idle.put_nowait(client)

    @staticmethod
    def _by_code(code: int, error: str) -> DeliveryResult:
        if 400 <= code < 500:
            return DeliveryResult.retry(error)
        return DeliveryResult.failed(error)

    async def close(self) -> None:
        clients = list(self._all)
        self._all.clear()
        while not self._idle.empty():
            self._idle.get_nowait()

        async def _quit(c: aiosmtplib.SMTP) -> None:
            try:
                await asyncio.wait_for(c.quit(), 2)
            except Exception:
                c.close()

        await asyncio.gather(*(_quit(c) for c in clients))
