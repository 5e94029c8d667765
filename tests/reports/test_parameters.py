"""Every report's parameters: a bad value is a 422 naming it, never a 5xx or ClickHouse's text;
dates are bounded to what the store holds, time zones to those both Python and ClickHouse know.

One app over the session's chDB serves the whole module (Hypothesis runs many examples), with a
few days of events and prompts in it and the report cache off, so that every example queries.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Union, get_args, get_origin
from urllib.parse import quote
from zoneinfo import ZoneInfo

import orjson
import pytest
from annotated_types import Ge, Le, MaxLen
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netra_analytics.app import create_app
from netra_analytics.auth.keys import ADMIN, create_key
from netra_analytics.config import Settings, parse_clickhouse_url
from netra_analytics.errors import StoreError
from netra_analytics.prompts.classify import CATEGORIES
from netra_analytics.reports.activity import HOUR_LABEL, MAX_DAYS, periods
from netra_analytics.reports.common import FIRST_DATE, LAST_DATE, python_zones
from netra_analytics.reports.funnels import load_funnels
from netra_analytics.store.base import Params
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.http_backend import HttpStore
from tests.support.processes import ChdbHttpServer

REPORTS = "/api/analytics/reports/"
ACTIVITY = REPORTS + "user-activity"
DATED = ("user-activity", "feedback", "ai-spend", "journeys")
CH_ZONES = "SELECT time_zone AS name FROM system.time_zones"
LEAKS = ("SELECT", "FROM analytics.", "Traceback", "DB::Exception")


def _seed(store: ChdbStore) -> None:
    """Two weeks of a few users' events and prompts, up to today (UTC)."""
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    kinds = ["chat_interaction", "feature_usage", "performance_metric", "thread_lifecycle"]
    events = [
        {"user_id": f"p{n % 3}", "session_id": f"s{n % 5}", "event_type": kinds[n % 4],
         "event_action": "created", "page_path": f"/page{n % 3}", "properties": "{}",
         "event_value": float(n), "timestamp": str(now - timedelta(hours=7 * n))}
        for n in range(48)
    ]  # fmt: skip
    store.insert_json_rows("frontend_events", b"\n".join(orjson.dumps(e) for e in events))
    prompts = [
        {"user_id": f"p{n % 3}", "prompt_hash": f"h{n % 4}", "prompt_text": "How to cut cost?",
         "prompt_category": "cost_optimisation", "prompt_intent": "question", "version": 1,
         "prompt_complexity_score": 0.5, "timestamp": str(now - timedelta(minutes=50 * n))}
        for n in range(24)
    ]  # fmt: skip
    store.insert_json_rows("prompt_analytics", b"\n".join(orjson.dumps(p) for p in prompts))


@pytest.fixture(scope="module")
def app_client(
    chdb_store: ChdbStore, tmp_path_factory: pytest.TempPathFactory, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    _seed(chdb_store)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("parameters") / "data",
        ip_hash_secret="test-secret-0123456789",
        funnel_walk_days=0,
        report_cache_seconds=0,  # every example runs its queries
    )
    with TestClient(create_app(settings, store=chdb_store), headers=admin_headers) as client:
        yield client


@pytest.fixture(scope="module")
def both_zones(chdb_store: ChdbStore) -> frozenset[str]:
    return python_zones() & {row["name"] for row in chdb_store.query_rows(CH_ZONES)}


def _named(reply: Any, parameter: str) -> str:
    """The message of the 422 `reply`, which must name `parameter` (and only it)."""
    assert reply.status_code == 422, reply.text
    [problem] = reply.json()["detail"]
    assert problem["loc"] == ["query", parameter], problem
    message: str = problem["msg"]
    return message


def _clean(reply: Any) -> None:
    assert reply.status_code < 500, reply.text
    for leak in LEAKS:
        assert leak not in reply.text, reply.text


# The exact examples of issue 12.


def test_a_zone_clickhouse_does_not_know_is_a_422_naming_tz(app_client: TestClient) -> None:
    reply = app_client.get(
        ACTIVITY, params={"start_date": "2026-11-01", "end_date": "2026-11-01", "tz": "right/UTC"}
    )
    assert "right/UTC" in _named(reply, "tz")
    _clean(reply)


