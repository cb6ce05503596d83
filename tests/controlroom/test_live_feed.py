"""The wall map's live feed (`GET /api/live`, Server-Sent Events) without a browser: who may
open it, the full picture first and then only what changed, an intersection's colour following
its edge, one producer for every subscriber, a slow subscriber resynchronised instead of
holding up the others, streams cleaned up on disconnect and ended when the control room stops.
The control room runs for real with a fake edge over MQTT (tests.controlroom.test_traffic_service)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from controlroom.web.live import LiveFeed, Reading, intersection_state
from tests.controlroom import test_traffic_service as world
from tests.controlroom.test_traffic_service import OPERATOR_KEY, VIEWER_KEY, Setup, wait_for

make_setup = world.make_setup


class Stream:
    """An open /api/live stream read on a thread: events as (name, data) in arrival order."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.ended = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=30))
        self._url, self._headers = url, headers
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as r:
                self.status, self.headers = r.status_code, dict(r.headers)
                name = "message"
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((name, json.loads(line[6:])))
                        name = "message"
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def wait(self, predicate: Callable[[tuple[str, dict[str, Any]]], bool], after: int = 0,
             timeout_s: float = 10.0, what: str = "event") -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((d for e in self.events[after:] if predicate(e) for d in [e[1]]), None)
        return wait_for(found, timeout_s, what)

    def close(self) -> None:
        self._client.close()
        self._thread.join(5)


@pytest.fixture
def streams() -> Iterator[Callable[..., Stream]]:
    opened: list[Stream] = []

    def open_(s: Setup, key: str | None = VIEWER_KEY) -> Stream:
        st = Stream(f"{s.room.url}api/live", {"X-API-Key": key} if key else {})
        opened.append(st)
        return st

    yield open_
    for st in opened:
        st.close()


