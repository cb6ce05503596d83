"""The poller: availability follows the last fetch; failure and recovery are each logged once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from devices.controller.errors import ControllerError
from edge.controllers import ControllerDevice, ModbusLoop
from edge.liveness import Liveness
from edge.pollers import AsyncPoller, ListenerWorker, Poller
from edge.settings import ControllerSettings
from tests.edge.test_controller_agent import WATCHDOG_S, EmulatorThread


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


# --------------------------------------------------------------------------- AsyncPoller


@pytest.fixture
def emulator_host() -> Iterator[EmulatorThread]:
    host = EmulatorThread()
    yield host
    host.close()


def test_async_pollers_poll_a_real_controller_on_the_shared_loop_through_offline_and_back(
        emulator_host: EmulatorThread, caplog: pytest.LogCaptureFixture) -> None:
    """A real pymodbus client against the emulated controller: polled as a task on the one
    Modbus loop (no thread of its own), listeners on the publisher thread, the lost contact
    and the recovery each logged once, nothing polled after stop."""
    caplog.set_level(logging.INFO, logger="edge.pollers")
    emu = emulator_host.start()
    loop = ModbusLoop("test-modbus")
    loop.start()
    publisher = ListenerWorker("test-publish")
    publisher.start()
    spec = ControllerSettings(intersection_id="simpang-async", host="127.0.0.1", port=emu.port,
                              timeout_s=0.3, poll_interval_s=0.1, watchdog_timeout_s=WATCHDOG_S,
                              reconnect_max_s=0.3)
    device = ControllerDevice(spec, loop, lambda: Liveness(True, "test"))
    pollers = [AsyncPoller(f"{device.device_id}-{k}", device.poll, spawn=loop.spawn,
                           dispatch=publisher.submit, interval_s=0.1, first_delay_s=0.05 * k,
                           errors=(ControllerError,)) for k in range(2)]
    poller = pollers[0]
    heard: list[tuple[bool, str]] = []
    poller.add_listener(lambda p: heard.append((p.available, threading.current_thread().name)))
    threads = threading.active_count()
    try:
        for p in pollers:
            p.start()
        wait(lambda: poller.polls >= 3 and poller.available, "polls of the controller")
        snapshot = poller.snapshot
        assert snapshot is not None and snapshot.mode == "local_fixed"
        assert len(snapshot.det_count) == 8
        # Two pollers and their listeners: one publisher thread more, no poller thread.
        assert threading.active_count() <= threads + 1
        assert not [t for t in threading.enumerate() if t.name.startswith("poll-")]
        assert heard and all(name.startswith("test-publish") for _, name in heard)

        emulator_host.call(lambda: emu.drop_comms())  # the cable is cut
        wait(lambda: not poller.available and poller.consecutive_failures >= 3, "polls failing")
        assert poller.snapshot == snapshot, "the last good snapshot is kept"
        assert "ControllerTimeout" in (poller.first_error or "")
        emulator_host.call(lambda: emu.restore_comms())
        wait(lambda: all(p.available for p in pollers), "the controller answering again")
        assert (False, heard[-1][1]) in heard and heard[-1][0] is True
        assert len(records(caplog, logging.WARNING)) == 2  # one per poller, not one per poll
        assert len([r for r in records(caplog, logging.INFO)
                    if "answering again" in r.getMessage()]) == 2
    finally:
        for p in pollers:
            p.stop()
        polls = poller.polls
        time.sleep(0.3)
        assert poller.polls == polls, "no polls after stop"
        device.close()
        loop.stop()
        publisher.stop()


def test_async_poller_coalesces_listener_calls_when_the_publisher_lags() -> None:
    """Polls that end while their listeners are still queued are not queued again: the pending
    call reads the newest state (an overloaded agent reports less often, not later and later)."""
    loop = ModbusLoop("test-coalesce")
    loop.start()
    publisher = ThreadPoolExecutor(1)
    release = threading.Event()
    publisher.submit(release.wait, 5)  # the publisher is busy

    async def fetch() -> Reading:
        return Reading(1)

    poller: AsyncPoller[Reading] = AsyncPoller("ctl-lag", fetch, spawn=loop.spawn,
                                               dispatch=publisher.submit, interval_s=0.02,
                                               errors=(FakeDeviceError,))
    seen: list[int] = []
    poller.add_listener(lambda p: seen.append(p.polls))
    try:
        poller.start()
        wait(lambda: poller.polls >= 10, "polls while the publisher is busy")
        release.set()
        wait(lambda: len(seen) >= 1, "the queued listener call")
        time.sleep(0.1)
        assert len(seen) < poller.polls / 2 and seen[0] >= 10  # it read the newest state
    finally:
        poller.stop()
        loop.stop()
        publisher.shutdown()


def wait(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_the_listener_worker_runs_calls_in_order_and_survives_a_failing_one(
        caplog: pytest.LogCaptureFixture) -> None:
    worker = ListenerWorker("test-worker")
    worker.start()
    done: list[int] = []

    def broken() -> None:
        raise ValueError("a listener bug")

    try:
        for k in range(500):
            worker.submit(done.append, k)
            if k == 100:
                worker.submit(broken)
    finally:
        worker.stop()  # runs what is queued first
    assert done == list(range(500))
    assert [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info
            and "a listener bug" in str(r.exc_info[1])]
