"""Credentials for the auth tests: keys of each role, tokens of a test auth service (HS256, or
RS256/ES256 from a JWKS served by a real local HTTP server), and clients without credentials."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from netra_analytics.auth.keys import create_key
from netra_analytics.store.chdb_backend import ChdbStore

ISSUER = "https://auth.example.test"
AUDIENCE = "netra-analytics"
HS256_SECRET = "a-test-secret-of-more-than-32-bytes-0123456789"
ENGAGEMENT = "/api/analytics/reports/engagement"  # analyst
KEYS = "/api/analytics/keys"  # admin
ACTIVITY = "/api/analytics/reports/user-activity"  # analyst, or a user for themselves
DAY = {"start_date": "2026-11-01", "end_date": "2026-11-01"}
JWT_SETTINGS = {"jwt_secret": HS256_SECRET, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}


def claims(subject: str = "u1", roles: list[str] | None = None, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": subject,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "roles": roles or [],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def hs256(subject: str = "u1", roles: list[str] | None = None, **changes: Any) -> str:
    return jwt.encode(claims(subject, roles, **changes), HS256_SECRET, algorithm="HS256")


def bearer(credential: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}"}


@pytest.fixture
def key_of(chdb_store: ChdbStore) -> Callable[[str], str]:
    """A fresh key with this role (a unique name: the key table outlives tests)."""

    def make(role: str) -> str:
        return create_key(chdb_store, f"{role}-{uuid.uuid4().hex[:10]}", role)

    return make


@pytest.fixture
def anonymous(make_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    """make_client(...) without the default admin key."""

    def build(**changes: object) -> TestClient:
        client = make_client(**changes)
        client.headers.pop("authorization", None)
        return client

    return build


class SigningKey:
    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.kid = uuid.uuid4().hex[:12]
        if algorithm == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**public, "kid": self.kid, "alg": algorithm, "use": "sig"}

    def token(self, subject: str = "u1", roles: list[str] | None = None, **changes: Any) -> str:
        return jwt.encode(
            claims(subject, roles, **changes),
            self.private,
            algorithm=self.algorithm,
            headers={"kid": self.kid},
        )


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving `keys` as a JWKS; counts its fetches."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": [k.jwk for k in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server