def by_id(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {x["id"]: x for x in event["intersections"]}


@world.EMBEDDED_ONLY
def test_live_feed_shows_the_city_and_then_what_changes(make_setup: Callable[..., Setup],
                                                        streams: Callable[..., Stream]) -> None:
    s = make_setup()
    a, b = s.ids
    assert httpx.get(f"{s.room.url}api/live", timeout=5).status_code == 401
    assert httpx.get(f"{s.room.url}api/live", headers={"X-API-Key": "wrong-key-000000000000"},
                     timeout=5).status_code == 401
    wait_for(lambda: all(x["online"] for x in s.api("intersections").json()), what="both live")

    st = streams(s)  # a viewer: the lowest role may watch the map
    first = st.wait(lambda e: e[0] == "intersections" and e[1]["full"], what="full snapshot")
    assert st.status == 200 and st.headers["content-type"].startswith("text/event-stream")
    cams = st.wait(lambda e: e[0] == "cameras", what="cameras")
    assert cams["full"] is True and cams["cameras"] == []
    shown = by_id(first)
    assert set(shown) == {a, b}
    assert first["links"] == [[a, b]]  # b's upstream is a
    x = shown[a]
    assert x["name"] == f"Simpang {a}" and (x["x"], x["y"]) == (0.0, 0.0)
    assert x["signal"] == "GR" and x["mode"] == "central"
    assert x["state"] in ("adaptive", "override") and x["alarms"] == 0
    sent_at = datetime.fromisoformat(first["ts"])
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 5
    assert abs((sent_at - datetime.fromisoformat(x["updated"])).total_seconds()) < 3
    wait_for(lambda: st.wait(lambda e: e[0] == "intersections"
                             and (by_id(e[1]).get(a) or {}).get("load") is not None,
                             what="load"), what="a plan step's degree of saturation")

    # The controller starts flashing: only what changed comes, and soon.
    mark = len(st.events)
    s.edge.mode[a] = "flash"
    flashed_at = time.monotonic()
    change = st.wait(lambda e: e[0] == "intersections"
                     and (by_id(e[1]).get(a) or {}).get("state") == "flash", after=mark,
                     what="a flashing")
    assert time.monotonic() - flashed_at < 3.0
    assert change["full"] is False and "links" not in change
    assert by_id(change)[a]["mode"] == "flash"

    # Its edge falls silent: the map shows it offline, not its last colour.
    mark = len(st.events)
    s.edge.silent.add(a)
    st.wait(lambda e: e[0] == "intersections"
            and (by_id(e[1]).get(a) or {}).get("state") == "offline", after=mark,
            what="a offline")
    # Nothing of b moved in those deltas unless it changed: every record differs from the one before.
    deltas = [e[1] for e in st.events[mark:] if e[0] == "intersections" and not e[1]["full"]]
    assert deltas and all(a in by_id(d) or b in by_id(d) for d in deltas)
    # …and the controller-offline alarm it raises is counted on its node.
    st.wait(lambda e: e[0] == "intersections"
            and (by_id(e[1]).get(a) or {}).get("alarms", 0) >= 1, after=mark,
            what="a's open alarm counted")


@world.EMBEDDED_ONLY
def test_overrides_show_and_streams_end_when_the_control_room_stops(
        make_setup: Callable[..., Setup], streams: Callable[..., Stream]) -> None:
    s = make_setup(n=1)
    (a,) = s.ids
    wait_for(lambda: s.edge.commands_for(a), what="a plan")
    st = streams(s, OPERATOR_KEY)
    st.wait(lambda e: e[0] == "intersections" and e[1]["full"], what="full snapshot")
    mark = len(st.events)
    assert s.post(f"intersections/{a}/override", {"action": "hold", "duration_s": 60}).status_code == 200
    st.wait(lambda e: e[0] == "intersections"
            and (by_id(e[1]).get(a) or {}).get("state") == "override", after=mark,
            what="override shown")
    other = streams(s)
    other.wait(lambda e: e[0] == "intersections", what="second subscriber's snapshot")
    feed = s.room._server.config.app.state.live_feed  # type: ignore[union-attr]
    assert feed.stats.subscribers == 2
    other.close()
    wait_for(lambda: feed.stats.subscribers == 1, what="the closed stream unsubscribed")

    started = time.monotonic()
    s.room.stop()
    assert st.ended.wait(5)
    assert time.monotonic() - started < 8.0  # the web server did not wait out its join


# --------------------------------------------------------------------------- the producer alone


def reading(n: int, tick: int, changing: set[int] = frozenset()) -> Reading:  # type: ignore[assignment]
    now = datetime.now(UTC)
    return Reading(now, {f"X{k}": {"id": f"X{k}", "state": "adaptive",
                                   "signal": "GR" if (k in changing and tick % 2) else "RG",
                                   "updated": now.isoformat()} for k in range(n)},
                   {"C1": {"id": "C1", "state": "online", "alarms": 0}})


def test_one_producer_for_many_subscribers_and_a_slow_one_is_resynchronised() -> None:
    reads = []

    def read() -> Reading:
        reads.append(time.monotonic())
        return reading(1000, len(reads), changing={3, 7})

    async def scenario() -> dict[str, Any]:
        feed = LiveFeed(read, [["X0", "X1"]], period_s=0.05, queue_max=4)
        fast = [feed.subscribe(f"u{k}") for k in range(50)]
        slow = feed.subscribe("slow")  # never reads
        got: list[list[bytes]] = [[] for _ in fast]

        async def consume(k: int) -> None:
            while True:
                got[k].append(await fast[k].queue.get())

        tasks = [asyncio.create_task(consume(k)) for k in range(len(fast))]
        await asyncio.sleep(1.0)
        for t in tasks:
            t.cancel()
        queued = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        for sub in [*fast, slow]:
            feed.unsubscribe(sub)
        await asyncio.sleep(0.2)
        return {"feed": feed, "got": got, "slow": slow, "queued": queued}

    r = asyncio.run(scenario())
    feed, got, slow = r["feed"], r["got"], r["slow"]
    # One read per period for all 51 subscribers, not one per subscriber.
    assert 5 <= len(reads) <= 25
    assert feed.stats.reads == len(reads)
    first = got[0][0].decode()
    assert first.startswith("event: intersections\n") and '"full":true' in first
    assert '"links":[["X0","X1"]]' in first
    deltas = [json.loads(e.decode().split("data: ", 1)[1]) for e in got[0][2:]
              if e.startswith(b"event: intersections")]
    assert deltas and all(not d["full"] and {x["id"] for x in d["intersections"]} == {"X3", "X7"}
                          for d in deltas)
    assert all(len(g) == len(got[0]) for g in got)  # every fast subscriber saw every event
    # The slow one was started over from the full picture, never given a backlog.
    assert slow.resyncs >= 1 and feed.stats.resyncs == slow.resyncs
    assert len(r["queued"]) <= feed.queue_max
    assert any(b'"full":true' in e for e in r["queued"])
    assert feed.stats.subscribers == 0
    assert feed._task is None  # the producer stops with its last subscriber


def test_close_ends_every_stream() -> None:
    async def scenario() -> list[bytes]:
        feed = LiveFeed(lambda: reading(3, 0), period_s=0.05)
        sub = feed.subscribe()
        body: list[bytes] = []

        async def run() -> None:
            async for chunk in feed.stream(sub):
                body.append(chunk)

        task = asyncio.create_task(run())
        await asyncio.sleep(0.2)
        threading.Thread(target=feed.close).start()  # from another thread, as the control room does
        await asyncio.wait_for(task, 2)
        assert feed.stats.subscribers == 0
        with pytest.raises(RuntimeError):
            feed.subscribe()
        return body

    body = asyncio.run(scenario())
    assert body[0].startswith(b"retry: ")
    assert any(b.startswith(b"event: intersections") for b in body)


def test_heartbeat_when_nothing_changes() -> None:
    async def scenario() -> list[bytes]:
        feed = LiveFeed(lambda: reading(2, 0), period_s=0.02, heartbeat_s=0.1)
        sub = feed.subscribe()
        await asyncio.sleep(0.35)
        out = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
        feed.unsubscribe(sub)
        return out

    events = asyncio.run(scenario())
    names = [e.split(b"\n", 1)[0] for e in events]
    assert names[:2] == [b"event: intersections", b"event: cameras"]
    assert names.count(b"event: heartbeat") >= 2
    assert b"event: intersections" not in names[2:]  # nothing changed, nothing sent


@pytest.mark.parametrize(("online", "mode", "source", "state"), [
    (False, "central", "adaptive", "offline"), (True, None, "unknown", "offline"),
    (True, "flash", "operator_override", "flash"), (True, "off", "off", "flash"),
    (True, "local_fixed", "local_fallback", "local_fallback"),
    (True, "local_actuated", "local_fallback", "local_fallback"),
    (True, "central", "operator_override", "override"), (True, "central", "adaptive", "adaptive"),
    (True, "central", "central", "adaptive"),
])
def test_state_of_an_intersection(online: bool, mode: str | None, source: str, state: str) -> None:
    assert intersection_state(online, mode, source) == state
