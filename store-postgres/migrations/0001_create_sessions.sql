-- Version 1: the sessions table and the two indexes that keep sweeps and
-- owner queries off full scans.
--
-- {table}, {expires_at_index} and {owner_index} are replaced by quoted
-- identifiers that the store validated at configuration
-- ([a-z_][a-z0-9_]*), so nothing here can be injected.
--
-- Times are milliseconds since the Unix epoch as given by the caller: the
-- database clock is never used to judge liveness.

CREATE TABLE IF NOT EXISTS {table} (
    -- SHA-256 of the session id (32 bytes); never the token itself.
    key        bytea  PRIMARY KEY,
    -- 1 after create and rotate; +1 on every successful update.
    version    bigint NOT NULL,
    -- The application's encoded data, opaque to the store.
    data       bytea  NOT NULL,
    created_at bigint NOT NULL,
    -- The first instant (ms) at which the session is no longer live.
    expires_at bigint NOT NULL,
    -- The owner index (for example a user id); NULL when there is none.
    owner      text
);

-- delete_expired: `WHERE expires_at <= $now ORDER BY expires_at LIMIT $n`.
CREATE INDEX IF NOT EXISTS {expires_at_index} ON {table} (expires_at);

-- list_by_owner / delete_by_owner: `WHERE owner = $1 [AND expires_at > $now]`.
-- Partial: anonymous sessions (no owner) cost nothing in this index.
CREATE INDEX IF NOT EXISTS {owner_index} ON {table} (owner, expires_at) WHERE owner IS NOT NULL;
