"""The application context every library function takes: config, store, renderer and clock.

Scripts hold its subclass ``outagecomms.App`` (``outagecomms/api.py``), which adds the
commander's verbs as methods (``declare``, ``update``, ``resolve``, ``send``, ``show``...);
this base stays below every subsystem so that each of them can take it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Self

from outagecomms.config.loader import load_config
from outagecomms.config.model import Config
from outagecomms.health import Health
from outagecomms.rendering.templates import Renderer
from outagecomms.store import Store, open_store
from outagecomms.values import utcnow


@dataclass
class App:
    config: Config
    store: Store
    renderer: Renderer
    clock: Callable[[], datetime] = field(default=utcnow)
    #: what is broken right now in this process (``/healthz``): e.g. the commander's channel
    health: Health = field(default_factory=Health, compare=False)
    #: scheduler work that failed in this process, retried with a growing delay (``due.py``)
    retries: dict[tuple[int, str, datetime], tuple[datetime, float]] = field(
        default_factory=dict, compare=False
    )
    #: in a daemon: wakes its inbound sender (called on the event loop) after a message that
    #: came in some other way than its listeners (the Twilio webhook) was processed
    inbound_kick: Callable[[], None] | None = field(default=None, compare=False)

    @classmethod
    def from_config(cls, config: Config, *, clock: Callable[[], datetime] = utcnow) -> Self:
        store = open_store(config.store_url)
        renderer = Renderer(
            company=config.company,
            user_dir=config.templates_dir,
            locale_dir=config.locale_dir,
            public_url=config.daemon.public_url,
            names=config.names,
            limits=config.template_limits,
        )
        return cls(config=config, store=store, renderer=renderer, clock=clock)

    @classmethod
    def open(
        cls, config_path: str | Path | None = None, *, clock: Callable[[], datetime] = utcnow
    ) -> Self:
        """Load the config (``config_path``, else ``$OUTAGECOMMS_CONFIG``, ``./outagecomms.toml``,
        the user config dir; none: ``ConfigError`` naming those places) and open its store.
        ``clock`` returns the UTC-aware now."""
        return cls.from_config(load_config(config_path), clock=clock)

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
