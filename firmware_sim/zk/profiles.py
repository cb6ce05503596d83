"""What an emulated ZKTeco machine is: firmware profiles (as data) and the machine's settings.

It owns the three firmware families the emulator imitates — which record layouts, event
form and identity strings each uses — and ``MachineConfig``, the typed settings of one machine
(pydantic, unknown keys forbidden, every field described and bounded). It must not hold state
or protocol logic: ``machine`` does, with ``devices.zk`` encoding every byte.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from devices.zk.events import EventFormat
from devices.zk.records import RecordFormat, UserFormat


@dataclass(frozen=True, slots=True)
class FirmwareProfile:
    """A firmware family: its record layouts, punch event form and identity strings."""

    key: str
    description: str
    user_format: UserFormat
    record_format: RecordFormat
    event_format: EventFormat
    device_name: str
    platform: str
    firmware_version: str
    fp_version: str
    face_version: str | None  # None: no face recognition (free sizes in the 80-byte form)
    extend_fmt: str
    user_ext_fmt: str


PROFILES: dict[str, FirmwareProfile] = {
    p.key: p
    for p in (
        FirmwareProfile(
            key="colour",
            description="colour-screen fingerprint/face terminal: 72-byte users, 40-byte "
                        "punches, 36-byte live events",
            user_format=UserFormat.ZK8, record_format=RecordFormat.R40,
            event_format=EventFormat.E36, device_name="iFace302", platform="ZMM220_TFT",
            firmware_version="Ver 6.60 Apr 28 2017", fp_version="10", face_version="7",
            extend_fmt="1", user_ext_fmt="1"),
        FirmwareProfile(
            key="older",
            description="older black-and-white fingerprint terminal: 28-byte users, 16-byte "
                        "punches, 12-byte live events; numeric user ids only",
            user_format=UserFormat.ZK6, record_format=RecordFormat.R16,
            event_format=EventFormat.E12, device_name="X628", platform="ZEM510_BW",
            firmware_version="Ver 6.21 Nov 19 2008", fp_version="10", face_version=None,
            extend_fmt="0", user_ext_fmt="0"),
        FirmwareProfile(
            key="newer",
            description="newer visible-light face terminal: 72-byte users, 49-byte punches, "
                        "52-byte live events",
            user_format=UserFormat.ZK8, record_format=RecordFormat.R49,
            event_format=EventFormat.E52, device_name="SpeedFace-V5L", platform="ZMM510_TFT",
            firmware_version="Ver 8.0.4.7-20230615", fp_version="12", face_version="58",
            extend_fmt="1", user_ext_fmt="1"),
    )
}


class WhenFull(enum.StrEnum):
    """What the machine does with a punch when its attendance log is at capacity.

    Real terminals offer both (menu "Log alert / cyclic delete"); either way a punch is lost
    unless the log is read and cleared in time.
    """

    STOP = "stop"  # refuse the punch ("log full" on the screen); older punches are kept
    OVERWRITE = "overwrite"  # drop the oldest punch to make room


class MachineConfig(BaseModel):
    """Settings of one emulated attendance machine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    serial: str = Field("KPZK000001", min_length=1, max_length=23, pattern=r"^[A-Za-z0-9_-]+$",
                        description="serial number (~SerialNumber); the machine's identity")
    profile: Literal["colour", "older", "newer"] = Field(
        "colour", description="firmware family: record layouts and identity strings")
    device_name: str | None = Field(None, max_length=31, pattern=r"^[ -~]+$",
                                    description="~DeviceName; default: the profile's model")
    comm_key: int = Field(0, ge=0, le=999999,
                          description="communication key (0: none, clients connect freely)")
    users_cap: int = Field(10_000, ge=1, le=65_534, description="user capacity")
    records_cap: int = Field(100_000, ge=1, le=1_000_000,
                             description="attendance log capacity (punches)")
    when_full: WhenFull = Field(WhenFull.STOP,
                                description="a punch into a full log: 'stop' refuses it, "
                                            "'overwrite' drops the oldest")
    utc_offset_h: float = Field(7.0, ge=-12, le=14,
                                description="office zone the clock was set in (WIB 7, WITA 8, "
                                            "WIT 9); the machine itself keeps no zone")
    clock_offset_s: float = Field(0.0, ge=-10 * 365 * 86400, le=10 * 365 * 86400,
                                  description="initial error of the machine clock, seconds")
    drift_s_per_day: float = Field(0.0, ge=-86400, le=86400,
                                   description="clock drift, seconds gained (+) or lost (-) per "
                                               "day of real time")
    reboot_s: float = Field(5.0, ge=0, le=600,
                            description="seconds the machine is unreachable after a restart")
    slow_answer_s: float = Field(2.0, ge=0, le=600,
                                 description="delay of each answer while the SLOW_ANSWERS "
                                             "fault is on")
    mac: str = Field("00:17:61:10:00:01", pattern=r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$",
                     description="MAC option string")

    @property
    def firmware(self) -> FirmwareProfile:
        """The profile's data."""
        return PROFILES[self.profile]
