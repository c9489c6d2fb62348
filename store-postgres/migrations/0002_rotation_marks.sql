-- Version 2: rotation marks (contract v2).
--
-- A mark is a row under a rotated-away key with expires_at = i64::MIN, so
-- that no liveness test (`expires_at > $now`) accepts it, whatever `now`
-- is, and with `rotated_until` = the instant it stops being in force. Every
-- record has `rotated_until` NULL: existing rows need no rewrite.
--
-- Adding a nullable column without a default changes only the catalog (no
-- table rewrite), under a brief ACCESS EXCLUSIVE lock. The index is
-- partial, so it holds the marks alone; building it reads the table once,
-- under a SHARE lock that holds writes back for that time (about a second
-- per few million rows).
--
-- {table} and {marks_index} are replaced by quoted identifiers that the
-- store validated at configuration, so nothing here can be injected.

ALTER TABLE {table} ADD COLUMN IF NOT EXISTS rotated_until bigint;

-- delete_expired: `WHERE rotated_until <= $now AND expires_at = i64::MIN`.
CREATE INDEX IF NOT EXISTS {marks_index} ON {table} (rotated_until) WHERE rotated_until IS NOT NULL;
