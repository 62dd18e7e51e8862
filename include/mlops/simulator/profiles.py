"""Customer and terminal profiles, and which terminals each customer can reach.

The reachable terminals are kept as a CSR structure (offsets + flat indices) so that picking
one terminal per transaction is a single vectorised gather instead of a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_SIZE = 100.0
MAX_CELLS_PER_SIDE = 512  # bounds the grid's memory for a tiny radius


@dataclass(frozen=True)
class CustomerProfiles:
    """One row per customer; ``CUSTOMER_ID`` is the array index."""

    x: np.ndarray
    y: np.ndarray
    mean_amount: np.ndarray
    std_amount: np.ndarray
    mean_nb_tx_per_day: np.ndarray


@dataclass(frozen=True)
class TerminalProfiles:
    """One row per terminal; ``TERMINAL_ID`` is the array index."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class AvailableTerminals:
    """Terminals of customer ``c`` are ``terminals[offsets[c]:offsets[c + 1]]``."""

    offsets: np.ndarray
    terminals: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def customer_profiles(n_customers: int, rng: np.random.Generator) -> CustomerProfiles:
    mean_amount = rng.uniform(5.0, 100.0, n_customers)
    return CustomerProfiles(
        x=rng.uniform(0.0, GRID_SIZE, n_customers),
        y=rng.uniform(0.0, GRID_SIZE, n_customers),
        mean_amount=mean_amount,
        std_amount=mean_amount / 2.0,
        mean_nb_tx_per_day=rng.uniform(0.0, 4.0, n_customers),
    )


def terminal_profiles(n_terminals: int, rng: np.random.Generator) -> TerminalProfiles:
    return TerminalProfiles(
        x=rng.uniform(0.0, GRID_SIZE, n_terminals),
        y=rng.uniform(0.0, GRID_SIZE, n_terminals),
    )


def available_terminals(
    customers: CustomerProfiles, terminals: TerminalProfiles, radius: float
) -> AvailableTerminals:
    """Terminals strictly closer than ``radius`` to each customer, each list by terminal id.

    A grid of ``radius``-sized cells limits the candidates to the 3x3 cells around each
    customer, and all (customer, candidate) pairs are expanded and tested as flat arrays:
    no Python loop, and no KD-tree library whose import alone costs longer than the search.
    """
    n_customers = len(customers.x)
    cell_size = max(radius, GRID_SIZE / MAX_CELLS_PER_SIDE)  # >= radius: 3x3 cells suffice
    cells_per_side = max(1, int(np.ceil(GRID_SIZE / cell_size)))

    def cell(v: np.ndarray) -> np.ndarray:
        return np.clip((v // cell_size).astype(np.int64), 0, cells_per_side - 1)

    terminal_cell = cell(terminals.x) * cells_per_side + cell(terminals.y)
    by_cell = np.argsort(terminal_cell, kind="stable")
    cell_offsets = np.zeros(cells_per_side**2 + 1, dtype=np.int64)
    np.cumsum(np.bincount(terminal_cell, minlength=cells_per_side**2), out=cell_offsets[1:])

    shifts = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)])
    cx = cell(customers.x)[:, None] + shifts[:, 0]
    cy = cell(customers.y)[:, None] + shifts[:, 1]
    inside = (cx >= 0) & (cx < cells_per_side) & (cy >= 0) & (cy < cells_per_side)
    owner = np.broadcast_to(np.arange(n_customers)[:, None], cx.shape)[inside]
    neighbour = (cx * cells_per_side + cy)[inside]
    begin, length = cell_offsets[neighbour], np.diff(cell_offsets)[neighbour]

    # Expand each (customer, cell) pair into its run of candidate terminals.
    owner = np.repeat(owner, length)
    run_start = np.repeat(begin - (np.cumsum(length) - length), length)
    candidate = by_cell[run_start + np.arange(len(run_start))]
    distance = np.hypot(
        terminals.x[candidate] - customers.x[owner], terminals.y[candidate] - customers.y[owner]
    )
    keep = distance < radius
    owner, candidate = owner[keep], candidate[keep]
    order = np.lexsort((candidate, owner))
    offsets = np.zeros(n_customers + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_customers), out=offsets[1:])
    return AvailableTerminals(offsets=offsets, terminals=candidate[order])
