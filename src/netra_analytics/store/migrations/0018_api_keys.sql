-- API keys (issue 15): one row per change of a key, the newest (highest version) is in force.
-- A key is stored only as the SHA-256 of its text (hex); revoking writes a row with revoked_at.
-- Readers take argMax(..., version) per name, which is right on a cluster too, where rows of
-- one name may sit on different shards until merged.
CREATE TABLE IF NOT EXISTS analytics.api_keys (
  name String,
  key_hash String,
  role LowCardinality(String),
  created_at DateTime64(3),
  revoked_at Nullable(DateTime64(3)),
  version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY name;
