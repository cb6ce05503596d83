"""The edge agent's section of the settings tree (`[edge]`); validated once at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.contract import Ident, MqttEndpoint
from firmware_sim.simple_intersection import MIN_SPLIT_S


class SimulatedIntersectionSettings(BaseModel):
    """A stand-in intersection device: a fixed-time signal and detectors with synthetic traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intersection_id: Ident = Field(description="Id of the intersection this device serves.")
    phases: int = Field(4, ge=2, le=16, description="Number of signal phases.")
    detectors: int = Field(16, ge=0, le=128, description="Number of vehicle detectors.")
    cycle_s: float = Field(60.0, ge=20, le=240, description="Fixed-time cycle length.")
    peak_veh_per_h: float = Field(
        900.0, ge=0, le=5000, description="Synthetic flow per detector at the peak of the day."
    )
    seed: int = Field(0, description="Random seed, so a run can be repeated.")
    detector_fault_every_s: float | None = Field(
        None, ge=0.1, le=86_400,
        description="If set, detector 1 turns faulty and healthy again every this many seconds, "
        "so that fault and recovery events flow (demo, tests).",
    )

    @model_validator(mode="after")
    def _cycle_fits_phases(self) -> SimulatedIntersectionSettings:
        # Each phase needs its minimum green plus yellow and all-red within the cycle.
        need_s = self.phases * MIN_SPLIT_S
        if self.cycle_s < need_s:
            raise ValueError(f"cycle_s {self.cycle_s:g} is too short for {self.phases} phases "
                             f"(at least {need_s:g} s: {MIN_SPLIT_S:g} s per phase)")
        return self


class EdgeSettings(BaseModel):
    """One edge agent: who it is, where its broker is, its outbox and its devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    edge_id: Ident = Field("edge-demo-1", description="Unique id of this edge box.")
    mqtt: MqttEndpoint = Field(
        default_factory=lambda: MqttEndpoint(url="mqtt://127.0.0.1:11883"),
        description="Broker this agent publishes to.",
    )
    state_dir: Path | None = Field(
        None,
        description="Folder for the outbox (SQLite, WAL) and the epoch counter; "
        "default: <data_dir>/edge/<edge_id>.",
    )
    poll_interval_s: float = Field(1.0, ge=0.05, le=60, description="How often devices are polled.")
    telemetry_cap: int = Field(
        86_400,
        ge=10,
        le=10_000_000,
        description="Most telemetry messages kept in the outbox while the broker is unreachable; "
        "the oldest are dropped first. Events and acks are never dropped.",
    )
    publish_batch: int = Field(200, ge=1, le=10_000, description="Outbox rows read per drain step.")
    inflight_max: int = Field(100, ge=1, le=10_000, description="Most unacknowledged QoS 1 messages.")
    simulated: list[SimulatedIntersectionSettings] = Field(
        default_factory=lambda: [
            SimulatedIntersectionSettings(intersection_id="simpang-tugu", phases=4, cycle_s=90, seed=1),
            SimulatedIntersectionSettings(intersection_id="simpang-pasar", phases=3, cycle_s=75, seed=2),
            SimulatedIntersectionSettings(intersection_id="simpang-alun-alun", phases=4, cycle_s=100,
                                          seed=3),
        ],
        description="Simulated intersection devices this agent polls (demo and tests).",
    )

    @model_validator(mode="after")
    def _unique_intersections(self) -> EdgeSettings:
        ids = [d.intersection_id for d in self.simulated]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"intersection ids must be unique, repeated: {', '.join(dupes)}")
        return self
