"""The built-in dashboard in Debian's Chromium (Playwright) against a real `netra-analytics
serve` filled by `netra-analytics demo`'s generator (through the import, with the admin key the
service printed on its first start), signed in with that key: every dashboard draws every
panel, without console errors or requests to another host; the range picker, the filters and
clicks change what is drawn.

The demo's traffic is the tests' smaller one (conftest: SEED, USERS, DAYS); with
`NETRA_SCREENSHOTS` set (`make screenshots` sets docs/screenshots, the PNGs the README shows),
the demo's defaults (500 people, 30 days), and the full-page screenshots go there instead of
a temporary directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Position,
    Request,
    Response,
    sync_playwright,
)

from netra_analytics import demo
from netra_analytics.dashboards.catalog import DASHBOARDS
from tests.dashboards.conftest import DAYS, SEED, USERS, Post, import_events, live_events
from tests.support.processes import ServiceProcess, wait_until
from tests.tag.test_browser import CHROMIUM, CHROMIUM_ARGS, USER_AGENT

DRAWN_TIMEOUT_MS = 60_000


def api_key(service: ServiceProcess) -> str:
    return service.admin_headers()["authorization"].removeprefix("Bearer ")


def admin_post(service: ServiceProcess) -> Post:
    """`demo.run`'s sender to this service's import, with its admin key."""

    def post(path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        reply = httpx.post(f"{service.url}{demo.IMPORT_PATH}", content=body, timeout=60,
                           headers={"content-type": "application/json",
                                    **service.admin_headers()})  # fmt: skip
        return reply.status_code, dict(reply.headers), reply.content

    return post


def prompts_stored(service: ServiceProcess) -> int:
    reply = httpx.get(f"{service.url}/api/analytics/reports/prompts",
                      params={"time_range": "30d", "min_frequency": 1},
                      headers=service.admin_headers(), timeout=30)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return int(reply.json()["prompts"])


def fill(service: ServiceProcess, *, users: int, days: int) -> demo.Summary:
    """Run the demo against the service, as `netra-analytics demo --api-key` does, and wait
    until its events are stored and the prompt worker has analysed every prompt (then a few
    seconds more, for the updates its last answers bring)."""
    now = datetime.now(UTC)
    summary = demo.run(service.url, users=users, days=days, seed=SEED, now=now, progress=None,
                       api_key=api_key(service))  # fmt: skip
    events = demo.generate(users=users, days=days, seed=SEED, now=now)
    assert (summary.accepted, summary.rejected) == (len(events), 0), summary.rejections
    assert demo.wait_stored(service.url, 300) is not None
    prompts = sum(e["properties"].get("message_type") == "user_prompt" for e in events)
    wait_until(lambda: prompts_stored(service) == prompts, 300, 1.0)
    time.sleep(3)
    return summary


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    # Reports are read here the moment the data is in: with the default 60 s report cache,
    # `fill`'s first poll of the 30-day prompts report kept its empty answer for a minute
    # (every prompt was analysed 3 s after the import; the wait took 61 s).
    env = {"EVENT_FLUSH_INTERVAL_MS": "200", "ANALYTICS_REPORT_CACHE_SECONDS": "0"}
    process = ServiceProcess(tmp_path_factory.mktemp("dashboards") / "data", env=env)
    process.start()
    if os.environ.get("NETRA_SCREENSHOTS"):
        fill(process, users=500, days=30)  # the demo's defaults: what `make run` users see
    else:
        fill(process, users=USERS, days=DAYS)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("NETRA_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page with what went wrong on it: console errors, page errors, foreign requests."""

    def __init__(self, browser: Browser, service: ServiceProcess, **context: Any) -> None:
        self.context = browser.new_context(user_agent=USER_AGENT, **context)
        sign_in(self.context.new_page(), service.url, api_key(service))
        self.page = self.context.new_page()
        self.problems: list[str] = []
        own = urlsplit(service.url).netloc

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.problems.append(message.text)

        def request(sent: Request) -> None:
            where = urlsplit(sent.url)
            if where.scheme in ("http", "https") and where.netloc != own:
                self.problems.append(f"request to another host: {sent.url}")

        def response(got: Response) -> None:
            if got.status >= 400:
                self.problems.append(f"{got.status} from {got.url}")

        self.page.on("console", console)
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("request", request)
        self.page.on("response", response)

    def close(self) -> None:
        self.context.close()


