"""The intersection page in a real browser against the running demo: live phases, detectors and
the last hour's charts; an operator's flash and release, confirmed, followed by the emulated
controller and audited under the operator's name; a hold that keeps a phase green past its
split; refusals shown on the page; no override controls (and a 403) for other roles."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.dashboard.conftest import Demo, login, shot


def lamps(page) -> list[str]:
    return page.locator(".ix-phase").evaluate_all("els => els.map(e => e.dataset.lamp)")


def wait_until(what: str, check, timeout_s: float, step_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def logged_in(demo: Demo, role: str) -> tuple[httpx.Client, str]:
    """An HTTP client with `role`'s session cookie, and the session's CSRF token."""
    client = httpx.Client(base_url=demo.base, timeout=10)
    r = client.post("/api/auth/login", json={"name": role, "password": demo.users[role]})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf_token"]


def confirm(page, **fields: str) -> None:
    page.wait_for_selector(".dialog")
    for name, value in fields.items():
        field = page.locator(f".dialog [name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.click(".dialog [data-action=confirm]")
    page.wait_for_selector(".dialog", state="detached")


def test_live_phases_detectors_and_the_last_hour(new_page, demo: Demo) -> None:
    info = demo.get("/api/intersections/J1").json()
    page = new_page("operator")
    page.goto("/#/intersection/J1")
    page.wait_for_selector(".ix-phase")
    assert page.locator(".ix-phase").count() == info["phases"]
    assert page.locator("#ix-detectors tr[data-detector]").count() == info["detectors"]
    assert "Simpang" in page.inner_text("h1") and "(J1)" in page.inner_text("h1")
    assert set(lamps(page)) <= {"G", "Y", "R"}
    # Live: the signal moves on (the cycle timer or a lamp changes within a few seconds).
    first = (page.inner_text("#ix-signal"), lamps(page))
    wait_until("the signal to move", lambda: (page.inner_text("#ix-signal"), lamps(page)) != first, 8)
    # The last hour, drawn from the stored telemetry: a flow line and a wait line per phase.
    page.wait_for_selector("#ix-flow-chart path[data-series], #ix-flow-chart circle",
                           state="attached")
    assert page.locator("#ix-wait-chart [data-series]").count() == info["phases"] + 1
    assert page.locator("#ix-override button[data-action=flash]").is_visible()
    shot(page, "intersection-operator-1920")

    # A laptop, in English.
    page.set_viewport_size({"width": 1366, "height": 768})
    page.click("#lang")
    page.wait_for_selector("text=Signal per phase")
    page.wait_for_selector("#ix-flow-chart")
    assert page.locator("#ix-override button[data-action=hold]").is_visible()
    shot(page, "intersection-operator-1366-en")
    # Without an id: the list of intersections, each a link to its page.
    page.goto("/#/intersection")
    page.wait_for_selector("#ix-list a[href='#/intersection/J2']")


def test_refusal_shown_flash_followed_then_released_and_audited(browser, new_page,
                                                              demo: Demo) -> None:
    # Own context: the browser logs the refused plan's 422 as a console error, which is expected
    # here; any other error still fails the test.
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, base_url=demo.base)
    errors: list[str] = []
    try:
        page = ctx.new_page()
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                and "status of 422" not in m.text and "status of 401" not in m.text else None)
        page.set_default_timeout(10_000)
        page.goto("/")
        login(page, "operator", demo.users["operator"])
        reason = flash_and_release(page, demo)
    finally:
        ctx.close()
    assert not errors, errors
    # The supervisor's audit page lists both, under the operator's name.
    supervisor = new_page("supervisor")
    supervisor.goto("/#/audit")
    for action in ("override_flash", "override_release"):
        supervisor.wait_for_selector(f"#audit-rows tr[data-action={action}][data-who=operator]"
                                     f":has-text('{reason}')")


def flash_and_release(page, demo: Demo) -> str:
    """The operator's session: a refused plan, then a flash and its release; returns the reason."""
    page.goto("/#/intersection/J2")
    page.wait_for_selector(".ix-phase")
    # A refused plan (its splits add up to 50 s, not the 40 s cycle): the page says why.
    page.click("#ix-override button[data-action=plan]")
    confirm(page, cycle_s="40", splits="25, 25", duration_min="5", reason="uji rencana")
    page.wait_for_selector("#ix-action-error[data-status='422']")
    assert "50" in page.inner_text("#ix-action-error") and "40" in page.inner_text("#ix-action-error")
    assert demo.get("/api/intersections/J2").json()["override"] is None

    reason = f"uji kedip {uuid.uuid4().hex[:6]}"
    page.click("#ix-override button[data-action=flash]")
    assert "J2" in page.inner_text(".dialog h2")
    page.click(".dialog [data-action=cancel]")  # cancelled: nothing sent
    assert demo.get("/api/intersections/J2").json()["override"] is None

    page.click("#ix-override button[data-action=flash]")
    confirm(page, duration_min="5", reason=reason)
    page.wait_for_selector("#ix-override-active[data-action=flash][data-user=operator]")
    # The emulated controller follows: every phase flashes.
    wait_until("the signal to flash", lambda: set(lamps(page)) <= {"y", "r"} and lamps(page), 20)
    page.wait_for_selector("#ix-mode[data-mode=flash]")
    page.wait_for_selector("#ix-source[data-source=operator_override]")
    shot(page, "intersection-flash")

    page.click("#ix-override button[data-action=release]")
    confirm(page, reason=f"{reason} selesai")
    page.wait_for_selector("#ix-override-none")
    # Back to normal: out of flash through all-red into the plan again.
    wait_until("the signal back in its plan", lambda: "G" in lamps(page)
               and set(lamps(page)) <= {"G", "Y", "R"}, 30)
    assert demo.get("/api/intersections/J2").json()["override"] is None

    supervisor, _ = logged_in(demo, "supervisor")
    try:
        rows = supervisor.get("/api/audit", params={"limit": 200}).json()
    finally:
        supervisor.close()
    done = [(r["action"], r["user_name"], r["role"], r["detail"]) for r in rows
            if r["target"] == "J2" and r["outcome"] == "done" and reason in r["detail"]]
    assert ("override_flash", "operator", "operator", reason) in done
    assert ("override_release", "operator", "operator", f"{reason} selesai") in done
    return reason


