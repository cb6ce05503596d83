"""An open live stream (`GET /api/live`) does not outlive its log-in: after the user logs out
the stream ends at its next credential check, and the page's reconnect is refused (401). The
API with real sessions on a real PostgreSQL (the alarm board's world), served by uvicorn."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from controlroom.web.live import LiveFeed
from tests.controlroom.test_alarm_ack import PASSWORD, World, pg_server, world  # noqa: F401
from tests.controlroom.test_live_feed import reading


@pytest.fixture
def served(world: World) -> Iterator[str]:  # noqa: F811
    feed: LiveFeed = world.app.state.live_feed
    feed.heartbeat_s, feed.recheck_s = 0.2, 0.5  # seconds here, not 15 and 10
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    feed.close()
    server.should_exit = True
    thread.join(10)


def test_a_stream_ends_after_log_out_and_the_reconnect_is_refused(served: str) -> None:
    with httpx.Client(base_url=served, timeout=httpx.Timeout(5, read=10)) as client:
        login = client.post("/api/auth/login", json={"name": "budi", "password": PASSWORD})
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        lines: list[str] = []
        ended = threading.Event()

        def watch() -> None:
            with client.stream("GET", "/api/live") as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    lines.append(line)
            ended.set()

        threading.Thread(target=watch, daemon=True).start()
        deadline = time.monotonic() + 5
        while sum(line.startswith("event: heartbeat") for line in lines) < 3:
            assert time.monotonic() < deadline, f"no heartbeats: {lines}"
            time.sleep(0.05)
        # Still logged in: checks pass and the stream goes on.
        assert not ended.is_set()
        cookies = dict(client.cookies)
        out = client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code in (200, 204), out.text
        assert ended.wait(3), "the stream outlived the log-out"
        again = httpx.get(f"{served}/api/live", cookies=cookies, timeout=5)
        assert again.status_code == 401


def test_the_stream_asks_again_at_every_recheck_and_ends_on_no() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        feed = LiveFeed(lambda: reading(2, 0), period_s=0.02, heartbeat_s=0.05, recheck_s=0.2)
        asked = 0

        async def allowed() -> bool:
            nonlocal asked
            asked += 1
            return asked < 3  # logged out before the third check

        sub = feed.subscribe("budi")
        body = [chunk async for chunk in feed.stream(sub, allowed)]  # ends by itself
        assert feed.stats.subscribers == 0
        feed.close()
        return body, asked

    started = time.monotonic()
    body, asked = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert asked == 3 and 0.5 < time.monotonic() - started < 3
    assert any(b.startswith(b"event: heartbeat") for b in body)
