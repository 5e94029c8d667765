"""The ClickHouse plugin's query expansion, step by step as grafana-clickhouse-datasource does it,
so that a test can run a generated panel's query on our store exactly as Grafana would send it.

Sources (grafana/clickhouse-datasource, v4.x): the browser side first applies
`$__conditionalAll(condition, $var)` (`src/data/CHDatasource.ts`, `applyConditionalAll`: the
condition, or `1=1` when the variable's current value is `$__all` or empty), then Grafana's
template variables (`${var:singlequote}`, `$var`, `${var}`); the server side then expands the
time macros (`pkg/macros/macros.go`):

    $__timeFilter(c)     c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)
    $__timeFilter_ms(c)  c >= fromUnixTimestamp64Milli(<from ms>)
                         AND c <= fromUnixTimestamp64Milli(<to ms>)
    $__dateFilter(c)     c >= toDate('<from day>') AND c <= toDate('<to day>')
    $__fromTime          toDateTime(<from s>)      ($__toTime likewise)
    $__fromTime_ms       fromUnixTimestamp64Milli(<from ms>)  ($__toTime_ms likewise)
    $__timeInterval(c)   toStartOfInterval(toDateTime(c), INTERVAL <interval s, at least 1> second)
    $__interval_s        <interval s, at least 1>

Times are whole seconds since the epoch (Go's `Unix()`: truncated) or milliseconds. Macros in
comments, string literals and quoted identifiers stay as they are, and so do unknown ones; a
macro with the wrong number of arguments is an error (`MacroError`), as in the plugin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ALL = "$__all"  # the value Grafana gives a variable whose "All" option is selected

CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_IN_ARG = re.compile(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+")
# ${name}, ${name:format}, $name (not $__macros: Grafana's own globals start with __)
_TEMPLATE_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
_MACRO = re.compile(r"\$__(\w+)")
# Where the plugin expands no macro (macropro's LineComment, BlockComment, BackslashEscape,
# BacktickQuote): comments, string literals, quoted identifiers.
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|`[^`]*`", re.DOTALL)


class MacroError(ValueError):
    """A query the plugin would refuse: an unknown macro or variable, or bad arguments."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana sends with a query: the range, the interval, the variables' current values
    (`ALL` for "All")."""

    start: datetime  # timezone-aware
    end: datetime
    interval: timedelta = timedelta(minutes=1)
    variables: Mapping[str, str] = field(default_factory=dict)


def _macro_args(query: str, open_paren: int) -> tuple[list[str], int] | None:
    """The arguments of the macro whose '(' is at `open_paren`, split at top-level commas, and
    the index just past its ')' (`getMacroArgs` in CHDatasource.ts; None when unbalanced)."""
    depth, start, args = 0, open_paren + 1, []
    for match in re.finditer(r"[(),]", query[open_paren:]):
        at = open_paren + match.start()
        mark = match.group()
        depth += mark == "("
        depth -= mark == ")"
        if mark == "," and depth == 1:
            args.append(query[start:at])
            start = at + 1
        if depth == 0:
            args.append(query[start:at])
            return args, at + 1
    return None


def apply_conditional_all(query: str, variables: Mapping[str, str]) -> str:
    """`$__conditionalAll(condition, $var)`, from the last one back, as the plugin does."""
    at = query.rfind(CONDITIONAL_ALL)
    while at != -1:
        found = _macro_args(query, at + len(CONDITIONAL_ALL) - 1)
        if found is None or len(found[0]) != 2:
            return query  # the plugin leaves it as it is (and ClickHouse then refuses it)
        (condition, variable), end = found
        name = _VARIABLE_IN_ARG.search(variable.strip())
        phrase = condition
        if name and variables.get(name.group(), "") in ("", ALL):
            phrase = "1=1"
        query = query[:at] + phrase + query[end:]
        at = query.rfind(CONDITIONAL_ALL)
    return query


def _singlequote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


FORMATS: dict[str, Callable[[str], str]] = {"singlequote": _singlequote, "raw": str}


def apply_variables(query: str, variables: Mapping[str, str]) -> str:
    """Grafana's template variables: `${name:format}` (singlequote, raw), `${name}`, `$name`.
    The plugin formats a single value as it is. An unknown variable is left as Grafana leaves
    it, which ClickHouse then refuses (the tests want that loud)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        style = match.group(2) or "raw"
        if name not in variables:
            return match.group()
        if style not in FORMATS:
            raise MacroError(f"variable format {style!r} is not supported here")
        return FORMATS[style](variables[name])

    return _TEMPLATE_VARIABLE.sub(replace, query)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _seconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(seconds=1)  # exact: no float rounding


def _millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def apply_time_macros(query: str, context: QueryContext) -> str:
    """The server side's macros (module docstring)."""
    start_s, end_s = _seconds(context.start), _seconds(context.end)
    start_ms, end_ms = _millis(context.start), _millis(context.end)
    interval_s = max(int(context.interval.total_seconds()), 1)
    bare = {
        "fromTime": f"toDateTime({start_s})",
        "toTime": f"toDateTime({end_s})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({start_ms})",
        "toTime_ms": f"fromUnixTimestamp64Milli({end_ms})",
        "interval_s": str(interval_s),
    }
    with_column: dict[str, Callable[[str], str]] = {
        "timeFilter": lambda c: f"{c} >= {bare['fromTime']} AND {c} <= {bare['toTime']}",
        "timeFilter_ms": lambda c: f"{c} >= {bare['fromTime_ms']} AND {c} <= {bare['toTime_ms']}",
        "dateFilter": lambda c: (
            f"{c} >= toDate('{context.start.astimezone(UTC):%Y-%m-%d}')"
            f" AND {c} <= toDate('{context.end.astimezone(UTC):%Y-%m-%d}')"
        ),
        "timeInterval": lambda c: (
            f"toStartOfInterval(toDateTime({c}), INTERVAL {interval_s} second)"
        ),
    }
    protected = [m.span() for m in _NOT_CODE.finditer(query)]
    out, position = [], 0
    for match in _MACRO.finditer(query):
        inside = any(start <= match.start() < end for start, end in protected)
        if match.start() < position or inside:
            continue
        name = match.group(1)
        out.append(query[position : match.start()])
        if name in with_column:
            found = (
                _macro_args(query, match.end())
                if query[match.end() : match.end() + 1] == "("
                else None
            )
            if found is None or len(found[0]) != 1:
                raise MacroError(f"$__{name} expects one argument")
            out.append(with_column[name](found[0][0].strip()))
            position = found[1]
        elif name in bare:
            out.append(bare[name])
            position = match.end()
        else:  # left as it is, as the plugin leaves it (ClickHouse then refuses the `$`)
            out.append(match.group())
            position = match.end()
    out.append(query[position:])
    return "".join(out)


def expand(query: str, context: QueryContext) -> str:
    """The SQL the plugin sends ClickHouse for `query` (the three steps, in order)."""
    query = apply_conditional_all(query, context.variables)
    query = apply_variables(query, context.variables)
    return apply_time_macros(query, context)
