"""The ledger's tables.

``ledger_journal``, ``ledger_entry`` and ``ledger_posting`` are append-only (triggers reject
UPDATE, DELETE and, on PostgreSQL, TRUNCATE; see the migrations). ``ledger_balance`` is the
projection of the postings, updated in the same transaction as they are written.

These models describe the schema for the ORM and for reading; the schema itself is created
by the Alembic migrations in ``ledger/migrations``, and the hot append path writes through
SQLAlchemy Core on ``Model.__table__``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

__all__ = ["BalanceRow", "EntryRow", "JournalRow", "PostingRow", "SnapshotRow"]

# SQLite makes an INTEGER PRIMARY KEY the rowid itself (no second index); BIGINT would not be.
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")
KEY_LENGTH = 128
KIND_LENGTH = 32
ACCOUNT_LENGTH = 200
ASSET_LENGTH = 80


class JournalRow(SQLModel, table=True):
    """One accepted command of the order-flow journal."""

    __tablename__ = "ledger_journal"

    seq: int = Field(primary_key=True, sa_type=SEQ_TYPE, sa_column_kwargs={"autoincrement": False})
    ts_ns: int = Field(sa_type=BigInteger)
    command: str = Field(sa_type=Text, description="canonical JSON of the command")
    chain_hash: bytes = Field(sa_type=LargeBinary)


class EntryRow(SQLModel, table=True):
    """One settlement-ledger entry; its postings are in ``ledger_posting``."""

    __tablename__ = "ledger_entry"

    seq: int = Field(primary_key=True, sa_type=SEQ_TYPE, sa_column_kwargs={"autoincrement": False})
    key: str = Field(sa_type=String(KEY_LENGTH), unique=True, description="idempotency key")
    kind: str = Field(sa_type=String(KIND_LENGTH))
    ts_ns: int = Field(sa_type=BigInteger)
    body: str = Field(sa_type=Text, description="canonical JSON of what happened")
    chain_hash: bytes = Field(sa_type=LargeBinary)


class PostingRow(SQLModel, table=True):
    """One signed amount of one asset on one account, part of an entry."""

    __tablename__ = "ledger_posting"
    # Clustered on (entry_seq, idx): postings are written and read in that order.
    __table_args__ = {"sqlite_with_rowid": False}

    entry_seq: int = Field(
        primary_key=True,
        sa_type=SEQ_TYPE,
        sa_column_args=[ForeignKey("ledger_entry.seq")],
        sa_column_kwargs={"autoincrement": False},
    )
    idx: int = Field(primary_key=True, sa_type=Integer, sa_column_kwargs={"autoincrement": False})
    account: str = Field(sa_type=String(ACCOUNT_LENGTH))
    asset: str = Field(sa_type=String(ASSET_LENGTH))
    amount_units: int = Field(sa_type=BigInteger)


class BalanceRow(SQLModel, table=True):
    """Projection: the sum of the postings of ``asset`` on ``account``."""

    __tablename__ = "ledger_balance"

    account: str = Field(primary_key=True, sa_type=String(ACCOUNT_LENGTH))
    asset: str = Field(primary_key=True, sa_type=String(ASSET_LENGTH))
    balance_units: int = Field(sa_type=BigInteger)


class SnapshotRow(SQLModel, table=True):
    """Opaque state derived from the journal up to ``journal_seq`` (see ``ledger.snapshots``)."""

    __tablename__ = "ledger_snapshot"

    journal_seq: int = Field(
        primary_key=True, sa_type=SEQ_TYPE, sa_column_kwargs={"autoincrement": False}
    )
    journal_chain_hash: bytes = Field(sa_type=LargeBinary)
    entry_count: int = Field(sa_type=BigInteger)
    created_ns: int = Field(sa_type=BigInteger)
    state_sha256: bytes = Field(sa_type=LargeBinary)
    state: bytes = Field(sa_type=LargeBinary)
