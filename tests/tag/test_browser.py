"""The browser tag end to end: Debian's Chromium (headless, driven by Playwright) on the demo
page of a real `netra-analytics serve`, and what arrives in `frontend_events`."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.processes import ServiceProcess, cli_query, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# A desktop Chrome's user agent: headless Chromium's own says "HeadlessChrome", which the service
# takes for a bot and keeps out of frontend_events.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# Without the background-networking flags Chromium keeps calling Google's hosts, which this
# machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The contexts set it too, but beacons sent once the page is gone carry the browser's own.
    f"--user-agent={USER_AGENT}",
]
DAY_MS = 24 * 3600 * 1000
# The page's clock, which the tag reads through window.Date: it starts three days behind and
# movePageClock(ms) moves it on.
PAGE_CLOCK = f"""(() => {{
  const RealDate = Date;
  let shift = -3 * {DAY_MS};
  class PageDate extends RealDate {{
    constructor(...args) {{ if (args.length) super(...args); else super(RealDate.now() + shift); }}
    static now() {{ return RealDate.now() + shift; }}
  }}
  window.Date = PageDate;
  window.movePageClock = (ms) => {{ shift += ms; }};
}})();"""
EVENT_TYPES = {
    "chat_interaction",
    "thread_lifecycle",
    "feature_usage",
    "survey_response",
    "feedback_submission",
    "performance_metric",
    "error_tracking",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # Its own storage: no queue, session or anonymous id from other tests.
    fresh = browser.new_context(user_agent=USER_AGENT)
    yield fresh
    fresh.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(tmp_path / "data")
    process.start()
    yield process
    if process.running:
        process.stop()


def _rows(service: ServiceProcess, user: str) -> list[dict[str, Any]]:
    """Stop the service (its chDB is single-process) and read the user's events."""
    if service.running:
        assert service.stop()
    out = cli_query(
        service.data_dir,
        "SELECT toString(event_id) AS event_id, event_type, event_action, session_id, "
        "page_path, gtm_container_id, environment, app_version, user_agent, ip_address, "
        "properties, toUnixTimestamp64Milli(timestamp) AS timestamp_ms "
        f"FROM analytics.frontend_events WHERE user_id = '{user}' FORMAT JSONEachRow",
    )
    return [json.loads(line) for line in out.splitlines() if line]


def _open_demo(page: Page, service: ServiceProcess, **params: str) -> None:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    page.goto(f"{service.url}/demo?{query}")
    page.wait_for_function("window.netraAnalytics && window.netraAnalytics.version")


def _drained(page: Page) -> bool:
    return bool(page.evaluate("window.netraAnalytics.pending() === 0"))


def test_the_demo_page_fires_every_event_type(
    context: BrowserContext, service: ServiceProcess
) -> None:
    page = context.new_page()
    _open_demo(page, service, user="e2e-all", consent="granted", flush="200")
    page.fill("#chat-input", "Why is my bill so high? Mail me at jane.doe@example.com")
    page.click("#chat-send")
    page.wait_for_selector(".ai")
    for button in ("#thread-complete", "#feature-cost", "#feature-savings", "#survey-send",
                   "#feedback-send", "#throw-error", "#measure-api"):  # fmt: skip
        page.click(button)
    page.wait_for_timeout(300)
    wait_until(lambda: _drained(page), timeout=20)
    session_id = page.evaluate("window.netraAnalytics.sessionId")
    tags = service.ready()["checks"]["gtm_tags"]
    assert tags["GTM-DEMO001"]["tag_version"] == page.evaluate("window.netraAnalytics.version")
    assert tags["GTM-DEMO001"]["seconds_ago"] < 60
    assert page.evaluate("navigator.userAgent") == USER_AGENT

    rows = _rows(service, "e2e-all")
    assert {r["event_type"] for r in rows} == EVENT_TYPES
    assert len(rows) == len({r["event_id"] for r in rows})
    for row in rows:
        assert row["session_id"] == session_id
        assert row["page_path"] == "/demo"
        assert row["gtm_container_id"] == "GTM-DEMO001"
        assert (row["environment"], row["app_version"]) == ("demo", "demo-1")
        assert row["user_agent"] == USER_AGENT
        assert row["ip_address"] != "127.0.0.1"  # hashed, never the raw address
    by_action = {(r["event_type"], r["event_action"]): json.loads(r["properties"]) for r in rows}
    prompt = by_action["chat_interaction", "user_prompt"]
    assert "jane.doe@example.com" not in prompt["prompt_text"]  # sanitised before storage
    assert prompt["prompt_text"].startswith("Why is my bill so high?")
    assert by_action["chat_interaction", "ai_response"]["model_used"] == "gpt-4o-mini"
    assert by_action["feedback_submission", "nps"]["score"] == 9
    assert by_action["survey_response", "pain_perception"]["ai_spend_last_month"] == 2000
    assert by_action["performance_metric", "page_load"]["duration_ms"] > 0
    assert {a for t, a in by_action if t == "thread_lifecycle"} == {"created", "completed"}
    errors = [json.loads(r["properties"]) for r in rows if r["event_type"] == "error_tracking"]
    assert "demo error: cannot read the budget" in errors[0]["error_message"]