def test_hold_keeps_the_phase_green_past_its_split(new_page, demo: Demo) -> None:
    page = new_page("operator")
    page.goto("/#/intersection/J3")
    page.wait_for_selector(".ix-phase")
    wait_until("the adaptive plan", lambda: (demo.get("/api/intersections/J3").json()["plan"]
                                             .get("sent") or {}).get("type") == "plan", 20)
    splits = demo.get("/api/intersections/J3").json()["plan"]["sent"]["splits_s"]
    page.click("#ix-override button[data-action=hold]")
    page.wait_for_selector(".dialog select[name=phase]")
    phase = int(page.locator(".dialog select[name=phase]").input_value())  # the green one
    confirm(page, duration_min="2", reason="uji tahan")
    page.wait_for_selector(f"#ix-override-active[data-action=hold][data-phase='{phase}']")
    held = f".ix-phase[data-phase='{phase}']"
    wait_until("the held phase green", lambda: page.get_attribute(held, "data-lamp") == "G",
               sum(splits) + 10)
    # The page counts how long the phase has shown green (since it turned green, or since the
    # page opened); any other lamp in between would start the count again.
    split = splits[phase - 1]
    deadline = time.monotonic() + split + 15
    while int(page.get_attribute(held, "data-elapsed")) <= split + 2:
        assert page.get_attribute(held, "data-lamp") == "G", "the held phase left green"
        assert time.monotonic() < deadline, "the held phase's green is not counted"
        time.sleep(0.5)
    assert page.get_attribute(held, "data-lamp") == "G"
    if page.get_attribute(held, "data-known") == "1":
        assert "melewati split" in page.inner_text(held)
    shot(page, "intersection-hold")
    assert demo.post("/api/intersections/J3/release", json={"reason": "test over"}).status_code == 200


def test_other_roles_get_no_controls_and_their_posts_are_refused(new_page, demo: Demo) -> None:
    technician = new_page("technician")
    technician.goto("/#/intersection/J4")
    technician.wait_for_selector(".ix-phase")
    assert technician.locator("#ix-override").count() == 0
    assert technician.locator("button[data-action=flash]").count() == 0
    csrf = technician.request.get("/api/auth/me").json()["csrf_token"]
    body = {"action": "flash", "duration_s": 60, "reason": "not allowed"}
    refused = technician.request.post("/api/intersections/J4/override", data=body,
                                      headers={"X-CSRF-Token": csrf})
    assert refused.status == 403
    shot(technician, "intersection-technician")

    bkpsdm, csrf = logged_in(demo, "bkpsdm")
    try:
        refused = bkpsdm.post("/api/intersections/J4/override", json=body,
                              headers={"X-CSRF-Token": csrf})
    finally:
        bkpsdm.close()
    assert refused.status_code == 403 and "bkpsdm" in refused.json()["detail"]
    assert demo.get("/api/intersections/J4").json()["override"] is None
