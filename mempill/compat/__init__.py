"""`mempill.compat`: the published 0.4 wheel's public Python surface, over the engine.

Code written for the wheel migrates with one change per import: `mempill` becomes
`mempill.compat` (`mempill.types` → `mempill.compat.types`, `mempill.ergonomic` →
`mempill.compat.ergonomic`, `mempill._mempill` → `mempill.compat`). `api` holds the openers
and `CompatEngine`; `requests` parses the wheel's request dicts, `shapes` renders results in
its shapes, `oracle` adapts its oracles; `types` and `ergonomic` are its modules of those
names. Deliberate differences: docs/compat.md.
"""

from importlib.metadata import PackageNotFoundError, version

from mempill.compat.api import (
    CompatEngine,
    HandleAliases,
    WheelOracle,
    date_granularity_of,
    open_for_agent,
    open_in_memory,
    open_oracle_for_agent,
    open_oracle_in_memory,
    open_postgres,
    wrap,
)
from mempill.compat.ergonomic import (
    BeliefDetail,
    ContestCandidate,
    EndFactReceipt,
    History,
    HistoryEntry,
    RecallResult,
    RememberOptions,
    RememberReceipt,
    UnparsableDateError,
    end_fact,
    history,
    recall,
    remember,
)
from mempill.compat.types import (
    AuditQueryRequest,
    AuditQueryResponse,
    BeliefProjection,
    BeliefSlot,
    ConfidenceDict,
    Disposition,
    FactDict,
    IngestClaimRequest,
    IngestClaimResponse,
    ProvenanceLabel,
    QueryMemoryRequest,
    QueryMemoryResponse,
    ReconcileRequest,
    ReconcileResponse,
    ValidTimeDict,
)
from mempill.errors import (
    ConfigError,
    ConflictError,
    IntegrityError,
    MempillError,
    NotFoundError,
    StorageError,
    ValidationError,
)

try:
    __version__ = version("mempill")
except PackageNotFoundError:  # a checkout used without installing it
    __version__ = "0.0.0+unknown"

# The wheel's names for the engine class (compat has one class, with or without an oracle)
# and for its native module's openers.
Engine = PyEngine = OracleEngine = PyOracleEngine = CompatEngine
open_default_for_agent = open_for_agent
open_with_oracle_for_agent = open_oracle_for_agent
open_with_oracle_in_memory = open_oracle_in_memory
#: The wheel raised InternalError when one of its invariants broke; here the store's
#: constraints catch that, as IntegrityError (a StorageError). docs/compat.md §7.
InternalError = IntegrityError

__all__ = [
    "AuditQueryRequest",
    "AuditQueryResponse",
    "BeliefDetail",
    "BeliefProjection",
    "BeliefSlot",
    "CompatEngine",
    "ConfidenceDict",
    "ConfigError",
    "ConflictError",
    "ContestCandidate",
    "Disposition",
    "EndFactReceipt",
    "Engine",
    "FactDict",
    "HandleAliases",
    "History",
    "HistoryEntry",
    "IngestClaimRequest",
    "IngestClaimResponse",
    "IntegrityError",
    "InternalError",
    "MempillError",
    "NotFoundError",
    "OracleEngine",
    "ProvenanceLabel",
    "PyEngine",
    "PyOracleEngine",
    "QueryMemoryRequest",
    "QueryMemoryResponse",
    "RecallResult",
    "ReconcileRequest",
    "ReconcileResponse",
    "RememberOptions",
    "RememberReceipt",
    "StorageError",
    "UnparsableDateError",
    "ValidTimeDict",
    "ValidationError",
    "WheelOracle",
    "__version__",
    "date_granularity_of",
    "end_fact",
    "history",
    "open_default_for_agent",
    "open_for_agent",
    "open_in_memory",
    "open_oracle_for_agent",
    "open_oracle_in_memory",
    "open_postgres",
    "open_with_oracle_for_agent",
    "open_with_oracle_in_memory",
    "recall",
    "remember",
    "wrap",
]
