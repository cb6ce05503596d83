"""Tuning parameters of the timing core, one frozen object shared by every step.

Owns the knobs and their defaults (each with its unit and why); it must not hold arrays or
state.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Params:
    # --- detector cleaning (robustness) ---
    # A count rate above this (plus one vehicle per interval, for short intervals) is a
    # faulty loop (chatter), not traffic: one lane cannot carry more than ~1 vehicle per
    # second.
    max_rate_veh_h: float = 3600.0
    # Queues beyond this are clipped (a camera zone or loop chain cannot see further).
    max_queue_veh: float = 200.0
    # A detector's last good reading older than this is not trusted; its movement's
    # neighbours are.
    history_max_age_s: float = 900.0
    # Last resort for a detector with no usable reading, history or neighbour.
    default_rate_veh_h: float = 300.0
    default_queue_veh: float = 0.0

    # --- plan_step: SCATS-like cycle/split optimiser ---
    # Weight of this cycle's flow in the smoothed movement flow (EWMA; SCATS smooths too).
    flow_smoothing: float = 0.5
    # Share of a standing queue that the next cycle should clear on top of the arrival flow.
    queue_weight: float = 0.5
    # Target degree of saturation of the critical movements (SCATS practice ~0.9).
    ds_target: float = 0.9
    # Cap on the sum of critical flow ratios in Webster's formula (it diverges at 1).
    max_flow_ratio: float = 0.95
    # Largest change of cycle length from one plan to the next (s).
    max_cycle_change_s: float = 10.0
    # Reported degrees of saturation are capped here (a movement with no green at all).
    ds_cap: float = 10.0

    # --- pressure_step: max-pressure phase policy ---
    # Per-lane arrivals seen by stop-line counts add to the queue for this long (s), so a
    # phase that is still discharging keeps its pressure.
    arrival_horizon_s: float = 3.0
    # Stop-line occupancy (0..1) of a queue discharging at saturation; below it, arrivals
    # count in proportion (0 = always in full).
    discharge_occupancy: float = 0.0
    # Green the chosen phase is expected to get; switching loses yellow + all-red of it.
    decision_horizon_s: float = 20.0
    # Extra pressure (pcu/s-weighted) that a switch must win by.
    switch_cost: float = 0.0
    # A waiting phase's pressure grows by 100 % per this many seconds without green.
    wait_scale_s: float = 60.0
    # Variable initial green: a phase chosen with a standing queue keeps green at least this
    # share of the time that queue needs to discharge at saturation flow (0 = off).
    initial_green_scale: float = 0.0
    # At max green: stay green when no other phase has demand (True) or always switch.
    rest_in_green: bool = False
