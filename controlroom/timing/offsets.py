"""Corridor coordination: common cycles and offsets along upstream links, for all at once.

Owns the chain resolution by pointer jumping (a fixed number of gathers per structure, no
loop over intersections). It must not choose cycle lengths itself.
"""

import numpy as np

from controlroom.timing.structure import Structure


def resolve_corridors(structure: Structure) -> tuple[np.ndarray, np.ndarray]:
    """Root intersection [I] of each corridor and travel time from it, in ds [I].

    Pointer jumping: after k rounds each node points 2^k links upstream (or at its root) and
    carries the travel time summed over the links it skipped; roots point at themselves
    with 0 travel, so further rounds add nothing.
    """
    n = structure.upstream.shape[0]
    has_up = structure.upstream >= 0
    ptr = np.where(has_up, structure.upstream, np.arange(n))
    acc_ds = np.where(has_up, structure.travel_time_ds, 0)
    for _ in range(structure.chain_steps):  # ceil(log2(longest chain)) rounds, not I
        acc_ds = acc_ds + acc_ds[ptr]
        ptr = ptr[ptr]
    return ptr, acc_ds


def common_cycle_ds(root: np.ndarray, cycle_ds: np.ndarray, lo_ds: np.ndarray,
                    hi_ds: np.ndarray) -> np.ndarray:
    """One cycle per corridor: the longest any member wants, within every member's maximum.

    A member whose own feasible range [lo, hi] excludes the corridor cycle keeps the
    nearest feasible cycle: minimum greens and maximum greens are safety, coordination is not.
    """
    n = root.shape[0]
    want = np.zeros(n, np.int64)
    np.maximum.at(want, root, cycle_ds)
    cap = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(cap, root, hi_ds)
    common = np.minimum(want[root], cap[root])
    return np.clip(common, lo_ds, hi_ds)


def offsets_ds(travel_from_root_ds: np.ndarray, cycle_ds: np.ndarray) -> np.ndarray:
    """offset_i = (offset_upstream + travel_i) mod cycle, with the root's offset 0."""
    return np.mod(travel_from_root_ds, np.maximum(cycle_ds, 1))
