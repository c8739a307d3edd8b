"""`mempill.compat`: the published 0.4 wheel's dict-in/dict-out API over the engine.

`api` holds the openers and `CompatEngine`; `requests` parses the wheel's request dicts,
`shapes` renders results in the wheel's shapes, `oracle` adapts the wheel's oracles.
"""

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

__all__ = [
    "CompatEngine",
    "HandleAliases",
    "WheelOracle",
    "date_granularity_of",
    "open_for_agent",
    "open_in_memory",
    "open_oracle_for_agent",
    "open_oracle_in_memory",
    "open_postgres",
    "wrap",
]
