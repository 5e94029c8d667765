"""The ClickHouse plugin's expansion, checked against what its code produces
(grafana/clickhouse-datasource: pkg/macros/macros.go, src/data/CHDatasource.ts)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netra_analytics.grafana.macros import ALL, MacroError, QueryContext, expand

START = datetime(2026, 11, 1, 10, 0, 0, 250_000, tzinfo=UTC)  # 1793527200.25
END = datetime(2026, 11, 2, 10, 0, 0, tzinfo=UTC)
CONTEXT = QueryContext(START, END, timedelta(minutes=5), {"environment": ALL, "tz": "UTC"})


def test_time_macros_expand_as_the_plugin_does() -> None:
    assert expand("WHERE $__timeFilter(timestamp)", CONTEXT) == (
        "WHERE timestamp >= toDateTime(1793527200) AND timestamp <= toDateTime(1793613600)"
    )
    assert expand("$__timeFilter_ms(t)", CONTEXT) == (
        "t >= fromUnixTimestamp64Milli(1793527200250) AND t <= fromUnixTimestamp64Milli(1793613600000)"
    )
    assert expand("$__fromTime, $__toTime", CONTEXT) == (
        "toDateTime(1793527200), toDateTime(1793613600)"
    )
    assert expand("$__timeInterval(timestamp)", CONTEXT) == (
        "toStartOfInterval(toDateTime(timestamp), INTERVAL 300 second)"
    )
    assert expand("$__dateFilter(date)", CONTEXT) == (
        "date >= toDate('2026-11-01') AND date <= toDate('2026-11-02')"
    )
    sub_second = QueryContext(START, END, timedelta(milliseconds=10))
    assert expand("$__interval_s", sub_second) == "1"  # at least 1, as math.Max(…, 1)


def test_conditional_all_drops_the_condition_for_all_or_empty() -> None:
    sql = "a AND $__conditionalAll(environment IN (${environment:singlequote}), $environment) AND b"
    assert expand(sql, CONTEXT) == "a AND 1=1 AND b"
    empty = QueryContext(START, END, variables={"environment": ""})
    assert expand(sql, empty) == "a AND 1=1 AND b"
    one = QueryContext(START, END, variables={"environment": "staging"})
    assert expand(sql, one) == "a AND environment IN ('staging') AND b"


def test_singlequote_escapes_quotes() -> None:
    context = QueryContext(START, END, variables={"tz": "x' OR 1=1 --"})
    assert expand("toHour(t, ${tz:singlequote})", context) == "toHour(t, 'x\\' OR 1=1 --')"


def test_bad_arguments_are_refused_and_unknown_macros_left_as_they_are() -> None:
    with pytest.raises(MacroError, match="one argument"):
        expand("$__timeFilter(a, b)", CONTEXT)
    assert expand("$__nope(x)", CONTEXT) == "$__nope(x)"


def test_macros_in_comments_and_strings_stay_as_they_are() -> None:
    sql = "-- $__timeFilter(t)\nSELECT '$__fromTime', `$__toTime` /* $__interval_s */ $__interval_s"
    assert expand(sql, CONTEXT) == (
        "-- $__timeFilter(t)\nSELECT '$__fromTime', `$__toTime` /* $__interval_s */ 300"
    )


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)))
def test_from_time_is_the_unix_second_truncated(moment: datetime) -> None:
    start = moment.replace(tzinfo=UTC)
    sql = expand("$__fromTime", QueryContext(start, start + timedelta(hours=1)))
    assert sql == f"toDateTime({calendar.timegm(start.utctimetuple())})"  # whole seconds


def test_the_plugins_own_test_vectors() -> None:
    """pkg/macros/macros_test.go: from 2014-11-12T11:45:26.371Z to 2015-11-12T11:45:26.371Z,
    interval 20 s."""
    start = datetime(2014, 11, 12, 11, 45, 26, 371_000, tzinfo=UTC)
    end = datetime(2015, 11, 12, 11, 45, 26, 371_000, tzinfo=UTC)
    at = QueryContext(start, end, timedelta(seconds=20))
    assert expand("$__fromTime", at) == "toDateTime(1415792726)"
    assert expand("$__toTime", at) == "toDateTime(1447328726)"
    assert expand("$__fromTime_ms", at) == "fromUnixTimestamp64Milli(1415792726371)"
    assert expand("$__toTime_ms", at) == "fromUnixTimestamp64Milli(1447328726371)"
    assert expand("$__dateFilter(dateCol)", at) == (
        "dateCol >= toDate('2014-11-12') AND dateCol <= toDate('2015-11-12')"
    )
    assert expand("$__timeInterval(col)", at) == (
        "toStartOfInterval(toDateTime(col), INTERVAL 20 second)"
    )
