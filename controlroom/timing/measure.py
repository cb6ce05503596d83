"""Detector measurements in, cleaned per-detector and per-movement values out.

Owns the only input the core takes from the street (`Measurements`: what loops and camera
zones report) and the fallback chain for bad readings. It must not see vehicle ids,
positions, or anything a detector does not report.

Fallback for a reading that is missing, flagged invalid, NaN, inf, negative or absurd:
the detector's own last good reading (if recent enough)
→ the mean of the healthy detectors of the same movement → a default. Nothing non-finite
leaves this module. The common case (a healthy detector) costs a few whole-array passes; the
fallback work is done only at the positions that need it.
"""

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from controlroom.timing.params import Params
from controlroom.timing.state import State
from controlroom.timing.structure import Structure


@dataclass(frozen=True, eq=False)
class Measurements:
    """What the detectors reported over the last interval, [I,D] like the structure."""

    count: np.ndarray  # vehicles counted in the interval
    occupancy: np.ndarray  # share of the interval occupied, 0..1 (carried, not yet used)
    queue_veh: np.ndarray  # vehicles standing in the detection zone at the end
    valid: np.ndarray  # bool: the detector says its reading is good
    interval_s: float


class DetectorSource(IntEnum):
    """Where a cleaned detector value came from."""

    MEASURED = 0
    HISTORY = 1
    NEIGHBOURS = 2
    DEFAULT = 3
    ABSENT = 4  # padding slot, no detector


@dataclass(frozen=True, eq=False)
class CleanQuantity:
    value: np.ndarray  # [I,D] finite, >= 0, 0 at padding
    flat: np.ndarray  # [I*D + 1]: value flattened with the zero slot (a view, no copy)
    source: np.ndarray  # [I,D] int8 DetectorSource
    hist: np.ndarray  # [I,D] next history
    good_s: np.ndarray  # [I,D] clock of the last good reading


@dataclass(frozen=True, eq=False)
class CleanDetectors:
    clock_s: float
    rate_veh_h: CleanQuantity  # count rate
    queue_veh: CleanQuantity


def _zero_slot_buffer(n: int, d: int) -> np.ndarray:
    """A flat [n*d + 1] buffer ending in the zero slot; compute into its [n,d] view."""
    flat = np.empty(n * d + 1)
    flat[-1] = 0.0
    return flat


def _clean(structure: Structure, flat: np.ndarray, ok: np.ndarray, suspects: np.ndarray,
           hist: np.ndarray, good_before_s: np.ndarray, clock_s: float, default: float,
           params: Params) -> CleanQuantity:
    hot = structure.hot
    # Healthy → the reading; otherwise the detector's last good reading (replaced below where
    # that is too old). Only the unhealthy slots are touched; padding slots are never ok and
    # their history stays 0. ``flat`` is a zero-slot buffer of the caller's holding the
    # readings, cleaned in place.
    value = out = flat[:-1].reshape(ok.shape)
    unhealthy = suspects[~np.take(ok, suspects)]  # suspects: every slot not ok, and more
    np.put(out, unhealthy, np.take(hist, unhealthy))  # np.put/take: twice .flat's speed
    is_detector = np.take(structure.detector_valid, unhealthy)
    source = hot.source_template.copy()
    np.put(source, unhealthy[is_detector], DetectorSource.HISTORY)
    last_good_s = np.take(good_before_s, unhealthy)
    good_s = np.full(ok.shape, clock_s)  # a fill and a sparse put beat np.where(ok, ...)
    np.put(good_s, unhealthy, last_good_s)
    stale = unhealthy[is_detector & ((clock_s - last_good_s) > params.history_max_age_s)]
    if stale.size:
        # Mean of the healthy detectors of the same movement, gathered for these only.
        peers = hot.movement_detector_index[hot.det_bin[stale]]  # [S,J] flat slots, -1 none
        have = peers >= 0
        slots = np.where(have, peers, 0)
        peer_ok = ok.ravel()[slots] & have
        n_ok = peer_ok.sum(axis=1)
        total = np.where(peer_ok, value.ravel()[slots], 0.0).sum(axis=1)
        has = n_ok > 0
        np.put(out, stale, np.where(has, total / np.maximum(n_ok, 1), default))
        np.put(source, stale, np.where(has, DetectorSource.NEIGHBOURS, DetectorSource.DEFAULT))
    # History is the last good reading (the flow is smoothed later, per movement); where a
    # fallback stood in, it is the fallback, whose age keeps growing.
    return CleanQuantity(out, flat, source, out, good_s)


