"""Signing in to the dashboard in Debian's Chromium (Playwright) on a real `netra-analytics
serve`: the login page, the cookie's flags as the browser keeps them, and sign-out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.support.processes import ServiceProcess
from tests.tag.test_browser import USER_AGENT, browser  # the module's Chromium

__all__ = ["browser"]  # a fixture, used by name
pytestmark = pytest.mark.slow
ENGAGEMENT = "/api/analytics/reports/engagement"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(tmp_path / "data")
    process.start()
    yield process
    process.kill()


def test_sign_in_cookie_and_sign_out_in_chromium(browser: Browser, service: ServiceProcess) -> None:
    key = service.admin_headers()["authorization"].split()[-1]
    context = browser.new_context(user_agent=USER_AGENT)
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    visited: list[str] = []
    page.on("request", lambda r: visited.append(r.url))

    # A page of the service, asked for without a session, leads to the login page.
    page.goto(f"{service.url}{ENGAGEMENT}")
    assert page.url == f"{service.url}/login?next=/api/analytics/reports/engagement"
    page.fill("#credential", "na_" + "x" * 43)
    page.click("#sign-in")
    assert "unknown or revoked API key" in page.inner_text("main")
    assert context.cookies() == []

    page.fill("#credential", key)
    with page.expect_navigation():
        page.click("#sign-in")
    assert page.url == f"{service.url}{ENGAGEMENT}"
    assert "active_users" in page.inner_text("body")
    (cookie,) = context.cookies()
    assert cookie["name"] == "netra_session"
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP on localhost; Secure behind HTTPS (test_login.py)
    assert 11.9 * 3600 < cookie["expires"] - time.time() <= 12 * 3600
    assert page.evaluate("document.cookie") == ""  # no script can read it
    assert not any(key in url for url in visited)  # the key never went into a URL

    page.goto(f"{service.url}/login")
    assert page.inner_text("#who") == "admin"
    with page.expect_navigation():
        page.click("#sign-out")
    assert page.url == f"{service.url}/login"
    assert context.cookies() == []
    page.goto(f"{service.url}{ENGAGEMENT}")
    assert page.url.startswith(f"{service.url}/login?next=")
    assert blocked == []  # the login page runs under its CSP without a violation
    context.close()
