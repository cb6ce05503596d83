"""Static intersection structure for the timing core: padded arrays for I intersections.

Owns the array layout (I intersections × P phases × M movements × D detectors) and the one
builder that turns plain per-intersection specs into it, validating as it goes. It must not
read measurements or hold state; callers never build these arrays by hand.

Times are integer deciseconds (``_ds``) so that a plan's greens and lost times add up to its
cycle exactly.
"""

from dataclasses import dataclass, field
from typing import Mapping, Sequence  # noqa: UP035 - the core imports only numpy, dataclasses, enum, typing

import numpy as np

from controlroom.timing import pkji

# Downstream detectors remembered per movement (lanes of the receiving link).
MAX_DOWNSTREAM = 4


@dataclass(frozen=True)
class PhaseSpec:
    """One signal phase: the movements it gives green, and its timing constraints."""

    movements: Sequence[int]
    min_green_s: float = 7.0
    max_green_s: float = 60.0
    yellow_s: float = pkji.YELLOW_S
    all_red_s: float = 2.0
    # Minimum green for the pedestrians crossing during this phase (walk + clearance).
    ped_min_s: float = 0.0


@dataclass(frozen=True)
class MovementSpec:
    """A movement (lane group of one approach) and what it takes to saturate it."""

    # PKJI effective approach width We (m) of the lanes of this movement.
    width_m: float
    # Protected (terlindung) or opposed (terlawan) approach, for the motorcycle pcu factor.
    protected: bool = True
    # Shares of counted vehicles by class; default: all light vehicles (1 pcu each).
    vehicle_mix: Mapping[pkji.VehicleClass, float] = field(
        default_factory=lambda: dict(pkji.DEFAULT_VEHICLE_MIX))
    # A measured saturation flow replaces the PKJI base value when given.
    sat_flow_pcu_h: float | None = None
    # Detectors whose queue lies downstream of this movement, as (intersection, detector)
    # indices into the same measurement arrays; empty when unknown.
    downstream: Sequence[tuple[int, int]] = ()


@dataclass(frozen=True)
class DetectorSpec:
    """A detector (stop-line loop or camera zone) on one movement."""

    movement: int
    # Its count measures the movement's flow (one per lane, at or near the stop line).
    counts: bool = True
    # Its queue is part of the movement's queue.
    queues: bool = True


@dataclass(frozen=True)
class IntersectionSpec:
    phases: Sequence[PhaseSpec]
    movements: Sequence[MovementSpec]
    detectors: Sequence[DetectorSpec]
    # Cycle bounds; default: the PKJI band for the number of phases.
    cycle_min_s: float | None = None
    cycle_max_s: float | None = None
    # Coordination: the intersection upstream on a corridor (index) or -1, and the travel
    # time from it (s). Intersections joined this way run a common cycle.
    upstream: int = -1
    travel_time_s: float = 0.0


@dataclass(frozen=True, eq=False)
class HotPath:
    """Arrays derived once from the structure so a step needs no reshaping: flat bins for
    np.bincount, gather tables instead of [I,P,M] masks, phase-major ([P,I]) copies so that
    sums over phases add P contiguous rows."""

    # i*M + m per detector slot (flattened [I,D]); I*M for padding or the role switched off.
    det_bin: np.ndarray
    count_bin: np.ndarray
    queue_bin: np.ndarray
    # [J, I*M]: the j-th counting (queueing) detector of each movement as a flat slot i*D + d,
    # in slot order; I*D (a zero slot appended to the values) where a movement has fewer. Sums
    # per movement are J gathers and adds: twice np.bincount's speed.
    count_gather: np.ndarray
    queue_gather: np.ndarray
    uncounted_movements: np.ndarray  # flat [I,M] indices of valid movements with no counts
    inv_sat_share: np.ndarray  # [I,M] 1 / (saturation flow × phases serving it); 0 padding
    # [K,P,I]: flat [I,M] index (i*M + m) of the k-th movement of phase p; I*M = none.
    phase_movement_index: np.ndarray
    # Phases serving each movement, as flat phase-major [P,I] indices (p*I + i): the first
    # one per movement [I,M] (P*I for padding), then the few other (movement, phase) pairs
    # as flat [I,M] movement indices and phase indices.
    movement_first_phase: np.ndarray
    extra_movement: np.ndarray
    extra_phase: np.ndarray
    phase_valid_pi: np.ndarray  # [P,I] bool
    min_green_pi: np.ndarray  # [P,I] int ds, 0 padding
    max_green_pi: np.ndarray  # [P,I] int ds, 0 padding
    # [I*M+1, J]: flat detector slots (i*D + d) of each movement's detectors; -1 none.
    movement_detector_index: np.ndarray
    source_template: np.ndarray  # [I,D] int8: MEASURED (0) for a detector, ABSENT (4) padding