def clean_detectors(structure: Structure, measurements: Measurements, state: State,
                    params: Params) -> CleanDetectors:
    """Clean readings, or ValueError when the arrays do not have the structure's [I,D] shape
    (a wrong shape would otherwise broadcast silently)."""
    n, _, _, d = structure.shape
    for name in ("count", "queue_veh", "valid"):
        shape = np.shape(getattr(measurements, name))
        if shape != (n, d):
            raise ValueError(f"measurements.{name} has shape {shape}, the structure needs {(n, d)}")
    interval_s = float(measurements.interval_s)
    interval_ok = bool(np.isfinite(interval_s) and interval_s > 0)
    clock_s = state.clock_s + (interval_s if interval_ok else 0.0)
    valid = np.asarray(measurements.valid, bool) & structure.detector_valid
    count = np.asarray(measurements.count, np.float64)
    queue = np.asarray(measurements.queue_veh, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        rate_flat = _zero_slot_buffer(n, d)  # cleaned in place, summed with its zero slot
        rate = rate_flat[:-1].reshape(n, d)
        if interval_ok:
            np.multiply(count, 3600.0 / interval_s, out=rate)
        else:
            rate.fill(np.nan)
        # NaN fails every comparison, so these masks also reject NaN; inf fails the bound.
        ok_rate = rate >= 0.0
        # Chatter: more vehicles than the lane can carry in the interval, with one vehicle of
        # slack, so that a short interval holding two close vehicles (or a poll that came
        # late) is not taken for a fault.
        ok_rate &= count <= params.max_rate_veh_h * interval_s / 3600.0 + 1.0
        ok_rate &= valid
        ok_queue = queue >= 0.0
        ok_queue &= queue < np.inf
        ok_queue &= valid
        queue_flat = _zero_slot_buffer(n, d)
        queue = np.minimum(queue, params.max_queue_veh, out=queue_flat[:-1].reshape(n, d))
    # One scan for the slots where either reading is not good (the rare case), shared.
    suspects = np.flatnonzero(~(ok_rate & ok_queue))
    return CleanDetectors(
        clock_s,
        _clean(structure, rate_flat, ok_rate, suspects, state.hist_rate_veh_h, state.rate_good_s,
               clock_s, params.default_rate_veh_h, params),
        _clean(structure, queue_flat, ok_queue, suspects, state.hist_queue_veh, state.queue_good_s,
               clock_s, params.default_queue_veh, params))


def with_zero_slot(per_detector: np.ndarray) -> np.ndarray:
    """[I,D] values as a flat [I*D + 1] array ending in 0, the slot that gather tables use
    for "no detector"."""
    return np.append(per_detector.ravel(), 0.0)


def movement_totals(structure: Structure, flat_values: np.ndarray, gather: np.ndarray
                    ) -> np.ndarray:
    """Sum per-detector values over the detectors of each movement → [I,M].

    ``flat_values``: [I*D + 1], the [I,D] values flattened with a 0 appended (see
    `with_zero_slot`); ``gather``: a structure table such as ``hot.count_gather``. Adds in
    detector slot order, so the sums are those of a plain loop over the detectors.
    """
    n, _, m, _ = structure.shape
    total = np.take(flat_values, gather[0])
    for row in gather[1:]:  # J rows: the most detectors one movement has, fixed per structure
        total += np.take(flat_values, row)
    return total.reshape(n, m)
