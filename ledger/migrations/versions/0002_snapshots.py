"""Snapshots of state derived from the journal, so recovery replays only the journal's tail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Not append-only: a snapshot is a cache of what the journal already proves, and old
    # ones are pruned. Each is checked against the journal before it is used.
    op.create_table(
        "ledger_snapshot",
        sa.Column("journal_seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("journal_chain_hash", sa.LargeBinary(), nullable=False),
        sa.Column("entry_count", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("state_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_snapshot")
