"""Processing what the listeners stored in a process of its own.

Classifying, scoring and matching a reply is pure Python; in the daemon's process it would
share one interpreter lock with the SMTP sessions and the stores, so on a busy listener each
slows the other. With its listeners on (``[inbound] smtp``/``lmtp``/``imap_url_env``) and more
than one CPU, the daemon hands each batch to one spawned worker process instead, which opens
the same config (same file, same environment) and store and runs ``pipeline.process_many``.
The messages are durable before they get here: a worker that dies loses nothing (they stay
``received``; ``process_pending`` takes them), and a new worker is spawned for the next batch.
A reloaded config (SIGHUP) restarts the worker before the next batch, so it reads the new one.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from outagecomms.app import App
from outagecomms.inbound.pipeline import Processed

_app: list[App] = []  # the worker's own App, opened once


def _app_for(config_path: str) -> App:
    if not _app:
        from outagecomms.config.loader import load_config

        _app.append(App.from_config(load_config(config_path)))
    return _app[0]


def warm(config_path: str) -> int:
    """Open the store and load what processing imports (the parser, VADER's lexicon) before
    the first message needs them; the worker's pid."""
    from outagecomms.inbound import classify, parse, textclean  # noqa: F401
    from outagecomms.inbound.pipeline import scorer_for

    app = _app_for(config_path)
    scorer_for(app.config.inbound.scorer)
    return os.getpid()


def process_batch(config_path: str, ids: Sequence[int]) -> list[Processed]:
    from outagecomms.inbound.pipeline import process_many

    return process_many(_app_for(config_path), list(ids))


def _init_worker(parent: int) -> None:
    """The daemon stops its worker (after the batch in hand): Ctrl-C reaching the whole
    process group must not kill it mid-write first. A daemon killed outright (SIGKILL, OOM)
    cannot stop it, so the worker watches its parent and leaves when it is gone (whatever it
    was processing is still stored as received)."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def wanted(app: App) -> bool:
    """Whether this daemon processes in a worker process: listeners on, a config file the
    worker can load, more than one CPU, and not turned off (``OUTAGECOMMS_INBOUND_WORKER=0``)."""
    cfg = app.config.inbound
    return bool(
        (cfg.smtp or cfg.lmtp or cfg.imap_url_env)
        and app.config.path is not None
        and (os.cpu_count() or 1) > 1
        and os.environ.get("OUTAGECOMMS_INBOUND_WORKER", "1") != "0"
    )


class ProcessWorker:
    """One spawned process that processes batches, one at a time."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.pool: ProcessPoolExecutor | None = None
        self.pid: int | None = None
        #: the daemon's config when this worker's process was started (a reload restarts it)
        self.config: object = None

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self.pool

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.pid = await loop.run_in_executor(self._pool(), warm, self.config_path)

    async def process(self, ids: Sequence[int]) -> list[Processed]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool(), process_batch, self.config_path, list(ids)
            )
        except BrokenProcessPool:
            # the worker died (killed, out of memory): the next batch gets a new one; these
            # messages are still stored as received
            broken, self.pool = self.pool, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        """Let the batch in hand finish, then stop the worker."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
