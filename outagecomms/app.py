"""The application context every operation takes: config, store, renderer and clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from outagecomms.config.loader import load_config
from outagecomms.config.model import Config
from outagecomms.rendering.templates import Renderer
from outagecomms.store import Store, open_store
from outagecomms.values import utcnow


@dataclass
class App:
    config: Config
    store: Store
    renderer: Renderer
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def from_config(cls, config: Config, *, clock: Callable[[], datetime] = utcnow) -> App:
        store = open_store(config.store_url)
        renderer = Renderer(
            company=config.company,
            user_dir=config.templates_dir,
            public_url=config.daemon.public_url,
        )
        return cls(config=config, store=store, renderer=renderer, clock=clock)

    @classmethod
    def open(
        cls, config_path: str | Path | None = None, *, clock: Callable[[], datetime] = utcnow
    ) -> App:
        return cls.from_config(load_config(config_path), clock=clock)

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
