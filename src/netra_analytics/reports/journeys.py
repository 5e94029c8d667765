"""`journeys`: the two funnels of the spec, weekly cohort retention, and session paths.

Funnel steps come from a JSON file (`reports/data/funnels.json`, or `ANALYTICS_FUNNELS`). A
user reaches a step at the first time it happens at or after the previous step; conversion
and the median time between steps are computed from those times. `funnels_query` builds one
query for all funnels (`journey_funnels.sql`): a single pass over the range's events (and
prompts, for complexity steps) gives each user's rows in time order, each marked with the step
conditions it meets, and the steps are walked in ClickHouse, so only counts and median waits
come back. A user enters a funnel through an event (or prompt) in the range.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from netra_analytics.reports.common import (
    cached,
    check_range,
    invalid,
    long_range,
    number,
    query,
    ready_store,
    sql,
)
from netra_analytics.reports.paths import page_moves
from netra_analytics.service import Service

router = APIRouter(prefix="/api/analytics/reports", tags=["reports"])

MATCH_FIELDS = ("event_type", "event_category", "event_action", "event_label", "page_path")


def load_funnels(path: Path | None) -> dict[str, list[dict[str, Any]]]:
    if path is None:
        text = (resources.files("netra_analytics.reports") / "data" / "funnels.json").read_text()
    else:
        text = path.read_text()
    funnels: dict[str, list[dict[str, Any]]] = json.loads(text)["funnels"]
    for name, steps in funnels.items():
        for step in steps:
            kinds = {"match", "active_days", "prompt_complexity_at_least"} & set(step)
            if len(kinds) != 1 or not set(step.get("match", {})) <= set(MATCH_FIELDS):
                raise ValueError(f"funnel {name!r}: step {step!r} is not one of the known kinds")
    return funnels


# Low bits of the per-row values in journey_funnels.sql: bit 0 marks events, the others one
# distinct step condition each; the time (epoch ms) sits above them.
CONDITION_BITS = 20


def _sql_text(name: str) -> str:
    return "\n".join(line for line in sql(name).splitlines() if not line.startswith("--"))


def funnels_query(
    funnels: dict[str, list[dict[str, Any]]], start: date, end: date
) -> tuple[str, dict[str, Any]]:
    """One query that walks every funnel in ClickHouse (`journey_funnels.sql`): per user, the
    first step's first time, then each step's first time at or after the previous one (0 when
    never); then per funnel the counts and the median waits between steps
    (`f{i}_reached_{k}`, `f{i}_median_wait_{k}`). The structure comes only from the step kinds
    and an allow-list of fields; values are parameters."""
    params: dict[str, Any] = {"start": start, "end": end}
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

    walks: list[str] = []
    # Users with an event in the range, counted in the same pass (ai-spend's active users;
    # merging activity_rollup's 30 daily user sets cost ~100 ms).
    outputs: list[str] = ["countIf(notEmpty(events)) AS active_users"]
    for i, steps in enumerate(funnels.values()):
        for k, step in enumerate(steps):
            before = f"f{i}t{k - 1}"
            if "active_days" in step:
                params[f"f{i}s{k}_days"] = int(step["active_days"])
                nth_day = f"bitShiftRight(day_firsts[{{f{i}s{k}_days:UInt32}}], {CONDITION_BITS})"
                time = nth_day if k == 0 else f"if({nth_day} >= {before}, {nth_day}, 0)"
            else:
                bit = bit_of(step)
                later = "" if k == 0 else f" AND x >= bitShiftLeft({before}, {CONDITION_BITS})"
                time = (
                    f"bitShiftRight(arrayFirst(x -> bitTest(x, {bit}){later}, s), {CONDITION_BITS})"
                )
            walks.append(f"{time if k == 0 else f'if({before} = 0, 0, {time})'} AS f{i}t{k}")
        outputs += [f"countIf(f{i}t{k} > 0) AS f{i}_reached_{k}" for k in range(len(steps))]
        # The median wait, as statistics.median takes it (the mean of the middle two of an
        # even count): shipping every user's wait to Python cost ~100 ms at 100,000 users.
        outputs += [
            f"quantileExactInclusiveIf(0.5)(f{i}t{k} - f{i}t{k - 1}, f{i}t{k} > 0) "
            f"AS f{i}_median_wait_{k}"
            for k in range(1, len(steps))
        ]
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
        prompts = _sql_text("journey_funnel_prompts").replace(
            "/*prompt_bits*/",
            "".join(
                f" + bitShiftLeft(toUInt64(prompt_complexity_score >= "
                f"{{c{bit}_complexity:Float32}}), {bit})"
                for bit in prompt_bits.values()
            ),
        )
    text = (
        _sql_text("journey_funnels")
        .replace("/*outputs*/", ",\n  ".join(outputs))
        .replace("/*walks*/", "".join(f",\n    {w}" for w in walks))
        .replace("/*event_bits*/", "".join(f" + {c}" for c in conditions))
        .replace("/*prompts*/", prompts)
    )
    return text, params


def funnel_steps(names: list[str], row: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    reached = [int(row[f"{prefix}_reached_{k}"]) for k in range(len(names))]
    out = []
    for k, name in enumerate(names):
        median_wait = number(row.get(f"{prefix}_median_wait_{k}")) if reached[k] else None
        out.append(
            {
                "step": name,
                "users": reached[k],
                "conversion_from_previous": reached[k] / reached[k - 1]
                if k and reached[k - 1]
                else None,
                "conversion_from_start": reached[k] / reached[0] if reached[0] else None,
                "median_seconds_from_previous": median_wait / 1000
                if median_wait is not None
                else None,
            }
        )
    return out


@dataclass(frozen=True)
class FunnelWalk:
    funnels: dict[str, list[dict[str, Any]]]  # per funnel, its steps as funnel_steps gives them
    active_users: int  # users with an event in the range


async def walk_funnels(
    request: Request, funnels: dict[str, list[dict[str, Any]]], start: date, end: date
) -> FunnelWalk:
    """Every funnel's steps: users reached, conversions and median waits, from one query."""
    text, params = funnels_query(funnels, start, end)
    [row] = await asyncio.to_thread(ready_store(request).query_rows, text, params)
    return FunnelWalk(
        funnels={
            name: funnel_steps([step["name"] for step in steps], row, f"f{i}")
            for i, (name, steps) in enumerate(funnels.items())
        },
        active_users=int(row["active_users"]),
    )


