"""The `#N` suffix: N rows drawn from a dataset, reproducibly from data_seed."""

from __future__ import annotations

import numpy as np


def sample_indices(size: int, n: int, rng: np.random.Generator) -> list[int]:
    """Row indices for `#n` over `size` rows, as the reference defines it.

    n <= size: n distinct rows. n > size: every row n // size times, then n % size distinct rows more.
    """
    if size == 0:
        return []
    repeats, rest = divmod(n, size)
    whole = np.tile(np.arange(size), repeats)
    extra = rng.permutation(size)[:rest]
    return np.concatenate([whole, extra]).astype(int).tolist()
