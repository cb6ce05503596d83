"""Indonesian capacity rules (PKJI 2023, after MKJI 1997) as data for the signal-timing core.

Owns the numbers only — base saturation flow, passenger-car equivalents, yellow, cycle bands —
and the two small conversions the structure builder needs. No arrays, no I/O.
"""

from enum import StrEnum
from typing import Mapping  # noqa: UP035 - the core imports only numpy, dataclasses, enum, typing

# PKJI 2023 (signalised intersections): base saturation flow S0 = 600 × We pcu/h of green,
# We = effective approach width in metres.
BASE_SAT_FLOW_PCU_H_PER_M = 600.0

# PKJI 2023: yellow (amber) time used for Indonesian signals.
YELLOW_S = 3.0


class VehicleClass(StrEnum):
    MOTORCYCLE = "MC"  # sepeda motor
    LIGHT = "LV"  # kendaraan ringan
    HEAVY = "HV"  # kendaraan berat


# PKJI 2023 passenger-car equivalents (ekr) for signalised approaches, by approach type:
# protected (terlindung) and opposed (terlawan). Only motorcycles differ between the two.
PCU_FACTOR: Mapping[tuple[VehicleClass, bool], float] = {
    # (class, protected): pcu per vehicle
    (VehicleClass.MOTORCYCLE, True): 0.15,
    (VehicleClass.MOTORCYCLE, False): 0.40,
    (VehicleClass.LIGHT, True): 1.0,
    (VehicleClass.LIGHT, False): 1.0,
    (VehicleClass.HEAVY, True): 1.3,
    (VehicleClass.HEAVY, False): 1.3,
}

# Recommended cycle time bands by number of phases (PKJI 2023 / MKJI 1997 table "waktu
# siklus yang layak"): 2 phases 40–80 s, 3 phases 50–100 s, 4 phases 80–130 s. PKJI stops at
# four phases; the 1-phase and 5..8-phase rows are this project's extension (a single phase
# uses the 2-phase band; beyond four phases the band widens by 10 s per phase up to 180 s).
CYCLE_BAND_S: Mapping[int, tuple[float, float]] = {
    1: (40.0, 80.0),
    2: (40.0, 80.0),
    3: (50.0, 100.0),
    4: (80.0, 130.0),
    5: (90.0, 140.0),
    6: (100.0, 150.0),
    7: (110.0, 165.0),
    8: (120.0, 180.0),
}

# When a caller does not know the traffic composition, count each vehicle as one pcu (light
# vehicles only). An Indonesian urban mix is dominated by motorcycles; pass it explicitly.
DEFAULT_VEHICLE_MIX: Mapping[VehicleClass, float] = {VehicleClass.LIGHT: 1.0}


def sat_flow_pcu_h(effective_width_m: float) -> float:
    """PKJI 2023 base saturation flow of an approach: S0 = 600 × We (pcu/h of green)."""
    return BASE_SAT_FLOW_PCU_H_PER_M * effective_width_m


def pcu_per_vehicle(vehicle_mix: Mapping[VehicleClass, float], protected: bool) -> float:
    """Mean pcu of one counted vehicle for a mix given as shares (normalised here)."""
    total = sum(vehicle_mix.values())
    if not total > 0:
        raise ValueError(f"vehicle mix {dict(vehicle_mix)} has no positive share")
    return sum(share * PCU_FACTOR[(VehicleClass(cls), protected)]
               for cls, share in vehicle_mix.items()) / total


def cycle_band_s(n_phases: int) -> tuple[float, float]:
    """The recommended cycle band for an intersection with ``n_phases`` phases."""
    if n_phases not in CYCLE_BAND_S:
        raise ValueError(f"no cycle band for {n_phases} phases (1..{max(CYCLE_BAND_S)})")
    return CYCLE_BAND_S[n_phases]
