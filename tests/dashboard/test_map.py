"""The wall map in a real browser against the running demo: the six intersections and two
cameras drawn from the layout, kept live from /api/live without reloading, an operator's flash
turning its intersection's colour on the map and back on release, the connection-lost banner
and the reconnect, a click opening the intersection's page; on a 1920×1080 wall and a
1366×768 laptop."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.dashboard.conftest import shot

FLASH_RGB = "rgb(249, 115, 22)"  # app.css --flash


def until(page, expression: str, arg: Any = None, timeout_s: float = 10.0) -> Any:
    """Poll a page expression (or function of ``arg``) until truthy. Playwright's own
    wait_for_function compiles string predicates with eval, which the page's CSP refuses."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s: {expression}"
        time.sleep(0.1)


def node_states(page) -> dict[str, str]:
    return page.eval_on_selector_all(
        "#map-svg g.node", "els => Object.fromEntries(els.map(e => [e.dataset.id, e.dataset.state]))")


def test_the_wall_map_is_live(new_page, demo) -> None:
    page = new_page("operator")
    page.wait_for_selector("section[data-page=map]")
    until(page, "document.querySelectorAll('#map-svg g.node[data-state]').length === 6")
    until(page, "document.querySelectorAll('#map-svg g.camera').length === 2")
    page.wait_for_selector("#map-conn[data-conn=open]")
    api = {r["intersection_id"]: r for r in demo.get("/api/intersections").json()}
    states = node_states(page)
    assert set(states) == set(api)  # the layout's intersections, by id
    assert all(states[i] != "offline" for i in states if api[i]["online"])
    # Every intersection is counted once in the legend; names are drawn on the map.
    counts = page.eval_on_selector_all("#map-legend .count", "els => els.map(e => e.textContent)")
    assert sum(int(c) for c in counts) == 6
    labels = page.eval_on_selector_all("#map-svg text.label", "els => els.map(e => e.textContent)")
    assert len(labels) == 6 and all(labels)
    cams = {c["camera_id"]: c["intersection_id"] for c in demo.get("/api/cameras").json()}
    drawn = page.eval_on_selector_all("#map-svg g.camera", "els => els.map(e => e.dataset.camera)")
    assert sorted(drawn) == sorted(cams)
    assert re.fullmatch(r"\d\d:\d\d:\d\d WIB", page.inner_text("#map-last-update"))
    shot(page, "map-1920x1080")

    # Live without a reload: the page keeps its marker while telemetry times move on.
    page.evaluate("window.__sameLoad = true")
    before = page.eval_on_selector_all("#map-svg g.node", "els => els.map(e => e.dataset.updated)")
    until(page, """before => {
        const now = [...document.querySelectorAll('#map-svg g.node')].map(e => e.dataset.updated);
        return now.some((u, k) => u && u !== before[k]);
    }""", before, timeout_s=20)
    assert page.evaluate("window.kotaMapStats.applied") > 6
    assert page.evaluate("window.__sameLoad") is True

    # An operator flashes one intersection: its colour turns on the map, live, and back.
    target = next(i for i in sorted(states) if states[i] != "offline")
    answer = demo.post(f"/api/intersections/{target}/override",
                       json={"action": "flash", "duration_s": 120, "reason": "test peta"})
    assert answer.status_code == 200, answer.text
    try:
        page.wait_for_selector(f"#map-svg g.node[data-id='{target}'][data-state=flash]",
                               timeout=30_000)
        fill = page.eval_on_selector(f"#map-svg g.node[data-id='{target}'] .dot",
                                     "e => getComputedStyle(e).fill")
        assert fill == FLASH_RGB
        assert int(page.inner_text("#map-legend .count[data-count=flash]")) >= 1
    finally:
        released = demo.post(f"/api/intersections/{target}/release", json={"reason": "test peta"})
    assert released.status_code == 200, released.text
    page.wait_for_selector(f"#map-svg g.node[data-id='{target}']:not([data-state=flash])",
                           timeout=30_000)
    assert page.evaluate("window.__sameLoad") is True

    # The feed is down (a restarting server answers and closes at once): a visible banner;
    # back, the page reconnects by itself and draws the city again.
    page.route("**/api/live", lambda route: route.fulfill(
        status=200, content_type="text/event-stream", body="retry: 300\n\n"))
    page.evaluate("location.hash = '#/cameras'")
    page.wait_for_selector("section[data-page=cameras]")
    page.evaluate("location.hash = '#/map'")
    page.wait_for_selector("#map-banner:not([hidden])")
    assert "terputus" in page.inner_text("#map-banner").lower()
    assert page.get_attribute("#map-conn", "data-conn") == "lost"
    page.unroute("**/api/live")
    page.wait_for_selector("#map-banner[hidden]", state="attached", timeout=20_000)
    page.wait_for_selector("#map-conn[data-conn=open]")
    until(page, "document.querySelectorAll('#map-svg g.node[data-state]').length === 6")

    # A click opens the intersection's page.
    page.click(f"#map-svg g.node[data-id='{target}'] .dot")
    until(page, f"location.hash === '#/intersection/{target}'")


def test_the_map_on_a_laptop_in_english(new_page, demo) -> None:
    page = new_page("supervisor", viewport=(1366, 768), lang="en")
    until(page, "document.querySelectorAll('#map-svg g.node[data-state]').length === 6")
    until(page, "document.querySelectorAll('#map-svg g.camera').length === 2")
    legend = page.inner_text("#map-legend")
    assert "Adaptive" in legend and "Local fallback" in legend and "Offline" in legend
    box = page.locator("#map-svg").bounding_box()
    assert box is not None and box["width"] > 700 and box["y"] + box["height"] <= 768
    # The map fills the laptop's window: no scrolling to see the city.
    assert page.evaluate("document.documentElement.scrollHeight") <= 768
    page.hover("#map-svg g.node .dot")
    page.wait_for_selector("#map-info dl")
    assert "Degree of saturation" in page.inner_text("#map-info")
    shot(page, "map-1366x768-en")
