"""Settings, read once from the environment and validated before anything starts.

Every variable of the product spec keeps its name and default. A bad value stops start-up with
one line that names the variable (`ConfigError`), never a traceback from deep inside a
component that happened to read it first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from netra_analytics.errors import ConfigError

T = TypeVar("T")

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
    request_timeout_seconds: float = 30.0  # a request's head, and its body, must arrive within
    max_inflight_body_bytes: int = 64 << 20  # request bodies being read at once, all together
    max_event_age_days: int = 7  # older events are refused (the tag keeps events 7 days)
    bot_filter: bool = True  # known bots' events go to bot_events, out of the reports
    privacy_signals: bool = True  # DNT: 1 and Sec-GPC: 1 drop a request's events, unstored
    store_timeout_seconds: float = 30.0  # a background store call without answer fails
    shutdown_seconds: float = 20.0  # SIGTERM to exit, at most (under a 30 s grace period)
    import_events_per_second: int = 10_000  # the historical import's bound, per process
    log_level: str = "info"

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
        )


N = TypeVar("N", int, float)


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
