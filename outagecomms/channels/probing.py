"""What the channels' ``probe()`` (``outagecomms doctor``) share: a TCP or TLS connect that sends
nothing, and network errors in the few words a person acts on (``connection refused``).

A connect goes straight to the host (no ``HTTPS_PROXY``): it says whether this machine reaches
the service, which is what a probe is for; the TLS handshake checks the certificate against the
same CA bundle the HTTP channels use (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterable

import httpx

from outagecomms.channels.base import ProbeResult


def describe(exc: BaseException, *, timeout: float | None = None) -> str:
    """A network error as a person reads it: ``connection refused``, ``timed out after 5s``,
    ``cannot resolve the host name``, ``TLS: certificate verify failed ...``; else the
    exception's own words. Looks through the causes (aiosmtplib and httpx wrap OSErrors)."""
    seen: BaseException | None = exc
    chain: list[BaseException] = []
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"TLS: {e.verify_message or 'certificate verify failed'}"
        if isinstance(e, ssl.SSLError):
            return f"TLS: {e.reason or e}"
        if isinstance(e, TimeoutError | httpx.TimeoutException):
            return f"timed out after {timeout:g}s" if timeout else "timed out"
        if isinstance(e, ConnectionResetError):
            return "connection reset by the server"
    for e in chain:
        if isinstance(e, OSError) and e.strerror:
            return e.strerror[:1].lower() + e.strerror[1:]
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def origins(urls: Iterable[str]) -> list[tuple[str, str, int]]:
    """The distinct (scheme, host, port) of the http(s) URLs among ``urls``, in first-seen order
    (a URL that cannot be read is left out: sending to it fails on its own, per customer)."""
    out: dict[tuple[str, str, int], None] = {}
    for url in urls:
        try:
            u = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            continue
        if u.scheme not in ("http", "https") or not u.host:
            continue
        out[(u.scheme, u.host, u.port or (443 if u.scheme == "https" else 80))] = None
    return list(out)


async def connect(
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None,
    timeout: float,
    target: str | None = None,
) -> ProbeResult:
    """Open a TCP connection to ``host:port`` (with ``tls``: and complete the TLS handshake,
    checking the certificate for ``host``), then close it; nothing is sent."""
    where = target or f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=host if tls else None
            )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return ProbeResult(target=where, ok=False, detail=describe(exc, timeout=timeout))
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1)
    return ProbeResult(target=where, ok=True, detail="TLS ok" if tls else "TCP connect ok")


async def connect_each(
    urls: Iterable[str], *, context: ssl.SSLContext, timeout: float, limit: int = 8
) -> list[ProbeResult]:
    """A connect (TLS for https) to each distinct origin of ``urls``, ``limit`` at a time."""
    slots = asyncio.Semaphore(max(1, limit))

    async def one(scheme: str, host: str, port: int) -> ProbeResult:
        async with slots:
            return await connect(
                host, port, tls=context if scheme == "https" else None, timeout=timeout
            )

    return list(await asyncio.gather(*(one(*o) for o in origins(urls))))