def test_events_sent_while_the_service_is_down_or_offline_arrive_once(
    context: BrowserContext, service: ServiceProcess, tmp_path: Path
) -> None:
    page = context.new_page()
    _open_demo(page, service, user="e2e-outage", consent="granted", flush="100", retry_max="2000")
    wait_until(lambda: _drained(page), timeout=20)  # the page load metric
    assert service.stop()
    for _ in range(4):
        page.click("#feature-cost")
    page.wait_for_timeout(1500)  # the tag tries, fails and backs off
    assert page.evaluate("window.netraAnalytics.pending()") == 4

    context.set_offline(True)
    for _ in range(3):
        page.click("#feature-savings")
    restarted = ServiceProcess(service.data_dir, port=service.port)
    restarted.start()
    page.wait_for_timeout(3000)  # the service is back, but the browser is offline
    assert page.evaluate("window.netraAnalytics.pending()") == 7
    context.set_offline(False)
    wait_until(lambda: _drained(page), timeout=30)

    rows = _rows(restarted, "e2e-outage")
    actions = sorted(r["event_action"] for r in rows if r["event_type"] == "feature_usage")
    assert actions == ["open"] * 4 + ["savings_identified"] * 3
    assert len(rows) == len({r["event_id"] for r in rows}) == 8  # with the page load metric


def test_events_pending_when_the_page_is_left_arrive(
    context: BrowserContext, service: ServiceProcess
) -> None:
    page = context.new_page()
    # An hour between flushes: only leaving the page can send these.
    _open_demo(page, service, user="e2e-unload", consent="granted", flush="3600000")
    for _ in range(5):
        page.click("#feature-cost")
    page.click("#feedback-send")
    assert page.evaluate("window.netraAnalytics.pending()") >= 6
    page.goto("about:blank")  # visibilitychange/pagehide: beacons
    time.sleep(1)
    page.close()
    wait_until(lambda: _events_written(service) >= 7, timeout=20, interval=0.5)
    rows = _rows(service, "e2e-unload")
    types = sorted(r["event_type"] for r in rows)
    assert types.count("feature_usage") == 5 and types.count("feedback_submission") == 1
    assert len(rows) == len({r["event_id"] for r in rows})


def _events_written(service: ServiceProcess) -> int:
    """Events the service's writer has stored (this test's page is its only client)."""
    return int(service.ready()["checks"]["writer"]["events_written"])


