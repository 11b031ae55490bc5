"""The store's engine: opening a database, migrations, transactions, and the helpers every
aggregate module shares (chunked ``IN`` lists, upsert, mapping rows to domain objects).

All SQL is SQLAlchemy Core and portable; the only dialect-specific parts are chosen by
dialect name (upsert, ``FOR UPDATE SKIP LOCKED``, SQLite pragmas).

Opening says what is wrong with a store in one sentence (``ConfigError``, key ``store.url``):
a folder that does not exist (only the built-in default folder, ``db init`` and ``init`` create
one: a mistyped folder must not become a new, empty store), a path below a file, a file that is
not a database, a schema written by a newer outagecomms. A SQLite file is created ``0600`` (its
``-wal``/``-shm`` files take the database's mode): it holds personal data and message bodies
with feedback links. The URL is shown with its password masked (``display_url``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, and_, create_engine, event, insert, update
from sqlalchemy.exc import DatabaseError

from outagecomms.errors import ConfigError, OutageCommsError
from outagecomms.values import as_utc, mask_url

HEAD_REVISION = "0012"
_CHUNK = 500
#: the mode of the files a store creates (the SQLite database, its lock files)
PRIVATE_FILE_MODE = 0o600

T = TypeVar("T")


def chunks(seq: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    """``seq`` in slices small enough for one ``IN (...)`` list or one executemany."""
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class Store:
    """A database the whole tool shares. ``write()`` / ``read()`` give a transaction."""

    def __init__(self, url: str, *, echo: bool = False, create_folder: bool = False):
        """``create_folder``: make a SQLite database's missing folder (``db init``); without
        it only the built-in default folder is made."""
        self.url = url
        try:
            self.engine: Engine = create_engine(url, echo=echo, future=True)
        except Exception as exc:  # bad URL, missing driver
            raise ConfigError(
                mask_url(f"cannot open store {url!r}: {exc}"), key="store.url"
            ) from None
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            self._setup_sqlite(create_folder)

    @property
    def display_url(self) -> str:
        """The URL as printed and logged: the password masked."""
        return mask_url(self.url)

    def _setup_sqlite(self, create_folder: bool) -> None:
        db = self.engine.url.database
        if db and db != ":memory:" and not db.startswith("file:"):
            _prepare_sqlite_file(Path(db), create_folder=create_folder)

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event issue BEGIN so writers can take the lock up front.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # the timeout first: switching a new file to WAL needs a lock that another process
            # opening it at the same moment may hold
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = "DEFERRED" if conn.get_execution_options().get("readonly") else "IMMEDIATE"
            conn.exec_driver_sql(f"BEGIN {mode}")

    @property
    def sqlite_path(self) -> Path | None:
        db = self.engine.url.database
        if self.dialect == "sqlite" and db and db != ":memory:":
            return Path(db)
        return None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (on SQLite it takes the write lock at BEGIN)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(readonly=True) as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()

    # --- migrations ---------------------------------------------------------------------

    def current_revision(self) -> str | None:
        """The schema's revision; None when there is no schema yet. A database that cannot be
        read at all (not a database, no access) raises ``ConfigError``."""
        try:
            with self.read() as conn:
                row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        except DatabaseError as exc:  # OperationalError, ProgrammingError (PostgreSQL) too
            if _no_such_table(exc):
                return None
            raise self._unreadable(exc) from None
        return row[0] if row else None

    def _unreadable(self, exc: DatabaseError) -> ConfigError:
        why = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        if "not a database" in why:
            return ConfigError(
                f"{self.display_url} is not an outagecomms store: the file is not a SQLite "
                "database; point store.url at another file",
                key="store.url",
            )
        return ConfigError(mask_url(f"cannot open store {self.url!r}: {why}"), key="store.url")

    def migrate(self) -> None:
        """Bring the schema to the newest revision (cheap when it already is). Processes that
        start together migrate once: the others wait, then find the schema at head. A schema
        this version does not know was written by a newer one: ``ConfigError``, untouched."""
        if self.current_revision() == HEAD_REVISION:
            return
        with self._migration_lock():
            current = self.current_revision()
            if current == HEAD_REVISION:
                return  # another process migrated while we waited
            from alembic import command
            from alembic.config import Config as AlembicConfig
            from alembic.script import ScriptDirectory

            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
            cfg.attributes["engine"] = self.engine
            known = {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}
            if current is not None and current not in known:
                raise ConfigError(
                    f"store {self.display_url} was written by a newer outagecomms (schema "
                    f"revision {current!r}; this version knows up to {HEAD_REVISION!r}); "
                    "upgrade it (pip install -U outagecomms) before using this store",
                    key="store.url",
                )
            command.upgrade(cfg, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """On SQLite an OS lock on a file beside the database: Alembic runs SQLite's DDL outside
        one transaction, so BEGIN IMMEDIATE alone let a second process replay a migration
        ("duplicate column"). PostgreSQL takes an advisory lock in migrations/env.py."""
        path = self.sqlite_path
        if path is None:
            yield
            return
        import fcntl

        lock_path = path.with_name(path.name + ".migrate-lock")
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def open_store(url: str, *, migrate: bool = True, create_folder: bool = False) -> Store:
    """Open (and bring to this version's schema) the store at ``url``; ``create_folder``:
    make a SQLite database's folder when it is missing (``db init``)."""
    store = Store(url, create_folder=create_folder)
    if migrate:
        try:
            store.migrate()
        except OutageCommsError:
            store.dispose()
            raise
        except DatabaseError as exc:
            store.dispose()
            raise store._unreadable(exc) from None
    return store


def _no_such_table(exc: DatabaseError) -> bool:
    text = str(exc.orig).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _prepare_sqlite_file(db: Path, *, create_folder: bool) -> None:
    """Check a SQLite database's path before SQLite creates anything there, and create a new
    database file private (``PRIVATE_FILE_MODE``) whatever the umask."""
    from outagecomms.config.model import user_data_dir

    folder = db.parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"{db} is not a possible database path: {folder} is a file, not a folder",
            key="store.url",
        )
    if not folder.exists():
        if not (create_folder or folder == user_data_dir()):
            raise ConfigError(
                f"folder {folder} does not exist (a mistyped folder would start an empty "
                f"store); create it, or run `outagecomms db init` to create it and the store",
                key="store.url",
            )
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create folder {folder}: {exc.strerror or exc}", key="store.url"
            ) from None
    if db.is_dir():
        raise ConfigError(f"{db} is a folder, not a database file", key="store.url")
    try:
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass  # an existing store keeps the mode its owner gave it
    except OSError as exc:
        raise ConfigError(f"cannot create {db}: {exc.strerror or exc}", key="store.url") from None


