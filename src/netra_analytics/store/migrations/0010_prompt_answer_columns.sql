-- What the prompt reports read about each prompt's answer, as columns computed by ClickHouse
-- from `signals` (MATERIALIZED: filled on every insert, never written by the worker, not in
-- SELECT *). Reading the whole `signals` JSON to take two numbers out of it cost ~50 ms per
-- million prompts in each report that did; these columns cost a few. The keys occur once in
-- the worker's compact JSON (a test keeps them unique), so the simpleJSON functions suffice.
ALTER TABLE analytics.prompt_analytics
  ADD COLUMN IF NOT EXISTS answered Bool MATERIALIZED simpleJSONExtractBool(signals, 'responded'),
  ADD COLUMN IF NOT EXISTS errors_after UInt32 MATERIALIZED simpleJSONExtractUInt(signals, 'errors_after'),
  ADD COLUMN IF NOT EXISTS answer_output_tokens UInt64 MATERIALIZED simpleJSONExtractUInt(signals, 'output'),
  ADD COLUMN IF NOT EXISTS answer_response_time_ms Float64 MATERIALIZED simpleJSONExtractFloat(signals, 'response_time_ms');

ALTER TABLE analytics.prompt_analytics
  MATERIALIZE COLUMN answered,
  MATERIALIZE COLUMN errors_after,
  MATERIALIZE COLUMN answer_output_tokens,
  MATERIALIZE COLUMN answer_response_time_ms
SETTINGS mutations_sync = 2;