def test_nothing_arrives_without_consent(context: BrowserContext, service: ServiceProcess) -> None:
    page = context.new_page()
    _open_demo(page, service, user="e2e-ask")  # consent not answered yet
    page.click("#feature-cost")
    page.fill("#chat-input", "hello")
    page.click("#chat-send")
    page.click("#consent-decline")
    page.click("#feedback-send")
    page.click("#throw-error")
    page.wait_for_timeout(2500)
    assert page.evaluate("window.localStorage.getItem('netra_analytics_queue')") is None
    page.reload()
    page.wait_for_timeout(2000)

    later = context.new_page()  # another visitor agrees after a first event: that one is sent
    _open_demo(later, service, user="e2e-agree", flush="100")
    later.click("#feature-cost")
    later.wait_for_timeout(1000)
    assert later.evaluate("window.netraAnalytics.pending()") >= 1
    later.click("#consent-accept")
    wait_until(lambda: _drained(later), timeout=20)
    assert service.ready()["checks"]["gtm_tags"]["GTM-DEMO001"]["tag_version"]

    assert _rows(service, "e2e-ask") == []
    agreed = _rows(service, "e2e-agree")
    assert {r["event_type"] for r in agreed} >= {"feature_usage", "performance_metric"}


def test_an_event_queued_offline_for_three_days_is_stored_on_its_real_day(
    context: BrowserContext, service: ServiceProcess
) -> None:
    context.add_init_script(PAGE_CLOCK)
    page = context.new_page()
    loaded_at = time.time()
    _open_demo(page, service, user="e2e-clock", consent="granted", flush="100")
    wait_until(lambda: _drained(page), timeout=20)  # the page load metric, sent at once
    context.set_offline(True)
    captured_ms = page.evaluate("Date.now()")  # the page's clock, three days behind ours
    page.click("#feature-cost")
    page.wait_for_timeout(500)
    assert page.evaluate("window.netraAnalytics.pending()") == 1
    page.evaluate(f"window.movePageClock({3 * DAY_MS})")  # three days pass offline
    context.set_offline(False)
    wait_until(lambda: _drained(page), timeout=20)

    rows = {r["event_type"]: r for r in _rows(service, "e2e-clock")}
    assert set(rows) == {"feature_usage", "performance_metric"}
    # Captured three days ago and sent now, by a clock right at sending: its own day, neither
    # the day it arrived nor clamped to a day earlier.
    stored_ms = int(rows["feature_usage"]["timestamp_ms"])
    assert abs(stored_ms - captured_ms) < 60_000, (stored_ms, captured_ms)
    assert abs(stored_ms - (time.time() * 1000 - 3 * DAY_MS)) < 120_000
    # Captured and sent at once by a clock three days slow: corrected by that skew.
    page_load_ms = int(rows["performance_metric"]["timestamp_ms"])
    assert abs(page_load_ms - loaded_at * 1000) < 60_000, (page_load_ms, loaded_at)


def test_a_signed_out_visitor_is_their_anonymous_id_until_they_sign_in(
    context: BrowserContext, service: ServiceProcess
) -> None:
    page = context.new_page()
    _open_demo(page, service, user="e2e-signin", consent="granted", flush="100", signed_out="1")
    page.click("#feature-cost")
    wait_until(lambda: _drained(page), timeout=20)
    anonymous_id = page.evaluate("window.netraAnalytics.anonymousId()")
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", anonymous_id
    )
    assert page.evaluate("localStorage.getItem('netra_analytics_anonymous_id')") == anonymous_id
    page.click("#sign-in")
    page.click("#feature-savings")
    wait_until(lambda: _drained(page), timeout=20)
    later = context.new_page()  # the next page of this browser: the same anonymous id
    _open_demo(later, service, user="e2e-signin", consent="granted", signed_out="1")
    assert later.evaluate("window.netraAnalytics.anonymousId()") == anonymous_id

    anonymous = _rows(service, anonymous_id)
    assert {(r["event_type"], r["event_action"]) for r in anonymous} >= {
        ("feature_usage", "open"),
        ("performance_metric", "page_load"),
    }
    signed_in = _rows(service, "e2e-signin")
    assert [r["event_action"] for r in signed_in] == ["savings_identified"]
    assert _rows(service, "anonymous") == []
