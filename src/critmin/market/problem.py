"""The arrays a batched market solve works on: the scenarios' inputs on the list of base
flows (`Problem`, built once per batch) and the prices, flows and residuals at a point
(`State`, one per evaluation), with the sums over each origin's, market's or cell's pairs
that both use. The model and its Newton solver are in `critmin.market.solver`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np


@dataclass
class Problem:
    """A batch of B scenarios on one market of N countries with J quota constraints."""

    q0: np.ndarray  # (N, N) base flows, base-price kUSD
    tariff: np.ndarray  # (B, N, N) combined price wedge (1 + tariff)(1 + export tax)
    open: np.ndarray  # (B, N, N) bool
    floor: np.ndarray  # (B, N, N) landed-price floor (hat), 0 none
    guarantee: np.ndarray  # (B, N) producer floor (hat), 0 none
    stock: np.ndarray  # (B, N) release, base-price kUSD
    capacity: np.ndarray  # (B, N) max output / base, inf none
    sigma: np.ndarray  # (B, N) per market
    eta: np.ndarray  # (B, N) per market
    supply_elasticity: np.ndarray  # (B, N) per origin
    cutoff: np.ndarray  # (B, N) per market: price index where demand chokes
    quota_id: np.ndarray  # (N, N) constraint of each pair, −1 none (shared by the batch)
    quota_fraction: np.ndarray  # (B, J), inf = constraint inactive in that scenario

    def __post_init__(self) -> None:
        size = self.q0.shape[0]
        sales = self.q0.sum(axis=1)
        self.d0 = self.q0.sum(axis=0)
        # Unknowns only for origins that sell (importers without production have no price
        # of their own), and work on the list of base flows (pairs with q0 > 0) sorted by
        # market: trade matrices are sparse (rare earths 2023: 1,600 of 24,000 pairs).
        self.sellers = np.flatnonzero(sales > 0)
        seller_position = np.full(size, -1)
        seller_position[self.sellers] = np.arange(len(self.sellers))
        self.x0 = sales[self.sellers]
        for name in ("guarantee", "capacity", "supply_elasticity"):
            setattr(self, name, getattr(self, name)[:, self.sellers])
        pv, pr_full = np.nonzero(self.q0.T > 0)
        self.pr_full, self.pv = pr_full, pv
        self.pr = pr = seller_position[pr_full]
        # Pairs grouped by origin, for sums over each origin's pairs (every seller has one).
        self.by_origin = np.argsort(pr, kind="stable")
        self.origin_starts = np.flatnonzero(np.diff(pr[self.by_origin], prepend=-1))
        base = self.q0[pr_full, pv]
        self.log_q0 = np.log(base)
        self.log_theta = np.log(base / self.d0[pv])
        self.markets, self.starts = np.unique(pv, return_index=True)
        with np.errstate(divide="ignore"):
            self.log_wedge = np.log(self.tariff[:, pr_full, pv])
            floor = self.floor[:, pr_full, pv]
            self.log_floor = np.where(floor > 0, np.log(np.where(floor > 0, floor, 1.0)), -np.inf)
        is_open = self.open[:, pr_full, pv]
        self.stock_ratio = np.divide(
            self.stock, self.d0, out=np.zeros_like(self.stock), where=self.d0 > 0
        )
        alive = np.zeros((self.batch, size), bool)
        alive[:, self.markets] = np.logical_or.reduceat(is_open, self.starts, axis=1)
        self.alive = alive  # (B, N): market has an open supplier
        self.live = is_open & alive[:, pv]  # (B, P)
        # (B, S): the origin can sell
        self.active = reduce_by_origin(self, self.live, np.logical_or)
        pair_quota = self.quota_id[pr_full, pv]
        self.quota_pairs = np.flatnonzero(pair_quota >= 0)  # positions in the pair list
        self.pj = pair_quota[self.quota_pairs]
        count = self.quota_fraction.shape[1]
        self.ej = np.zeros((len(self.quota_pairs), count))
        self.ej[np.arange(len(self.quota_pairs)), self.pj] = 1.0
        self.quota_base = base[self.quota_pairs] @ self.ej  # (J,)
        # The Jacobian's products over markets (`jacobian_at`) run over the markets with two
        # or more base suppliers; a market with one supplier adds to diagonal cells only.
        suppliers = np.bincount(pv, minlength=size)
        multi = suppliers[pv] >= 2  # (P,) the pair's market has other suppliers
        column = np.cumsum(suppliers >= 2) - 1  # the market's column in those products
        self.shared_markets = int((suppliers >= 2).sum())
        multi_pairs = np.flatnonzero(multi)
        self.multi_pairs, self.single_pairs = multi_pairs, np.flatnonzero(~multi)
        self.single_cells = pair_cells(pr[self.single_pairs])  # (origin) cells
        # Quota pairs summed into (constraint, market) and (origin, constraint) cells, for
        # the quota rows of the Jacobian (sums over a few hundred pairs, not dense one-hot
        # products over every pair × market).
        on_multi = multi[self.quota_pairs]
        self.jv_cells = pair_cells(
            self.pj[on_multi] * self.shared_markets + column[pv[self.quota_pairs[on_multi]]]
        )
        self.jv_pairs = np.flatnonzero(on_multi)  # positions in the quota pair list
        self.sj_cells = pair_cells(pr[self.quota_pairs] * count + self.pj)
        self.single_quota = np.flatnonzero(~on_multi)
        self.single_sj_cells = pair_cells(
            pr[self.quota_pairs[self.single_quota]] * count + self.pj[self.single_quota]
        )
        # Where each pair of a shared market sits in the Jacobian's two factors: row r,
        # column v of the (S + J, N') left factor; row v, column r of the (N', S + J) right.
        width = len(self.sellers) + count
        self.left_at = pr[multi_pairs] * self.shared_markets + column[pv[multi_pairs]]
        self.right_at = column[pv[multi_pairs]] * width + pr[multi_pairs]

    BATCH_FIELDS = (
        "guarantee", "stock", "capacity", "sigma", "eta", "supply_elasticity", "cutoff",
        "quota_fraction", "log_wedge", "log_floor", "stock_ratio", "alive", "live", "active",
    )  # fmt: skip

    @property
    def batch(self) -> int:
        return self.guarantee.shape[0]

    def take(self, rows: np.ndarray) -> Problem:
        """The sub-batch `rows` (shares the scenario-independent arrays)."""
        part = copy.copy(self)
        for name in self.BATCH_FIELDS:
            setattr(part, name, getattr(self, name)[rows])
        return part

    def dense(self, pairs: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """(N, N) matrix of one scenario's pair values."""
        size = self.q0.shape[0]
        out = np.full((size, size), fill, dtype=pairs.dtype)
        out[self.pr_full, self.pv] = pairs
        return out

    def full(self, values: np.ndarray, fill: float) -> np.ndarray:
        """(B, S) seller values → (B, N), `fill` for countries that sell nothing."""
        out = np.full((values.shape[0], self.q0.shape[0]), fill)
        out[:, self.sellers] = values
        return out


