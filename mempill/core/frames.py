"""Results as pandas data frames: `to_frame()` types the columns `tables` declares.

pandas is optional (the notebooks extra installs it) and imported only when a frame is
asked for, so `import mempill` never loads it; without it `to_frame()` raises an
ImportError naming the extra. Columns are typed as the lab's ledger frames are: instants
as timezone-aware `datetime64[us, UTC]` (years 1 to 9999 fit), closed vocabularies as
categories (criticality ordered), counts as int64, text as the `string` dtype, and
stored values as they are (object).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from mempill.core.dates import format_tx, parse_tx
from mempill.core.tables import Column

if TYPE_CHECKING:
    import pandas as pd


def frame(columns: Sequence[Column], entries: Iterable[Any]) -> pd.DataFrame:
    """A row per entry, a typed column per `Column` (all of them, labelled or not)."""
    try:
        import pandas as pd
    except ImportError as e:
        from mempill import extras

        raise ImportError(extras.missing("to_frame()", "notebooks")) from e
    rows = list(entries)
    data = {c.name: typed(c, [c.get(row) for row in rows]) for c in columns}
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def typed(column: Column, values: list[Any]) -> Any:
    """One column's values as a typed pandas array (or Series)."""
    import pandas as pd

    kind = column.kind
    if kind == "time":
        return times(values)
    if kind == "category":
        found = [v.value if isinstance(v, Enum) else v for v in values]
        return pd.Categorical(found, categories=column.categories, ordered=column.ordered)
    if kind == "int":
        return pd.array([int(v) for v in values], dtype="int64")
    if kind == "int?":
        return pd.array([None if v is None else int(v) for v in values], dtype="Int64")
    if kind == "float":
        return pd.array([float("nan") if v is None else float(v) for v in values], dtype="float64")
    if kind == "bool":
        return pd.array([bool(v) for v in values], dtype="bool")
    if kind == "text":
        found = [None if v is None else str(v.value if isinstance(v, Enum) else v) for v in values]
        return pd.array(found, dtype="string")
    import numpy as np

    held = np.empty(len(values), dtype=object)  # a list or a dict stays one value
    for i, value in enumerate(values):
        held[i] = value
    return pd.Series(held, dtype=object)


def times(values: Sequence[datetime | str | None]) -> pd.Series:
    """Instants (aware datetimes, RFC 3339 text or None) as `datetime64[us, UTC]`."""
    import numpy as np
    import pandas as pd

    text = [
        "NaT" if v is None else format_tx(v if isinstance(v, datetime) else parse_tx(v))[:26]
        for v in values
    ]
    array = np.array(text, dtype="datetime64[us]")
    return pd.Series(array, dtype="datetime64[us]").dt.tz_localize("UTC")