@pytest.mark.parametrize(
    ("start", "granularity", "tz"),
    [
        ("9999-12-31", "day", "UTC"),
        ("9999-12-31", "hour", "UTC"),
        ("9999-12-31", "month", "UTC"),
        ("9999-12-27", "week", "UTC"),
        ("0001-01-01", "day", "Asia/Tokyo"),
    ],
)
def test_dates_beyond_the_store_are_a_422_naming_start_date_and_the_bounds(
    app_client: TestClient, start: str, granularity: str, tz: str
) -> None:
    end = "9999-12-31" if start.startswith("9999") else start
    reply = app_client.get(
        ACTIVITY,
        params={"start_date": start, "end_date": end, "granularity": granularity, "tz": tz},
    )
    message = _named(reply, "start_date")
    assert (
        message
        == f"start_date {start} is outside the dates reports cover, 1970-02-01 to 2105-12-31"
    )
    _clean(reply)


# The classes: dates, periods, zones.


@pytest.mark.parametrize("report", DATED)
@pytest.mark.parametrize(
    ("start", "end", "named"),
    [
        (FIRST_DATE - timedelta(days=1), FIRST_DATE, "start_date"),
        (LAST_DATE, LAST_DATE + timedelta(days=1), "end_date"),
        (date(1900, 1, 1), date(1900, 1, 2), "start_date"),
        (date(2149, 6, 6), date(2149, 6, 6), "start_date"),
    ],
)
def test_every_dated_report_refuses_dates_outside_the_bounds(
    app_client: TestClient, report: str, start: date, end: date, named: str
) -> None:
    reply = app_client.get(
        REPORTS + report, params={"start_date": str(start), "end_date": str(end)}
    )
    assert f"{FIRST_DATE} to {LAST_DATE}" in _named(reply, named)


@pytest.mark.parametrize("report", DATED)
@pytest.mark.parametrize("day", [FIRST_DATE, LAST_DATE])
def test_every_dated_report_answers_on_the_bounds(
    app_client: TestClient, report: str, day: date
) -> None:
    reply = app_client.get(REPORTS + report, params={"start_date": str(day), "end_date": str(day)})
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("granularity", ["hour", "day", "week", "month"])
@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Etc/GMT+12", "Australia/Lord_Howe"])
@pytest.mark.parametrize("user_id", [None, "p1"])
def test_user_activity_answers_on_the_bounds_in_every_granularity(
    app_client: TestClient, granularity: str, tz: str, user_id: str | None
) -> None:
    """The first and last days, one period each side of them, in the zones farthest from UTC
    (+14, -12) and one with half-hour daylight saving time."""
    span = timedelta(days=min(MAX_DAYS[granularity], 40) - 1)
    for first, last in ((FIRST_DATE, FIRST_DATE + span), (LAST_DATE - span, LAST_DATE)):
        params = {"start_date": str(first), "end_date": str(last), "granularity": granularity}
        params["tz"] = tz
        reply = app_client.get(ACTIVITY, params=params | ({"user_id": user_id} if user_id else {}))
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["periods"]) == len(periods(first, last, granularity, ZoneInfo(tz)))


@pytest.mark.parametrize("granularity", ["hour", "day", "week", "month"])
def test_a_range_too_long_for_its_granularity_is_a_422_naming_the_limit(
    app_client: TestClient, granularity: str
) -> None:
    """Hours over a century would be ~900,000 zero rows: the span per granularity bounds it."""
    days = MAX_DAYS[granularity]
    start = date(2026, 1, 5)
    params = {"start_date": str(start), "granularity": granularity}
    reply = app_client.get(ACTIVITY, params=params | {"end_date": str(start + timedelta(days))})
    message = _named(reply, "end_date")
    assert message == f"the range may span at most {days} days with granularity={granularity}"
    longest = app_client.get(
        ACTIVITY, params=params | {"end_date": str(start + timedelta(days - 1))}
    )
    assert longest.status_code == 200, longest.text
    century = app_client.get(
        ACTIVITY,
        params={"start_date": "2000-01-01", "end_date": "2099-12-31", "granularity": "hour"},
    )
    assert "31 days" in _named(century, "end_date")


@settings(max_examples=200, deadline=None)
@given(
    start=st.dates(FIRST_DATE, LAST_DATE),
    length=st.integers(0, max(MAX_DAYS.values()) - 1),
    granularity=st.sampled_from(sorted(MAX_DAYS)),
    tz=st.sampled_from(sorted(python_zones())),
)
def test_periods_within_the_bounds_never_overflow_and_stay_few(
    start: date, length: int, granularity: str, tz: str
) -> None:
    """Any range the checks let through, in any zone: no overflow, and at most 745 periods
    (31 days of hours, one of them with a clock going back), in order, none twice."""
    end = min(start + timedelta(days=length % MAX_DAYS[granularity]), LAST_DATE)
    labels = periods(start, end, granularity, ZoneInfo(tz))
    assert 1 <= len(labels) <= 745
    assert len(set(labels)) == len(labels)