def sign_in(page: Page, url: str, key: str) -> None:
    """Through the sign-in form of the service at `url`, with `key`: the session cookie then
    serves every page of the page's context. Closes the page."""
    page.goto(f"{url}/login")
    page.fill("#credential", key)
    page.click("#sign-in")
    page.wait_for_url(f"{url}/")
    page.close()


@pytest.fixture
def watched(browser: Browser, service: ServiceProcess) -> Iterator[Watched]:
    page = Watched(browser, service, viewport={"width": 1366, "height": 900})
    yield page
    page.close()
    assert not page.problems


def settle(page: Page) -> dict[str, dict[str, str]]:
    """Wait until the page is ready and no panel is loading; every panel's state."""
    page.wait_for_selector("body[data-ready=true]", timeout=DRAWN_TIMEOUT_MS)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-panel]')].every(p => p.dataset.state !== 'loading'"
        " && !p.classList.contains('busy'))",
        timeout=DRAWN_TIMEOUT_MS,
    )
    states: dict[str, dict[str, str]] = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('[data-panel]')].map(p => "
        "[p.dataset.panel, {state: p.dataset.state, rows: p.dataset.rows || '0', "
        "signature: p.dataset.signature || '', text: p.querySelector('.body').innerText}]))"
    )
    return states


def test_the_index_lists_every_dashboard(
    watched: Watched, service: ServiceProcess, shots: Path
) -> None:
    watched.page.goto(f"{service.url}/")
    watched.page.wait_for_selector("body[data-ready=true]")
    titles = watched.page.locator(".index-card h2").all_inner_texts()
    assert titles == [board.title for board in DASHBOARDS]
    assert watched.page.locator(".empty-store").count() == 0
    watched.page.screenshot(path=str(shots / "index.png"), full_page=True)


@pytest.mark.parametrize("board", DASHBOARDS, ids=[b.name for b in DASHBOARDS])
def test_every_panel_draws_data(
    watched: Watched, service: ServiceProcess, shots: Path, board: Any
) -> None:
    if board.live:  # the live state holds the last five minutes: send some now
        import_events(admin_post(service), live_events(datetime.now(UTC)))
    watched.page.goto(f"{service.url}/dashboards/{board.name}?range=30d")
    states = settle(watched.page)
    assert list(states) == list(board.panels)
    not_drawn = {k: v for k, v in states.items() if v["state"] != "drawn" or v["rows"] == "0"}
    assert not not_drawn
    charts = watched.page.locator(".chart canvas").count()
    drawn = [p for p in board.panels if watched.page.locator(f"[data-panel={p}] .chart").count()]
    assert charts >= len(drawn)
    watched.page.wait_for_timeout(600)  # the word cloud lays its words out after drawing
    watched.page.screenshot(path=str(shots / f"{board.name}.png"), full_page=True)


def test_range_and_filters_change_what_is_drawn(watched: Watched, service: ServiceProcess) -> None:
    page = watched.page
    page.goto(f"{service.url}/dashboards/executive-overview?range=30d")
    month = settle(page)
    page.select_option("#range", "7d")
    page.wait_for_function("() => location.search.includes('range=7d')")
    week = settle(page)
    assert week["chat_volume"]["signature"] != month["chat_volume"]["signature"]
    assert week["active_users"]["text"] != month["active_users"]["text"]

    page.select_option("#environment", "staging")
    page.wait_for_function("() => location.search.includes('environment=staging')")
    staging = settle(page)
    assert staging["active_users"]["text"] != week["active_users"]["text"]
    assert page.locator(".chip[data-filter=environment]").count() == 1
    # A shared link opens the same view.
    again = page.context.new_page()
    again.goto(page.url)
    assert settle(again)["active_users"]["text"] == staging["active_users"]["text"]
    again.close()
    page.click(".chip[data-filter=environment]")
    assert settle(page)["active_users"]["text"] == week["active_users"]["text"]
    assert "environment=" not in page.url