# --- dialect helpers ------------------------------------------------------------------------


def conflict_insert(conn: Connection, table: Table) -> Any | None:
    """An INSERT that can say ``ON CONFLICT`` on this dialect (SQLite, PostgreSQL), or None."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    return None


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str],
    columns: Iterable[str] | None = None,
) -> None:
    """Insert ``rows``, updating the row with the same ``key`` where there is one.

    ``columns``: what an existing row takes from the new one (default: every non-key column).
    """
    if not rows:
        return
    keys = list(key)
    cols = (
        [c.name for c in table.columns if c.name not in keys] if columns is None else list(columns)
    )
    stmt = conflict_insert(conn, table)
    if stmt is None:  # pragma: no cover - portable fallback: update, else insert
        for row in rows:
            where = and_(*(table.c[k] == row[k] for k in keys))
            changes = {c: row[c] for c in cols}
            if conn.execute(update(table).where(where).values(changes)).rowcount == 0:
                conn.execute(insert(table).values(dict(row)))
        return
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in cols})
    conn.execute(stmt, list(rows))


# --- rows to domain objects -----------------------------------------------------------------


def row_mapper(
    cls: type[T],
    *,
    utc: Iterable[str] = (),
    tuples: Iterable[str] = (),
    dicts: Iterable[str] = (),
    derived: Mapping[str, Callable[[Any], Any]] | None = None,
) -> Callable[[Any], T]:
    """A function from a row to a ``cls`` (a dataclass): each field from the column of the same
    name, as stored, or as a UTC-aware datetime (``utc``), a tuple (``tuples``, JSON lists), a
    dict (``dicts``, JSON objects, NULL as empty) or computed from the row (``derived``).

    A column that maps one to one needs no entry, so adding one to a table and its domain
    object needs no change here."""
    special = {*utc, *tuples, *dicts, *(derived or {})}
    plain = [f.name for f in dataclasses.fields(cls) if f.name not in special]  # type: ignore[arg-type]
    utc, tuples, dicts = tuple(utc), tuple(tuples), tuple(dicts)
    computed = tuple((derived or {}).items())
    make: Callable[..., T] = cls

    def build(r: Any) -> T:
        kw = {n: getattr(r, n) for n in plain}
        for n in utc:
            kw[n] = as_utc(getattr(r, n))
        for n in tuples:
            kw[n] = tuple(getattr(r, n))
        for n in dicts:
            kw[n] = dict(getattr(r, n) or {})
        for n, fn in computed:
            kw[n] = fn(r)
        return make(**kw)

    return build


def object_row(obj: Any, *, skip: Iterable[str] = (), lists: Iterable[str] = ()) -> dict[str, Any]:
    """The way back: a dataclass's fields as column values, tuples in ``lists`` as JSON lists
    and enums as their values; ``skip`` the fields that have no column of their name."""
    skipped = set(skip)
    row = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in skipped}
    for n in lists:
        row[n] = list(row[n])
    for k, v in row.items():
        if isinstance(v, Enum):
            row[k] = v.value
    return row
