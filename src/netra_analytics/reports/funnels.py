"""Funnels: their definitions (`reports/data/funnels.json`, or `ANALYTICS_FUNNELS`) and the
query that walks them (`journey_funnels.sql`), shared by the journeys and ai-spend reports.

A user reaches a step at the first time it happens at or after the previous step. One query
walks every funnel: a single pass over the range's events (and prompts, for complexity steps)
gives each user's rows in time order, each marked with the step conditions it meets, and the
steps are walked in ClickHouse, so only counts and median waits come back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from netra_analytics.reports.common import events_table, sql_template

Funnels = dict[str, list[dict[str, Any]]]  # funnel name -> its steps, as funnels.json has them

MATCH_FIELDS = ("event_type", "event_category", "event_action", "event_label", "page_path")


def load_funnels(path: Path | None) -> Funnels:
    """The funnels of `path` (or the packaged ones), checked: a ValueError says what is wrong,
    so that a bad ANALYTICS_FUNNELS stops start-up instead of failing reports."""
    if path is None:
        text = (resources.files("netra_analytics.reports") / "data" / "funnels.json").read_text()
    else:
        text = path.read_text()
    document = json.loads(text)
    funnels = document.get("funnels") if isinstance(document, dict) else None
    if not isinstance(funnels, dict) or not funnels:
        raise ValueError('expected {"funnels": {name: [step, ...], ...}} with at least one funnel')
    for name, steps in funnels.items():
        if not isinstance(steps, list) or not steps:
            raise ValueError(f"funnel {name!r} has no steps")
        for k, step in enumerate(steps):
            _check_step(step, f"funnel {name!r} step {k}")
    funnels_query(funnels, date.min, date.min)  # the limit on distinct conditions
    return funnels


def _check_step(step: Any, where: str) -> None:
    kinds = {"match", "active_days", "prompt_complexity_at_least"} & set(
        step if isinstance(step, dict) else ()
    )
    if len(kinds) != 1 or not isinstance(step.get("name"), str):
        raise ValueError(
            f"{where}: needs a name and exactly one of match, active_days, "
            "prompt_complexity_at_least"
        )
    match, days = step.get("match"), step.get("active_days")
    complexity = step.get("prompt_complexity_at_least")
    if "match" in step and not (
        isinstance(match, dict)
        and set(match) <= set(MATCH_FIELDS)
        and all(isinstance(value, str) for value in match.values())
    ):
        raise ValueError(f"{where}: match maps some of {', '.join(MATCH_FIELDS)} to strings")
    if "active_days" in step and not (type(days) is int and days >= 1):
        raise ValueError(f"{where}: active_days must be a whole number of days, at least 1")
    if "prompt_complexity_at_least" in step and not (
        isinstance(complexity, int | float) and 0 <= complexity <= 1
    ):
        raise ValueError(f"{where}: prompt_complexity_at_least must be between 0 and 1")


# Low bits of the per-row values in journey_funnels.sql: bit 0 marks events, the others one
# distinct step condition each; the time (epoch ms) sits above them.
CONDITION_BITS = 20


@dataclass(frozen=True)
class StoredWalks:
    """The walks of one build of funnel_walks from one start day, read up to the end of the
    UTC day `until` (the last day the data is still as the build saw it)."""

    config: str
    generation: int
    start: date
    until: date

    @property
    def cut_ms(self) -> int:
        """The last epoch millisecond of `until`."""
        day_after = datetime.combine(self.until + timedelta(days=1), datetime.min.time(), UTC)
        return int(day_after.timestamp() * 1000) - 1


def funnels_query(funnels: Funnels, start: date, end: date) -> tuple[str, dict[str, Any]]:
    """Walk every funnel over the events (and prompts) from `start` to `end`; per funnel the
    users who reached each step and the median waits (`f{i}_reached_{k}`,
    `f{i}_median_wait_{k}`), and `active_users`."""
    return walk_query(funnels, rows_from=start, end=end, stored=None, per_user=False)


def walk_query(
    funnels: Funnels,
    *,
    rows_from: date | None,
    end: date,
    stored: StoredWalks | None,
    per_user: bool,
    events: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """One query that walks every funnel in ClickHouse (`journey_funnels.sql`): per user, the
    first step's first time, then each step's first time at or after the previous one (0 when
    never), going on from the `stored` walks (if any) through the rows from `rows_from` to `end`
    (None: none). Then either per funnel the counts and median waits, or (`per_user`) each
    user's step times, all funnels' steps in order (`times`), and the first events of their
    first active days (`day_firsts`, as many as the largest active-days step needs). The
    structure comes only from the step kinds and an allow-list of fields; values are
    parameters. `events`: the table the rows come from (default: events_table's choice)."""
    if rows_from is None and stored is None:
        raise ValueError("nothing to walk: neither rows nor stored walks")
    params: dict[str, Any] = {"end": end} | ({"rows_from": rows_from} if rows_from else {})
    event_bits: dict[tuple[tuple[str, str], ...], int] = {(): 0}  # {} matches every event
    prompt_bits: dict[float, int] = {}

    def next_bit() -> int:
        bit = len(event_bits) + len(prompt_bits)
        if bit >= CONDITION_BITS:
            raise ValueError(f"the funnels use more than {CONDITION_BITS - 1} step conditions")
        return bit

    def bit_of(step: dict[str, Any]) -> int:
        if "match" in step:
            fields = sorted(step["match"])
            if not set(fields) <= set(MATCH_FIELDS):
                raise ValueError(f"step {step!r} matches fields outside {MATCH_FIELDS}")
            condition = tuple((f, str(step["match"][f])) for f in fields)
            if condition not in event_bits:
                event_bits[condition] = next_bit()
            return event_bits[condition]
        threshold = float(step["prompt_complexity_at_least"])
        if threshold not in prompt_bits:
            prompt_bits[threshold] = next_bit()
        return prompt_bits[threshold]

    rows = "ev.s" if rows_from is not None else "CAST([], 'Array(UInt64)')"
    walks = [
        {
            (True, True): "arrayConcat(st.day_firsts, ev.day_firsts)",
            (True, False): "ev.day_firsts",
            (False, True): "st.day_firsts",
        }[(rows_from is not None, stored is not None)]
        + " AS firsts"
    ]
    times: list[str] = []
    outputs: list[str] = []
    for i, steps in enumerate(funnels.values()):
        for k, step in enumerate(steps):
            before, stored_time = f"f{i}t{k - 1}", f"st.times[{len(times) + 1}]"
            if "active_days" in step:
                params[f"f{i}s{k}_days"] = int(step["active_days"])
                nth_day = f"firsts[{{f{i}s{k}_days:UInt32}}]"
                time = nth_day if k == 0 else f"if({nth_day} >= {before}, {nth_day}, 0)"
            else:
                bit = bit_of(step)
                later = "" if k == 0 else f" AND x >= bitShiftLeft({before}, {CONDITION_BITS})"
                time = (
                    f"bitShiftRight(arrayFirst(x -> bitTest(x, {bit}){later}, {rows}), "
                    f"{CONDITION_BITS})"
                )
                if stored is not None:
                    time = f"if({stored_time} > 0, {stored_time}, {time})"
            walks.append(f"{time if k == 0 else f'if({before} = 0, 0, {time})'} AS f{i}t{k}")
            times.append(f"f{i}t{k}")
        outputs += [f"countIf(f{i}t{k} > 0) AS f{i}_reached_{k}" for k in range(len(steps))]
        # The median wait, as statistics.median takes it (the mean of the middle two of an
        # even count): shipping every user's wait to Python cost ~100 ms at 100,000 users.
        outputs += [
            f"quantileExactInclusiveIf(0.5)(f{i}t{k} - f{i}t{k - 1}, f{i}t{k} > 0) "
            f"AS f{i}_median_wait_{k}"
            for k in range(1, len(steps))
        ]
    if per_user:
        params["keep_days"] = keep_days(funnels)
        walks.append(
            {
                (True, True): "if(ev.user_id != '', ev.user_id, st.user_id)",
                (True, False): "ev.user_id",
                (False, True): "st.user_id",
            }[(rows_from is not None, stored is not None)]
            + " AS user"
        )
        outputs = [
            "user AS user_id",
            f"[{', '.join(times)}] AS times",
            "arraySlice(firsts, 1, {keep_days:UInt32}) AS day_firsts",
        ]
    else:
        # Users with an event in the range, counted in the same pass (ai-spend's active
        # users; merging activity_rollup's 30 daily user sets cost ~100 ms).
        outputs.insert(0, "countIf(notEmpty(firsts)) AS active_users")
    sources = []
    if rows_from is not None:
        params["events"] = events or events_table(rows_from)
        sources.append(f"({_rows_text(event_bits, prompt_bits, params)}) AS ev")
    if stored is not None:
        params |= {
            "config": stored.config,
            "generation": stored.generation,
            "walk_start": stored.start,
            "cut": stored.cut_ms,
        }
        sources.append(f"({sql_template('journey_funnel_stored')}) AS st")
    source = (
        sources[0]
        if len(sources) == 1
        else (f"{sources[0]}\nFULL OUTER JOIN {sources[1]} ON ev.user_id = st.user_id")
    )
    text = (
        sql_template("journey_funnels")
        .replace("/*outputs*/", ",\n  ".join(outputs))
        .replace("/*walks*/", ",\n    ".join(walks))
        .replace("/*sources*/", source)
    )
    return text, params


def keep_days(funnels: Funnels) -> int:
    """How many first days of activity a stored walk keeps: enough for every active-days step."""
    return max([1] + [int(s["active_days"]) for steps in funnels.values() for s in steps
                      if "active_days" in s])  # fmt: skip


def _rows_text(
    event_bits: dict[tuple[tuple[str, str], ...], int],
    prompt_bits: dict[float, int],
    params: dict[str, Any],
) -> str:
    conditions = []
    for condition, bit in event_bits.items():
        if bit:
            names = [f"c{bit}_{field}" for field, _ in condition]
            params |= {name: value for name, (_, value) in zip(names, condition, strict=True)}
            matched = " AND ".join(
                f"{field} = {{{name}:String}}"
                for name, (field, _) in zip(names, condition, strict=True)
            )
            conditions.append(f"bitShiftLeft(toUInt64({matched}), {bit})")
    prompts = ""
    if prompt_bits:
        params["least_complexity"] = min(prompt_bits)
        for threshold, bit in prompt_bits.items():
            params[f"c{bit}_complexity"] = threshold
        prompts = sql_template("journey_funnel_prompts").replace(
            "/*prompt_bits*/",
            "".join(
                f" + bitShiftLeft(toUInt64(prompt_complexity_score >= "
                f"{{c{bit}_complexity:Float32}}), {bit})"
                for bit in prompt_bits.values()
            ),
        )
    return (
        sql_template("journey_funnel_rows")
        .replace("/*event_bits*/", "".join(f" + {c}" for c in conditions))
        .replace("/*prompts*/", prompts)
    )