@dataclass(frozen=True, eq=False)
class Structure:
    """Padded arrays describing I intersections; padding is False / 0 / -1."""

    n_phases: np.ndarray  # [I] int
    phase_valid: np.ndarray  # [I,P] bool
    serves: np.ndarray  # [I,P,M] bool: phase p gives movement m green
    movement_valid: np.ndarray  # [I,M] bool
    n_serving_phases: np.ndarray  # [I,M] int, phases that serve the movement
    sat_flow_pcu_h: np.ndarray  # [I,M] float
    pcu_per_veh: np.ndarray  # [I,M] float
    detector_valid: np.ndarray  # [I,D] bool: a detector exists in this slot
    detector_movement: np.ndarray  # [I,D] int, -1 padding
    detector_counts: np.ndarray  # [I,D] bool
    detector_queues: np.ndarray  # [I,D] bool
    downstream_detector: np.ndarray  # [I,M,K] int flat index i*D+d, -1 none
    min_green_ds: np.ndarray  # [I,P] int: max(min green, pedestrian minimum); 0 padding
    ped_min_ds: np.ndarray  # [I,P] int
    max_green_ds: np.ndarray  # [I,P] int
    yellow_ds: np.ndarray  # [I,P] int
    all_red_ds: np.ndarray  # [I,P] int
    lost_ds: np.ndarray  # [I] int: Σ (yellow + all-red) over phases
    cycle_min_ds: np.ndarray  # [I] int
    cycle_max_ds: np.ndarray  # [I] int
    upstream: np.ndarray  # [I] int, -1 none
    travel_time_ds: np.ndarray  # [I] int
    # Pointer-jumping steps that resolve the longest corridor chain (fixed per structure).
    chain_steps: int
    hot: HotPath
    n_count_detectors: np.ndarray  # [I,M] int
    n_queue_detectors: np.ndarray  # [I,M] int
    n_detectors: np.ndarray  # [I,M] int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(I, P, M, D)."""
        i, p, m = self.serves.shape
        return i, p, m, self.detector_valid.shape[1]


def _ds(seconds: float) -> int:
    return int(round(float(seconds) * 10.0))