@dataclass
class State:
    """Prices, flows and residuals of a batch at given (z, u); pair arrays follow
    `Problem.pr`, `Problem.pv` (use `Problem.dense` for a matrix)."""

    world_price: np.ndarray  # (B, N) P* (1 for countries that sell nothing)
    log_landed: np.ndarray  # (B, P) log p
    log_unfloored: np.ndarray  # (B, P) log (P* · wedge · (1 + τ))
    composite: np.ndarray  # (B, N) P_v (inf where cut off)
    flows: np.ndarray  # (B, P) q
    demand_index: np.ndarray  # (B, N) D_v, composite consumption / base (stock included)
    purchases: np.ndarray  # (B, N) c_v
    producer_price: np.ndarray  # (B, N)
    supply: np.ndarray  # (B, N) X
    quota_use: np.ndarray  # (B, J) Σ q / Σ q0 over each constraint
    residual: np.ndarray  # (B, N + J)
    jacobian: np.ndarray | None
    # What the Jacobian is made of (`jacobian_at`), kept so that it can be computed later,
    # and only for the scenarios that need it.
    share_g: np.ndarray  # (B, P) value share where ∂ log p / ∂ z = 1, else 0
    passes: np.ndarray  # (B, P) bool: open, live, not at the floor
    kappa: np.ndarray  # (B, N) κ_v
    demand: np.ndarray  # (B, S) Σ_v q_rv (floored at 1e-300)
    elastic: np.ndarray  # (B, S) bool: supply responds to z (not guaranteed, not capped)
    u: np.ndarray  # (B, J)
    slack: np.ndarray  # (B, J)
    radius: np.ndarray  # (B, J)

    JACOBIAN_PARTS = (
        "flows", "share_g", "passes", "kappa", "demand", "elastic", "u", "slack", "radius",
    )  # fmt: skip

    def take(self, rows: np.ndarray) -> State:
        """The scenarios `rows` (copies of what `jacobian_at` reads; the rest left empty)."""
        parts = dict.fromkeys(self.__dataclass_fields__)
        parts.update({name: getattr(self, name)[rows] for name in self.JACOBIAN_PARTS})
        return State(**parts)

    def rows(self, rows: np.ndarray, fields: tuple[str, ...] | None = None) -> State:
        """The scenarios `rows`, every field (or only `fields`; the rest None)."""
        parts = dict.fromkeys(self.__dataclass_fields__)
        for name in fields or self.__dataclass_fields__:
            value = getattr(self, name)
            parts[name] = None if value is None else value[rows]
        return State(**parts)

    @property
    def landed(self) -> np.ndarray:
        """(B, P) landed prices p (exponentiated when asked: the solver works in logs)."""
        return np.exp(self.log_landed)

    @property
    def unfloored(self) -> np.ndarray:
        """(B, P) P* · wedge · (1 + τ) before any floor."""
        return np.exp(self.log_unfloored)


def pair_cells(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group positions by integer cell key: (positions sorted by key, start of each group,
    the group's key), for `cell_sums`."""
    order = np.argsort(keys, kind="stable")
    cells, starts = np.unique(keys[order], return_index=True)
    return order, starts, cells


def cell_sums(
    values: np.ndarray, cells: tuple[np.ndarray, np.ndarray, np.ndarray], shape: tuple
) -> np.ndarray:
    """(B, Q) values summed into their cells → array of `shape` (B, ...), zero elsewhere."""
    order, starts, keys = cells
    out = np.zeros((shape[0], int(np.prod(shape[1:]))))
    if len(order):
        out[:, keys] = np.add.reduceat(values[:, order], starts, axis=1)
    return out.reshape(shape)


def reduce_by_origin(pb: Problem, values: np.ndarray, reduce: np.ufunc = np.add) -> np.ndarray:
    """(B, P) pair values reduced over each selling origin's pairs → (B, S)."""
    return reduce.reduceat(values[:, pb.by_origin], pb.origin_starts, axis=1)


def reduce_by_market(pb: Problem, values: np.ndarray, reduce: np.ufunc, empty: float) -> np.ndarray:
    """(B, P) pair values reduced over each market's pairs → (B, N)."""
    out = np.full((values.shape[0], pb.q0.shape[0]), empty)
    out[:, pb.markets] = reduce.reduceat(values, pb.starts, axis=1)
    return out
