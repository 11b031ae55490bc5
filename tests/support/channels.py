"""Driving one channel instance: open it, deliver, close it, in a fresh event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from outagecomms.channels.base import Channel, DeliveryResult, OutboundMessage
from outagecomms.errors import ConfigError

T = TypeVar("T")


def while_open(channel: Channel, use: Callable[[], Awaitable[T]]) -> T:
    """``await use()`` between ``channel.open()`` and ``channel.close()``."""

    async def go() -> T:
        await channel.open()
        try:
            return await use()
        finally:
            await channel.close()

    return asyncio.run(go())


def refused_at_open(channel: Channel) -> ConfigError:
    """The ``ConfigError`` ``channel.open()`` raises (the test fails if it opens)."""
    with pytest.raises(ConfigError) as err:
        asyncio.run(channel.open())
    return err.value


def deliver_each(channel: Channel, *messages: OutboundMessage, send: bool = False) -> list[Any]:
    """Open, deliver the messages in turn (``send``: through ``send()``, not ``deliver()``: no
    rate limit, no retry mapping), close."""
    call = channel.send if send else channel.deliver

    async def each() -> list[DeliveryResult]:
        return [await call(m) for m in messages]

    return while_open(channel, each)


def deliver_at_once(channel: Channel, *messages: OutboundMessage, send: bool = False) -> list[Any]:
    """Open, deliver the messages concurrently, close."""
    call = channel.send if send else channel.deliver

    async def together() -> list[DeliveryResult]:
        return list(await asyncio.gather(*(call(m) for m in messages)))

    return while_open(channel, together)


def deliver_one(channel: Channel, msg: OutboundMessage, *, send: bool = False) -> DeliveryResult:
    (result,) = deliver_at_once(channel, msg, send=send)
    assert isinstance(result, DeliveryResult)
    return result
