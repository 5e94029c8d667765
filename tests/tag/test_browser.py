"""The browser tag end to end: Debian's Chromium (headless, driven by Playwright) on the demo
page of a real `netra-analytics serve`, and what arrives in `frontend_events`."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.processes import ServiceProcess, cli_query, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
]
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
    fresh = browser.new_context()  # its own storage: no queue or session from other tests
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
        f"properties FROM analytics.frontend_events WHERE user_id = '{user}' FORMAT JSONEachRow",
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
    user_agent = page.evaluate("navigator.userAgent")

    rows = _rows(service, "e2e-all")
    assert {r["event_type"] for r in rows} == EVENT_TYPES
    assert len(rows) == len({r["event_id"] for r in rows})
    for row in rows:
        assert row["session_id"] == session_id
        assert row["page_path"] == "/demo"
        assert row["gtm_container_id"] == "GTM-DEMO001"
        assert (row["environment"], row["app_version"]) == ("demo", "demo-1")
        assert row["user_agent"] == user_agent
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
