"""The Engine: the one place that opens transactions, retries and calls the oracle.

`engine.Engine` holds a `runner.TransactionRunner` and an `oracle.OracleLoop`; inside a
write transaction `batch.Batch` carries its state while `ingest`, `validity` and
`adjudication` turn the pure core's decisions into rows; `linecache` keeps line states.
"""

from mempill.engine.engine import Engine
from mempill.engine.runner import RetryPolicy

__all__ = ["Engine", "RetryPolicy"]
