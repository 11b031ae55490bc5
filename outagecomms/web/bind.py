"""``HOST:PORT`` as the config writes a listener's address (``[daemon] http``, ``[inbound] smtp``):
parsed without importing the web stack, so loading the config stays cheap."""

from __future__ import annotations

import ipaddress

from outagecomms.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"


def parse_bind(bind: str, key: str = "daemon.http") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (loopback) or ``[IPv6]:PORT`` → (host, port)."""
    text = (bind or "").strip()

    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"{why}: {bind!r}; use HOST:PORT, e.g. 127.0.0.1:8080 (or :8080 for loopback)",
            key=key,
        )

    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text:
        raise bad("has no port")
    if host.startswith("["):
        if not host.endswith("]"):
            raise bad("has an unclosed [")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad("is not an IPv6 address in brackets") from None
    elif ":" in host:
        raise bad("needs brackets around an IPv6 address, e.g. [::1]:8080")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise bad("has a port that is not a number from 1 to 65535")
    if any(c.isspace() for c in host):
        raise bad("has a space in the host")
    return host or DEFAULT_HOST, int(port_text)
