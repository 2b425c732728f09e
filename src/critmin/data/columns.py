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

import math
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


def text(values: list) -> np.ndarray:
    """An object array of str (None stays None)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def numbers(values: list) -> np.ndarray:
    """Numbers written as text, as float64; empty cells are NaN."""
    return np.array([math.nan if v is None or v == "" else float(v) for v in values], dtype=float)


def frozen(table: Table) -> Table:
    """The same table with read-only columns (for tables kept in a cache and shared)."""
    for name in table:
        table[name].flags.writeable = False
    return table


# Group operations on columns, as pandas does them.


def _sortable(values: np.ndarray) -> np.ndarray:
    """Values np.unique sorts quickly and as Python compares them (text as a str array)."""
    return values.astype(str) if values.dtype == object else values


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.equal(values, None)
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.zeros(len(values), dtype=bool)


def group_rows(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The group of each row by these key columns, groups numbered in the keys' sorted order
    (pandas' groupby order), and each group's first row."""
    code = np.zeros(len(columns[0]), dtype=np.int64)
    first = np.zeros(0, dtype=np.int64)
    for values in columns:
        uniques, inverse = np.unique(_sortable(values), return_inverse=True)
        _, first, code = np.unique(
            code * len(uniques) + inverse.reshape(-1), return_index=True, return_inverse=True
        )
        code = code.reshape(-1)
    return code, first


def kahan_sums(code: np.ndarray, values: np.ndarray, n: int, min_count: int = 0) -> np.ndarray:
    """Σ values per group 0..n-1 as pandas' groupby sum adds them: in row order, with Kahan
    compensation, NaN skipped; a group with fewer than `min_count` numbers sums to NaN.
    `values` may be 2-D (one column of sums per column of values). (pandas 3.1 adds rows
    already sorted by key and free of NaN with np.add.reduceat instead, uncompensated; see
    `group_sums`, which follows pandas in both cases.)

    Vectorised over groups: step k adds the k-th value of every group that has one (groups in
    descending size, so those still adding are a prefix); steps = the largest group's size.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 2 and np.isnan(values).any():  # NaN are skipped column by column
        return np.column_stack([kahan_sums(code, v, n, min_count) for v in values.T])
    present = ~np.isnan(values) if values.ndim == 1 else np.ones(len(values), dtype=bool)
    code, values = code[present], values[present]
    counts = np.bincount(code, minlength=n)
    sums = np.zeros((n, *values.shape[1:]))
    if len(values):
        slot = np.empty(n, dtype=np.int64)
        slot[np.argsort(-counts, kind="stable")] = np.arange(n)
        by_group = np.argsort(code, kind="stable")
        start = np.cumsum(counts) - counts
        rank = np.empty(len(code), dtype=np.int64)
        rank[by_group] = np.arange(len(code)) - start[code[by_group]]
        steps = values[np.lexsort((slot[code], rank))]
        total, compensation = np.zeros_like(sums), np.zeros_like(sums)
        infinite = not np.isfinite(steps).all()
        at = 0
        with np.errstate(invalid="ignore"):  # inf - inf: see below
            for m in np.bincount(rank).tolist():
                y = steps[at : at + m] - compensation[:m]
                t = total[:m] + y
                compensation[:m] = (t - total[:m]) - y
                if infinite:  # pandas: an infinite value leaves no compensation (GH 53606)
                    fixed = compensation[:m]
                    fixed[np.isnan(fixed)] = 0.0
                total[:m] = t
                at += m
        sums = total[slot]
    if min_count:
        sums[counts < min_count] = np.nan
    return sums


def group_sums(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys, sorted; Σ values per key) as pandas' `groupby(key).sum()` adds them: in
    row order; rows without a key dropped; NaN skipped (a key with only NaN sums to 0).

    pandas (3.1) has two ways to add: if the rows come sorted by key and no value is NaN, each
    run of a key is `np.add.reduceat` (its first value + the pairwise sum of the others);
    otherwise Kahan's compensated sum (`kahan_sums`). The two differ in the last bit, and the
    market calibration must equal its former DataFrame code to it, so both are kept. A 2-D `values`
    is summed column by column, as pandas sums each Series.
    """
    values = np.asarray(values, dtype=float)
    present = ~np.equal(keys, None) if keys.dtype == object else ~np.isnan(keys)
    if not present.any():
        return keys[:0], np.zeros((0, *values.shape[1:]))
    ids = np.full(len(keys), -1, dtype=np.int64)
    ids[present], first = group_rows([keys[present]])  # grouped once for every column
    codes = ids[present]
    # Runs of a key are added by reduceat where the rows are in key order: their ids (−1 for a
    # row without a key) never decrease.
    runs = (
        None if (np.diff(ids) < 0).any() else np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    )

    def column_sums(column: np.ndarray) -> np.ndarray:
        if runs is None or np.isnan(column).any():
            return kahan_sums(codes, column[present], len(first))
        return np.add.reduceat(column[present], runs)

    sums = (
        np.column_stack([column_sums(c) for c in values.T])
        if values.ndim == 2
        else column_sums(values)
    )
    return keys[present][first], sums


def group_sum(table: Table, keys: list[str], value: str, min_count: int = 0) -> Table:
    """`groupby(keys, as_index=False)[value].sum(min_count=...)`: one row per group of rows with
    all keys present, in sorted key order."""
    present = np.ones(len(table), dtype=bool)
    for key in keys:
        present &= ~_missing(table[key])
    if not present.all():
        table = table.where(present)
    if not len(table):
        return table.select([*keys, value])
    code, first = group_rows([table[k] for k in keys])
    sums = kahan_sums(code, table[value], len(first), min_count)
    return Table({**{k: table[k][first] for k in keys}, value: sums}, len(first))


def join_index(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
    """For each left row, the first right row with the same keys, -1 where none has them."""
    n = len(left[0])
    if not n or not len(right[0]):
        return np.full(n, -1, dtype=np.int64)
    code, _ = group_rows([np.concatenate([a, b]) for a, b in zip(left, right, strict=True)])
    where = np.full(int(code.max()) + 1, -1, dtype=np.int64)
    where[code[n:][::-1]] = np.arange(len(code) - n)[::-1]  # the first of duplicates wins
    return where[code[:n]]


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
