"""The durable recovery log and write-ahead engine state (draft §11, §15).

SQLite by default: one file per agent holding the append-only record chains,
engine snapshots and the outbox. :class:`DurableParty` is what a runtime
drives: every engine step is committed, with its records linked and signed and
its messages signed and queued, before anything leaves the process.
"""

from ._party import DurableParty as DurableParty
from ._party import Engine as Engine
from ._party import Incremental as Incremental
from ._party import Step as Step
from ._sqlite import LogEntry as LogEntry
from ._sqlite import OutboxEntry as OutboxEntry
from ._sqlite import Store as Store
from ._sqlite import StoreError as StoreError
from ._sqlite import is_store as is_store

__all__ = [
    "DurableParty",
    "Engine",
    "Incremental",
    "LogEntry",
    "OutboxEntry",
    "Step",
    "Store",
    "StoreError",
    "is_store",
]
