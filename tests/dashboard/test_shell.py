"""The dashboard shell in a real browser: log-in and refusal, each role's menu, Bahasa
Indonesia by default with English on request, the clock in the city's zone, log-out."""

from __future__ import annotations

import re

import httpx

from tests.dashboard.conftest import ROLES, shot

MENU = {  # what each role sees in the menu, in order (pages/index.js and each page's roles)
    "operator": ["map", "cameras", "alarms"],
    "supervisor": ["map", "cameras", "alarms", "technicians", "audit"],
    "admin": ["map", "cameras", "alarms", "attendance", "technicians", "audit"],
    "bkpsdm": ["attendance"],
    "technician": ["map", "cameras", "alarms", "technicians"],
}
LANDING = {"operator": "map", "supervisor": "map", "admin": "map", "bkpsdm": "attendance",
           "technician": "technicians"}


def test_wrong_password_is_refused_and_nothing_opens(new_page, demo) -> None:
    page = new_page()
    page.fill("#login input[name=name]", "operator")
    page.fill("#login input[name=password]", "not-the-password")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#login-error:not(:empty)")
    assert "Gagal masuk" in page.inner_text("#login-error")
    assert page.locator("#whoami").count() == 0
    assert page.locator("#nav a").count() == 0
    shot(page, "login-refused")


def test_each_role_sees_its_menu_and_lands_on_its_page(new_page, demo) -> None:
    for role in ROLES:
        page = new_page(role)
        links = page.locator("#nav a").evaluate_all("els => els.map(e => e.dataset.page)")
        assert links == MENU[role], role
        page.wait_for_selector(f"section[data-page={LANDING[role]}]")
        assert role in page.inner_text("#whoami")
        shot(page, f"landing-{role}")


def test_a_page_outside_the_role_is_refused(new_page, demo) -> None:
    page = new_page("bkpsdm")
    page.goto("/#/map")
    page.wait_for_selector("#no-access")
    assert "BKPSDM" in page.inner_text("#no-access")
    assert page.locator("section[data-page=map]").count() == 0
    page = new_page("operator")
    page.goto("/#/audit")
    page.wait_for_selector("#no-access")


def test_english_on_request_kept_across_reloads_and_clock_in_wib(new_page, demo) -> None:
    page = new_page("operator")
    assert page.inner_text("#nav a[data-page=map]") == "Peta Kota"
    assert page.get_attribute("html", "lang") == "id"
    assert re.fullmatch(r"\d\d:\d\d:\d\d WIB", page.inner_text("#clock"))
    page.click("#lang")
    page.wait_for_function("document.querySelector('#nav a[data-page=map]').textContent "
                           "=== 'City map'")
    assert page.get_attribute("html", "lang") == "en"
    page.reload()
    page.wait_for_selector("#whoami")
    assert page.inner_text("#nav a[data-page=map]") == "City map"
    assert page.inner_text("#logout") == "Log out"


def test_log_out_ends_the_session_on_the_server(new_page, demo) -> None:
    page = new_page("supervisor")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert httpx.get(demo.base + "/api/auth/me", cookies=cookies).status_code == 200
    page.click("#logout")
    page.wait_for_selector("#login")
    assert httpx.get(demo.base + "/api/auth/me", cookies=cookies).status_code == 401
    page.reload()
    page.wait_for_selector("#login")


def test_pages_are_served_with_a_strict_content_security_policy(demo) -> None:
    r = httpx.get(demo.base + "/")
    assert r.status_code == 200 and "Simpang" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert httpx.get(demo.base + "/ui/app.js").headers["content-type"].startswith(
        ("application/javascript", "text/javascript"))
    assert httpx.get(demo.base + "/status").status_code == 200
