"""The sequencer's lease: one serving process per database.

Two servers on one database would each run a sequencer on its own copy of the exchange's
state; the second one's appends make the first one's fail (the journal's head moved), and
the first then answers writes with errors. So a server takes an exclusive lease before it
opens the database, holds it for its life, and a second server is refused at start.

- SQLite: an exclusive ``flock`` on ``<database file>.lease`` beside the database. The
  kernel drops it when the process ends, however it ends (kill -9 included), so a crashed
  server never leaves a stale lease. The file stays; its content (the holder's pid) is
  only for a person looking.
- PostgreSQL: a session-level advisory lock, keyed by the schema the URL's search path
  selects (servers of other schemas on the same database do not collide), held on a
  connection of its own for the server's life. The server drops it when that session ends,
  a crash included.

The lease is for the sequencer only: console writers such as ``dataex participant create``
append while a server runs (the database serialises them, the server follows the journal).
An in-memory SQLite database is private to its process and needs no lease.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from ledger.schema import shown_url

__all__ = ["Lease", "LeaseHeld"]

LOCK_FILE_SUFFIX = ".lease"
_KEY_PREFIX = b"dataex sequencer lease:"


class LeaseHeld(Exception):
    """Another server holds the database's lease; the message names the database."""


class Lease:
    """An exclusive lease on one database, taken by :meth:`acquire`, given back by
    :meth:`release` (or when the process ends)."""

    def __init__(
        self,
        *,
        lock_file: int | None = None,
        engine: Engine | None = None,
        connection: Connection | None = None,
    ) -> None:
        self._lock_file = lock_file
        self._engine = engine
        self._connection = connection

    @classmethod
    def acquire(cls, url: str) -> Lease:
        """The lease of the database at ``url``, or :class:`LeaseHeld` at once (never waits).

        Errors reaching the database (a bad URL, an unreachable server) propagate as
        SQLAlchemy raises them.
        """
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = parsed.database
            if not path or path == ":memory:":
                return cls()
            return cls._acquire_file(url, Path(path).resolve().with_name(
                Path(path).name + LOCK_FILE_SUFFIX
            ))  # fmt: skip
        if parsed.get_backend_name() == "postgresql":
            return cls._acquire_advisory(url)
        raise ValueError(f"no lease for the {parsed.get_backend_name()} dialect")

    @classmethod
    def _acquire_file(cls, url: str, lock_path: Path) -> Lease:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise LeaseHeld(
                f"another dataex server holds {shown_url(url)} (lock file {lock_path}); "
                "stop it first, or serve another database"
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        return cls(lock_file=descriptor)

    @classmethod
    def _acquire_advisory(cls, url: str) -> Lease:
        # A pool of its own, never shared: the lock lives exactly as long as this session.
        engine = sqlalchemy.create_engine(url, poolclass=NullPool)
        try:
            connection = engine.connect()
            try:
                schema = connection.exec_driver_sql("SELECT current_schema()").scalar() or ""
                digest = hashlib.sha256(_KEY_PREFIX + schema.encode()).digest()
                key = int.from_bytes(digest[:8], "big", signed=True)
                taken = connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar()
                # Leave no transaction open on the lease's session; the lock outlives it.
                connection.commit()
            except BaseException:
                connection.close()
                raise
        except BaseException:
            engine.dispose()
            raise
        if not taken:
            connection.close()
            engine.dispose()
            raise LeaseHeld(
                f"another dataex server holds {shown_url(url)} (advisory lock of schema "
                f"{schema!r}); stop it first, or serve another database"
            )
        return cls(engine=engine, connection=connection)

    def release(self) -> None:
        """Give the lease back; releasing twice is harmless."""
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing the file drops its flock
            self._lock_file = None
        if self._connection is not None:
            try:
                self._connection.close()  # ending the session drops its advisory locks
            finally:
                self._connection = None
                if self._engine is not None:
                    self._engine.dispose()
                    self._engine = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
