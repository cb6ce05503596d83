"""The cameras, alarms, devices and audit pages in a real browser against the running demo:
an operator moves a PTZ camera by pressing and holding a pad button (the camera reports a new
pan), stores a preset and goes back to it; an edge that stops answering raises real alarms,
the operator acknowledges one with a comment, the alarm clears by itself when the edge comes
back and the history shows it cleared and acknowledged; the supervisor finds the
acknowledgement in the audit log; the technician sees the demo's four edges with their
devices. Screenshots at 1920×1080 and 1366×768."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from playwright.sync_api import expect

from tests.dashboard.conftest import Demo, shot

LAPTOP = (1366, 768)
# Polled from Python: the page's CSP refuses the eval that wait_for_function polls with.
BIG_IMAGE_LOADED = "document.querySelector('.cam-detail .cam-big')?.naturalWidth > 0"


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 20.0,
               every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


def camera(demo: Demo, camera_id: str) -> dict[str, Any]:
    r = demo.get(f"/api/cameras/{camera_id}")
    assert r.status_code == 200, r.text
    return r.json()


def snapshots_ready(demo: Demo) -> list[dict[str, Any]]:
    """The demo's cameras once each has a stored snapshot (the page shows them; a missing one
    would be a 404 in the browser's console). A camera without one yet is asked for one."""
    cams = demo.get("/api/cameras").json()
    for c in cams:
        if camera(demo, c["camera_id"])["snapshot"] is None:
            asked = demo.post(f"/api/cameras/{c['camera_id']}/snapshot", params={"wait_s": 5})
            assert asked.status_code == 200, asked.text
    wait_until("every camera has a snapshot",
               lambda: all(camera(demo, c["camera_id"])["snapshot"] for c in cams), 30)
    return cams


def board(demo: Demo, **params: str) -> list[dict[str, Any]]:
    r = demo.get("/api/alarms/board", params=params)
    assert r.status_code == 200, r.text
    return r.json()


@contextmanager
def edge_paused(demo: Demo, edge_id: str) -> Iterator[int]:
    """SIGSTOP the demo's edge agent process (this run's, found by its config file) until the
    block ends: it stops answering like a hung box; the broker notices after 1.5 keepalives
    and publishes its will. SIGCONT afterwards: it reconnects and announces itself again."""
    config = str(demo.run_dir / f"{edge_id}.toml")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if config.encode() in args and b"edge" in args:
            pids.append(int(proc.name))
    assert len(pids) == 1, f"edge {edge_id} of this demo: processes {pids}"
    os.kill(pids[0], signal.SIGSTOP)
    try:
        yield pids[0]
    finally:
        os.kill(pids[0], signal.SIGCONT)


TILES_LOADED = ("[...document.querySelectorAll('.cam-tile img')].every("
                "i => i.naturalWidth > 0)")


def test_the_grid_fetches_a_snapshot_only_when_its_camera_has_a_newer_one(
        new_page, demo: Demo) -> None:
    cams = snapshots_ready(demo)
    page = new_page("operator")
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/snapshot.jpg" in r.url else None)
    page.goto("/#/cameras")
    page.wait_for_selector(".cam-tile")
    wait_until("every tile shows its snapshot", lambda: page.evaluate(TILES_LOADED), 15)
    assert len(fetched) >= len(cams)
    fetched.clear()
    window_start = datetime.now(UTC)
    page.wait_for_timeout(11_000)  # two grid refreshes (every 5 s); lets the events in
    # A fetch is due only for a camera whose snapshot was taken since the page's last refresh
    # before the window (the demo's cameras take one a minute).
    due = {c["camera_id"] for c in demo.get("/api/cameras").json()
           if datetime.fromisoformat(c["snapshot_at"]) >= window_start - timedelta(seconds=7)}
    per_camera: dict[str, int] = {}
    for url in fetched:
        cam_id = unquote(url.split("/api/cameras/", 1)[1].split("/", 1)[0])
        assert cam_id in due, (url, due)
        per_camera[cam_id] = per_camera.get(cam_id, 0) + 1
    # At most one new snapshot per camera in the window (they come every 30 s): one fetch.
    assert all(n == 1 for n in per_camera.values()), per_camera


