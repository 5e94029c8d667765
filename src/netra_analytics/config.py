"""Settings, read once from the environment and validated before anything starts.

Every variable of the product spec keeps its name and default. A bad value stops start-up with
one line that names the variable (`ConfigError`), never a traceback from deep inside a
component that happened to read it first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from netra_analytics.errors import ConfigError

T = TypeVar("T")

# Set by the engine owner (`workers.py`) for its worker processes; not for operators.
WORKER_PROCESS_ENV = "NETRA_WORKER_PROCESS"  # "1": this is one of ANALYTICS_WORKERS workers
LIVE_SOCKET_ENV = "NETRA_LIVE_SOCKET"  # the owner's live state (no Redis configured)
OWNER_PID_ENV = "NETRA_OWNER_PID"  # the engine owner's process id: its processes stop without it
# Set by the engine owner for its worker processes, never by an operator.
INTERNAL_ENV = frozenset({WORKER_PROCESS_ENV, LIVE_SOCKET_ENV, OWNER_PID_ENV})

# The spec's GRAFANA_API_URL default is literally "TBD": treat it as "not configured".
_UNSET_MARKERS = frozenset({"", "tbd"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClickHouseURL:
    """Where a ClickHouse server listens, parsed from `CLICKHOUSE_ANALYTICS_URL`."""

    secure: bool
    host: str
    port: int
    database: str
    username: str
    password: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    port: int = 8090
    host: str = "0.0.0.0"
    data_dir: Path = Path("./data")
    clickhouse: ClickHouseURL | None = None  # None: embedded chDB under data_dir
    clickhouse_cluster: str | None = None
    redis_url: str | None = None  # None: in-process live state
    redis_key_prefix: str = "netra:"
    grafana_api_url: str | None = None
    event_batch_size: int = 100
    event_flush_interval_ms: int = 5000
    # The writers together, and the prompt worker, insert at most once per this (never
    # longer than the flush interval; each of N workers' writers once per N times it:
    # `service.writer_insert_interval`): ClickHouse's advice, "around one insert query per
    # second" (docs: "Bulk inserts"), as each insert writes a part per table and view for the
    # merges to fold.
    min_insert_interval_ms: int = 1000
    max_events_per_user_per_minute: int = 1000
    ip_hash_secret: str | None = None  # None: generated once and kept in data_dir
    country_headers: tuple[str, ...] = ("cf-ipcountry", "x-country-code")
    forwarded_allow_ips: str = "127.0.0.1"
    spool_max_bytes: int = 1 << 30
    model_prices_file: Path | None = None  # None: the price table shipped with the package
    funnels_file: Path | None = None  # None: the journeys report's default funnels
    funnel_walk_days: int = 90  # start days of funnel walks computed ahead; 0: none
    report_cache_seconds: int = 60  # 0: never cache reports
    report_cache_max_bytes: int = 64 << 20  # in-process report cache (Redis: Redis's maxmemory)
    hot_prompts_tracked: int = 2000  # distinct prompts counted per 5-minute bucket (x2 at most)
    similarity_max_prompts: int = 20_000  # distinct prompt texts in the similarity index
    similarity_max_age_days: int = 30  # texts not asked for longer leave the index
    prompt_thread_cache_bytes: int = 64 << 20  # prompt threads in memory, per analysed spool
    request_timeout_seconds: float = 30.0  # a request's head, and its body, must arrive within
    max_inflight_body_bytes: int = 64 << 20  # request bodies being read at once, all together
    max_event_age_days: int = 7  # older events are refused (the tag keeps events 7 days)
    bot_filter: bool = True  # known bots' events go to bot_events, out of the reports
    privacy_signals: bool = True  # DNT: 1 and Sec-GPC: 1 drop a request's events, unstored
    store_timeout_seconds: float = 30.0  # a background store call without answer fails
    shutdown_seconds: float = 20.0  # SIGTERM to exit, at most (under a 30 s grace period)
    import_events_per_second: int = 10_000  # the historical import's bound, per process
    log_level: str = "info"
    # Access control and hardening (issue 15; `auth/`, README "Security").
    jwt_secret: str | None = None  # HS256 shared secret of the auth service
    jwt_jwks_url: str | None = None  # or its JWKS, for RS256/ES256
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_roles_claim: str = "roles"  # dotted path into the claims: realm_access.roles
    jwt_leeway_seconds: int = 30
    jwks_min_refresh_seconds: int = 10  # an unknown kid refetches the JWKS at most this often
    ingest_auth: bool = False  # True: ingestion needs a JWT or an ingest (or admin) key
    cors_origins: tuple[str, ...] = ("*",)  # of ingestion and the tag; no CORS elsewhere
    session_secret: str | None = None  # None: generated once and kept in data_dir
    session_hours: int = 12
    report_timeout_seconds: int = 30  # ClickHouse max_execution_time of report queries
    report_max_memory_bytes: int = 2 << 30  # ClickHouse max_memory_usage of one report query
    report_concurrency: int = 2  # report queries running at once per process
    # Observability (issue 17; README "Health and metrics").
    access_log_per_second: int = 0  # access log lines per second per process; 0: none
    health_freshness_minutes: float = 15.0  # newest stored event older, events arriving: degraded
    health_freshness_failing_minutes: float = 60.0  # ... failing
    health_tag_heartbeat_minutes: float = 60.0  # a container's tag heartbeat older: degraded
    health_spool_degraded_fraction: float = 0.5  # spool backlog of its cap: degraded
    health_spool_failing_fraction: float = 0.9  # ... failing
    health_writer_failures: int = 3  # failed inserts in a row: degraded
    workers: int = 1  # HTTP worker processes; > 1: this process owns the engine (workers.py)
    worker_process: bool = False  # one of those workers (set by the owner)
    live_socket: Path | None = None  # the owner's live state, for workers without Redis

    @property
    def embedded(self) -> bool:
        return self.clickhouse is None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                return parse(raw.strip())
            except ValueError as exc:
                raise ConfigError(name, str(exc)) from None

        defaults = cls()
        return cls(
            port=get("ANALYTICS_SERVICE_PORT", _int_in(1, 65535), defaults.port),
            host=get("ANALYTICS_SERVICE_HOST", str, defaults.host),
            data_dir=get("ANALYTICS_DATA_DIR", Path, defaults.data_dir),
            clickhouse=get("CLICKHOUSE_ANALYTICS_URL", parse_clickhouse_url, None),
            clickhouse_cluster=get("CLICKHOUSE_CLUSTER", _identifier, None),
            redis_url=get("REDIS_ANALYTICS_URL", _url_with_scheme("redis", "rediss", "unix"), None),
            redis_key_prefix=get("ANALYTICS_REDIS_KEY_PREFIX", str, defaults.redis_key_prefix),
            grafana_api_url=get("GRAFANA_API_URL", _optional_http_url, None),
            event_batch_size=get(
                "EVENT_BATCH_SIZE", _int_in(1, 100_000), defaults.event_batch_size
            ),
            event_flush_interval_ms=get(
                "EVENT_FLUSH_INTERVAL_MS", _int_in(1, 3_600_000), defaults.event_flush_interval_ms
            ),
            min_insert_interval_ms=get(
                "ANALYTICS_MIN_INSERT_INTERVAL_MS",
                _int_in(0, 60_000),
                defaults.min_insert_interval_ms,
            ),
            max_events_per_user_per_minute=get(
                "MAX_EVENTS_PER_USER_PER_MINUTE",
                _int_in(1, 10_000_000),
                defaults.max_events_per_user_per_minute,
            ),
            ip_hash_secret=get("ANALYTICS_IP_HASH_SECRET", _secret, None),
            country_headers=get(
                "ANALYTICS_COUNTRY_HEADERS", _header_list, defaults.country_headers
            ),
            forwarded_allow_ips=get("ANALYTICS_FORWARDED_ALLOW_IPS", str, "127.0.0.1"),
            spool_max_bytes=get("ANALYTICS_SPOOL_MAX_BYTES", _int_in(1 << 20, 1 << 40), 1 << 30),
            log_level=get("ANALYTICS_LOG_LEVEL", _log_level, defaults.log_level),
            model_prices_file=get("ANALYTICS_MODEL_PRICES", _existing_file, None),
            funnels_file=get("ANALYTICS_FUNNELS", _funnels_file, None),
            funnel_walk_days=get(
                "ANALYTICS_FUNNEL_WALK_DAYS", _int_in(0, 366), defaults.funnel_walk_days
            ),
            report_cache_seconds=get("ANALYTICS_REPORT_CACHE_SECONDS", _int_in(0, 86_400), 60),
            report_cache_max_bytes=get(
                "ANALYTICS_REPORT_CACHE_MAX_BYTES",
                _int_in(1 << 20, 1 << 40),
                defaults.report_cache_max_bytes,
            ),
            hot_prompts_tracked=get(
                "ANALYTICS_HOT_PROMPTS_TRACKED",
                _int_in(100, 1_000_000),
                defaults.hot_prompts_tracked,
            ),
            similarity_max_prompts=get(
                "ANALYTICS_SIMILARITY_MAX_PROMPTS",
                _int_in(1000, 10_000_000),
                defaults.similarity_max_prompts,
            ),
            prompt_thread_cache_bytes=get(
                "ANALYTICS_PROMPT_THREAD_CACHE_BYTES",
                _int_in(1 << 20, 1 << 40),
                defaults.prompt_thread_cache_bytes,
            ),
            similarity_max_age_days=get(
                "ANALYTICS_SIMILARITY_MAX_AGE_DAYS",
                _int_in(1, 3650),
                defaults.similarity_max_age_days,
            ),
            request_timeout_seconds=get(
                "ANALYTICS_REQUEST_TIMEOUT_SECONDS",
                _seconds_in(1, 3600),
                defaults.request_timeout_seconds,
            ),
            max_inflight_body_bytes=get(
                "ANALYTICS_MAX_INFLIGHT_BODY_BYTES",
                _int_in(1 << 20, 1 << 40),
                defaults.max_inflight_body_bytes,
            ),
            # Under the events' 90-day TTL, so an accepted event is never expired on arrival.
            max_event_age_days=get(
                "ANALYTICS_MAX_EVENT_AGE_DAYS", _int_in(1, 80), defaults.max_event_age_days
            ),
            bot_filter=get("ANALYTICS_BOT_FILTER", _on_off, defaults.bot_filter),
            privacy_signals=get("ANALYTICS_PRIVACY_SIGNALS", _on_off, defaults.privacy_signals),
            store_timeout_seconds=get(
                "ANALYTICS_STORE_TIMEOUT_SECONDS",
                _seconds_in(0.1, 3600),
                defaults.store_timeout_seconds,
            ),
            shutdown_seconds=get(
                "ANALYTICS_SHUTDOWN_SECONDS", _seconds_in(1, 300), defaults.shutdown_seconds
            ),
            import_events_per_second=get(
                "ANALYTICS_IMPORT_EVENTS_PER_SECOND",
                _int_in(1, 10_000_000),
                defaults.import_events_per_second,
            ),
            workers=get("ANALYTICS_WORKERS", _int_in(1, 64), defaults.workers),
            worker_process=env.get(WORKER_PROCESS_ENV) == "1",
            live_socket=get(LIVE_SOCKET_ENV, Path, None),
            **_access_settings(get),
            **_observability_settings(get),
        )


N = TypeVar("N", int, float)


def _access_settings(get: Callable[..., Any]) -> dict[str, Any]:
    """The access-control settings (issue 15), each refused at start-up when unsafe."""
    values = {
        "jwt_secret": get("ANALYTICS_JWT_SECRET", _hs256_secret, None),
        "jwt_jwks_url": get("ANALYTICS_JWT_JWKS_URL", _jwks_url, None),
        "jwt_issuer": get("ANALYTICS_JWT_ISSUER", str, None),
        "jwt_audience": get("ANALYTICS_JWT_AUDIENCE", str, None),
        "jwt_roles_claim": get("ANALYTICS_JWT_ROLES_CLAIM", str, "roles"),
        "jwt_leeway_seconds": get("ANALYTICS_JWT_LEEWAY_SECONDS", _int_in(0, 300), 30),
        "jwks_min_refresh_seconds": get("ANALYTICS_JWKS_MIN_REFRESH_SECONDS", _int_in(0, 3600), 10),
        "ingest_auth": get("ANALYTICS_INGEST_AUTH", _on_off, False),
        "cors_origins": get("ANALYTICS_CORS_ORIGINS", _origins, ("*",)),
        "session_secret": get("ANALYTICS_SESSION_SECRET", _session_secret, None),
        "session_hours": get("ANALYTICS_SESSION_HOURS", _int_in(1, 24 * 30), 12),
        "report_timeout_seconds": get("ANALYTICS_REPORT_TIMEOUT_SECONDS", _int_in(1, 3600), 30),
        "report_max_memory_bytes": get(
            "ANALYTICS_REPORT_MAX_MEMORY_BYTES", _int_in(1 << 24, 1 << 40), 2 << 30
        ),
        "report_concurrency": get("ANALYTICS_REPORT_CONCURRENCY", _int_in(1, 64), 2),
    }
    if values["jwt_secret"] and values["jwt_jwks_url"]:
        raise ConfigError("ANALYTICS_JWT_JWKS_URL", "set it or ANALYTICS_JWT_SECRET, not both")
    if values["jwt_secret"] or values["jwt_jwks_url"]:
        for name, variable in (("jwt_issuer", "ISSUER"), ("jwt_audience", "AUDIENCE")):
            if not values[name]:
                raise ConfigError(f"ANALYTICS_JWT_{variable}", "required when JWTs are accepted")
    return values


ACCESS_LOG_ON = 1_000_000  # lines per second: in effect every request


def _observability_settings(get: Callable[..., Any]) -> dict[str, Any]:
    """The access log and the health thresholds (issue 17), each checked against the other."""
    values = {
        "access_log_per_second": get("ANALYTICS_ACCESS_LOG", _access_log, 0),
        "health_freshness_minutes": get(
            "ANALYTICS_HEALTH_FRESHNESS_MINUTES", _minutes_in(0.05, 10_080), 15.0
        ),
        "health_freshness_failing_minutes": get(
            "ANALYTICS_HEALTH_FRESHNESS_FAILING_MINUTES", _minutes_in(0.05, 10_080), 60.0
        ),
        "health_tag_heartbeat_minutes": get(
            "ANALYTICS_HEALTH_TAG_HEARTBEAT_MINUTES", _minutes_in(1, 43_200), 60.0
        ),
        "health_spool_degraded_fraction": get(
            "ANALYTICS_HEALTH_SPOOL_DEGRADED_FRACTION", _fraction, 0.5
        ),
        "health_spool_failing_fraction": get(
            "ANALYTICS_HEALTH_SPOOL_FAILING_FRACTION", _fraction, 0.9
        ),
        "health_writer_failures": get("ANALYTICS_HEALTH_WRITER_FAILURES", _int_in(1, 1000), 3),
    }
    if values["health_freshness_failing_minutes"] < values["health_freshness_minutes"]:
        raise ConfigError(
            "ANALYTICS_HEALTH_FRESHNESS_FAILING_MINUTES",
            "must be at least ANALYTICS_HEALTH_FRESHNESS_MINUTES",
        )
    if values["health_spool_failing_fraction"] < values["health_spool_degraded_fraction"]:
        raise ConfigError(
            "ANALYTICS_HEALTH_SPOOL_FAILING_FRACTION",
            "must be at least ANALYTICS_HEALTH_SPOOL_DEGRADED_FRACTION",
        )
    return values


def _access_log(raw: str) -> int:
    """`on` (every request), `off`, or at most this many lines per second."""
    value = raw.lower()
    if value in {"on", "off"}:
        return ACCESS_LOG_ON if value == "on" else 0
    try:
        return _int_in(1, ACCESS_LOG_ON)(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not on, off or a number of lines per second") from None


def _minutes_in(low: float, high: float) -> Callable[[str], float]:
    return _in_range(low, high, float, "a number of minutes")


def _fraction(raw: str) -> float:
    return _in_range(0.01, 1.0, float, "a fraction such as 0.5")(raw)


def _hs256_secret(raw: str) -> str:
    # RFC 7518 3.2: a key of at least the hash's size (256 bits) for HS256.
    if len(raw.encode()) < 32:
        raise ValueError("an HS256 secret must be at least 32 bytes (RFC 7518, section 3.2)")
    return raw


def _session_secret(raw: str) -> str:
    if len(raw.encode()) < 32:
        raise ValueError("must be at least 32 bytes")
    return raw


def _jwks_url(raw: str) -> str:
    parts = urlsplit(_url_with_scheme("http", "https")(raw))
    if parts.scheme != "https" and parts.hostname not in {"localhost", "127.0.0.1", "::1"}:
        raise ValueError(f"{raw!r} must be https:// (plain http only to localhost)")
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in {"http", "https"} or not parts.hostname
                              or parts.path or parts.query):  # fmt: skip
            raise ValueError(f"{origin!r} is not an origin such as https://app.example.com or *")
    if not origins:
        raise ValueError("names no origin")
    return origins


def _in_range(low: N, high: N, convert: Callable[[str], N], what: str) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        try:
            value = convert(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not {what}") from None
        if not low <= value <= high:
            raise ValueError(f"{value:g} is outside {low:g}..{high:g}")
        return value

    return parse


def _int_in(low: int, high: int) -> Callable[[str], int]:
    return _in_range(low, high, int, "a whole number")


def _seconds_in(low: float, high: float) -> Callable[[str], float]:
    return _in_range(low, high, float, "a number of seconds")


def _on_off(raw: str) -> bool:
    value = raw.lower()
    if value not in {"on", "off"}:
        raise ValueError(f"{raw!r} is not on or off")
    return value == "on"


def _existing_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError(f"{raw!r} is not a file")
    return path


def _funnels_file(raw: str) -> Path:
    from netra_analytics.reports.funnels import load_funnels  # the reports import this module

    path = _existing_file(raw)
    load_funnels(path)
    return path


def _identifier(raw: str) -> str:
    if not raw.replace("_", "").isalnum():
        raise ValueError(f"{raw!r} is not a plain identifier (letters, digits, underscore)")
    return raw


def _secret(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw


def _header_list(raw: str) -> tuple[str, ...]:
    headers = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    if not headers:
        raise ValueError("names no header")
    return headers


def _log_level(raw: str) -> str:
    level = raw.lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ValueError(f"{raw!r} is not one of debug, info, warning, error")
    return level


def _url_with_scheme(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in schemes:
            raise ValueError(f"{raw!r} must start with {' or '.join(s + '://' for s in schemes)}")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError(f"{raw!r} names no host")
        return raw

    return parse


def _optional_http_url(raw: str) -> str | None:
    if raw.lower() in _UNSET_MARKERS:
        return None
    return _url_with_scheme("http", "https")(raw)


def parse_clickhouse_url(raw: str) -> ClickHouseURL:
    """Parse the spec's `clickhouse://localhost:8123/analytics` form (and http/https).

    `clickhouse://` and `http://` speak plain HTTP, `clickhouses://` and `https://` TLS. The path
    names the database, which must be `analytics` or empty: table names are the spec's.
    """
    parts = urlsplit(raw)
    schemes = {"clickhouse": False, "http": False, "clickhouses": True, "https": True}
    if parts.scheme not in schemes:
        raise ValueError(
            f"{raw!r} must start with clickhouse://, clickhouses://, http:// or https://"
        )
    if not parts.hostname:
        raise ValueError(f"{raw!r} names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{raw!r} has a port that is not a number") from None
    secure = schemes[parts.scheme]
    database = parts.path.strip("/") or "analytics"
    if database != "analytics":
        raise ValueError(f"database must be 'analytics', not {database!r}")
    return ClickHouseURL(
        secure=secure,
        host=parts.hostname,
        port=port or (8443 if secure else 8123),
        database=database,
        username=parts.username or "default",
        password=parts.password or "",
    )
