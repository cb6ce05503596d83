"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium) against the running
demo (`kota demo`: embedded broker and PostgreSQL, six intersections, two cameras, three
offices, one log-in per role). One demo serves this package's tests and stops after its last
one, so the rest of the suite has the machine and its ports to itself.

Without /usr/bin/chromium the browser tests are skipped, except on CI (CI set), where `.ci/run`
installs Debian's chromium and a missing browser fails the run. Screenshots go to
test-artifacts/dashboard/ (or $KOTA_TEST_ARTIFACTS/dashboard/), kept after the run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ON_CI, free_port

CHROMIUM = os.environ.get("KOTA_TEST_CHROMIUM", "/usr/bin/chromium")
ROLES = ("operator", "supervisor", "bkpsdm", "technician", "admin")
ARTIFACTS = Path(os.environ.get("KOTA_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts")) / "dashboard"
# Chromium as this machine can run it: headless, as root, no calls home (the network is closed).
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = pytest.mark.slow


@dataclass
class Demo:
    """The running demo: its address, this run's log-ins and its API keys per role."""

    base: str
    users: dict[str, str]                       # role (= user name) → password
    keys: dict[str, str]                        # role → X-API-Key (operator, bkpsdm) of the run
    run_dir: Path
    database_url: str = ""                      # the demo's (embedded) PostgreSQL
    output: list[str] = field(default_factory=list)

    def get(self, path: str, role: str = "operator", **kw) -> httpx.Response:
        return httpx.get(self.base + path, headers={"X-API-Key": self.keys[role]}, timeout=10, **kw)

    def post(self, path: str, role: str = "operator", **kw) -> httpx.Response:
        return httpx.post(self.base + path, headers={"X-API-Key": self.keys[role]}, timeout=10,
                          **kw)


def _wait(what: str, check: Callable[[], bool], timeout_s: float, demo_output: list[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    tail = "\n".join(demo_output[-40:])
    raise AssertionError(f"demo: {what} not within {timeout_s:.0f} s; its output ended:\n{tail}")


@pytest.fixture(scope="package")
def demo() -> Iterator[Demo]:
    """`kota demo --fresh` in a scratch data folder, ready when its six intersections are live,
    the cameras and the attendance machines are online."""
    scratch = Path(tempfile.mkdtemp(prefix="kota-dash-"))
    http_port, broker_port, pg_port = free_port(), free_port(), free_port()
    env = {**os.environ, "XDG_DATA_HOME": str(scratch),
           "KOTA_BROKER__PORT": str(broker_port),
           "KOTA_CONTROLROOM__MQTT__URL": f"mqtt://127.0.0.1:{broker_port}",
           "KOTA_EDGE__MQTT__URL": f"mqtt://127.0.0.1:{broker_port}",
           "KOTA_DATABASE__EMBEDDED__PORT": str(pg_port),
           "KOTA_CONTROLROOM__HTTP_PORT": str(http_port)}
    proc = subprocess.Popen([sys.executable, "-m", "kota", "demo", "--fresh"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    users: dict[str, str] = {}

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip("\n"))
            if "log-ins:" in line:
                users.update(re.findall(r"(\w+) / ([\w-]+)", line.split("log-ins:", 1)[1]))

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait("the log-ins printed", lambda: set(ROLES) <= set(users) or proc.poll() is not None,
              120, output)
        assert proc.poll() is None, "demo exited:\n" + "\n".join(output[-40:])
        run_dir = scratch / "kotapintar" / "demo-city"
        settings = tomllib.loads((run_dir / "controlroom.toml").read_text())
        keys = {k["role"]: k["key"] for k in settings["controlroom"]["api_keys"]}
        d = Demo(base, users, keys, run_dir, settings["database"]["url"], output)

        def live() -> bool:
            rows = httpx.get(base + "/api/intersections", timeout=3).json()
            return sum(1 for r in rows if r["online"] and r["det_count"]) == 6

        _wait("six intersections live", live, 60, output)

        def adaptive() -> bool:  # past the start-up flash and the first local cycle
            rows = [d.get(f"/api/intersections/J{k}").json() for k in range(1, 7)]
            return all((r.get("live") or {}).get("mode") == "central"
                       and (r.get("plan") or {}).get("source") == "adaptive"
                       for r in rows)

        _wait("six intersections under adaptive control", adaptive, 120, output)
        _wait("two cameras online", lambda: sum(
            1 for c in d.get("/api/cameras").json() if c.get("state") == "online") == 2, 60, output)
        yield d
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if ON_CI:
            pytest.fail(f"CI must provide Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def new_page(browser, demo: Demo) -> Iterator[Callable[..., object]]:
    """new_page(role=None, viewport=(1920, 1080)) → a Playwright page on the dashboard, logged in
    through the log-in form as the demo's user of that role (None: not logged in). Every page's
    console errors fail the test."""
    contexts = []
    errors: list[str] = []

    def make(role: str | None = None, viewport: tuple[int, int] = (1920, 1080),
             lang: str = "id"):
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  base_url=demo.base, locale="id-ID")
        contexts.append(ctx)
        if lang != "id":
            ctx.add_init_script(f"localStorage.setItem('kota.lang', '{lang}')")
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text} ({m.location.get('url')})")
                if m.type == "error" and "401" not in m.text and "403" not in m.text else None)
        page.goto("/")
        if role is not None:
            login(page, role, demo.users[role])
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not errors, "the browser reported errors:\n" + "\n".join(errors)


def login(page, name: str, password: str) -> None:
    page.fill("#login input[name=name]", name)
    page.fill("#login input[name=password]", password)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#whoami")


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
