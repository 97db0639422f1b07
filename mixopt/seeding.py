"""Seed streams: independent seeds for the batches of a study, derived with numpy's SeedSequence.

A study seeded ``s`` draws batch ``i`` with ``batch_seed(s, i)``: the SeedSequence spawned from entropy
``s`` with spawn key ``(i,)``. Unlike ``s + i``, two studies whose seeds differ by a batch size never
replay each other's batches, and neighbouring batches of one study share no structure.
"""

from __future__ import annotations

import numpy as np


def batch_seed(seed: int, index: int) -> int:
    """A 32-bit seed for batch ``index`` (>= 0) of a study or benchmark run seeded ``seed`` (>= 0)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and batch index must be >= 0 (got {seed}, {index})")
    return int(np.random.SeedSequence(entropy=seed, spawn_key=(index,)).generate_state(1)[0])
