-- One row per analysed user prompt (filled by prompt intelligence); the spec's table.
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
  actual_cost_cents Float32
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (user_id, timestamp, prompt_id)
TTL toDateTime(timestamp) + INTERVAL 180 DAY;
