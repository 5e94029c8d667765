"""Every refusal of issue 15's list, each on a real app over the session's chDB."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from netra_analytics.auth.keys import hash_key, list_keys, revoke_key
from netra_analytics.store.chdb_backend import ChdbStore
from tests.auth.conftest import (
    ACTIVITY,
    AUDIENCE,
    DAY,
    ENGAGEMENT,
    ISSUER,
    JWT_SETTINGS,
    KEYS,
    JwksServer,
    SigningKey,
    bearer,
    claims,
    hs256,
)
from tests.factories import body, event


def _refused(reply: Any, status: int, says: str) -> None:
    assert reply.status_code == status, reply.text
    assert says in reply.json()["detail"], reply.json()
    if status == 401:
        assert reply.headers["www-authenticate"].startswith("Bearer")


def test_no_credentials_malformed_headers_and_unknown_keys_are_401(
    anonymous: Callable[..., TestClient],
) -> None:
    client = anonymous()
    _refused(client.get(ENGAGEMENT), 401, "credentials required")
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "na_abc", "Bearer a b", "bearer\t"]:
        _refused(client.get(ENGAGEMENT, headers={"authorization": header}), 401, "malformed")
    _refused(client.get(ENGAGEMENT, headers=bearer("na_" + "x" * 43)), 401, "unknown or revoked")
    _refused(client.get(ENGAGEMENT, headers=bearer("not-a-key-nor-token")), 401, "no tokens")


def test_keys_of_each_role(anonymous: Callable[..., TestClient], key_of: Any) -> None:
    client = anonymous()
    admin, analyst, ingest = key_of("admin"), key_of("analyst"), key_of("ingest")
    assert client.get(KEYS, headers=bearer(admin)).status_code == 200
    assert client.get(ENGAGEMENT, headers=bearer(analyst)).status_code == 200
    _refused(client.get(KEYS, headers=bearer(analyst)), 403, "admin role")
    _refused(client.get(ENGAGEMENT, headers=bearer(ingest)), 403, "analyst role")
    listed = client.get(KEYS, headers=bearer(admin)).json()
    assert {"name", "role", "created_at", "revoked_at"} == set(listed[0])
    assert not any(analyst in json.dumps(k) for k in listed)


def test_a_revoked_key_is_refused_by_every_worker_within_seconds(
    make_client: Callable[..., TestClient], chdb_store: ChdbStore, key_of: Any
) -> None:
    """Two apps over one store stand for two workers: each caches the key table."""
    workers = [make_client(), make_client()]
    key = key_of("analyst")
    started = time.monotonic()
    for worker in workers:  # a key created after both started is honoured within seconds
        while worker.get(ENGAGEMENT, headers=bearer(key)).status_code != 200:
            assert time.monotonic() - started < 5
            time.sleep(0.1)
    name = next(k.name for k in list_keys(chdb_store) if k.key_hash == hash_key(key))
    revoke_key(chdb_store, name)
    revoked_at = time.monotonic()
    for worker in workers:
        while worker.get(ENGAGEMENT, headers=bearer(key)).status_code != 401:
            assert time.monotonic() - revoked_at < 5, "the revoked key is still honoured"
            time.sleep(0.1)
    reply = workers[1].get(ENGAGEMENT, headers=bearer(key))
    _refused(reply, 401, "unknown or revoked")


def test_keys_are_stored_only_as_hashes(chdb_store: ChdbStore, key_of: Any) -> None:
    key = key_of("admin")
    rows = chdb_store.query_rows("SELECT * FROM analytics.api_keys")
    assert rows and key not in json.dumps(rows, default=str)
    assert all(len(r["key_hash"]) == 64 for r in rows)


# --- JWTs (HS256) ------------------------------------------------------------------------


def test_tokens_are_refused_when_expired_of_another_issuer_audience_or_key(
    anonymous: Callable[..., TestClient],
) -> None:
    client = anonymous(**JWT_SETTINGS)
    ok = hs256(roles=["analyst"])
    assert client.get(ENGAGEMENT, headers=bearer(ok)).status_code == 200
    long_ago = int(time.time()) - 3600
    cases = {
        "expired": hs256(roles=["analyst"], iat=long_ago - 60, exp=long_ago),
        "issuer": hs256(roles=["analyst"], iss="https://evil.example"),
        "audience": hs256(roles=["analyst"], aud="someone-else"),
        "Signature verification failed": jwt.encode(
            claims(roles=["analyst"]), "another-secret-of-more-than-32-bytes-xx", "HS256"
        ),
        "Signature verification failed ": ok[:-4] + ("AAAA" if not ok.endswith("AAAA") else "BBBB"),
        'missing the "exp" claim': hs256(roles=["analyst"], exp=None),
        'missing the "sub" claim': hs256(roles=["analyst"], sub=None),
    }
    for says, token in cases.items():
        _refused(client.get(ENGAGEMENT, headers=bearer(token)), 401, says.strip())


def test_a_token_within_the_leeway_is_accepted(anonymous: Callable[..., TestClient]) -> None:
    client = anonymous(**JWT_SETTINGS)
    just_expired = hs256(roles=["analyst"], exp=int(time.time()) - 5)
    assert client.get(ENGAGEMENT, headers=bearer(just_expired)).status_code == 200


def _unsigned(body: dict[str, Any], alg: str = "none") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(body)}."


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_an_alg_none_token_is_refused(anonymous: Callable[..., TestClient], alg: str) -> None:
    client = anonymous(**JWT_SETTINGS)
    token = _unsigned(claims(roles=["admin"]), alg)
    _refused(client.get(KEYS, headers=bearer(token)), 401, "invalid token")


def test_roles_come_from_the_configured_claim(anonymous: Callable[..., TestClient]) -> None:
    client = anonymous(**JWT_SETTINGS, jwt_roles_claim="realm_access.roles")
    nested = hs256(realm_access={"roles": ["admin"]})
    assert client.get(KEYS, headers=bearer(nested)).status_code == 200
    flat = hs256(roles=["admin"])  # the default claim is not read now: a plain user
    _refused(client.get(KEYS, headers=bearer(flat)), 403, "admin role")


def test_a_plain_user_reads_only_their_own_activity(anonymous: Callable[..., TestClient]) -> None:
    client = anonymous(**JWT_SETTINGS)
    alice = bearer(hs256("alice"))
    assert client.get(ACTIVITY, params=DAY | {"user_id": "alice"}, headers=alice).status_code == 200
    _refused(client.get(ACTIVITY, params=DAY | {"user_id": "bob"}, headers=alice), 403, "own")
    _refused(client.get(ACTIVITY, params=DAY, headers=alice), 403, "own")  # everyone's
    _refused(client.get(ENGAGEMENT, headers=alice), 403, "analyst role")
    analyst = bearer(hs256("carol", ["analyst"]))
    assert client.get(ACTIVITY, params=DAY | {"user_id": "bob"}, headers=analyst).status_code == 200


# --- JWKS (RS256, ES256) -----------------------------------------------------------------


def test_jwks_tokens_and_a_key_rotation_are_picked_up(
    anonymous: Callable[..., TestClient], jwks: JwksServer
) -> None:
    first, second = SigningKey("RS256"), SigningKey("ES256")
    jwks.keys = [first]
    client = anonymous(
        jwt_jwks_url=jwks.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_min_refresh_seconds=0
    )
    assert client.get(ENGAGEMENT, headers=bearer(first.token(roles=["analyst"]))).status_code == 200
    assert client.get(ENGAGEMENT, headers=bearer(first.token(roles=["analyst"]))).status_code == 200
    assert jwks.fetches == 1  # cached
    jwks.keys = [second]  # the auth service rotates: a new kid, the old key withdrawn
    assert (
        client.get(ENGAGEMENT, headers=bearer(second.token(roles=["analyst"]))).status_code == 200
    )
    assert jwks.fetches == 2  # fetched again for the unknown kid
    forged = jwt.encode(
        claims(roles=["admin"]),
        SigningKey("ES256").private,
        algorithm="ES256",
        headers={"kid": second.kid},
    )
    _refused(client.get(KEYS, headers=bearer(forged)), 401, "Signature verification failed")
    # An HS256 token "signed" with the public key: the algorithm is the mode's, not the token's.
    confused = _unsigned(claims(roles=["admin"]), "HS256")
    _refused(client.get(KEYS, headers=bearer(confused)), 401, "")


def test_unknown_kids_do_not_hammer_the_auth_service(
    anonymous: Callable[..., TestClient], jwks: JwksServer
) -> None:
    signing = SigningKey("ES256")
    jwks.keys = [signing]
    client = anonymous(
        jwt_jwks_url=jwks.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_min_refresh_seconds=60
    )
    assert (
        client.get(ENGAGEMENT, headers=bearer(signing.token(roles=["analyst"]))).status_code == 200
    )
    stranger = SigningKey("ES256")
    for _ in range(5):
        _refused(client.get(ENGAGEMENT, headers=bearer(stranger.token())), 401, "")
    assert jwks.fetches <= 2


# --- Ingestion ---------------------------------------------------------------------------


def _events(user_id: str) -> dict[str, Any]:
    return body([event("chat_interaction")], user_id=user_id)


def test_a_signed_in_page_sends_events_as_its_user_only(
    anonymous: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = anonymous(**JWT_SETTINGS, event_batch_size=1, event_flush_interval_ms=20)
    page = bearer(hs256("alice"))
    mine = client.post("/api/analytics/events", json=_events("alice"), headers=page)
    assert mine.status_code == 202, mine.text
    theirs = client.post("/api/analytics/events", json=_events("bob"), headers=page)
    _refused(theirs, 403, "context.user_id is not the signed-in user")
    anonymous_page = client.post("/api/analytics/events", json=_events("bob"))
    assert anonymous_page.status_code == 202  # ingestion stays open to browsers by default
    _refused(
        client.post("/api/analytics/events", json=_events("u1"), headers=bearer(hs256(exp=1))),
        401,
        "expired",
    )


def test_ingestion_may_require_a_credential(
    anonymous: Callable[..., TestClient], key_of: Any
) -> None:
    ingest, analyst = bearer(key_of("ingest")), bearer(key_of("analyst"))
    client = anonymous(ingest_auth=True, **JWT_SETTINGS)
    events = "/api/analytics/events"
    _refused(client.post(events, json=_events("u1")), 401, "ingestion needs")
    assert client.post(events, json=_events("u1"), headers=ingest).status_code == 202
    assert client.post(events, json=_events("u1"), headers=bearer(hs256("u1"))).status_code == 202
    _refused(client.post(events, json=_events("u1"), headers=analyst), 403, "ingest key")
