"""Research on the exchange's record: replay it, check it, export it (docs/research.md).

Public API::

    report = replay(DatabaseJournal(Ledger.open(url)))    # or JournalFile(path)
    report.ok, report.mismatch, report.state_hash()       # reproduces the settlement?
    export_table(ledger, What.TRADES, Format.CSV, path, Window())
    export_tables(ledger, {What.TRADES: dir / "trades.parquet", What.BOOK: ...}, Format.PARQUET,
                  Window())                               # several tables, one replay
    export_lobster(ledger, "ZJPARK.NX12", 10, directory, Window())
    check_lobster(messages_csv, orderbook_csv)            # rebuild a LOBSTER book, compare
    frames(url, ["trades", "orders"])                     # pandas DataFrames (research extra)
"""

from exchange.research.export import (
    ExportError,
    ExportReport,
    What,
    collect,
    export_lobster,
    export_table,
    export_tables,
)
from exchange.research.formats import Format, MissingDependency, read_table
from exchange.research.frames import frames
from exchange.research.journal import (
    BrokenChain,
    DatabaseJournal,
    InputError,
    Journal,
    JournalFile,
    RecordedCommand,
)
from exchange.research.lobster import (
    LevelBook,
    LobsterExport,
    LobsterMismatch,
    LobsterReport,
    Message,
    PriceUnit,
    check_lobster,
)
from exchange.research.replay import Mismatch, ReplayReport, Until, parse_until, replay
from exchange.research.tables import TABLES, Column, Kind, Window
from exchange.research.times import format_time, parse_time

__all__ = [
    "TABLES",
    "BrokenChain",
    "Column",
    "DatabaseJournal",
    "ExportError",
    "ExportReport",
    "Format",
    "InputError",
    "Journal",
    "JournalFile",
    "Kind",
    "LevelBook",
    "LobsterExport",
    "LobsterMismatch",
    "LobsterReport",
    "Message",
    "Mismatch",
    "MissingDependency",
    "PriceUnit",
    "RecordedCommand",
    "ReplayReport",
    "Until",
    "What",
    "Window",
    "check_lobster",
    "collect",
    "export_lobster",
    "export_table",
    "export_tables",
    "format_time",
    "frames",
    "parse_time",
    "parse_until",
    "read_table",
    "replay",
]