def test_every_zone_both_know_works_on_both_sides(
    chdb_store: ChdbStore, both_zones: frozenset[str]
) -> None:
    """All ~600 of them: Python loads each, and ClickHouse takes each in the functions the
    reports give it (one query with a column per zone; the Hypothesis test below goes through
    HTTP with a sample)."""
    assert "UTC" in both_zones and "Europe/Paris" in both_zones and len(both_zones) > 300
    zones = sorted(both_zones)
    for tz in zones:
        ZoneInfo(tz)
    columns = ", ".join(
        f"formatDateTime(toStartOfHour(t, {{z{n}:String}}), '%Y-%m-%dT%H:00%z', {{z{n}:String}}) "
        f"AS c{n}, toMonday(t, {{z{n}:String}}) AS w{n}, toStartOfMonth(t, {{z{n}:String}}) AS m{n}"
        for n in range(len(zones))
    )
    sql = f"SELECT {columns} FROM (SELECT toDateTime64('2026-03-29 01:30:00', 3, 'UTC') AS t)"
    [row] = chdb_store.query_rows(sql, {f"z{n}": tz for n, tz in enumerate(zones)})
    when = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    for n, tz in enumerate(zones):  # and both sides label the hour alike
        assert row[f"c{n}"] == when.astimezone(ZoneInfo(tz)).strftime(HOUR_LABEL), tz


def test_a_zone_only_one_side_knows_is_refused(
    app_client: TestClient, chdb_store: ChdbStore, both_zones: frozenset[str]
) -> None:
    clickhouse = {row["name"] for row in chdb_store.query_rows(CH_ZONES)}
    one_sided = (python_zones() ^ clickhouse) | {"right/UTC", "posix/UTC", "localtime", "utc"}
    for tz in sorted(one_sided - both_zones):
        reply = app_client.get(
            ACTIVITY, params={"start_date": "2026-11-01", "end_date": "2026-11-01", "tz": tz}
        )
        _named(reply, "tz")
        _clean(reply)


ODD_ZONES = ["right/UTC", "posix/Asia/Tokyo", "right/Europe/Paris", "localtime", "Factory",
             "UTC ", "utc", "Europe//Paris", "../../etc/passwd", "Etc/GMT+14", "' OR 1=1 --", "",
             "EST5EDT", "US/Pacific-New"]  # fmt: skip
zone_names = st.one_of(
    st.sampled_from(sorted(python_zones())), st.sampled_from(ODD_ZONES), st.text(max_size=30)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tz=zone_names)
def test_a_zone_is_accepted_exactly_when_both_know_it(
    app_client: TestClient, both_zones: frozenset[str], tz: str
) -> None:
    reply = app_client.get(
        ACTIVITY, params={"start_date": "2026-11-01", "end_date": "2026-11-02", "tz": tz}
    )
    if tz in both_zones:
        assert reply.status_code == 200, reply.text
    else:
        _named(reply, "tz")
    _clean(reply)


