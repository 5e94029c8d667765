"""A catalog panel's SQL file as the ClickHouse plugin's query: the same statement, with the
service's typed parameters put into Grafana's terms by fixed rules, so a change of a panel's SQL
reaches Grafana by regenerating (and the drift test says when that was forgotten).

    timestamp >= {from:DateTime64(3)} AND timestamp < {to:DateTime64(3)}
                                     -> $__timeFilter(timestamp)  (any column, both bounds)
    {from:DateTime64(3)}, {to:...}   -> $__fromTime, $__toTime (whole seconds, as the plugin)
    ({f:String} = '' OR col = {f:String}), f a dashboard variable (environment, app_version)
                                     -> $__conditionalAll(col IN (${f:singlequote}), $f)
    {f:String}, any other filter     -> ''  (Grafana has no click filters: all)
    /* period */                     -> $__timeInterval(timestamp)  (a time, Grafana labels it)
    {tz:String}                      -> ${tz:singlequote}  (the dashboard's time zone variable)
    {stop_words:Array(String)}       -> the list, as an array literal (a packaged data file)

Anything else left in `{name:Type}` form fails the generation, naming the file.
"""

from __future__ import annotations

import re
from importlib import resources

from netra_analytics.dashboards.catalog import Filter
from netra_analytics.dashboards.panels import SHARED_PARTS, stop_words

VARIABLE_FILTERS = (Filter.environment, Filter.app_version)  # dashboard template variables
TIME_ZONE_VARIABLE = "tz"

_RANGE = re.compile(
    r"(\w+) >= \{from:DateTime64\(3\)\}\s+AND \1 < \{to:DateTime64\(3\)\}", re.MULTILINE
)
_FILTER = re.compile(r"\(\{(\w+):String\} = '' OR (\w+) = \{\1:String\}\)")
_PARAMETER = re.compile(r"(?<!\$)\{(\w+):([^}]+)\}")
_COMMENT_LINE = re.compile(r"^\s*--.*$\n?", re.MULTILINE)


def sql_file(name: str) -> str:
    """A panel SQL file of `dashboards/sql/` as written (its shared parts not put in)."""
    return (resources.files("netra_analytics.dashboards") / "sql" / f"{name}.sql").read_text()


class UntranslatedParameter(ValueError):
    """A panel's SQL names a parameter the rules above do not cover."""


def _filter(match: re.Match[str]) -> str:
    name, column = match.group(1), match.group(2)
    if name in VARIABLE_FILTERS:
        return f"$__conditionalAll({column} IN (${{{name}:singlequote}}), ${name})"
    if name in set(Filter):
        return "1=1"  # the same as ('' = '' OR ...): a filter Grafana does not offer is "all"
    return match.group()


def _string_array(words: list[str]) -> str:
    return (
        "["
        + ", ".join("'" + w.replace("\\", "\\\\").replace("'", "\\'") + "'" for w in words)
        + "]"
    )


def translate(text: str, origin: str) -> str:
    """`text`, ClickHouse with the service's parameters, in the plugin's terms (module doc)."""
    text = _RANGE.sub(r"$__timeFilter(\1)", text)
    text = _FILTER.sub(_filter, text)
    text = text.replace("{from:DateTime64(3)}", "$__fromTime")
    text = text.replace("{to:DateTime64(3)}", "$__toTime")
    text = text.replace("{tz:String}", f"${{{TIME_ZONE_VARIABLE}:singlequote}}")
    text = text.replace("{stop_words:Array(String)}", _string_array(stop_words()))
    left = sorted({f"{{{m.group(1)}:{m.group(2)}}}" for m in _PARAMETER.finditer(text)})
    if left:
        raise UntranslatedParameter(f"{origin}: no Grafana form for {', '.join(left)}")
    return text


def shared_part(name: str) -> str:
    """A shared part (`sql/_<name>.sql`) as one line of Grafana's query, comments left out."""
    if name == "period":
        return "$__timeInterval(timestamp)"
    lines = [line.strip() for line in _COMMENT_LINE.sub("", sql_file(f"_{name}")).splitlines()]
    return translate("\n  ".join(line for line in lines if line), f"_{name}.sql")


def panel_query(file: str) -> str:
    """The panel SQL file `file` as the plugin's `rawSql` (its header comment kept: the plugin
    strips comments before expanding macros, and the reader of the dashboard sees why)."""
    text = sql_file(file)
    for part in SHARED_PARTS:
        text = text.replace(f"/* {part} */", shared_part(part))
    return translate(text, f"{file}.sql").strip() + "\n"


_WORD_OR_MARK = re.compile(r"'(?:[^'\\]|\\.)*'|--[^\n]*|\w+|[(),]")


def select_columns(file: str) -> list[str]:
    """The column names a panel SQL file answers: the aliases (or bare names) of its outermost
    SELECT's items, in order (for declaring the columns of a panel read through the service)."""
    depth, seen_select = 0, False
    items: list[list[str]] = []
    current: list[str] = []
    for piece in _WORD_OR_MARK.findall(sql_file(file)):
        if piece.startswith("--"):
            continue
        word = piece.upper()
        if depth == 0 and word == "SELECT" and not seen_select:
            seen_select, current = True, []
            continue
        if not seen_select:
            depth += (piece == "(") - (piece == ")")
            continue
        if depth == 0 and word == "FROM":
            items.append(current)
            break
        depth += (piece == "(") - (piece == ")")
        if depth == 0 and piece == ",":
            items.append(current)
            current = []
        else:
            current.append(piece)
    return [item[-1] for item in items]
