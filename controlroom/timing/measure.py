"""Detector measurements in, cleaned per-detector and per-movement values out.

Owns the only input the core takes from the street (`Measurements`: what loops and camera
zones report) and the fallback chain for bad readings. It must not see vehicle ids,
positions, or anything a detector does not report.

Fallback for a reading that is missing, flagged invalid, NaN, inf, negative or absurd:
the detector's own recent history → the mean of the healthy detectors of the same movement →
a default. Nothing non-finite leaves this module.
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
    occupancy: np.ndarray  # share of the interval occupied, 0..1
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
class CleanDetectors:
    rate_veh_h: np.ndarray  # [I,D] count rate, finite, >= 0
    queue_veh: np.ndarray  # [I,D] finite, 0..max_queue_veh
    rate_source: np.ndarray  # [I,D] DetectorSource
    queue_source: np.ndarray  # [I,D] DetectorSource
    # Updated detector history, to go into the next State.
    hist_rate_veh_h: np.ndarray
    hist_queue_veh: np.ndarray
    rate_age_s: np.ndarray
    queue_age_s: np.ndarray


def _fallback(structure: Structure, value: np.ndarray, ok: np.ndarray, hist: np.ndarray,
              age_s: np.ndarray, default: float, params: Params
              ) -> tuple[np.ndarray, np.ndarray]:
    n, _, m, _ = structure.shape
    exists = structure.detector_valid
    hist_ok = exists & (age_s <= params.history_max_age_s)
    # Mean of the healthy detectors of the same movement (np.bincount on flat movement bins;
    # the last bin collects padding slots and is dropped).
    okf = ok.ravel()
    sums = np.bincount(structure.det_bin, weights=np.where(okf, value.ravel(), 0.0),
                       minlength=n * m + 1)
    cnts = np.bincount(structure.det_bin, weights=okf, minlength=n * m + 1)
    cnts[-1] = 0.0
    mean = sums / np.maximum(cnts, 1.0)
    neighbour = mean[structure.det_bin].reshape(value.shape)
    has_neighbour = (cnts[structure.det_bin] > 0).reshape(value.shape)
    out = np.where(ok, value, np.where(hist_ok, hist, np.where(has_neighbour, neighbour, default)))
    source = np.where(ok, DetectorSource.MEASURED, np.where(
        hist_ok, DetectorSource.HISTORY, np.where(has_neighbour, DetectorSource.NEIGHBOURS,
                                                  DetectorSource.DEFAULT)))
    source = np.where(exists, source, DetectorSource.ABSENT).astype(np.int8)
    return np.where(exists, out, 0.0), source


def clean_detectors(structure: Structure, measurements: Measurements, state: State,
                    params: Params) -> CleanDetectors:
    exists = structure.detector_valid
    interval_s = float(measurements.interval_s)
    interval_ok = bool(np.isfinite(interval_s) and interval_s > 0)
    valid = np.asarray(measurements.valid, bool) & exists
    count = np.asarray(measurements.count, np.float64)
    queue = np.asarray(measurements.queue_veh, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        rate = count * (3600.0 / interval_s) if interval_ok else np.full(count.shape, np.nan)
        # NaN fails every comparison, so these masks also reject NaN; inf fails the upper one.
        ok_rate = valid & (rate >= 0.0) & (rate <= params.max_rate_veh_h)
        ok_queue = valid & (queue >= 0.0) & (queue < np.inf)
    queue = np.minimum(queue, params.max_queue_veh)

    rate_out, rate_src = _fallback(structure, rate, ok_rate, state.hist_rate_veh_h,
                                   state.rate_age_s, params.default_rate_veh_h, params)
    queue_out, queue_src = _fallback(structure, queue, ok_queue, state.hist_queue_veh,
                                     state.queue_age_s, params.default_queue_veh, params)

    step_s = interval_s if interval_ok else 0.0
    w = params.detector_history_weight
    # A detector seen for the first time (age beyond the limit) takes its reading as history.
    fresh_rate = state.rate_age_s > params.history_max_age_s
    fresh_queue = state.queue_age_s > params.history_max_age_s
    hist_rate = np.where(ok_rate, np.where(fresh_rate, rate, w * rate + (1 - w) * state.hist_rate_veh_h),
                         state.hist_rate_veh_h)
    hist_queue = np.where(ok_queue,
                          np.where(fresh_queue, queue, w * queue + (1 - w) * state.hist_queue_veh),
                          state.hist_queue_veh)
    # Ages saturate so that they stay finite.
    cap = 10.0 * params.history_max_age_s + 1.0
    rate_age = np.where(ok_rate, 0.0, np.minimum(state.rate_age_s + step_s, cap))
    queue_age = np.where(ok_queue, 0.0, np.minimum(state.queue_age_s + step_s, cap))
    return CleanDetectors(rate_out, queue_out, rate_src, queue_src, hist_rate, hist_queue,
                          rate_age, queue_age)


def movement_totals(structure: Structure, per_detector: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Sum a per-detector [I,D] value over the detectors of each movement → [I,M]."""
    n, _, m, _ = structure.shape
    return np.bincount(bins, weights=per_detector.ravel(), minlength=n * m + 1)[:-1].reshape(n, m)