class _ZonesOf:
    """A store whose ClickHouse knows only `zones` (a server older or newer than chDB)."""

    def __init__(self, store: ChdbStore, zones: set[str]) -> None:
        self._store, self._zones = store, zones

    def query_rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        if "system.time_zones" in sql:
            return [{"name": zone} for zone in sorted(self._zones)]
        return self._store.query_rows(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_the_zones_are_the_stores_and_read_once(
    chdb_store: ChdbStore, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    store = _ZonesOf(chdb_store, {"UTC", "Europe/Paris", "Mars/Olympus_Mons"})
    reads = []
    query_rows = store.query_rows

    def counted(sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        reads.append("system.time_zones" in sql)
        return query_rows(sql, params)

    store.query_rows = counted  # type: ignore[method-assign]
    settings = Settings(data_dir=tmp_path / "data", ip_hash_secret="test-secret-0123456789",
                        funnel_walk_days=0)  # fmt: skip
    with TestClient(create_app(settings, store=store), headers=admin_headers) as client:
        day = {"start_date": "2026-11-01", "end_date": "2026-11-01"}
        assert client.get(ACTIVITY, params=day | {"tz": "Europe/Paris"}).status_code == 200
        _named(client.get(ACTIVITY, params=day | {"tz": "Asia/Tokyo"}), "tz")  # not this store's
        _named(client.get(ACTIVITY, params=day | {"tz": "Mars/Olympus_Mons"}), "tz")  # not Python's
        assert client.get(ACTIVITY, params=day | {"tz": "UTC"}).status_code == 200
    assert reads.count(True) == 1


def test_the_zones_of_a_clickhouse_server_over_http(tmp_path: Path) -> None:
    server = ChdbHttpServer(tmp_path / "db")
    server.start()
    store = HttpStore(parse_clickhouse_url(server.url), connect_timeout=2, timeout=30)
    settings = Settings(data_dir=tmp_path / "data", ip_hash_secret="test-secret-0123456789",
                        funnel_walk_days=0)  # fmt: skip
    try:
        with TestClient(create_app(settings, store=store)) as client:
            client.headers["authorization"] = f"Bearer {create_key(store, 'zones', ADMIN)}"
            day = {"start_date": "2026-11-01", "end_date": "2026-11-01", "granularity": "hour"}
            reply = client.get(ACTIVITY, params=day | {"tz": "Asia/Kolkata"})
            assert reply.status_code == 200, reply.text
            assert reply.json()["periods"][0]["period"] == "2026-11-01T00:00+0530"
            _named(client.get(ACTIVITY, params=day | {"tz": "right/UTC"}), "tz")
    finally:
        store.close()
        server.kill()


def test_a_store_error_while_reading_the_zones_is_not_cached(
    chdb_store: ChdbStore, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    failing = [True]

    class Flaky(_ZonesOf):
        def query_rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
            if "system.time_zones" in sql and failing[0]:
                raise StoreError("Code: 999. DB::Exception: boom. In scope SELECT time_zone")
            return super().query_rows(sql, params)

    settings = Settings(data_dir=tmp_path / "data", ip_hash_secret="test-secret-0123456789",
                        funnel_walk_days=0)  # fmt: skip
    store = Flaky(chdb_store, {"UTC"})
    with TestClient(create_app(settings, store=store), headers=admin_headers) as client:
        day = {"start_date": "2026-11-01", "end_date": "2026-11-01"}
        first = client.get(ACTIVITY, params=day)
        assert first.status_code == 500 and first.json()["error"] == "StoreError"
        _clean_body = first.text
        assert "SELECT" not in _clean_body and "DB::Exception" not in _clean_body
        failing[0] = False
        assert client.get(ACTIVITY, params=day).status_code == 200


# Every report's parameters fuzzed. Any values: no 5xx, no SQL in the reply, and a 422 names
# parameters of the route. Usable values anywhere in the bounds: 200. The parameters are found
# on the routes, so that a new report or parameter is fuzzed too.


def _report_routes() -> list[tuple[str, APIRoute]]:
    app = create_app(Settings(data_dir=Path("unused"), ip_hash_secret="test-secret-0123456789"))
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and str(context.path).startswith(REPORTS):
            found.append((str(context.path), route))
    return found


ROUTES = _report_routes()
ROUTE_IDS = [path.removeprefix(REPORTS) for path, _ in ROUTES]

NASTY = ["", " ", "' OR 1=1 --", "1; DROP TABLE analytics.frontend_events", "right/UTC",
         "../../etc/passwd", "%00", "\x00", "null", "-1", "0", "1e309", "NaN",
         "99999999999999999999999", "9999-12-31", "0001-01-01", "2026-02-30", "😀" * 20,
         "a" * 300, "{tz:String}", "\\", "2026-11-01T00:00:00"]  # fmt: skip
junk = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
KNOWN_TEXT = {  # usable values of the text parameters ("localtime" is Python's only)
    "tz": sorted(python_zones() - {"localtime"}),
    "category": sorted(CATEGORIES),
    "funnel": sorted(load_funnels(None)),
    "user_id": ["p0", "p1", "nobody"],
}
SOON = date(2026, 11, 1)  # around the seeded data
LATER = "(start_date + a few days)"
SHORT_RANGE = 30  # days: within every report's limit, at every granularity


def _bound(metadata: list[Any], kind: type[Ge | Le | MaxLen]) -> Any:
    """A parameter's bound from its Query(...) constraints: ge, le or max_length (else None)."""
    attribute = {Ge: "ge", Le: "le", MaxLen: "max_length"}[kind]
    return next((getattr(m, attribute) for m in metadata if isinstance(m, kind)), None)


def _value(draw: st.DrawFn, kind: str, param: Any) -> str | None:
    """One parameter's text for a kind of value (usable, edge, junk), or None (absent)."""
    name, annotation, metadata = param.name, param.field_info.annotation, param.field_info.metadata
    if get_origin(annotation) in (Union, types.UnionType):
        [annotation] = [a for a in get_args(annotation) if a is not type(None)]
    if kind == "absent":
        return None
    if kind == "junk":
        return draw(junk)
    if annotation is date:
        if kind == "edge":
            edges = [FIRST_DATE, LAST_DATE, FIRST_DATE - timedelta(1), LAST_DATE + timedelta(1)]
            return str(draw(st.one_of(st.dates(), st.sampled_from(edges))))
        if name == "end_date":
            return LATER  # set from start_date once it is drawn
        near = st.integers(-60, 10).map(lambda days: SOON + timedelta(days=days))
        anywhere = st.dates(FIRST_DATE, LAST_DATE - timedelta(days=SHORT_RANGE))
        return str(draw(st.one_of(near, near, anywhere)))
    if annotation is int:
        low, high = _bound(metadata, Ge), _bound(metadata, Le)
        if kind == "edge":
            return str(draw(st.one_of(st.integers(), st.sampled_from([low - 1, high + 1]))))
        return str(draw(st.integers(low, min(high, 1000))))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return draw(st.sampled_from([str(member.value) for member in annotation]))
    usable = KNOWN_TEXT.get(name)
    if usable is None or kind == "edge":
        return draw(st.text(max_size=_bound(metadata, MaxLen) or 64))
    return draw(st.sampled_from(usable))


@st.composite
def _queries(draw: st.DrawFn, route: APIRoute, usable_only: bool = False) -> dict[str, str]:
    """A query string for the route: each parameter mostly usable (odds that leave about half
    the examples usable throughout), else at or past an edge, anything, or absent."""
    params = route.dependant.query_params
    kinds = st.one_of(
        *[st.just("usable")] * (5 * len(params)), st.sampled_from(["edge", "junk", "absent"])
    )
    query = {}
    for param in params:
        value = _value(draw, "usable" if usable_only else draw(kinds), param)
        if value is not None:
            query[param.name] = value
    if query.get("end_date") == LATER:  # mostly short, sometimes long, or reversed
        try:
            start = date.fromisoformat(query.get("start_date", ""))
        except ValueError:
            start = SOON
        short = st.integers(0, SHORT_RANGE - 1)
        days = draw(short if usable_only else st.one_of(short, short, st.integers(-2, 1200)))
        try:
            query["end_date"] = str(start + timedelta(days=days))
        except OverflowError:
            query["end_date"] = str(start)
    return query


def _url(path: str, route: APIRoute, values: list[str]) -> str:
    for param, value in zip(route.dependant.path_params, values, strict=True):
        path = path.replace("{" + param.name + "}", quote(value, safe=""))
    return path


def _path_values(route: APIRoute) -> st.SearchStrategy[list[str]]:
    count = len(route.dependant.path_params)
    return st.lists(junk.filter(bool), min_size=count, max_size=count)


@pytest.mark.parametrize(("path", "route"), ROUTES, ids=ROUTE_IDS)
def test_any_report_parameters_give_no_5xx(
    app_client: TestClient, path: str, route: APIRoute
) -> None:
    names = {param.name for param in route.dependant.query_params}

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(query=_queries(route), in_path=_path_values(route))
    def check(query: dict[str, str], in_path: list[str]) -> None:
        reply = app_client.get(_url(path, route, in_path), params=query)
        _clean(reply)
        if reply.status_code == 422:
            for problem in reply.json()["detail"]:
                assert problem["loc"][0] == "query" and problem["loc"][1] in names, problem

    check()


@pytest.mark.parametrize(("path", "route"), ROUTES, ids=ROUTE_IDS)
def test_usable_report_parameters_anywhere_in_the_bounds_answer(
    app_client: TestClient, path: str, route: APIRoute
) -> None:
    """Dates anywhere from FIRST_DATE to LAST_DATE, ranges up to 30 days, any zone both know,
    any granularity, user, category, funnel, limit: 200 (404 for sessions that do not exist)."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(query=_queries(route, usable_only=True), in_path=_path_values(route))
    def check(query: dict[str, str], in_path: list[str]) -> None:
        reply = app_client.get(_url(path, route, in_path), params=query)
        _clean(reply)
        assert reply.status_code == (404 if in_path else 200), (query, reply.text)

    check()


def test_the_fuzz_covers_every_report() -> None:
    assert set(ROUTE_IDS) >= {"user-activity", "feedback", "prompts", "prompt-intelligence",
                              "ai-spend", "journeys", "engagement", "hot-prompts",
                              "sessions/{session_id}"}  # fmt: skip
