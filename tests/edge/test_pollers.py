"""The poller: availability follows the last fetch; failure and recovery are each logged once."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pytest

from edge.pollers import Poller


class FakeDeviceError(Exception):
    pass


@dataclass(frozen=True)
class Reading:
    value: int


class FakeDevice:
    def __init__(self) -> None:
        self.failing = False
        self.calls = 0

    def fetch(self) -> Reading:
        self.calls += 1
        if self.failing:
            raise FakeDeviceError("no reply within 1.0 s")
        return Reading(self.calls)


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "edge.pollers" and r.levelno == level]


def test_failure_and_recovery_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.pollers")
    device = FakeDevice()
    poller: Poller[Reading] = Poller("ctl-1", device.fetch, interval_s=1.0, errors=(FakeDeviceError,),
                                     hint="check the cable")
    poller.poll_once()
    assert poller.available and poller.snapshot == Reading(1) and poller.last_error is None
    first_ok = poller.last_ok_at

    device.failing = True
    for _ in range(5):
        poller.poll_once()
    assert not poller.available
    assert poller.snapshot == Reading(1), "the last good snapshot is kept"
    assert poller.last_ok_at == first_ok
    assert poller.last_error == "FakeDeviceError: no reply within 1.0 s"
    [warning] = records(caplog, logging.WARNING)
    assert "ctl-1" in warning.getMessage() and "check the cable" in warning.getMessage()

    device.failing = False
    poller.poll_once()
    poller.poll_once()
    assert poller.available and poller.snapshot == Reading(8)
    [info] = records(caplog, logging.INFO)
    assert "5 failed polls" in info.getMessage()

    device.failing = True
    poller.poll_once()
    assert len(records(caplog, logging.WARNING)) == 2, "a new outage is logged again"


def test_a_device_failing_from_the_start_is_unavailable_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.pollers")
    device = FakeDevice()
    device.failing = True
    poller: Poller[Reading] = Poller("ctl-1", device.fetch, interval_s=1.0, errors=(FakeDeviceError,))
    poller.poll_once()
    poller.poll_once()
    assert not poller.available and poller.snapshot is None and poller.last_ok_at is None
    assert len(records(caplog, logging.WARNING)) == 1


def test_an_error_outside_the_device_tree_is_not_swallowed() -> None:
    def broken() -> Reading:
        raise KeyError("bug")

    poller: Poller[Reading] = Poller("ctl-1", broken, interval_s=1.0, errors=(FakeDeviceError,))
    with pytest.raises(KeyError):
        poller.poll_once()


def test_the_thread_polls_on_its_interval_and_calls_listeners() -> None:
    device = FakeDevice()
    poller: Poller[Reading] = Poller("ctl-1", device.fetch, interval_s=0.01, errors=(FakeDeviceError,))
    seen: list[int] = []
    enough = threading.Event()

    def listener(p: Poller[Reading]) -> None:
        seen.append(p.polls)
        if len(seen) >= 5:
            enough.set()

    poller.add_listener(listener)
    poller.start()
    try:
        assert enough.wait(5)
    finally:
        poller.stop()
    assert seen[:5] == [1, 2, 3, 4, 5]
    calls = device.calls
    time.sleep(0.05)
    assert device.calls == calls, "no polls after stop"