def test_operator_moves_a_ptz_camera_and_goes_back_to_a_preset(new_page, demo: Demo) -> None:
    cams = snapshots_ready(demo)
    cam_id = next(c["camera_id"] for c in cams if c["ptz"] and c["state"] == "online")
    page = new_page("operator")
    page.goto(f"/#/cameras/{cam_id}")
    page.wait_for_selector("#ptz-pad")
    # grouped by intersection, one tile per camera, each with its state
    assert page.locator(".cam-tile").count() == len(cams)
    areas = page.locator(".cam-group").evaluate_all("els => els.map(e => e.dataset.area)")
    assert areas == sorted({c["intersection_id"] for c in cams})
    assert page.locator(f".cam-tile[data-camera='{cam_id}'] [data-state=online]").count() == 1
    wait_until("the snapshot shows", lambda: page.evaluate(BIG_IMAGE_LOADED), 15)
    shot(page, "cameras-operator-1920")

    start = camera(demo, cam_id)["position"]
    # store the current view as a preset, through the form
    name = f"Uji {secrets.token_hex(2)}"
    page.fill("#preset-name", name)
    page.click("#preset-set")
    token = wait_until("the preset is listed", lambda: next(
        (p["token"] for p in camera(demo, cam_id)["presets"] if p["name"] == name), None))
    page.wait_for_selector(f"#preset-list [data-goto='{token}']")

    # press and hold "right" for 1.5 s, release: a move, then a stop
    pad = page.locator("[data-ptz=right]")
    pad.hover()
    page.mouse.down()
    time.sleep(1.5)
    page.mouse.up()
    page.wait_for_selector("#ptz-status [data-status]")
    moved = wait_until("the camera reports a pan to the right", lambda: (
        pos := camera(demo, cam_id)["position"]) and pos["pan"] > start["pan"] + 0.05 and pos)
    kinds = [c["kind"] for c in camera(demo, cam_id)["commands"][:3]]
    assert kinds[:2] == ["ptz_stop", "ptz_move"], kinds  # release sent the stop
    wait_until("the page shows the new pan", lambda: float(
        page.get_attribute("#ptz-position", "data-pan") or "nan") > start["pan"] + 0.05, 15)
    shot(page, "cameras-after-move")

    # back to the preset
    page.click(f"#preset-list [data-goto='{token}']")
    wait_until("the camera is back at the preset", lambda: abs(
        camera(demo, cam_id)["position"]["pan"] - start["pan"]) < 0.02)
    assert moved["pan"] - start["pan"] > 0.05
    page.wait_for_selector("#command-list tr:first-child .badge")
    rows = page.locator("#command-list tr").all_inner_texts()
    assert any("Ke preset" in r and "dijalankan" in r for r in rows), rows

    # the laptop view, and a technician who may only watch
    page = new_page("technician", viewport=LAPTOP)
    page.goto(f"/#/cameras/{cam_id}")
    page.wait_for_selector("#view-only")
    assert page.locator("#ptz-pad").count() == 0 and page.locator("#snapshot-now").count() == 0
    wait_until("the snapshot shows", lambda: page.evaluate(BIG_IMAGE_LOADED), 15)
    shot(page, "cameras-technician-1366")


