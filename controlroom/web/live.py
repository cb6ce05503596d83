"""The live feed of the wall map: `GET /api/live`, Server-Sent Events for any logged-in role.

Owns one `LiveFeed` per web app: a single producer task reads the city's state twice a second
(the traffic service's live view, the open alarms, the cameras), works out what changed, encodes
each event once and fans it out to every subscriber's bounded queue. A subscriber that cannot
keep up loses its queue and gets a fresh full snapshot instead of a growing backlog, so one slow
browser never holds up the others or the producer. It only reads: it must not change anything,
talk to the broker or to a device.

Events (``event:`` name, JSON ``data:``):

* ``intersections`` — ``{"ts", "full", "intersections": [...], "links": [[a, b], ...]}``: first
  the full set (with the layout's links), then only the intersections whose shown state changed.
  Per intersection: ``id, name, x, y, state`` (adaptive | override | local_fallback | flash |
  offline), ``source`` (where its timing comes from, `TrafficService.sources`), ``mode``,
  ``load`` (the timing core's degree of saturation of the intersection's most loaded movement
  at the last plan step, `computed.ds_max`; None before the first step), ``load_at``,
  ``signal`` (one letter per phase, `edge.contract.SignalState`), ``alarms`` (open traffic
  alarms), ``updated`` (the telemetry timestamp the shown state was read from).
* ``cameras`` — ``{"ts", "full", "cameras": [...]}``, the same way: ``id, intersection, name,
  state`` (online | offline | stale | unknown, as `/api/cameras`), ``alarms``.
* ``heartbeat`` — ``{"ts"}`` every ``heartbeat_s`` (15 s): the stream is alive when nothing moves.

``ts`` is the server's time when the data was read, so a client can tell its delay.

A stream outlives the request that opened it, so its credential is checked again every
``recheck_s`` (10 s; at the next event, so within 25 s): after a log-out or an expired session
the stream ends, and the page's reconnect meets the log-in.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from controlroom.cctv.service import CctvService
from controlroom.cctv.store import CctvStorageError, CctvStore
from controlroom.storage.store import StorageError, Store
from controlroom.traffic.layout import CityLayout
from controlroom.traffic.service import TrafficService
from controlroom.web.keys import Gate

log = logging.getLogger(__name__)

PERIOD_S = 0.5  # the map's data is at most this old (plus the network)
HEARTBEAT_S = 15.0
QUEUE_MAX = 8  # events a subscriber may lag behind before it is resynchronised
RETRY_MS = 2000  # EventSource reconnect delay the stream asks for
RECHECK_S = 10.0  # an open stream's log-in is checked again this often (log-out, lost role)

LOCAL_MODES = frozenset({"local_fixed", "local_actuated"})
DARK_MODES = frozenset({"flash", "off"})
# Fields of a record that are not its shown state: a change of these alone is not sent.
_UNSHOWN = frozenset({"updated"})


def intersection_state(online: bool, mode: str | None, source: str | None) -> str:
    """The wall map's colour: offline (no fresh telemetry, edge or controller down), flash
    (flashing or dark), local_fallback (the controller's own plan), override (an operator's
    hold, force or plan), adaptive (central control: the adaptive core's plans)."""
    if not online or mode is None:
        return "offline"
    if mode in DARK_MODES:
        return "flash"
    if mode in LOCAL_MODES:
        return "local_fallback"
    if source == "operator_override":
        return "override"
    return "adaptive"


def camera_state(row: dict[str, Any], now: datetime, stale_after_s: float) -> str:
    """As `/api/cameras` says it (controlroom.web.cctv)."""
    if row["edge_online"] is False or row["reachable"] is False:
        return "offline"
    if row["reachable"] is None or row["last_status_at"] is None:
        return "unknown"
    age_s = (now - row["last_status_at"]).total_seconds()
    return "online" if age_s <= stale_after_s else "stale"


@dataclass(frozen=True)
class Reading:
    """One read of the city: records keyed by id, in display order."""

    ts: datetime
    intersections: dict[str, dict[str, Any]]
    cameras: dict[str, dict[str, Any]]


class CityReader:
    """Reads what the map shows from the traffic service and the stores (blocking: it runs in
    a worker thread)."""

    def __init__(self, store: Store, traffic: TrafficService | None, layout: CityLayout | None,
                 cctv_store: CctvStore | None, camera_stale_after_s: float) -> None:
        self._store = store
        self._traffic = traffic
        self._layout = layout
        self._cctv = cctv_store
        self._camera_stale_after_s = camera_stale_after_s
        self.links = _links(layout) if layout is not None else []

    def read(self) -> Reading:
        now = datetime.now(UTC)
        return Reading(now, self._intersections(), self._cameras(now))

    def _intersections(self) -> dict[str, dict[str, Any]]:
        if self._traffic is None or self._layout is None:
            return {}
        alarms = self._store.open_alarm_counts()
        places = {x.id: x for x in self._layout.intersections}
        out: dict[str, dict[str, Any]] = {}
        for row in self._traffic.map_rows():
            x = places.get(row["id"])
            if x is None:
                continue
            out[x.id] = {
                "id": x.id, "name": x.name or x.id, "x": x.x, "y": x.y,
                "state": intersection_state(bool(row["online"]), row["mode"], row["source"]),
                "source": row["source"], "mode": row["mode"],
                "load": row["ds_max"], "load_at": row["computed_at"],
                "signal": row["signal"],
                "alarms": alarms.get(x.id, 0),
                "updated": row["ts"],
            }
        return out

    def _cameras(self, now: datetime) -> dict[str, dict[str, Any]]:
        if self._cctv is None:
            return {}
        counts = self._cctv.open_alarm_counts()
        return {row["camera_id"]: {
            "id": row["camera_id"], "intersection": row["intersection_id"],
            "name": row["name"] or row["camera_id"],
            "state": camera_state(row, now, self._camera_stale_after_s),
            "alarms": counts.get(row["camera_id"], 0),
        } for row in self._cctv.cameras()}


def _links(layout: CityLayout) -> list[list[str]]:
    """Pairs of intersections the layout connects (a corridor's upstream, a movement's
    downstream detectors), each once, in layout order."""
    seen: set[tuple[str, str]] = set()
    out: list[list[str]] = []

    def add(a: str, b: str) -> None:
        key = (a, b) if a < b else (b, a)
        if a != b and key not in seen:
            seen.add(key)
            out.append([a, b])

    for x in layout.intersections:
        if x.upstream is not None:
            add(x.upstream, x.id)
        for m in x.movements:
            for other, _ in m.downstream:
                add(x.id, other)
    return out


def _event(name: str, body: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _UNSHOWN}


@dataclass(eq=False)
class Subscriber:
    """One open stream: its queue of encoded events (None ends the stream)."""

    queue: asyncio.Queue[bytes | None]
    who: str
    resyncs: int = 0
    delivered: int = 0


@dataclass
class FeedStats:
    reads: int = 0
    read_failures: int = 0
    last_read_ms: float = 0.0
    resyncs: int = 0
    subscribers: int = 0
    events: dict[str, int] = field(default_factory=dict)


class LiveFeed:
    """The one producer of this process's live feed and its subscribers. Runs on the web
    server's event loop; `close` may be called from any thread."""

    def __init__(self, read: Callable[[], Reading], links: list[list[str]] | None = None, *,
                 period_s: float = PERIOD_S, heartbeat_s: float = HEARTBEAT_S,
                 queue_max: int = QUEUE_MAX, recheck_s: float = RECHECK_S) -> None:
        self._read = read
        self._links = links or []
        self.period_s = period_s
        self.heartbeat_s = heartbeat_s
        self.recheck_s = recheck_s
        self.queue_max = max(3, queue_max)  # room for a full snapshot (two events) and one more
        self._subs: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last: Reading | None = None
        self._full_of: Reading | None = None
        self._full_events: list[bytes] = []
        self._closed = False
        self._failing = False
        self.stats = FeedStats()

    # ------------------------------------------------------------------ subscribers

    def subscribe(self, who: str = "") -> Subscriber:
        if self._closed:
            raise RuntimeError("the live feed is closed")
        self._loop = asyncio.get_running_loop()
        sub = Subscriber(asyncio.Queue(self.queue_max), who)
        if self._task is None or self._task.done():
            self._last = None  # the first read sends everyone the full picture
            self._task = self._loop.create_task(self._produce(), name="kota-live-feed")
            self._task.add_done_callback(_report_failure)
        for event in self._full:  # the producer runs: the current picture at once
            sub.queue.put_nowait(event)
        self._subs.add(sub)
        self.stats.subscribers = len(self._subs)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)
        self.stats.subscribers = len(self._subs)

    def close(self) -> None:
        """End every stream (the web server is stopping and would wait for them)."""
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def end() -> None:
            for sub in list(self._subs):
                self._drain(sub)
                sub.queue.put_nowait(None)
            if self._task is not None:
                self._task.cancel()

        if _running_loop() is loop:
            end()
        else:
            loop.call_soon_threadsafe(end)

    # ------------------------------------------------------------------ producer

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.heartbeat_s
        while self._subs and not self._closed:
            started = loop.time()
            try:
                reading = await asyncio.to_thread(self._read)
            except (StorageError, CctvStorageError) as exc:
                self.stats.read_failures += 1
                if not self._failing:
                    log.error("live feed: %s; the map keeps its last picture", exc)
                    self._failing = True
            else:
                if self._failing:
                    log.info("live feed: reading again")
                    self._failing = False
                self.stats.reads += 1
                self.stats.last_read_ms = round((loop.time() - started) * 1000, 1)
                self._publish(reading)
            if loop.time() >= next_beat:
                next_beat = loop.time() + self.heartbeat_s
                self._fan_out([_event("heartbeat", {"ts": datetime.now(UTC).isoformat()})])
            await asyncio.sleep(max(0.05, self.period_s - (loop.time() - started)))
        self._task = None

    @property
    def _full(self) -> list[bytes]:
        """The current full picture, encoded once per reading and only when someone needs it
        (a new or resynchronised subscriber): ~200 kB for 1,000 intersections."""
        reading = self._last
        if reading is None:
            return []
        if self._full_of is not reading:
            ts = reading.ts.isoformat()
            self._full_events = [
                _event("intersections", {"ts": ts, "full": True,
                                         "intersections": list(reading.intersections.values()),
                                         "links": self._links}),
                _event("cameras", {"ts": ts, "full": True,
                                   "cameras": list(reading.cameras.values())}),
            ]
            self._full_of = reading
        return self._full_events

    def _publish(self, reading: Reading) -> None:
        ts = reading.ts.isoformat()
        last = self._last
        self._last = reading
        if last is None or set(last.intersections) != set(reading.intersections):
            self._fan_out(self._full)
            return
        events = []
        changed = [r for k, r in reading.intersections.items()
                   if _shown(r) != _shown(last.intersections[k])]
        if changed:
            events.append(_event("intersections", {"ts": ts, "full": False,
                                                   "intersections": changed}))
        if set(last.cameras) != set(reading.cameras):
            events.append(self._full[1])
        else:
            cams = [r for k, r in reading.cameras.items() if r != last.cameras[k]]
            if cams:
                events.append(_event("cameras", {"ts": ts, "full": False, "cameras": cams}))
        self._fan_out(events)

    def _fan_out(self, events: list[bytes]) -> None:
        for event in events:
            name = event[7:event.index(b"\n")].decode()
            self.stats.events[name] = self.stats.events.get(name, 0) + 1
        for sub in list(self._subs):
            try:
                for event in events:
                    sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # Too slow for the feed: what it has not read is history; start it over from
                # the current picture (which already holds this tick's changes).
                self._drain(sub)
                for event in self._full:
                    sub.queue.put_nowait(event)
                sub.resyncs += 1
                self.stats.resyncs += 1

    @staticmethod
    def _drain(sub: Subscriber) -> None:
        while True:
            try:
                sub.queue.get_nowait()
            except asyncio.QueueEmpty:
                return

    # ------------------------------------------------------------------ one stream

    async def stream(self, sub: Subscriber,
                     allowed: Callable[[], Awaitable[bool]] | None = None):  # type: ignore[no-untyped-def]
        """The SSE body of one subscriber; unsubscribes however it ends. ``allowed`` is asked,
        on the first event after every ``recheck_s`` (a heartbeat comes at least every
        ``heartbeat_s``), whether the subscriber may still watch; False ends the stream."""
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.recheck_s
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            while True:
                event = await sub.queue.get()  # a heartbeat at least every heartbeat_s
                if event is None:
                    return
                if allowed is not None and loop.time() >= next_check:
                    if not await allowed():
                        log.info("live feed: %s may no longer watch (logged out or key "
                                 "removed); stream ended", sub.who or "a subscriber")
                        return
                    next_check = loop.time() + self.recheck_s
                sub.delivered += 1
                yield event
        finally:
            self.unsubscribe(sub)


