"""Structure builder and PKJI tables."""

import numpy as np
import pytest

from controlroom.timing import (
    DetectorSpec,
    IntersectionSpec,
    MovementSpec,
    PhaseSpec,
    build_structure,
    pkji,
)
from controlroom.timing.pkji import VehicleClass


def test_pkji_saturation_flow_and_pcu():
    assert pkji.sat_flow_pcu_h(3.5) == 2100.0  # 600 × We
    mix = {VehicleClass.MOTORCYCLE: 0.6, VehicleClass.LIGHT: 0.35, VehicleClass.HEAVY: 0.05}
    assert pkji.pcu_per_vehicle(mix, protected=True) == pytest.approx(0.6 * 0.15 + 0.35 + 0.065)
    assert pkji.pcu_per_vehicle(mix, protected=False) == pytest.approx(0.6 * 0.40 + 0.35 + 0.065)
    assert pkji.cycle_band_s(2) == (40.0, 80.0)
    assert pkji.cycle_band_s(3) == (50.0, 100.0)
    assert pkji.cycle_band_s(4) == (80.0, 130.0)
    assert pkji.YELLOW_S == 3.0


def test_builder_pads_and_derives():
    a = IntersectionSpec(
        phases=[PhaseSpec([0], min_green_s=8, ped_min_s=12), PhaseSpec([1, 2])],
        movements=[MovementSpec(5.0, protected=False, vehicle_mix={"MC": 1.0}),
                   MovementSpec(3.0), MovementSpec(4.0, sat_flow_pcu_h=1500.0)],
        detectors=[DetectorSpec(0), DetectorSpec(1, queues=False), DetectorSpec(2)])
    b = IntersectionSpec(phases=[PhaseSpec([0]), PhaseSpec([1]), PhaseSpec([0, 1])],
                         movements=[MovementSpec(3.0), MovementSpec(3.0)],
                         detectors=[DetectorSpec(1)], cycle_min_s=45, cycle_max_s=90)
    s = build_structure([a, b], max_detectors=4)
    assert s.shape == (2, 3, 3, 4)
    assert s.n_phases.tolist() == [2, 3]
    assert s.phase_valid.tolist() == [[True, True, False], [True, True, True]]
    assert s.sat_flow_pcu_h.tolist() == [[3000.0, 1800.0, 1500.0], [1800.0, 1800.0, 0.0]]
    assert s.pcu_per_veh[0, 0] == 0.40  # motorcycles on an opposed approach
    assert s.min_green_ds[0].tolist() == [120, 70, 0]  # pedestrian minimum wins
    assert s.yellow_ds[0].tolist() == [30, 30, 0]
    assert s.lost_ds.tolist() == [100, 150]
    assert s.cycle_min_ds.tolist() == [400, 450] and s.cycle_max_ds.tolist() == [800, 900]
    assert s.n_serving_phases[1].tolist() == [2, 2, 0]
    assert s.detector_movement.tolist() == [[0, 1, 2, -1], [1, -1, -1, -1]]
    assert s.n_queue_detectors[0].tolist() == [1, 0, 1]
    assert not s.serves.flags.writeable


@pytest.mark.parametrize("bad, message", [
    (IntersectionSpec([], [MovementSpec(3.0)], []), "no phases"),
    (IntersectionSpec([PhaseSpec([1])], [MovementSpec(3.0)], []), "movement 1 does not exist"),
    (IntersectionSpec([PhaseSpec([0])], [MovementSpec(0.0)], []), "width_m"),
    (IntersectionSpec([PhaseSpec([0])], [MovementSpec(3.0), MovementSpec(3.0)], []),
     "no phase serves it"),
    (IntersectionSpec([PhaseSpec([0], min_green_s=30, max_green_s=20)], [MovementSpec(3.0)], []),
     "max green"),
    (IntersectionSpec([PhaseSpec([0])], [MovementSpec(3.0)], [DetectorSpec(3)]),
     "detector 0"),
    (IntersectionSpec([PhaseSpec([0], min_green_s=50), PhaseSpec([0], min_green_s=50)],
                      [MovementSpec(3.0)], []), "exceed the maximum cycle"),
    (IntersectionSpec([PhaseSpec([0], max_green_s=10), PhaseSpec([0], max_green_s=10)],
                      [MovementSpec(3.0)], []), "cannot fill the minimum cycle"),
    (IntersectionSpec([PhaseSpec([0], yellow_s=float("nan"))], [MovementSpec(3.0)], []),
     "bad times"),
    (IntersectionSpec([PhaseSpec([0])], [MovementSpec(3.0, downstream=[(5, 0)])], []),
     "downstream"),
])
def test_builder_rejects_bad_specs_naming_the_place(bad, message):
    with pytest.raises(ValueError, match=message):
        build_structure([bad])


def test_structure_is_read_only():
    s = build_structure([IntersectionSpec([PhaseSpec([0])], [MovementSpec(3.0)],
                                          [DetectorSpec(0)])])
    with pytest.raises(ValueError):
        s.min_green_ds[0, 0] = 1
    assert np.all(s.hot.det_bin >= 0)
