"""mempill: an append-only, bi-temporal, provenance-aware claim store for agent memory."""

from typing import TYPE_CHECKING, Any

from mempill.clock import Clock, SteppingClock, system_clock
from mempill.config import EngineConfig
from mempill.engine import Engine, RetryPolicy
from mempill.enums import (
    BeliefStatus,
    Cardinality,
    Criticality,
    Currency,
    Disposition,
    EventKind,
    Granularity,
    HistoryStatus,
    Marker,
    PendingStatus,
    Provenance,
    Verdict,
)
from mempill.errors import (
    ConfigError,
    ConflictError,
    IntegrityError,
    MempillError,
    NotFoundError,
    StorageError,
    TransientStorageError,
    ValidationError,
)
from mempill.ids import IdFactory, SeededIds, random_ids
from mempill.model import (
    AdjudicationOutcome,
    AdjudicationRequest,
    AuditPage,
    BeliefSlot,
    EndFactReceipt,
    History,
    HistoryEntry,
    IngestRequest,
    LedgerEntry,
    PendingAdjudication,
    Projection,
    Receipt,
    ReconcileLine,
    ReconcileReport,
    ValidityReceipt,
    ValidTime,
    WriteStat,
)
from mempill.openers import open_default, open_default_in_memory, open_directory
from mempill.ports import NoOpOracle, NoOpVector, OraclePort, VectorPort

if TYPE_CHECKING:
    from mempill.stores.postgres import open_postgres


def __getattr__(name: str) -> Any:
    """`mempill.open_postgres` imports psycopg only when first used (an optional extra)."""
    if name == "open_postgres":
        try:
            from mempill.stores.postgres import open_postgres
        except ImportError as e:
            raise ImportError(
                "mempill.open_postgres needs the postgres extra: pip install 'mempill[postgres]'"
            ) from e
        return open_postgres
    raise AttributeError(f"module 'mempill' has no attribute {name!r}")


__version__ = "0.5.0"

__all__ = [
    "AdjudicationOutcome",
    "AdjudicationRequest",
    "AuditPage",
    "BeliefSlot",
    "BeliefStatus",
    "Cardinality",
    "Clock",
    "ConfigError",
    "ConflictError",
    "Criticality",
    "Currency",
    "Disposition",
    "EndFactReceipt",
    "Engine",
    "EngineConfig",
    "EventKind",
    "Granularity",
    "History",
    "HistoryEntry",
    "HistoryStatus",
    "IdFactory",
    "IngestRequest",
    "IntegrityError",
    "LedgerEntry",
    "Marker",
    "MempillError",
    "NoOpOracle",
    "NoOpVector",
    "NotFoundError",
    "OraclePort",
    "PendingAdjudication",
    "PendingStatus",
    "Projection",
    "Provenance",
    "Receipt",
    "ReconcileLine",
    "ReconcileReport",
    "RetryPolicy",
    "SeededIds",
    "SteppingClock",
    "StorageError",
    "TransientStorageError",
    "ValidTime",
    "ValidationError",
    "ValidityReceipt",
    "VectorPort",
    "Verdict",
    "WriteStat",
    "__version__",
    "open_default",
    "open_default_in_memory",
    "open_directory",
    "open_postgres",
    "random_ids",
    "system_clock",
]
