"""Tables as named NumPy columns: the pandas-free form in which the data layer and the stage
metrics pass tables to one another.

pandas takes 0.8 s to import on a small machine, longer than a one-question command may take
(issue 18), so the paths a command runs (the supply map, the stage trade rows, the material
balances, dependence by stage) work on `Table`s, and the Python API turns them into
DataFrames at its surface (`Table.frame`). Conventions: numbers are float64 with NaN for
missing (integers stay integer where nothing is missing), text is an object array of `str`
(None for missing), flags are bool arrays, list cells are object arrays of Python lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


class Table:
    """Named columns of equal length, in order."""

    __slots__ = ("_columns", "_length")

    def __init__(self, columns: Mapping[str, Iterable], length: int | None = None) -> None:
        arrays = {name: _array(values) for name, values in columns.items()}
        lengths = {len(a) for a in arrays.values()}
        if length is not None:
            lengths.add(length)
        if len(lengths) > 1:
            sizes = {name: len(a) for name, a in arrays.items()}
            raise ValueError(f"columns of unequal length: {sizes}")
        self._columns = arrays
        self._length = lengths.pop() if lengths else 0

    @classmethod
    def empty(cls, names: Iterable[str]) -> Table:
        """A table with these columns and no rows."""
        return cls({name: np.empty(0, dtype=object) for name in names}, 0)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Table:
        """The columns of a DataFrame (index dropped); text as object arrays."""
        columns = {}
        for name in frame.columns:
            series = frame[name]
            if series.dtype.kind in "biuf":
                columns[str(name)] = series.to_numpy()
            else:
                values = series.to_numpy(dtype=object)
                columns[str(name)] = np.where(series.isna().to_numpy(), None, values)
        return cls(columns, len(frame))

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (imports pandas)."""
        import pandas as pd

        return pd.DataFrame(self._columns, index=pd.RangeIndex(self._length))

    @property
    def names(self) -> list[str]:
        return list(self._columns)

    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name (a new dict; the arrays are shared)."""
        return dict(self._columns)

    def where(self, mask: np.ndarray) -> Table:
        """The rows where `mask` holds (or the rows at the integer positions `mask`)."""
        picked = {name: values[mask] for name, values in self._columns.items()}
        length = int(np.count_nonzero(mask)) if mask.dtype == bool else len(mask)
        return Table(picked, length)

    def select(self, names: Iterable[str]) -> Table:
        """These columns, in this order."""
        return Table({name: self._columns[name] for name in names}, self._length)

    def assign(self, **columns: Iterable) -> Table:
        """A table with these columns added or replaced."""
        return Table({**self._columns, **columns}, self._length)

    def rename(self, names: Mapping[str, str]) -> Table:
        """A table with columns renamed (`old → new`)."""
        return Table({names.get(n, n): v for n, v in self._columns.items()}, self._length)

    def records(self) -> list[dict[str, object]]:
        """One dict per row, with Python scalars (NaN stays float NaN)."""
        lists = {name: values.tolist() for name, values in self._columns.items()}
        return [{name: lists[name][i] for name in lists} for i in range(self._length)]

    def __repr__(self) -> str:
        return f"Table({self._length} rows: {', '.join(self._columns)})"


def concat(tables: Iterable[Table]) -> Table:
    """Rows of tables with the same columns, one after another."""
    tables = list(tables)
    if not tables:
        raise ValueError("concat needs at least one table")
    names = tables[0].names
    for table in tables[1:]:
        if table.names != names:
            raise ValueError(f"concat: columns differ: {names} and {table.names}")
    return Table({n: np.concatenate([t[n] for t in tables]) for n in names})


def _array(values: Iterable) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    if isinstance(values, list | tuple):
        if any(isinstance(v, list | tuple | dict) for v in values):
            out = np.empty(len(values), dtype=object)  # list cells stay lists, not 2-D
            out[:] = list(values)
            return out
        return np.asarray(values)
    return np.asarray(list(values))
