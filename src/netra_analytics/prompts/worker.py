"""Prompt intelligence, off the request path: one `prompt_analytics` row per user prompt.

The worker reads the spool behind the batch writer (only records already stored in
`frontend_events`), with its own offset. For each user prompt it writes a row: hash,
category and intent, complexity, near-duplicates and whether the user asked it before, and
cost; then, as events about the answer arrive (the AI response, a follow-up or a rephrase,
feedback on the thread, the thread's end, an error), it writes the row again with a higher
`version` and updated scores. ReplacingMergeTree keeps the latest version.

Versions come from the event that caused the row: the server's receive time in ms × 1024 +
the event's index in its request. That orders rows across restarts and across workers (each
with its own spool), and replaying the spool after a crash writes identical rows, which
replace each other.

Recent threads are kept in memory, least recently used first, up to a budget of estimated bytes
(`ANALYTICS_PROMPT_THREAD_CACHE_BYTES`, `thread_bytes`); a thread that is not (after a restart,
or evicted) is loaded back from `prompt_analytics`, whose `signals` column keeps what was known
about each prompt's answer, so a late signal still lands on the right scores. The budget is in
bytes, not threads: a prompt's text may be 64 KiB. The similarity index is rebuilt from
`prompt_analytics` at start-up.

Falling behind: a worker more than the spool's cap behind the newest record is moved up to the
writer's checkpoint so that the disk does not fill (`Spool.skip_consumer`). It says so (a
warning, `netra_prompt_spool_skipped_bytes_total`, `prompts` in `/health/ready`) and notes the
time window it skipped (from the first skipped record's receipt, less `RECOVERY_MARGIN_MS`, to the
moment of the skip) in the spool (`note.prompts-recovery`, so a restart resumes it). Those
events are stored in `frontend_events` (they were below the checkpoint), with the sanitised
prompt text: the worker reads them back slice by slice (`RECOVER_EVENTS`), analyses the user
prompts that have no `prompt_analytics` row yet with the events that follow them in their
threads, and writes their rows. Limits: a prompt whose event time is more than
`RECOVERY_MARGIN_MS` before its receipt (sent late from the tag's offline queue) is outside the
window; a slice holding more than `RECOVERY_LIMIT` events is recovered up to that many;
recovered prompts are versioned by their event time, and do not mark earlier prompts of their
thread as followed up.

Store calls run in the worker's own bounded pool with a timeout (`StoreCalls`); failures back
off (jittered, up to 30 s) and are logged once, then once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import random
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson

from netra_analytics import metrics
from netra_analytics.errors import StoreError
from netra_analytics.ingest.erased import ErasedPeople
from netra_analytics.ingest.spool import Spool, SpoolFollower
from netra_analytics.ingest.writer import (
    SpoolRecord,
    decode_spooled,
    next_backoff,
    without_erased,
)
from netra_analytics.prompts.classify import PromptClassifier, default_classifier
from netra_analytics.prompts.complexity import complexity
from netra_analytics.prompts.cost import PriceTable, Tokens
from netra_analytics.prompts.normalise import prompt_hash
from netra_analytics.prompts.quality import Signals, scores
from netra_analytics.prompts.similarity import MAX_SIMILAR, SimilarityIndex
from netra_analytics.store.base import Store
from netra_analytics.store.calls import OutageLog, StoreCalls

log = logging.getLogger(__name__)

CONSUMER = "prompts"
# In one process the analysis is Python sharing the interpreter with the request handlers:
# after each chunk the worker rests in proportion to the time it worked, so that at most this
# share of a core goes to it and ingestion keeps the rest. Under sustained peak load it falls
# behind and catches up afterwards (the spool keeps the records, up to its cap; see the
# module's docstring). In the prompt analysis process (`prompt_process`) it does not rest.
DUTY_CYCLE = 0.3
PROMPTS_PER_THREAD = 20
FEEDBACK_PER_PROMPT = 16  # the latest feedback on a thread that counts in a prompt's scores
DEFAULT_THREAD_CACHE_BYTES = 64 << 20
# A cached prompt's memory besides its text: the Prompt, its Signals and Tokens, its ids and
# timestamp, the cache's entries; and each near-duplicate's id. Measured (`bench.memory_bench`,
# part `threads`): 2,163 B of RSS per one-prompt thread whose ~110 B text has no
# near-duplicates; each near-duplicate's id adds ~110 B (a 36-character str and its slot).
PROMPT_BYTES = 2048
SIMILAR_ID_BYTES = 112
ERROR_WINDOW_MS = 60_000  # an error this soon after an answer counts against it
REBUILD_DAYS = 30
REBUILD_LIMIT = 200_000

# The stored prompts of many threads at once: one query per chunk of records, not per thread
# (a backfill of thousands of threads made a query each). Pairs are matched in Python.
LOAD_THREADS = """
SELECT toString(prompt_id) AS id,
       formatDateTime(timestamp, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') AS ts, *
FROM analytics.prompt_analytics FINAL
WHERE user_id IN {users:Array(String)} AND thread_id IN {threads:Array(String)}
ORDER BY timestamp
"""
LOAD_THREADS_CHUNK = 1000  # threads per lookup query
INSERT_MAX_RECORDS = 5000  # spool records analysed into one insert, at most
READ_SLICE_RECORDS = 500  # spool records read at once while filling a chunk bounded by events

REBUILD_INDEX = """
SELECT toString(prompt_id) AS id, user_id, toUnixTimestamp64Milli(timestamp) AS ms, prompt_hash,
       prompt_text
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= now64(3) - INTERVAL {days:UInt32} DAY AND prompt_text != ''
ORDER BY timestamp
LIMIT {limit:UInt32}
"""

ANALYSE_WAIT = 3600.0  # seconds: in effect no timeout (see `_analysed`)
RECOVERY_NOTE = "prompts-recovery"
STATE_NOTE = "prompts-state"  # the prompt analysis process's state, noted every second
STATE_STALE_SECONDS = 10.0
BEHIND_SECONDS = 60.0  # lag beyond which the analysis counts as behind
RECOVERY_MARGIN_MS = 5 * 60_000  # event time before receipt still inside a recovery window
RECOVERY_SLICE_MS = 10 * 60_000  # event time read back per recovery step
ANSWER_MARGIN_MS = 30 * 60_000  # answers, feedback and thread ends read past a slice's end
RECOVERY_LIMIT = 50_000  # events per recovery step

# Events of the people who asked, in a slice of event time, for prompts that have no row yet.
# Aliases differ from column names: ClickHouse lets WHERE see SELECT aliases.
RECOVER_EVENTS = """
SELECT toString(event_id) AS id, user_id, session_id, toString(event_type) AS kind, properties,
       formatDateTime(timestamp, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') AS ts,
       toUnixTimestamp64Milli(timestamp) AS ms,
       event_type = 'chat_interaction'
         AND JSONExtractString(properties, 'message_type') = 'user_prompt' AS is_prompt,
       is_prompt AND timestamp < {end:DateTime64(3)} AND event_id NOT IN (
           SELECT prompt_id FROM analytics.prompt_analytics
           WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
       ) AS missing
FROM analytics.frontend_events
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {until:DateTime64(3)}
  AND event_type IN ('chat_interaction', 'thread_lifecycle', 'feedback_submission',
                     'error_tracking')
  AND user_id IN (
      SELECT user_id FROM analytics.frontend_events
      WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
        AND event_type = 'chat_interaction'
        AND JSONExtractString(properties, 'message_type') = 'user_prompt'
  )
ORDER BY timestamp, event_id
LIMIT {limit:UInt32}
"""

_INTERESTING = tuple(
    b'"event_type":"%s"' % kind
    for kind in (
        b"chat_interaction",
        b"thread_lifecycle",
        b"feedback_submission",
        b"error_tracking",
    )
)


@dataclasses.dataclass
class Prompt:
    prompt_id: str
    timestamp: str
    timestamp_ms: int
    user_id: str
    thread_id: str
    session_id: str
    text: str
    hash: str
    complexity: float
    similar: list[str]
    repeat: bool
    model: str
    tokens: Tokens
    reported_cost: float | None
    version: int
    category: str = ""
    intent: str = ""
    signals: Signals = dataclasses.field(default_factory=Signals)
    answered_at_ms: int | None = None

    def row(self, prices: PriceTable) -> dict[str, Any]:
        quality, relevance = scores(self.signals)
        cost = prices.cost_cents(self.model, date.fromisoformat(self.timestamp[:10]), self.tokens)
        return {
            "prompt_id": self.prompt_id,
            "timestamp": self.timestamp,
            "user_id": self.user_id,
            "thread_id": self.thread_id,
            "prompt_hash": self.hash,
            "prompt_category": self.category,
            "prompt_intent": self.intent,
            "prompt_complexity_score": self.complexity,
            "response_quality_score": quality,
            "response_relevance_score": relevance,
            "follow_up_generated": self.signals.followed_up,
            "is_repeat_question": self.repeat,
            "similar_prompts": self.similar,
            "estimated_cost_cents": cost or 0.0,
            "actual_cost_cents": self.reported_cost,
            "session_id": self.session_id,
            "prompt_text": self.text,
            "model_used": self.model,
            "version": self.version,
            "signals": orjson.dumps(
                {
                    "signals": dataclasses.asdict(self.signals),
                    "tokens": dataclasses.asdict(self.tokens),
                    "answered_at_ms": self.answered_at_ms,
                }
            ).decode(),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Prompt:
        """A prompt as stored (FINAL), with what was known about its answer."""
        state = orjson.loads(row["signals"] or "{}")
        signals = Signals(**state.get("signals", {}))
        signals.feedback = [(kind, score) for kind, score in signals.feedback]
        return cls(
            prompt_id=row["id"], timestamp=row["ts"], timestamp_ms=_ms(row["ts"]),
            user_id=row["user_id"], thread_id=row["thread_id"], session_id=row["session_id"],
            text=row["prompt_text"], hash=row["prompt_hash"],
            complexity=float(row["prompt_complexity_score"]), similar=list(row["similar_prompts"]),
            repeat=bool(row["is_repeat_question"]), model=row["model_used"],
            tokens=Tokens(**state.get("tokens", {})), reported_cost=row["actual_cost_cents"],
            version=int(row["version"]), category=row["prompt_category"],
            intent=row["prompt_intent"], signals=signals,
            answered_at_ms=state.get("answered_at_ms"),
        )  # fmt: skip


ThreadKey = tuple[str, str]  # (user id, thread id)
ThreadLoader = Callable[[list[ThreadKey]], dict[ThreadKey, list["Prompt"]]]


def thread_bytes(prompts: list[Prompt]) -> int:
    """A cached thread's estimated memory in bytes (`PROMPT_BYTES`, measured)."""
    return sum(
        PROMPT_BYTES + sys.getsizeof(p.text) + SIMILAR_ID_BYTES * len(p.similar) for p in prompts
    )


class PromptAnalyser:
    """Events in, prompts touched out. Not thread-safe; one worker owns it. `load_thread` fetches
    the stored prompts of the threads not in memory, all of a call's at once (no I/O without
    it).

    Threads stay in memory, least recently used first, while their `thread_bytes` sum to at most
    `max_bytes`. Eviction happens after each `analyse` call, never within one: a thread evicted
    mid-call would be loaded back without the call's own changes, which are not stored yet. So
    memory may exceed the budget by one call's prompts. Not counted: feedback, at most
    FEEDBACK_PER_PROMPT short entries a prompt."""

    def __init__(
        self,
        classifier: PromptClassifier,
        index: SimilarityIndex,
        load_thread: ThreadLoader | None = None,
        *,
        max_bytes: int = DEFAULT_THREAD_CACHE_BYTES,
    ) -> None:
        self._classifier = classifier
        self._index = index
        self._load_thread = load_thread
        self.max_bytes = max_bytes
        self._threads: OrderedDict[ThreadKey, list[Prompt]] = OrderedDict()
        self._bytes: dict[ThreadKey, int] = {}  # thread_bytes of each cached thread
        self.held_bytes = 0
        self._sessions: dict[str, Prompt] = {}  # session id -> its latest cached prompt

    def sizes(self) -> dict[str, int]:
        """{"threads", "sessions", "bytes"}: what the cache holds (bytes: estimated)."""
        return {
            "threads": len(self._threads),
            "sessions": len(self._sessions),
            "bytes": self.held_bytes,
        }

    def analyse(self, records: list[tuple[int, SpoolRecord]]) -> list[Prompt]:
        touched: dict[str, Prompt] = {}
        new: list[Prompt] = []
        rows: list[tuple[dict[str, Any], int]] = []
        for _, record in records:
            if record.bot:  # a bot's prompts are nobody's questions
                continue
            received_ms = int(record.received_at * 1000)
            for i, (_, _, line) in enumerate(record.events):
                if any(marker in line for marker in _INTERESTING):
                    rows.append((orjson.loads(line), received_ms * 1024 + i))
        self._prefetch(rows)
        for row, version in rows:
            self._event(row, version, touched, new)
        for prompt, (category, intent) in zip(
            new, self._classifier.predict([p.text or "(empty)" for p in new]), strict=True
        ):
            prompt.category, prompt.intent = category, intent
        self._evict()
        return list(touched.values())

    def _cache(self, key: ThreadKey, prompts: list[Prompt]) -> None:
        """Hold `prompts` as thread `key`, the most recently used."""
        size = thread_bytes(prompts)
        self.held_bytes += size - self._bytes.get(key, 0)
        self._bytes[key] = size
        self._threads[key] = prompts
        self._threads.move_to_end(key)

    def _evict(self) -> None:
        while self.held_bytes > self.max_bytes and self._threads:
            key, dropped = self._threads.popitem(last=False)
            self.held_bytes -= self._bytes.pop(key)
            self._forget(dropped)

    def _forget(self, prompts: list[Prompt]) -> None:
        """Prompts leaving the cache leave the sessions' latest prompts too."""
        for prompt in prompts:
            if self._sessions.get(prompt.session_id) is prompt:
                del self._sessions[prompt.session_id]

    def _prefetch(self, rows: list[tuple[dict[str, Any], int]]) -> None:
        """Load the threads these events name that are not in memory, in one lookup."""
        if self._load_thread is None:
            return
        missing: set[ThreadKey] = set()
        for row, _ in rows:
            props = orjson.loads(row["properties"])
            thread = props.get("thread_id") or props.get("context_thread_id")
            if isinstance(thread, str) and (row["user_id"], thread) not in self._threads:
                missing.add((row["user_id"], thread))
        if missing:
            loaded = self._load_thread(sorted(missing))
            for key in sorted(missing):
                self._cache(key, loaded.get(key, []))

    def _event(
        self, row: dict[str, Any], version: int, touched: dict[str, Prompt], new: list[Prompt]
    ) -> None:
        props = orjson.loads(row["properties"])
        kind, user = row["event_type"], row["user_id"]

        def touch(prompts: list[Prompt]) -> None:
            for prompt in prompts:
                prompt.version = version
                touched[prompt.prompt_id] = prompt

        if kind == "chat_interaction" and props["message_type"] == "user_prompt":
            prompt = self._new_prompt(row, props, version)
            thread = self._thread(user, prompt.thread_id)
            if thread:
                previous = thread[-1]
                previous.signals.followed_up = True
                if prompt.hash and (
                    previous.hash == prompt.hash or previous.prompt_id in prompt.similar
                ):
                    previous.signals.rephrased = True
                touch([previous])
            thread.append(prompt)
            self._forget(thread[:-PROMPTS_PER_THREAD])
            del thread[:-PROMPTS_PER_THREAD]
            self._cache((user, prompt.thread_id), thread)
            self._sessions[prompt.session_id] = prompt
            new.append(prompt)
            touch([prompt])
        elif kind == "chat_interaction" and props["message_type"] == "ai_response":
            waiting = [p for p in self._thread(user, props["thread_id"]) if not p.signals.responded]
            if waiting:
                prompt = waiting[-1]
                prompt.signals.responded = True
                prompt.signals.response_time_ms = props.get("response_time_ms")
                prompt.signals.response_length = props.get("response_length")
                prompt.model = props.get("model_used") or prompt.model
                output = props.get("output_tokens", props.get("tokens_consumed", 0))
                prompt.tokens = dataclasses.replace(
                    prompt.tokens, output=prompt.tokens.output + output
                )
                if "cost_cents" in props:
                    prompt.reported_cost = (prompt.reported_cost or 0.0) + props["cost_cents"]
                prompt.answered_at_ms = _ms(row["timestamp"])
                touch([prompt])
        elif kind == "thread_lifecycle" and props["action"] in ("completed", "abandoned"):
            prompts = self._thread(user, props["thread_id"])
            for prompt in prompts:
                prompt.signals.completed = props["action"] == "completed"
                prompt.signals.abandoned = props["action"] == "abandoned"
            touch(prompts)
        elif kind == "feedback_submission" and props.get("context_thread_id"):
            prompts = self._thread(user, props["context_thread_id"])
            for prompt in prompts:
                prompt.signals.feedback.append((props["feedback_type"], props.get("score")))
                del prompt.signals.feedback[:-FEEDBACK_PER_PROMPT]
            touch(prompts)
        elif kind == "error_tracking":
            last = self._sessions.get(row["session_id"])
            answered = last.answered_at_ms if last else None
            if (
                last
                and answered is not None
                and 0 <= _ms(row["timestamp"]) - answered <= ERROR_WINDOW_MS
            ):
                last.signals.errors_after += 1
                touch([last])

    def _new_prompt(self, row: dict[str, Any], props: dict[str, Any], version: int) -> Prompt:
        text = props.get("prompt_text") or ""
        digest = prompt_hash(text) if text else ""
        timestamp_ms = _ms(row["timestamp"])
        similar: list[tuple[str, float]] = []
        repeat = False
        if text:
            self._index.add(row["event_id"], row["user_id"], timestamp_ms, digest, text)
            similar = self._index.similar(row["event_id"], digest, text)
            repeat = self._index.is_repeat(row["user_id"], timestamp_ms, similar)
        tokens = Tokens(
            input=props.get("input_tokens", props.get("tokens_consumed", 0)),
            output=props.get("output_tokens", 0),
            cached_input=props.get("cached_tokens", 0),
        )
        return Prompt(
            prompt_id=row["event_id"], timestamp=row["timestamp"], timestamp_ms=timestamp_ms,
            user_id=row["user_id"], thread_id=props["thread_id"], session_id=row["session_id"],
            text=text, hash=digest, complexity=complexity(text),
            similar=[other for other, _ in similar[:MAX_SIMILAR]], repeat=repeat,
            model=props.get("model_used") or "", tokens=tokens,
            reported_cost=props.get("cost_cents"), version=version,
        )  # fmt: skip

    def _thread(self, user: str, thread_id: str) -> list[Prompt]:
        key = (user, thread_id)
        if key not in self._threads:
            loaded = self._load_thread([key]) if self._load_thread else {}
            self._cache(key, loaded.get(key, []))
        self._threads.move_to_end(key)
        return self._threads[key]


# (spool row field, RECOVER_EVENTS column): a stored event as the analyser reads a spooled one.
_RECOVERED = (
    ("event_id", "id"),
    ("user_id", "user_id"),
    ("session_id", "session_id"),
    ("event_type", "kind"),
    ("properties", "properties"),
    ("timestamp", "ts"),
)


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def state_note(lag_seconds: float, now: float) -> bytes:
    """What the prompt analysis process notes in each spool it reads, every second
    (`STATE_NOTE`, read by `outside_status`)."""
    return orjson.dumps({"at": now, "lag_seconds": round(lag_seconds, 3)})


def outside_status(spool: Spool, now: float) -> dict[str, Any]:
    """For /health/ready of a worker whose prompts another process analyses (`prompt_process`):
    what its spool says of that reader: its offset, its recovery note, and its state note.

    `status`: `not_running` when no state was noted for STATE_STALE_SECONDS (the process is
    down, stopped, or restarting), `recovering` while skipped windows are recovered, `behind`
    when the oldest stored request not analysed arrived over BEHIND_SECONDS ago, else `ok`."""
    windows = orjson.loads(spool.read_note(RECOVERY_NOTE) or b"[]")
    try:
        state = orjson.loads(spool.read_note(STATE_NOTE) or b"null")
        seen, lag = float(state["at"]), float(state["lag_seconds"])
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        seen, lag = None, None
    if seen is None or now - seen > STATE_STALE_SECONDS:
        status = "not_running"
    elif windows:
        status = "recovering"
    elif lag is not None and lag > BEHIND_SECONDS:
        status = "behind"
    else:
        status = "ok"
    return {
        "status": status,
        "analysed_by": "prompt analysis process",
        "lag_seconds": lag,
        "noted_seconds_ago": None if seen is None else round(max(0.0, now - seen), 1),
        "stored_bytes_not_analysed": max(0, spool.checkpoint - spool.consumer_offset(CONSUMER)),
        "recovery_windows": [[_iso_ms(start), _iso_ms(end)] for start, end in windows],
    }


class PromptWorker:
    def __init__(
        self,
        spool: Spool | SpoolFollower,
        store: Store,
        *,
        prices: PriceTable,
        chunk: int = 50,
        chunk_events: int | None = None,
        duty: float = DUTY_CYCLE,
        calls: StoreCalls | None = None,
        clock: Callable[[], float] = time.time,
        index: SimilarityIndex | None = None,
        erased: ErasedPeople | None = None,
        thread_cache_bytes: int = DEFAULT_THREAD_CACHE_BYTES,
    ) -> None:
        """`chunk`: spool records per analysis call, at most; `chunk_events`: and at most about
        this many events (a call ends with the record that reaches it); `calls`: the pool (and
        timeout) for its store calls, by default 1 thread and 30 s; `thread_cache_bytes`: the
        analyser's budget for threads in memory (`PromptAnalyser`)."""
        self._spool = spool
        self._duty = duty
        self._store = store
        self._prices = prices
        self._chunk = chunk
        self._chunk_events = chunk_events
        self._chunk_records = 0  # records in the last chunk read (`_next`)
        self._calls = calls or StoreCalls("store-prompts", workers=1, timeout=30.0)
        self._clock = clock
        self._stopping = asyncio.Event()
        self._outage = OutageLog(log, "prompt analysis (store)")
        self.index = index if index is not None else SimilarityIndex()
        self._erased = erased
        self._thread_cache_bytes = thread_cache_bytes
        self.analyser: PromptAnalyser | None = None
        self.rows_written = 0
        self.inserts = 0  # inserts of rows into prompt_analytics
        # When the request of the last record analysed arrived (`lag_seconds`); None: none yet.
        self.analysed_until: float | None = None
        self._chunk_received_at: float | None = None
        self._started_at = clock()
        self.records_skipped = 0
        self.skipped_bytes = 0
        self.prompts_recovered = 0
        self.recovery: list[list[int]] = []  # [start ms, end ms] windows of event time to recover
        self._recovering_to = 0  # where the recovery step in hand ends (ms)

    def _analyse_kept(self, chosen: list[tuple[int, SpoolRecord]]) -> list[Prompt]:
        """Analyse the records without the events of people erased since (`ingest.erased`)."""
        assert self.analyser is not None
        if self._erased is not None:
            self._erased.refresh()
            kept = without_erased([record for _, record in chosen], self._erased)
            chosen = [(offset, record) for (offset, _), record in zip(chosen, kept, strict=True)]
        return self.analyser.analyse(chosen)

    def lag_seconds(self) -> float:
        """How far the analysis is behind what the writer has stored: 0 when it has analysed
        every stored record, else the seconds since the last record it analysed (or since it
        started) arrived. From offsets and times it holds: no spool read."""
        if self._spool.consumer_offset(CONSUMER) >= self._spool.checkpoint:
            return 0.0
        since = self.analysed_until if self.analysed_until is not None else self._started_at
        return max(0.0, self._clock() - since)

    def status(self) -> dict[str, Any]:
        """For /health/ready: `recovering` while a skipped window is still being recovered."""
        return {
            "status": "recovering" if self.recovery else "ok",
            "rows_written": self.rows_written,
            "skipped_spool_bytes": self.skipped_bytes,
            "prompts_recovered": self.prompts_recovered,
            "recovery_windows": [[_iso_ms(start), _iso_ms(end)] for start, end in self.recovery],
        }

    async def run(self) -> None:
        await self._calls.run(self._start)
        note = self._spool.read_note(RECOVERY_NOTE)
        self.recovery = orjson.loads(note) if note else []
        pending: tuple[int, bytes, int] | None = None  # (end offset, rows, count) to insert
        backoff = 0.0
        while not self._stopping.is_set():
            if pending is None:
                try:
                    pending = await self._next()
                    if pending is None and self.recovery:
                        pending = await self._recover_slice()
                except StoreError as exc:  # a lookup failed: the same records are read again
                    backoff = next_backoff(backoff)
                    self._outage.failed(str(exc)[:300])
                    await self._wait(backoff * random.uniform(0.8, 1.2))
                    continue
                if pending is None:
                    await self._wait(None)
                    continue
                if pending[0] >= 0:
                    pending = await self._caught_up(pending)
            end, rows, count = pending
            try:
                if rows:
                    await self._calls.run(self._insert, rows)
                    self.inserts += 1
            except Exception as exc:
                backoff = next_backoff(backoff)
                self._outage.failed(str(exc)[:300])
                await self._wait(backoff * random.uniform(0.8, 1.2))
                continue
            backoff = 0.0
            self._outage.succeeded()
            if end >= 0:
                self._spool.commit_consumer(CONSUMER, end)
                self.analysed_until = self._chunk_received_at
            else:
                self._recovered_slice()
                self.prompts_recovered += count
                metrics.PROMPTS_RECOVERED.inc(count)
            self.rows_written += count
            pending = None

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Finish the chunk in hand (10 s at most). A worker that died has been logged already:
        its error must not stop the rest of the shutdown."""
        self._stopping.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(task), 10)
        task.cancel()

    def _start(self) -> None:
        rows = self._store.query_rows(REBUILD_INDEX, {"days": REBUILD_DAYS, "limit": REBUILD_LIMIT})
        for row in rows:
            self.index.add(
                row["id"], row["user_id"], int(row["ms"]), row["prompt_hash"], row["prompt_text"]
            )
        self.analyser = PromptAnalyser(
            default_classifier(), self.index, self._load_thread, max_bytes=self._thread_cache_bytes
        )
        log.info("prompt intelligence ready", extra={"indexed_prompts": len(self.index)})

    def _load_thread(self, keys: list[ThreadKey]) -> dict[ThreadKey, list[Prompt]]:
        wanted = set(keys)
        threads: dict[ThreadKey, list[Prompt]] = {}
        for start in range(0, len(keys), LOAD_THREADS_CHUNK):
            chunk = keys[start : start + LOAD_THREADS_CHUNK]
            params = {
                "users": sorted({u for u, _ in chunk}),
                "threads": sorted({t for _, t in chunk}),
            }
            for row in self._store.query_rows(LOAD_THREADS, params):
                key = (row["user_id"], row["thread_id"])
                if key in wanted:
                    threads.setdefault(key, []).append(Prompt.from_row(row))
        return {key: prompts[-PROMPTS_PER_THREAD:] for key, prompts in threads.items()}

    async def _caught_up(self, pending: tuple[int, bytes, int]) -> tuple[int, bytes, int]:
        """`pending` with the chunks stored after it analysed into it, until none is left or
        it holds INSERT_MAX_RECORDS records: one insert per commit of the writer (at most one
        per `ANALYTICS_MIN_INSERT_INTERVAL_MS`), not one per chunk (50 records: at one event per
        request, some 25 inserts a second per worker, each a part in two tables)."""
        end, rows, count = pending
        parts = [rows] if rows else []
        records = self._chunk_records
        while records < INSERT_MAX_RECORDS and not self._stopping.is_set():
            try:
                more = await self._next(end)
            except StoreError:  # a thread lookup failed: that chunk is read again after this
                break
            if more is None:
                break
            end, more_rows, more_count = more
            if more_rows:
                parts.append(more_rows)
            count += more_count
            records += self._chunk_records
        return end, b"\n".join(parts), count

    async def _next(self, offset: int | None = None) -> tuple[int, bytes, int] | None:
        """The next chunk's (end, rows, count), from the consumer's offset or `offset`."""
        if offset is None:
            if self._spool.consumer_over_cap(CONSUMER):
                await self._skip()
            offset = self._spool.consumer_offset(CONSUMER)
        stored_until = self._spool.checkpoint  # only what the writer has stored
        if offset >= stored_until:
            return None
        chosen = await self._read_chunk(offset, stored_until)
        if not chosen:
            return None
        self._chunk_records = len(chosen)
        self._chunk_received_at = chosen[-1][1].received_at
        return await self._analysed(chosen, chosen[-1][0])

    async def _read_chunk(self, offset: int, stored_until: int) -> list[tuple[int, SpoolRecord]]:
        """(end offset, record) of the stored records from `offset`: at most `chunk` records,
        and with `chunk_events`, ending with the record that brings them to that many events."""
        chosen: list[tuple[int, SpoolRecord]] = []
        events = 0
        now = self._clock()
        while len(chosen) < self._chunk:
            wanted = self._chunk - len(chosen)
            if self._chunk_events is not None:  # read no further than the event bound can use
                wanted = min(wanted, READ_SLICE_RECORDS)
            records = await self._spool.read_async(offset, wanted)
            for record in records:
                if record.end > stored_until:  # not stored yet: analysed once it is
                    return chosen
                decoded = decode_spooled(record, now)
                chosen.append((record.end, decoded))
                offset = record.end
                events += len(decoded.events)
                if self._chunk_events is not None and events >= self._chunk_events:
                    return chosen
            if len(records) < wanted or self._chunk_events is None:
                return chosen
        return chosen

    async def _analysed(
        self, chosen: list[tuple[int, SpoolRecord]], end: int, keep: set[str] | None = None
    ) -> tuple[int, bytes, int]:
        """(end, rows, count) for records; `keep`: write rows of these prompt ids only."""
        assert self.analyser is not None
        started = time.perf_counter()
        try:
            # The analysis may load threads from the store: in the store's pool. Not cut short
            # by the pool's timeout: a retry beside a late first run would apply the same
            # events twice to the analyser's state; the store client's own timeout ends it.
            prompts = await self._calls.run(self._analyse_kept, chosen, timeout=ANALYSE_WAIT)
            worked = time.perf_counter() - started
            if self._duty < 1:
                await asyncio.sleep(worked * (1 - self._duty) / self._duty)
        except StoreError:
            raise
        except Exception:  # a record the analysis cannot handle must not stop it for good
            log.exception("prompt analysis skipped records it could not handle")
            self.records_skipped += len(chosen)
            return end, b"", 0
        if keep is not None:
            prompts = [p for p in prompts if p.prompt_id in keep]
        rows = b"\n".join(orjson.dumps(p.row(self._prices)) for p in prompts)
        return end, rows, len(prompts)

    async def _skip(self) -> None:
        """Move up to the writer's checkpoint, noting the skipped window to recover it."""
        offset = self._spool.consumer_offset(CONSUMER)
        now = self._clock()
        first = await self._spool.read_async(offset, 1)
        since = decode_spooled(first[0], now).received_at if first else now
        window = [int(since * 1000) - RECOVERY_MARGIN_MS, int(now * 1000)]
        self.recovery.append(window)
        self._spool.write_note(RECOVERY_NOTE, orjson.dumps(self.recovery))
        skipped = self._spool.skip_consumer(CONSUMER)
        self.skipped_bytes += skipped
        metrics.PROMPT_SPOOL_SKIPPED.inc(skipped)
        log.warning(
            "prompt analysis fell more than the spool's cap behind: moved up to the stored "
            "events; the skipped prompts will be recovered from frontend_events",
            extra={"skipped_bytes": skipped, "window_from": _iso_ms(window[0]),
                   "window_to": _iso_ms(window[1])},
        )  # fmt: skip

    async def _recover_slice(self) -> tuple[int, bytes, int]:
        """Analyse the next slice of the first recovery window (end -1: a recovery step)."""
        start, end = self.recovery[0]
        slice_end = min(end, start + RECOVERY_SLICE_MS)
        params = {
            "start": datetime.fromtimestamp(start / 1000, UTC),
            "end": datetime.fromtimestamp(slice_end / 1000, UTC),
            "until": datetime.fromtimestamp((slice_end + ANSWER_MARGIN_MS) / 1000, UTC),
            "limit": RECOVERY_LIMIT,
        }
        rows = await self._calls.run(self._store.query_rows, RECOVER_EVENTS, params)
        missing = {row["id"] for row in rows if row["missing"]}
        self._recovering_to = slice_end
        if not missing:
            return -1, b"", 0
        records = [
            (0, SpoolRecord(int(row["ms"]) / 1000, [(row["id"], row["user_id"], line)], []))
            for row in rows
            if not row["is_prompt"] or row["missing"]
            for line in [orjson.dumps({field: row[column] for field, column in _RECOVERED})]
        ]
        # A fresh analyser: threads start from the recovered prompts, not from stored rows.
        recovering = PromptAnalyser(
            default_classifier(), self.index, max_bytes=self._thread_cache_bytes
        )
        analyser, self.analyser = self.analyser, recovering
        try:
            result = await self._analysed(records, -1, missing)
        finally:
            self.analyser = analyser
        return result

    def _recovered_slice(self) -> None:
        self.recovery[0][0] = self._recovering_to
        if self.recovery[0][0] >= self.recovery[0][1]:
            self.recovery.pop(0)
        self._spool.write_note(RECOVERY_NOTE, orjson.dumps(self.recovery))

    def _insert(self, rows: bytes) -> None:
        token = hashlib.sha256(rows).hexdigest()
        self._store.insert_json_rows(
            "prompt_analytics", rows, settings={"insert_deduplication_token": token}
        )

    async def _wait(self, timeout: float | None) -> None:
        """Until the writer stores more (or `timeout`, or stop)."""
        self._spool.committed.clear()
        waiters = [asyncio.ensure_future(self._spool.committed.wait()),
                   asyncio.ensure_future(self._stopping.wait())]  # fmt: skip
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