def _check(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise ValueError(f"{where}: {what}")


def build_structure(intersections: Sequence[IntersectionSpec], *, max_phases: int | None = None,
                    max_movements: int | None = None,
                    max_detectors: int | None = None) -> Structure:
    """Validate per-intersection specs and pad them into a :class:`Structure`.

    Raises ValueError naming the intersection (by index) and the bad item.
    """
    n = len(intersections)
    _check(n > 0, "structure", "no intersections")
    p_max = max(len(x.phases) for x in intersections)
    m_max = max(len(x.movements) for x in intersections)
    d_max = max(max(len(x.detectors) for x in intersections), 1)
    P = max_phases if max_phases is not None else p_max
    M = max_movements if max_movements is not None else m_max
    D = max_detectors if max_detectors is not None else d_max
    _check(P >= p_max and M >= m_max and D >= d_max, "structure",
           f"padding ({P},{M},{D}) smaller than the largest intersection ({p_max},{m_max},{d_max})")

    n_phases = np.zeros(n, np.int64)
    phase_valid = np.zeros((n, P), bool)
    serves = np.zeros((n, P, M), bool)
    movement_valid = np.zeros((n, M), bool)
    sat = np.zeros((n, M))
    pcu = np.zeros((n, M))
    det_valid = np.zeros((n, D), bool)
    det_mov = np.full((n, D), -1, np.int64)
    det_counts = np.zeros((n, D), bool)
    det_queues = np.zeros((n, D), bool)
    down = np.full((n, M, MAX_DOWNSTREAM), -1, np.int64)
    min_g = np.zeros((n, P), np.int64)
    ped = np.zeros((n, P), np.int64)
    max_g = np.zeros((n, P), np.int64)
    yellow = np.zeros((n, P), np.int64)
    all_red = np.zeros((n, P), np.int64)
    cyc_lo = np.zeros(n, np.int64)
    cyc_hi = np.zeros(n, np.int64)
    upstream = np.full(n, -1, np.int64)
    travel = np.zeros(n, np.int64)
    n_det_of = [len(x.detectors) for x in intersections]

    for i, x in enumerate(intersections):
        where = f"intersection {i}"
        _check(len(x.phases) >= 1, where, "no phases")
        _check(len(x.movements) >= 1, where, "no movements")
        n_phases[i] = len(x.phases)
        for m, mv in enumerate(x.movements):
            w = f"{where} movement {m}"
            _check(np.isfinite(mv.width_m) and mv.width_m > 0, w, f"width_m {mv.width_m} not > 0")
            s = pkji.sat_flow_pcu_h(mv.width_m) if mv.sat_flow_pcu_h is None else mv.sat_flow_pcu_h
            _check(np.isfinite(s) and s > 0, w, f"saturation flow {s} not > 0")
            sat[i, m] = s
            pcu[i, m] = pkji.pcu_per_vehicle(mv.vehicle_mix, mv.protected)
            movement_valid[i, m] = True
            _check(len(mv.downstream) <= MAX_DOWNSTREAM, w,
                   f"more than {MAX_DOWNSTREAM} downstream detectors")
            for k, (j, d) in enumerate(mv.downstream):
                _check(0 <= j < n and 0 <= d < n_det_of[j], w,
                       f"downstream detector ({j}, {d}) does not exist")
                down[i, m, k] = j * D + d
        for p, ph in enumerate(x.phases):
            w = f"{where} phase {p}"
            _check(len(ph.movements) >= 1, w, "serves no movement")
            for m in ph.movements:
                _check(0 <= m < len(x.movements), w, f"movement {m} does not exist")
                serves[i, p, m] = True
            times = (ph.min_green_s, ph.max_green_s, ph.yellow_s, ph.all_red_s, ph.ped_min_s)
            _check(all(np.isfinite(t) and t >= 0 for t in times), w, f"bad times {times}")
            phase_valid[i, p] = True
            ped[i, p] = _ds(ph.ped_min_s)
            min_g[i, p] = max(_ds(ph.min_green_s), ped[i, p], 1)
            max_g[i, p] = _ds(ph.max_green_s)
            _check(max_g[i, p] >= min_g[i, p], w,
                   f"max green {ph.max_green_s} s below min/pedestrian green")
            yellow[i, p] = _ds(ph.yellow_s)
            all_red[i, p] = _ds(ph.all_red_s)
        for m in range(len(x.movements)):
            _check(serves[i, :, m].any(), f"{where} movement {m}", "no phase serves it")
        for d, det in enumerate(x.detectors):
            _check(0 <= det.movement < len(x.movements), f"{where} detector {d}",
                   f"movement {det.movement} does not exist")
            det_valid[i, d] = True
            det_mov[i, d] = det.movement
            det_counts[i, d] = det.counts
            det_queues[i, d] = det.queues
        band = pkji.cycle_band_s(len(x.phases))
        lo = band[0] if x.cycle_min_s is None else x.cycle_min_s
        hi = band[1] if x.cycle_max_s is None else x.cycle_max_s
        cyc_lo[i], cyc_hi[i] = _ds(lo), _ds(hi)
        _check(0 < cyc_lo[i] <= cyc_hi[i], where, f"cycle bounds {lo}..{hi} s")
        lost = int((yellow[i] + all_red[i]).sum())
        _check(int(min_g[i].sum()) + lost <= cyc_hi[i], where,
               "minimum greens + lost time exceed the maximum cycle")
        _check(int(max_g[i].sum()) + lost >= cyc_lo[i], where,
               "maximum greens + lost time cannot fill the minimum cycle")
        _check(x.upstream == -1 or (0 <= x.upstream < n and x.upstream != i), where,
               f"upstream {x.upstream} is not another intersection")
        _check(np.isfinite(x.travel_time_s) and x.travel_time_s >= 0, where,
               f"travel time {x.travel_time_s}")
        upstream[i] = x.upstream
        travel[i] = _ds(x.travel_time_s)

    # Corridors must be chains/trees: walking upstream never returns to where it started.
    longest = 1
    for i in range(n):
        seen, j = 1, i
        while upstream[j] != -1:
            j = int(upstream[j])
            seen += 1
            _check(seen <= n, f"intersection {i}", "upstream links form a loop")
        longest = max(longest, seen)
    chain_steps = int(np.ceil(np.log2(longest))) if longest > 1 else 0

    det_bin = np.where(det_valid, np.arange(n)[:, None] * M + det_mov, n * M).ravel()
    count_bin = np.where(det_counts & det_valid, det_bin.reshape(n, D), n * M).ravel()
    queue_bin = np.where(det_queues & det_valid, det_bin.reshape(n, D), n * M).ravel()

    def per_movement(bins: np.ndarray) -> np.ndarray:
        return np.bincount(bins, minlength=n * M + 1)[:-1].reshape(n, M)

    n_serving = serves.sum(axis=1)
    k_max = max(int(serves.sum(axis=2).max()), 1)
    pm_index = np.full((k_max, P, n), n * M, np.int64)
    first_phase = np.full((n, M), P * n, np.int64)
    extra_mov: list[int] = []
    extra_ph: list[int] = []
    for i in range(n):
        for p in range(P):
            ms = np.flatnonzero(serves[i, p])
            pm_index[:len(ms), p, i] = i * M + ms
        for m in range(M):
            ps = np.flatnonzero(serves[i, :, m])
            if len(ps):
                first_phase[i, m] = ps[0] * n + i
            extra_mov.extend([i * M + m] * (len(ps) - 1))
            extra_ph.extend((ps[1:] * n + i).tolist())
    def detectors_of_movements(bins: np.ndarray, none: int) -> np.ndarray:
        """[I*M+1, J]: the flat slots binned to each movement, in slot order; ``none`` pads."""
        per_mov = np.bincount(bins, minlength=n * M + 1)
        per_mov[-1] = 0
        table = np.full((n * M + 1, max(int(per_mov.max()), 1)), none, np.int64)
        fill = np.zeros(n * M + 1, np.int64)
        for slot in np.flatnonzero(bins < n * M):
            b = bins[slot]
            table[b, fill[b]] = slot
            fill[b] += 1
        return table

    md_index = detectors_of_movements(det_bin, -1)
    hot = HotPath(
        det_bin=det_bin, count_bin=count_bin, queue_bin=queue_bin,
        count_gather=np.ascontiguousarray(detectors_of_movements(count_bin, n * D)[:-1].T),
        queue_gather=np.ascontiguousarray(detectors_of_movements(queue_bin, n * D)[:-1].T),
        uncounted_movements=np.flatnonzero(movement_valid & (per_movement(count_bin) == 0)),
        inv_sat_share=np.where(movement_valid, 1.0 / np.where(movement_valid, sat, 1.0)
                               / np.maximum(n_serving, 1), 0.0),
        phase_movement_index=pm_index, movement_first_phase=first_phase,
        extra_movement=np.array(extra_mov, np.int64), extra_phase=np.array(extra_ph, np.int64),
        phase_valid_pi=np.ascontiguousarray(phase_valid.T),
        min_green_pi=np.ascontiguousarray(min_g.T), max_green_pi=np.ascontiguousarray(max_g.T),
        movement_detector_index=md_index,
        source_template=np.where(det_valid, 0, 4).astype(np.int8))
    for a in vars(hot).values():
        a.setflags(write=False)

    arrays = dict(
        n_phases=n_phases, phase_valid=phase_valid, serves=serves, movement_valid=movement_valid,
        n_serving_phases=n_serving, sat_flow_pcu_h=sat, pcu_per_veh=pcu,
        detector_valid=det_valid, detector_movement=det_mov, detector_counts=det_counts,
        detector_queues=det_queues, downstream_detector=down, min_green_ds=min_g,
        ped_min_ds=ped, max_green_ds=max_g, yellow_ds=yellow, all_red_ds=all_red,
        lost_ds=(yellow + all_red).sum(axis=1), cycle_min_ds=cyc_lo, cycle_max_ds=cyc_hi,
        upstream=upstream, travel_time_ds=travel, n_count_detectors=per_movement(count_bin),
        n_queue_detectors=per_movement(queue_bin), n_detectors=per_movement(det_bin))
    for a in arrays.values():
        a.setflags(write=False)
    return Structure(chain_steps=chain_steps, hot=hot, **arrays)
