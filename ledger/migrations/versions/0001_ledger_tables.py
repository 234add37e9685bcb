"""The journal, entry, posting and balance tables, and their append-only triggers.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("ledger_journal", "ledger_entry", "ledger_posting")
# What identifies a row of each append-only table: an INSERT that collides with an existing
# row is refused outright, so INSERT OR REPLACE cannot delete the old row behind the
# DELETE trigger (SQLite fires delete triggers on REPLACE only with recursive_triggers on).
SQLITE_ROW_IDENTITY = {
    "ledger_journal": "seq = NEW.seq",
    "ledger_entry": "seq = NEW.seq OR key = NEW.key",
    "ledger_posting": "entry_seq = NEW.entry_seq AND idx = NEW.idx",
}

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_journal",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "ledger_entry",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "ledger_posting",
        sa.Column("entry_seq", SEQ, sa.ForeignKey("ledger_entry.seq"), primary_key=True),
        sa.Column("idx", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("asset", sa.String(80), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ledger_balance",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("asset", sa.String(80), primary_key=True),
        sa.Column("balance_units", sa.BigInteger(), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_triggers()
    elif dialect == "postgresql":
        _postgresql_triggers()
    else:
        raise RuntimeError(f"no append-only triggers for the {dialect} dialect")


def _sqlite_triggers() -> None:
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
            )
        op.execute(
            f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {SQLITE_ROW_IDENTITY[table]}) "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: row exists'); END"
        )


def _postgresql_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
        )
        # ENABLE ALWAYS keeps the triggers firing under session_replication_role = replica,
        # the setting logical replication and some restore tools use to skip triggers.
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_change")
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate")


def downgrade() -> None:
    # The ledger is a permanent record: its tables are never dropped by a migration.
    raise RuntimeError("the ledger's tables cannot be downgraded")
