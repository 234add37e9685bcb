"""Holds for open orders leave the ledger: it records movements of value only.

Before this revision a buy order's cash hold was a ``reservation`` entry (available to
reserved) and its end a ``release`` entry, and every participant had two cash accounts.
Holds are now risk state in the exchange's memory, rebuilt from the journal, and a
participant has one cash account. A ledger that holds such entries cannot be upgraded in
place (it is append-only and hash-chained); it is refused with the way to rebuild it: its
journal, which is unchanged, replays into a new database with
``dataex ledger rebuild --from OLD_URL --to NEW_URL``. Snapshots written before this revision
hold the old state's shape and are dropped (they are caches of what the journal proves).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.errors import LedgerFormatError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

def upgrade() -> None:
    connection = op.get_bind()
    # An old ledger shows itself by a hold entry, or by the old cash accounts (a ledger
    # with deposits but no buy order yet has no hold entry).
    found = connection.execute(
        sa.text("SELECT entry_seq FROM ledger_posting WHERE account LIKE '%:cash:available' "
                "OR account LIKE '%:cash:reserved' ORDER BY entry_seq LIMIT 1")
    ).first()  # fmt: skip
    if found is not None:
        raise LedgerFormatError(
            f"this database records order holds in the ledger (entry {found.entry_seq} posts to "
            "a reserved or available cash account), a format this version no longer writes; "
            "rebuild it from its journal into a new database with: "
            "dataex ledger rebuild --from OLD_URL --to NEW_URL"
        )
    op.execute("DELETE FROM ledger_snapshot")


def downgrade() -> None:
    raise RuntimeError("the ledger's tables cannot be downgraded")