def _report_failure(task: asyncio.Task[None]) -> None:
    """A producer that died of a bug is logged with its traceback; the next subscriber (the
    pages reconnect when the heartbeats stop) starts a new one."""
    if not task.cancelled() and task.exception() is not None:
        log.error("live feed producer failed", exc_info=task.exception())


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def live_router(app: FastAPI, gate: Gate, store: Store, traffic: TrafficService | None,
                layout: CityLayout | None, cctv_store: CctvStore | None,
                cctv: CctvService | None) -> APIRouter:
    """The `/api/live` route with this app's one feed (also at ``app.state.live_feed``, for the
    control room to close before its web server stops)."""
    reader = CityReader(store, traffic, layout, cctv_store,
                        cctv.thresholds.stale_after_s if cctv is not None else 120.0)
    feed = LiveFeed(reader.read, reader.links)
    app.state.live_feed = feed
    router = APIRouter(tags=["live"])

    @router.get("/api/live", response_class=StreamingResponse,
                responses={200: {"content": {"text/event-stream": {}}}},
                summary="The wall map's live feed (Server-Sent Events, any logged-in role): "
                "intersections and cameras, first in full, then what changed, at most twice a "
                "second; a heartbeat every 15 s")
    async def get_live(request: Request) -> StreamingResponse:
        # A session's check reads the database: off the event loop.
        operator = await run_in_threadpool(gate.require, request,
                                           "the live feed shows the whole city")
        try:
            sub = feed.subscribe(operator.user)
        except RuntimeError as exc:
            raise HTTPException(503, "the control room is stopping; the page reconnects "
                                "when it is back") from exc
        async def still_allowed() -> bool:
            try:
                return await run_in_threadpool(gate.identify, request) is not None
            except HTTPException:
                return True  # the database is away: keep the wall map, check again later

        return StreamingResponse(feed.stream(sub, still_allowed), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache, no-transform",
                                          "X-Accel-Buffering": "no"})

    return router