def retention(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_cohort: dict[str, dict[int, int]] = {}
    for row in rows:
        cohort, week = date.fromisoformat(row["cohort"]), date.fromisoformat(row["week"])
        by_cohort.setdefault(cohort.isoformat(), {})[(week - cohort).days // 7] = int(row["users"])
    matrix = []
    for cohort_start, weeks in sorted(by_cohort.items()):
        size = weeks.get(0, 0)
        last = max(weeks)
        matrix.append(
            {
                "cohort": cohort_start,
                "users": size,
                "retention": [weeks.get(k, 0) / size if size else None for k in range(last + 1)],
            }
        )
    return matrix


@router.get(
    "/journeys",
    summary="Funnels, weekly cohort retention and session paths",
    description=(
        "Onboarding (first event → first chat → feature discovery → active on 3 days) and value "
        "realisation (first interaction → complex query → cost savings identified) by default, "
        "each step configurable; conversion and median time per step. Retention: cohort = week "
        "(Monday, UTC) of a user's first event; cell k = share of the cohort active in week k. "
        "Paths: the most common page-to-page moves within sessions (two consecutive events of a "
        "session on the same or the next UTC day), each counted on the day of its second event "
        "(days that can no longer change are computed once and kept)."
    ),
)
async def journeys(
    request: Request,
    response: Response,
    start_date: date,
    end_date: date,
    funnel: Annotated[str | None, Query(max_length=64)] = None,
    paths: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    check_range(start_date, end_date, 366)
    service: Service = request.app.state.service
    funnels = load_funnels(service.settings.funnels_file)
    if funnel is not None and funnel not in funnels:
        raise invalid("funnel", f"unknown funnel {funnel!r}; one of {', '.join(funnels)}")
    chosen = {funnel: funnels[funnel]} if funnel else funnels

    async def compute() -> dict[str, Any]:
        result: dict[str, Any] = {
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
        }
        result["funnels"] = (await walk_funnels(request, chosen, start_date, end_date)).funnels
        params = {"start": start_date, "end": end_date}
        result["cohorts"] = retention(await query(request, "journey_cohorts", params))
        result["paths"] = await asyncio.to_thread(
            page_moves, ready_store(request), start_date, end_date, paths
        )
        return result

    key = f"journeys:{start_date}:{end_date}:{funnel}:{paths}"
    answer: dict[str, Any] = await cached(
        request, response, key, long_range(start_date, end_date), compute
    )
    return answer