def test_an_alarm_is_acknowledged_clears_by_itself_and_is_audited(new_page, demo: Demo) -> None:
    comment = f"Simpang J4–J6 diperiksa, teknisi dikirim ({secrets.token_hex(2)})"
    page = new_page("operator")
    page.goto("/#/alarms")
    page.wait_for_selector("#alarm-rows tr")
    with edge_paused(demo, "edge-demo-2"):
        # its intersections' telemetry stops: the controllers no longer answer (the edge's
        # will comes only once the broker gives up on it)
        alarm = wait_until("an open alarm of J4 (controller or edge offline)", lambda: next(
            (a for a in board(demo, kind="traffic", severity="critical") if a["source"] == "J4"
             and a["code"] in ("controller_offline", "edge_offline")), None), 30)
        row = page.locator(f"#alarm-rows tr[data-key='{alarm['key']}']")
        row.wait_for()
        title = {"controller_offline": "Pengendali sinyal tidak menjawab",
                 "edge_offline": "Edge simpang terputus"}[alarm["code"]]
        assert title in row.inner_text() and "Kritis" in row.inner_text()
        shot(page, "alarms-open-operator-1920")
        row.locator("[data-ack]").click()
        page.fill(".dialog textarea[name=comment]", comment)
        page.click(".dialog [data-action=confirm]")
        acked = row.locator("td.acked")
        acked.wait_for()
        assert "operator" in acked.inner_text() and comment in acked.inner_text()
        assert row.locator("[data-ack]").count() == 0
    stored = next(a for a in board(demo, state="all") if a["key"] == alarm["key"])
    assert (stored["acked_by"], stored["ack_comment"]) == ("operator", comment)
    # the edge is back: the condition ends and the alarm clears by itself
    wait_until("the alarm clears once the edge is back", lambda: next(
        a for a in board(demo, state="all") if a["key"] == alarm["key"])["cleared_at"], 30)
    page.click("[data-tab=history]")
    row = page.locator(f"#alarm-rows tr[data-key='{alarm['key']}'][data-state=cleared]")
    row.wait_for()
    assert comment in row.inner_text()
    page.select_option("#f-acked", "true")
    expect(page.locator("#alarm-rows tr:not(.is-acked)")).to_have_count(0)
    shot(page, "alarms-history-operator-1920")

    # the technician reads the board but may not acknowledge (the server refuses too)
    tech = new_page("technician", viewport=LAPTOP)
    tech.goto("/#/alarms/history")
    tech.wait_for_selector(f"#alarm-rows tr[data-key='{alarm['key']}']")
    assert tech.locator("[data-ack]").count() == 0
    shot(tech, "alarms-history-technician-1366")

    # the supervisor finds the acknowledgement in the audit log, with before and after
    sup = new_page("supervisor")
    sup.goto("/#/audit")
    sup.wait_for_selector("#audit-table[data-tab=ops]")
    entry = sup.locator("#audit-rows tr[data-action=alarm_ack][data-who=operator]").first
    entry.wait_for()
    text = entry.inner_text()
    assert alarm["key"] in text and comment in text and "ack_comment" in text
    shot(sup, "audit-supervisor-1920")
    sup.set_viewport_size({"width": LAPTOP[0], "height": LAPTOP[1]})
    sup.click("[data-tab=attendance]")
    sup.wait_for_selector("#audit-table[data-tab=attendance] #audit-rows tr[data-action]")
    sup.select_option("#f-action", index=1)  # one kind of change: a page a screenshot can hold
    action = sup.eval_on_selector("#f-action", "e => e.value")
    rows = sup.locator("#audit-rows tr").evaluate_all("els => els.map(e => e.dataset.action)")
    assert rows and set(rows) == {action}
    shot(sup, "audit-attendance-supervisor-1366")


def test_the_technician_sees_every_edge_with_its_devices(new_page, demo: Demo) -> None:
    edges = demo.get("/api/edges").json()
    assert len(edges) == 4
    page = new_page("technician")  # lands on the devices page
    page.wait_for_selector("section[data-page=technicians] section[data-edge]")
    shown = page.locator("section[data-edge]").evaluate_all("els => els.map(e => e.dataset.edge)")
    assert sorted(shown) == sorted(e["edge_id"] for e in edges)
    for e in edges:
        devices = page.locator(f"section[data-edge='{e['edge_id']}'] tr[data-device]").evaluate_all(
            "els => els.map(e => e.dataset.device)")
        assert sorted(devices) == sorted(d["device_id"] for d in e["inventory"]), e["edge_id"]
    shot(page, "devices-technician-1920")
    # cameras only: each listed camera with its model and firmware from the camera itself
    page.select_option("#f-kind", "camera")
    cams = demo.get("/api/cameras").json()
    expect(page.locator("tr[data-device]")).to_have_count(len(cams))
    for c in cams:
        text = page.locator(f"tr[data-device='{c['camera_id']}']").inner_text()
        assert c["model"] in text and c["firmware"] in text
    # on a laptop, in English
    page.set_viewport_size({"width": LAPTOP[0], "height": LAPTOP[1]})
    page.click("#lang")
    page.get_by_role("heading", name="Devices per edge").wait_for()
    page.wait_for_selector("section[data-edge='kantor-demo'] tr[data-kind=attendance]")
    assert "Attendance machine" in page.inner_text("section[data-edge='kantor-demo']")
    shot(page, "devices-technician-1366-en")
