-- One row per user prompt, filled by prompt intelligence (prompts/worker.py); the spec's
-- columns, plus:
--   session_id, prompt_text (sanitised: the example reports show), model_used;
--   version: a row is written again, with a higher version, as signals about its answer
--     arrive (a response, feedback, a rephrase, the thread's end). ReplacingMergeTree keeps the
--     latest on merge; readers use FINAL or argMax(..., version).
--   actual_cost_cents is Nullable: NULL when no event reported a cost;
--   signals: what is known about the answer so far (JSON), so a late signal after a restart
--     updates the scores from the same evidence.
CREATE TABLE IF NOT EXISTS analytics.prompt_analytics (
  prompt_id UUID DEFAULT generateUUIDv4(),
  timestamp DateTime64(3) DEFAULT now(),
  user_id String,
  thread_id String,
  prompt_hash String,
  prompt_category String,
  prompt_intent String,
  prompt_complexity_score Float32,
  response_quality_score Float32,
  response_relevance_score Float32,
  follow_up_generated Boolean,
  is_repeat_question Boolean,
  similar_prompts Array(String),
  estimated_cost_cents Float32,
  actual_cost_cents Nullable(Float32),
  session_id String,
  prompt_text String,
  model_used String,
  signals String,
  version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (user_id, timestamp, prompt_id)
TTL toDateTime(timestamp) + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 1000;
