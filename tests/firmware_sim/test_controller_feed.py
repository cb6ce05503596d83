"""The emulator's traffic hook fed from outside: ``PresenceFeed`` drives the loops a world pushes.

A ManualClock emulator with a feed: presence pushed at given deciseconds shows up as volume and
occupancy through the real driver, and the feed hands out changes only when they are due.
"""

from __future__ import annotations

import asyncio

import pytest

from devices.controller.driver import ControllerClient
from firmware_sim.controller.clock import ManualClock
from firmware_sim.controller.host import ControllerSettings
from firmware_sim.controller.server import ControllerEmulator
from firmware_sim.controller.traffic import PresenceFeed


def test_feed_hands_out_changes_when_due_in_order() -> None:
    feed = PresenceFeed(2)
    feed.push(12, 1, True)
    feed.push(15, 2, True)
    feed.push(14, 1, False)  # dated before the last push: lands with it, order kept
    assert feed.step(0, 10, 0) == []
    assert feed.step(10, 15, 0) == [(12, 1, True), (15, 2, True), (15, 1, False)]
    assert feed.pending == 0 and feed.pushed == 3
    with pytest.raises(ValueError):
        feed.push(20, 3, True)
    with pytest.raises(ValueError):
        PresenceFeed(-1)


def test_pushed_presence_reaches_the_detector_registers() -> None:
    asyncio.run(_pushed_presence())


async def _pushed_presence() -> None:
    config = ControllerSettings(detectors=2).controller_config("KP-FEED-0001")
    clock = ManualClock()
    feed = PresenceFeed(2)
    emu = ControllerEmulator(config, clock=clock, traffic=feed)
    await emu.start(tick=False)
    try:
        # Three vehicles over loop 1 in the second second, loop 1 held 5 ds in all.
        for on, off in ((10, 12), (13, 15), (17, 18)):
            feed.push(on, 1, True)
            feed.push(off, 1, False)
        clock.set(20)
        emu.tick()
        async with ControllerClient("127.0.0.1", emu.port, timeout_s=2.0) as client:
            snap = await client.snapshot()
        assert snap.detectors[0].volume == 3
        assert snap.detectors[0].occupancy_permille == 500
        assert snap.detectors[1].volume == 0
        assert feed.pending == 0
    finally:
        await emu.stop()
