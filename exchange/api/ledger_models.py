"""The API's models of a participant's own ledger entries (``GET /v1/ledger/entries``).

Amounts are the ledger's own integers, as the entry's canonical JSON (the bytes its proof
hashes) holds them: cash in minor units (fen), licences in units. An entry is listed with
every posting, the counterparty's and the exchange's included, as its proof shows it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from ledger.store import StoredEntry

from .schemas import iso

__all__ = ["LedgerEntryPage", "LedgerEntryPublic", "PostingPublic", "entry_view"]


class PostingPublic(BaseModel):
    account: str
    asset: str = Field(description="cash, or licence:<symbol>")
    amount_units: int = Field(description="Signed: minor units of cash (fen) or licence units")


class LedgerEntryPublic(BaseModel):
    seq: int = Field(description="The entry's sequence number: the one its proof asks for")
    kind: str
    time: str | None
    postings: list[PostingPublic]


class LedgerEntryPage(BaseModel):
    entries: list[LedgerEntryPublic] = Field(description="Oldest first")
    next_after: int | None = Field(description="Pass as `after` for the next page; null: none")


def entry_view(entry: StoredEntry) -> LedgerEntryPublic:
    return LedgerEntryPublic(
        seq=entry.seq, kind=entry.kind, time=iso(entry.ts_ns),
        postings=[PostingPublic(account=p.account, asset=p.asset, amount_units=p.amount_units)
                  for p in entry.postings],
    )  # fmt: skip
