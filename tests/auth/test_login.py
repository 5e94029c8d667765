"""The dashboard's session in-process: cookie attributes, Secure behind HTTPS, where sign-in
leads, and the ends of a session (sign-out, expiry, forgery, a revoked key)."""

from __future__ import annotations

import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner

from netra_analytics.auth.keys import hash_key, list_keys, revoke_key
from netra_analytics.auth.routes import safe_next
from netra_analytics.store.chdb_backend import ChdbStore
from tests.auth.conftest import ENGAGEMENT, JWT_SETTINGS, bearer, hs256


def _sign_in(client: TestClient, credential: str, next: str = "/") -> Any:
    return client.post(
        "/login", data={"credential": credential, "next": next}, follow_redirects=False
    )


def _cookie(reply: Any) -> Any:
    parsed = SimpleCookie()
    parsed.load(reply.headers["set-cookie"])
    return parsed["netra_session"]


def test_a_key_signs_in_with_a_strict_http_only_cookie(
    anonymous: Callable[..., TestClient], key_of: Any
) -> None:
    key = key_of("analyst")
    client = anonymous()
    reply = _sign_in(client, key, ENGAGEMENT)
    assert reply.status_code == 303 and reply.headers["location"] == ENGAGEMENT
    cookie = _cookie(reply)
    assert cookie["httponly"] and cookie["samesite"] == "strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP here; see the next test
    assert int(cookie["max-age"]) == 12 * 3600
    assert (
        key not in reply.headers["set-cookie"] and hash_key(key) not in reply.headers["set-cookie"]
    )
    assert client.get(ENGAGEMENT).status_code == 200  # the cookie works where a key does
    assert "Signed in as" in client.get("/login").text
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (
        'netra_session=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    )
    assert client.get(ENGAGEMENT).status_code == 401


def test_the_cookie_is_secure_behind_https(
    anonymous: Callable[..., TestClient], key_of: Any
) -> None:
    client = anonymous()
    client.base_url = client.base_url.copy_with(scheme="https")
    assert _cookie(_sign_in(client, key_of("analyst")))["secure"]


def test_a_bad_credential_is_refused_on_the_page(anonymous: Callable[..., TestClient]) -> None:
    client = anonymous()
    reply = _sign_in(client, "na_" + "x" * 43)
    assert reply.status_code == 401 and "unknown or revoked API key" in reply.text
    assert "set-cookie" not in reply.headers
    assert _sign_in(client, "").status_code == 400
    assert "<script" not in reply.text.lower()
    assert "script-src 'self'" in reply.headers["content-security-policy"]


def test_a_token_signs_in_until_it_expires(anonymous: Callable[..., TestClient]) -> None:
    client = anonymous(**JWT_SETTINGS)
    soon = int(time.time()) + 2
    assert _sign_in(client, hs256("ana", ["analyst"], exp=soon)).status_code == 303
    assert client.get(ENGAGEMENT).status_code == 200
    time.sleep(max(0.0, soon - time.time()) + 0.1)
    assert client.get(ENGAGEMENT).status_code == 401  # the session ends with the token


def test_revoking_the_key_ends_its_sessions(
    anonymous: Callable[..., TestClient], chdb_store: ChdbStore, key_of: Any
) -> None:
    key = key_of("analyst")
    client = anonymous()
    _sign_in(client, key)
    assert client.get(ENGAGEMENT).status_code == 200
    revoke_key(
        chdb_store, next(k.name for k in list_keys(chdb_store) if k.key_hash == hash_key(key))
    )
    deadline = time.monotonic() + 5
    while client.get(ENGAGEMENT).status_code != 401:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_expired_and_forged_cookies_are_refused(
    anonymous: Callable[..., TestClient], key_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = key_of("admin")
    client = anonymous()
    stamp = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: stamp(self) - 12 * 3600 - 5)
    _sign_in(client, key)
    monkeypatch.undo()
    assert client.get(ENGAGEMENT).status_code == 401  # signed 12 h ago: expired
    _sign_in(client, key)
    value = client.cookies["netra_session"]
    client.cookies.clear()
    client.cookies.set("netra_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get(ENGAGEMENT).status_code == 401
    other = anonymous(session_secret="another-session-secret-of-32-bytes-or-more")
    _sign_in(other, key)
    client.cookies.clear()
    client.cookies.set("netra_session", other.cookies["netra_session"])
    assert client.get(ENGAGEMENT).status_code == 401  # signed with another secret


@pytest.mark.parametrize(
    ("target", "goes"),
    [
        ("/dashboards/spend?x=1", "/dashboards/spend?x=1"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_sign_in_leads_only_to_this_site(target: str | None, goes: str) -> None:
    assert safe_next(target) == goes


def test_a_key_in_the_header_wins_over_a_cookie(
    anonymous: Callable[..., TestClient], key_of: Any
) -> None:
    client = anonymous()
    _sign_in(client, key_of("admin"))
    assert client.get(ENGAGEMENT, headers=bearer("na_unknown")).status_code == 401