def test_a_click_on_a_slice_filters_the_dashboard(
    watched: Watched, service: ServiceProcess
) -> None:
    page = watched.page
    page.goto(f"{service.url}/dashboards/prompt-analytics?range=30d")
    before = settle(page)
    chart = page.locator("[data-panel=prompt_categories] .chart")
    box = chart.bounding_box()
    assert box is not None
    # The donut's ring (40% to 70% of half the smaller side) a little clockwise of 12 o'clock,
    # inside its first, largest slice.
    ring = 0.55 * min(box["width"], box["height"]) / 2
    where: Position = {"x": box["width"] / 2 + ring * 0.5, "y": box["height"] / 2 - ring * 0.87}
    chart.click(position=where)
    page.wait_for_function("() => location.search.includes('category=')")
    after = settle(page)
    assert page.locator(".chip[data-filter=category]").count() == 1
    assert after["prompt_terms"]["signature"] != before["prompt_terms"]["signature"]
    assert after["usage_heatmap"]["signature"] == before["usage_heatmap"]["signature"]
    note = page.locator("[data-panel=usage_heatmap] .note").inner_text()
    assert "Not filtered by category" in note


def test_custom_range_and_csv(watched: Watched, service: ServiceProcess) -> None:
    page = watched.page
    page.goto(f"{service.url}/dashboards/feedback?range=30d")
    settle(page)
    page.select_option("#range", "custom")
    page.fill("#from", "2020-01-01T00:00")
    page.fill("#to", "2020-01-08T00:00")
    page.click("#apply")
    page.wait_for_function("() => location.search.includes('range=custom')")
    states = settle(page)
    assert states["feedback_trend"]["state"] == "empty"
    assert "No data in this range" in states["feedback_trend"]["text"]
    href = page.locator("[data-panel=nps] .csv").get_attribute("href")
    assert href is not None and "format=csv" in href
    reply = httpx.get(f"{service.url}{href}", headers=service.admin_headers())
    assert reply.headers["content-type"].startswith("text/csv")
    assert reply.text.splitlines()[0] == "value,previous"


def test_usable_on_a_phone(browser: Browser, service: ServiceProcess, shots: Path) -> None:
    phone = Watched(browser, service, viewport={"width": 390, "height": 844}, is_mobile=True,
                    has_touch=True, device_scale_factor=2)  # fmt: skip
    try:
        phone.page.goto(f"{service.url}/dashboards/ai-spend?range=30d")
        states = settle(phone.page)
        assert all(v["state"] == "drawn" for v in states.values())
        overflow = phone.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        phone.page.screenshot(path=str(shots / "ai-spend-phone.png"), full_page=True)
    finally:
        phone.close()
    assert not phone.problems


def test_an_empty_store_says_how_to_fill_it(browser: Browser, tmp_path: Path) -> None:
    empty = ServiceProcess(tmp_path / "data")
    empty.start()
    page = Watched(browser, empty, viewport={"width": 1366, "height": 900})
    try:
        for board in ("user-behavior", "prompt-analytics"):
            page.page.goto(f"{empty.url}/dashboards/{board}")
            states = settle(page.page)
            command = page.page.locator(".empty-store pre").inner_text()
            assert (
                command == f".venv/bin/netra-analytics demo --url {empty.url} --api-key <admin key>"
            )
            assert {v["state"] for v in states.values()} <= {"empty", "drawn"}
            charts = [k for k, v in states.items() if v["state"] == "empty"]
            assert charts and all("No data in this range" in states[k]["text"] for k in charts)
    finally:
        page.close()
        empty.stop()
    assert not page.problems


def test_live_panels_refresh_by_themselves(watched: Watched, service: ServiceProcess) -> None:
    watched.page.goto(f"{service.url}/dashboards/user-engagement")
    settle(watched.page)
    assert watched.page.input_value("#refresh") == "5"
    assert not watched.page.locator("#range").is_visible()  # the live state has no range
    watched.page.wait_for_function("() => Number(document.body.dataset.loads) >= 2", timeout=15_000)


def test_times_are_in_the_viewers_zone(browser: Browser, service: ServiceProcess) -> None:
    viewer = Watched(browser, service, viewport={"width": 1366, "height": 900},
                     timezone_id="America/New_York")  # fmt: skip
    asked: list[str] = []

    def panel_request(sent: Request) -> None:
        if "/api/analytics/panels/" in sent.url:
            asked.append(sent.url)

    viewer.page.on("request", panel_request)
    try:
        viewer.page.goto(f"{service.url}/dashboards/prompt-analytics?range=7d")
        settle(viewer.page)
        assert viewer.page.inner_text("#zone") == "Times in America/New_York"
        assert asked and all("tz=America%2FNew_York" in url for url in asked)
    finally:
        viewer.close()
    assert not viewer.problems
