//! The Lua scripts: one per operation of the contract but `load` and
//! `was_rotated` (`update` and `overwrite` share one).
//!
//! # Why each operation is atomic
//!
//! `load` needs no script: it is one `HMGET` of the record's fields, and a
//! single command is atomic by itself; the client validates the fields and
//! decides liveness by the caller's `now` (see `reply::hmget_fields`), with
//! the same rules as `parse` below. That is much cheaper for the server, which
//! is single threaded: a script call costs several times a plain command.
//! `was_rotated` is one `HMGET` too (see *Rotation marks*).
//!
//! Redis runs a script to completion before it serves any other command, so
//! everything a script reads and writes happens at one instant: that is the
//! linearization point of the operation. Two `update`s that expect the same
//! version run one after the other; the second sees the first one's version
//! and returns a conflict.
//!
//! Redis does **not** roll a script back when it fails half way: writes made
//! before an error stay. So every script first reads and validates everything
//! it will touch (the record, the records it replaces, the owner indexes) and
//! only then writes. A corrupt value is found in the read phase and the script
//! stops with a `CORRUPT` error before it has changed anything; so does a
//! write that would move a version past `u64::MAX`. The two exceptions are
//! `delete` and `delete_by_owner`: ending a session must work even when its
//! record is damaged, so they remove it without decoding it, and cannot fail
//! on bad bytes once they have started writing. `list_by_owner` writes
//! nothing and does not stop at a damaged record either: it skips it and
//! returns its entry and the reason, for the client to log.
//!
//! # Rotation marks
//!
//! `rotate` leaves a *mark* under the old key: a hash with the one field
//! `rotated_until` (decimal milliseconds: `min(old expires_at, now + 60 s)`,
//! the second term computed by the client) and none of the session fields.
//! A hash without any session field reads as absent everywhere: `parse`
//! returns nothing for it, exactly as `load`'s HMGET of the session fields
//! does, so `update`, `overwrite`, `touch`, `rotate` from it, and the owner
//! scripts, which never find it in an index, treat a mark as no session.
//! `create` and `rotate` onto the key replace it (`DEL`, `RENAME`), `delete`
//! removes it. Only `was_rotated` looks at `rotated_until`, and it compares
//! it with the caller's `now`.
//!
//! The mark keeps the old record's server TTL (read with `PEXPIRETIME`
//! before the `RENAME` moves it away), never a TTL of its own at
//! `now + 60 s`: a caller's clock may run behind the server's (the
//! conformance suite's manual clock does, by design), and a server TTL that
//! fired while the mark is still in force by the caller's clock would break
//! `was_rotated`. So a mark lasts physically as long as the session would
//! have, and is in force only until its `rotated_until`.
//!
//! # Numbers
//!
//! Lua in Redis has only doubles, exact up to 2^53. Timestamps are `i64`
//! milliseconds and versions `u64`, so the scripts never do arithmetic on
//! them: fields hold canonical decimal strings written by this crate,
//! compared digit by digit (`lt`) and incremented digit by digit (`incr`).
//! A stored version over `u64::MAX` is corrupt, and one of exactly
//! `u64::MAX` is refused as `CORRUPT` by `update` and `overwrite` before
//! they write, as it cannot be incremented. Where a sum is needed (the end
//! of a rotation mark, `now + 60 s`) the client computes it on `i64`.
//! Only the owner index scores are doubles; they serve ordering and garbage
//! collection, never the liveness decision, which always reads the record.
//!
//! # Server cost
//!
//! Redis is single threaded, and the server's CPU time per call is what
//! bounds throughput, so the scripts are written for it. Rough costs on
//! Redis 7.0 (`usec_per_call` in `INFO commandstats`): EVALSHA itself about
//! 1 µs; inside a script, an `HMGET` about 1 µs (its reply becomes a Lua
//! table) and a small write, `EXISTS` or `HEXISTS` about 0.4 µs each; and
//! about 0.1 µs per `local function`, because the top level of a script,
//! closures included, runs again on every call. Hence:
//!
//! - a record is read with one `HMGET` (through `redis.pcall`, whose
//!   `WRONGTYPE` error replaces a `TYPE` call) plus one `HEXISTS` for
//!   `data`, never copying the payload into Lua (tens of microseconds at
//!   4 KiB, hundreds at 64 KiB), except in `rotate`, which must return the
//!   moved record and reads `data` once; a key expected to be free
//!   (`create`, `rotate`'s target) is probed with one `EXISTS` instead;
//! - every script defines three helpers (`lt`, `parse`, `read`; the one of
//!   `update` and `overwrite` also `incr`); the owner index helpers are
//!   built on first use, so a session without an owner pays for none of
//!   them, and touches no index (no `TIME`, no trimming);
//! - an owner index is checked with `TYPE` only where a pcall'd index
//!   command cannot be the script's first write, and trimmed only when an
//!   entry is added; a renewal that only moves its entry later (`touch`, an
//!   `update` that does not shorten the session) keeps the index TTL with
//!   one `PEXPIREAT ... GT` instead of reading the top entry, and `rotate`
//!   renames the entry at the same score, which leaves the TTL as it is
//!   (a `rotate` that changes the owner adds to one index and removes from
//!   the other, as `update` does).
//!
//! Measured `usec_per_call` of EVALSHA, 256 B payloads, 2,000 sessions per
//! run, an owner per four sessions, best of five runs on a private Redis
//! 7.0.15, on a shared 2-core machine under load (absolute numbers run about
//! twice an idle server's; compare within a column). "Before" is the
//! previous version of these scripts; a plain `HMGET` (what `load` sends)
//! measured 1.0 µs, and the benchmarks' raw compare-and-swap (`GETRANGE` +
//! `SET PXAT` in one EVALSHA) 6.6 µs in the same runs. These are the
//! scripts of contract v1; see below the table for what v2 added.
//!
//! | operation | no owner, before | no owner, now | with owner, before | with owner, now |
//! |---|---:|---:|---:|---:|
//! | create | 6.2 µs | 4.9 µs | 19.6 µs | 13.1 µs |
//! | update | 13.3 µs | 10.1 µs | 20.6 µs | 15.5 µs |
//! | touch | 9.9 µs | 7.0 µs | 13.6 µs | 9.9 µs |
//! | rotate | 11.1 µs | 9.6 µs | 27.2 µs | 11.4 µs |
//! | delete | 8.0 µs | 5.7 µs | 13.5 µs | 10.7 µs |
//!
//! What is left is the floor of the contract, not Lua: the EVALSHA itself,
//! one `HMGET` + `HEXISTS` to validate the record, and one command per
//! field group written plus `PEXPIREAT` (Redis 7.0 has no per-field or
//! combined hash-and-TTL write). Redis Functions would save the remaining
//! closures and some call overhead (`FCALL` of an empty function measured
//! 0.9 µs against 1.1 µs for EVALSHA, a `touch` that reads and writes
//! nothing 4.1 µs against 5.0 µs), at the price of loading a library
//! (after a restart without persistence, and per deployed version) instead
//! of the self-reloading `Script`.
//!
//! Contract v2 (not in the table) added to `rotate` one `HGET` of `data`
//! (the reply carries the moved record), one `PEXPIRETIME`, and the mark's
//! `HSET` and `PEXPIREAT`; to `parse` one more comparison of the version;
//! and `overwrite` runs the `update` script with its version check off.
//! Measured as above (best of five, the v1 and v2 scripts interleaved) on
//! an even busier machine (load average 3 to 5 on 2 cores, so compare only
//! v1 with v2 of one operation): `rotate` went from 11.5 to 19.8 µs without
//! an owner and from 12.7 to 20.2 µs with one; a `rotate` that sets a new
//! owner on every call measured 37.5 µs (an `update` that changes the
//! owner on every call 30-35 µs in the same run: both add to one index and
//! remove from another); `create`, `update`, `touch` and `delete` moved
//! both ways within that run's noise, which reached several µs.
//!
//! # Liveness and garbage collection
//!
//! A record is live iff `now < expires_at`, with `now` from the caller
//! (`ARGV`), never from Redis's clock. The server's clock is read (`TIME`)
//! for one thing only: dropping owner index entries whose record Redis has
//! already removed by its own TTL, so the index never grows without bound.
//!
//! # Keys a script builds itself
//!
//! Scripts that follow the owner index (and `update`, `overwrite` and
//! `rotate`, which move a session from its stored owner's index to another
//! one) build keys from the prefix in `ARGV[1]` instead of receiving all of
//! them in `KEYS`. A single Redis server allows this; Redis Cluster does not
//! (see the crate docs).

use std::sync::LazyLock;

use redis::Script;

/// Reading and judging a record. A session is a hash with the fields
/// `version`, `data`, `created_at`, `expires_at` and (if it has one) `owner`;
/// a hash with none of them (a rotation mark) reads as absent.
const READ: &str = r#"
local prefix = ARGV[1]

-- a < b for canonical decimal integers (exact, unlike doubles).
local function lt(a, b)
  local na, nb = string.byte(a, 1) == 45, string.byte(b, 1) == 45
  if na ~= nb then return na end
  if na then a, b = string.sub(b, 2), string.sub(a, 2) end
  if #a ~= #b then return #a < #b end
  return a < b
end

-- Reads the record under `key`. Returns the record; or nil and nil if there
-- is none (no key, or a hash holding none of the session fields: a rotation
-- mark); or nil and a reason (and the raw fields, nil for a non-hash) if the
-- key holds anything else than a session hash written by this crate.
--
-- One HMGET, which fails with WRONGTYPE on a non-hash (so no TYPE call), and
-- one HEXISTS for `data`: the payload itself is never copied into Lua, which
-- costs hundreds of microseconds for 64 KiB. When HMGET finds none of the
-- other fields, the HEXISTS alone decides: no `data` either means no session
-- (load's HMGET of the same five fields says the same), a lone `data` is a
-- damaged one. The integer checks are inlined: every helper a script defines
-- is a closure Redis builds again on every call.
local function parse(key)
  local f = redis.pcall('HMGET', key, 'version', 'created_at', 'expires_at', 'owner')
  if f.err then
    if string.sub(f.err, 1, 9) == 'WRONGTYPE' then
      return nil, 'the key holds another type than a session hash', nil
    end
    error(f)
  end
  local v, c, e = f[1], f[2], f[3]
  if not (v or c or e or f[4]) and redis.call('HEXISTS', key, 'data') == 0 then
    return nil, nil, nil
  end
  -- At most u64::MAX (20 digits, compared as such): a longer or larger
  -- version would make the next one unrepresentable for the client.
  if not v or #v > 20 or not string.match(v, '^[1-9]%d*$') or (#v == 20 and lt('18446744073709551615', v)) then
    return nil, 'the version field is not an integer from 1 to u64::MAX', f
  end
  if not c or (c ~= '0' and (#c > 20 or not string.match(c, '^%-?[1-9]%d*$'))) then
    return nil, 'the created_at field is not an integer', f
  end
  if not e or (e ~= '0' and (#e > 20 or not string.match(e, '^%-?[1-9]%d*$'))) then
    return nil, 'the expires_at field is not an integer', f
  end
  if redis.call('HEXISTS', key, 'data') == 0 then return nil, 'the data field is missing', f end
  return {v = v, c = c, e = e, o = f[4]}, nil, f
end

-- The record under `key`, or nil if there is none (a rotation mark
-- included); corruption stops the script with an error the client turns
-- into Error::Corrupt (in the read phase, before any write).
local function read(key)
  local r, why = parse(key)
  if why then error({err = 'CORRUPT ' .. why}) end
  return r
end
"#;

/// The owner indexes. An owner's index is a sorted set of session keys (hex)
/// scored by their `expires_at`, with a TTL at its longest-lived entry (plus
/// grace).
const INDEX: &str = r#"
-- The helpers live in a table built on first use: a helper is a closure
-- that Redis builds again on every call of the script, and most calls
-- (sessions without an owner) need none of them.
local index_helpers = nil
local function owner_index()
  if index_helpers then return index_helpers end
  local m = {}

  function m.session_key(hex)
    return prefix .. '{' .. hex .. '}'
  end

  function m.key(owner)
    return prefix .. 'owner:{' .. owner .. '}'
  end

  -- A redis.pcall reply from an owner index, unless it is an error:
  -- WRONGTYPE (a foreign value under the index name) stops the script with
  -- CORRUPT, anything else is raised as it is.
  function m.checked(reply)
    if type(reply) == 'table' and reply.err then
      if string.sub(reply.err, 1, 9) == 'WRONGTYPE' then
        error({err = 'CORRUPT the owner index is not a sorted set'})
      end
      error(reply)
    end
    return reply
  end

  -- An owner index must be a sorted set (or absent) before a script writes.
  -- Needed only where no pcall'd index command can be the script's first
  -- write (see add).
  function m.check(index)
    local kind = redis.call('TYPE', index)['ok']
    if kind ~= 'none' and kind ~= 'zset' then
      error({err = 'CORRUPT the owner index holds a ' .. kind .. ', not a sorted set'})
    end
  end

  -- Gives the index a TTL at its longest-lived entry (plus grace), and,
  -- when `trim`, first drops entries whose record the server has already
  -- expired by its own TTL (which is expires_at + grace by the server's
  -- clock, so entries scored below server time - grace). Garbage collection
  -- only: liveness reads the records.
  --
  -- Trimming runs only when an entry is added, not when one is rescored
  -- (touch, update under the same owner) or renamed (rotate): an index only
  -- grows by additions, and each addition leaves it holding nothing the
  -- server has expired, so the bound is unchanged while renewals skip TIME
  -- and ZREMRANGEBYSCORE.
  function m.tidy(index, trim)
    local grace = tonumber(ARGV[2])
    if trim then
      local t = redis.call('TIME')
      local server_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. string.format('%.0f', server_ms - grace))
    end
    local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    if #top == 0 then return end
    local at = tonumber(top[2]) + grace
    if at < 9e15 then
      redis.call('PEXPIREAT', index, string.format('%.0f', at))
    else
      redis.call('PERSIST', index)
    end
  end

  -- Adds or rescores `hex` in the owner's index. The ZADD is sent with
  -- pcall: where it is the script's first write, a foreign value under the
  -- index name stops the script with CORRUPT before anything is written,
  -- with no TYPE call; elsewhere the caller has checked the index first.
  --
  -- `later`: the caller knows the entry's score can only grow (touch; an
  -- update under the same owner that does not shorten the session). If the
  -- entry was there, the longest-lived entry is then either unchanged or
  -- this one, so one `PEXPIREAT ttl_at GT` keeps the TTL at it without
  -- reading the top entry (GT counts a persistent index as infinite: it
  -- stays persistent, as tidy would leave it).
  function m.add(owner, hex, expires_at, ttl_at, later)
    local index = m.key(owner)
    local added = m.checked(redis.pcall('ZADD', index, expires_at, hex))
    if added == 0 and later then
      redis.call('PEXPIREAT', index, ttl_at, 'GT')
    else
      m.tidy(index, added == 1)
    end
  end

  -- Removes `hex` from the owner's index if that is a sorted set: a foreign
  -- value under an index name is not ours to change.
  function m.remove(owner, hex)
    local index = m.key(owner)
    if redis.pcall('ZREM', index, hex) == 1 then m.tidy(index, false) end
  end

  index_helpers = m
  return m
end
"#;

/// Version arithmetic, exact for any `u64`.
const INCR: &str = r#"
-- s + 1 for a canonical non-negative decimal integer. Digit by digit in Lua
-- rather than HINCRBY: exact for every u64 (HINCRBY stops at 2^63 - 1), and
-- no extra command, as the new version goes out in the same HSET as the data.
local function incr(s)
  local tail = ''
  for i = #s, 1, -1 do
    local d = string.byte(s, i) - 48
    if d < 9 then
      return string.sub(s, 1, i - 1) .. string.char(49 + d) .. tail
    end
    tail = '0' .. tail
  end
  return '1' .. tail
end
"#;

/// `create`. KEYS: session. ARGV: prefix, grace, hex, now, data, created_at,
/// expires_at, ttl_at[, owner]. Returns 1 if created, 0 if a live record
/// already has the key.
const CREATE: &str = r#"
local key, hex, now = KEYS[1], ARGV[3], ARGV[4]
local data, created_at, expires_at, ttl_at, owner = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
-- A fresh key (the usual case) costs one EXISTS to read.
if redis.call('EXISTS', key) == 1 then
  local old = read(key)
  if old and lt(now, old.e) then return 0 end
  -- An expired record, or a rotation mark (old is nil), is replaced whole.
  -- Its DEL is the first write: check every index the script touches first.
  local stale_owner = old and old.o
  if stale_owner or owner then
    local ix = owner_index()
    if stale_owner then ix.check(ix.key(stale_owner)) end
    if owner then ix.check(ix.key(owner)) end
  end
  redis.call('DEL', key)
  if stale_owner then owner_index().remove(stale_owner, hex) end
end
-- Writes. On a fresh key the index ZADD comes first (see add).
if owner then
  owner_index().add(owner, hex, expires_at, ttl_at, false)
  redis.call('HSET', key, 'version', '1', 'data', data, 'created_at', created_at, 'expires_at', expires_at, 'owner', owner)
else
  redis.call('HSET', key, 'version', '1', 'data', data, 'created_at', created_at, 'expires_at', expires_at)
end
redis.call('PEXPIREAT', key, ttl_at)
return 1
"#;

/// `update` and `overwrite`. KEYS: session. ARGV: prefix, grace, hex, now,
/// expected version (empty for `overwrite`: whatever the version), data,
/// expires_at, ttl_at[, owner]. Returns {'ok', version}, {'conflict',
/// version} (only for `update`) or {'notfound'}.
const WRITE: &str = r#"
local key, hex, now, expected = KEYS[1], ARGV[3], ARGV[4], ARGV[5]
local data, expires_at, ttl_at, owner = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local r = read(key)
if not (r and lt(now, r.e)) then return {'notfound'} end
-- A stored version is never empty, so the empty string can mean "any".
if expected ~= '' and r.v ~= expected then return {'conflict', r.v} end
-- Read phase still: a version that cannot grow refuses the write whole.
if r.v == '18446744073709551615' then
  error({err = 'CORRUPT the version is u64::MAX and cannot be incremented'})
end
local version = incr(r.v)
if not owner and not r.o then
  -- The usual case, no owner on either side: no index to keep.
  redis.call('HSET', key, 'version', version, 'data', data, 'expires_at', expires_at)
  redis.call('PEXPIREAT', key, ttl_at)
  return {'ok', version}
end
local ix = owner_index()
local moved = r.o and r.o ~= owner
if moved then
  -- Two indexes change: check both before the first write.
  ix.check(ix.key(r.o))
  if owner then ix.check(ix.key(owner)) end
end
-- Writes. Under an unchanged owner the index ZADD comes first (see add).
if owner then
  ix.add(owner, hex, expires_at, ttl_at, r.o == owner and not lt(expires_at, r.e))
  redis.call('HSET', key, 'version', version, 'data', data, 'expires_at', expires_at, 'owner', owner)
else
  redis.call('HSET', key, 'version', version, 'data', data, 'expires_at', expires_at)
  redis.call('HDEL', key, 'owner')
end
-- As given: an update may shorten the session.
redis.call('PEXPIREAT', key, ttl_at)
if moved then ix.remove(r.o, hex) end
return {'ok', version}
"#;

/// `touch`. KEYS: session. ARGV: prefix, grace, hex, now, expires_at,
/// ttl_at. Returns 1 if live (and renewed when later), 0 otherwise.
const TOUCH: &str = r#"
local key, hex, now, expires_at, ttl_at = KEYS[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local r = read(key)
if not (r and lt(now, r.e)) then return 0 end
-- Never shortens: only a later expiry is written.
if lt(r.e, expires_at) then
  -- The index ZADD is the first write (see add); the score only grows.
  if r.o then owner_index().add(r.o, hex, expires_at, ttl_at, true) end
  redis.call('HSET', key, 'expires_at', expires_at)
  redis.call('PEXPIREAT', key, ttl_at)
end
return 1
"#;

/// `rotate`. KEYS: old session, new session. ARGV: prefix, grace, old hex,
/// new hex, now, mark cap (`now + 60 s`, saturated)[, new owner]. Returns 1
/// (old not live), 2 (new is live) or the moved record as
/// {data, created_at, expires_at, owner (false when none)}, whose version is 1.
const ROTATE: &str = r#"
local old_key, new_key = KEYS[1], KEYS[2]
local old_hex, new_hex, now, cap, set_owner = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local r = read(old_key)
if not (r and lt(now, r.e)) then return 1 end
if old_key == new_key then return 2 end
-- A fresh new key (the usual case) costs one EXISTS to read. A rotation
-- mark there reads as absent, and the RENAME below replaces it.
local taken = nil
if redis.call('EXISTS', new_key) == 1 then
  taken = read(new_key)
  if taken and lt(now, taken.e) then return 2 end
end
local owner = set_owner or r.o
-- Still reading: the reply carries the moved record, data included, and the
-- mark keeps the old record's server TTL (-1 if it has none).
local data = redis.call('HGET', old_key, 'data')
local server_ttl = redis.call('PEXPIRETIME', old_key)
local ix = (owner or (taken and taken.o)) and owner_index()
-- `from` is the stored owner's index, `to` the one the session ends in;
-- they differ only when set_owner changes the owner.
local from, to = r.o and ix.key(r.o), owner and ix.key(owner)
local moving = from ~= to
if taken then
  -- Writes start with DEL: check every index first.
  if from then ix.check(from) end
  if moving and to then ix.check(to) end
  if taken.o then ix.check(ix.key(taken.o)) end
  redis.call('DEL', new_key)
  if taken.o then ix.remove(taken.o, new_hex) end
elseif moving and from then
  -- The first write is the ZADD into `to`, which checks only `to`.
  ix.check(from)
end
-- The entry comes under its new name first: with pcall, a foreign value
-- under the index name stops the script before anything is written (no
-- TYPE). Adding before removing also keeps a one-entry index (and its TTL)
-- from vanishing in between.
local added = to and ix.checked(redis.pcall('ZADD', to, r.e, new_hex))
-- RENAME moves the hash with its server TTL, so the expiry carries over
-- exactly; the new key starts again at version 1.
redis.call('RENAME', old_key, new_key)
if owner ~= r.o then
  redis.call('HSET', new_key, 'version', '1', 'owner', owner)
else
  redis.call('HSET', new_key, 'version', '1')
end
-- The mark: a fresh hash (RENAME left the old key empty) with no session
-- field, in force until min(old expires_at, now + 60 s).
local mark_until = cap
if lt(r.e, cap) then mark_until = r.e end
redis.call('HSET', old_key, 'rotated_until', mark_until)
if server_ttl > 0 then redis.call('PEXPIREAT', old_key, server_ttl) end
if moving then
  -- An addition to `to` (trimmed, as every addition), a removal from `from`.
  if to then ix.tidy(to, added == 1) end
  if from then ix.remove(r.o, old_hex) end
elseif to then
  -- Same index, same score: when the old entry was there, the index
  -- neither grows nor changes its longest-lived entry, so its TTL stays and
  -- nothing needs trimming.
  local removed = redis.call('ZREM', to, old_hex)
  if removed == 0 or added == 0 then ix.tidy(to, added == 1) end
end
return {data, r.c, r.e, owner}
"#;

/// `delete`. KEYS: session. ARGV: prefix, grace, hex, now. Returns 1 if a
/// live record was removed, else 0.
///
/// Ending a session must work even when its record is damaged (a user must
/// be able to log out), so `delete` removes whatever is under the key and
/// counts it live only if it is a well-formed record live at `now`.
const DELETE: &str = r#"
local key, hex, now = KEYS[1], ARGV[3], ARGV[4]
local r, why, f = parse(key)
if not r and not why then
  -- No session: nothing, or a rotation mark, which this DEL removes.
  redis.call('DEL', key)
  return 0
end
-- A damaged hash still names its owner (f[4]); a non-hash names none.
local owner = (r and r.o) or (f and f[4]) or nil
redis.call('DEL', key)
if owner then owner_index().remove(owner, hex) end
if r and lt(now, r.e) then return 1 end
return 0
"#;

/// `list_by_owner`. KEYS: owner index. ARGV: prefix, grace, owner, now.
/// Returns {[hex, created_at, expires_at, ...] of the live sessions,
/// [hex, reason, ...] of the records it skipped as damaged}. Reads only: it
/// may run while other clients write, and writes nothing.
const LIST_BY_OWNER: &str = r#"
local index, owner, now = KEYS[1], ARGV[3], ARGV[4]
-- Scores are doubles: an inclusive bound at now keeps every live entry
-- (rounding is monotone); the record's own expires_at then decides exactly.
local ix = owner_index()
local entries = ix.checked(redis.pcall('ZRANGEBYSCORE', index, now, '+inf'))
local out, damaged = {}, {}
for _, hex in ipairs(entries) do
  -- parse, not read: one damaged record must not hide the owner's others.
  local r, why = parse(ix.session_key(hex))
  if why then
    table.insert(damaged, hex)
    table.insert(damaged, why)
  elseif r and lt(now, r.e) and r.o == owner then
    table.insert(out, hex)
    table.insert(out, r.c)
    table.insert(out, r.e)
  end
end
return {out, damaged}
"#;

/// `delete_by_owner`. KEYS: owner index. ARGV: prefix, grace, owner, now.
/// Returns how many of the removed sessions were live. Like `delete`, it
/// also ends damaged sessions of the owner (counted as not live). A
/// rotation mark holds no owner, so it is never one of them.
const DELETE_BY_OWNER: &str = r#"
local index, owner, now = KEYS[1], ARGV[3], ARGV[4]
local ix = owner_index()
local entries = ix.checked(redis.pcall('ZRANGE', index, 0, -1))
local removed_live = 0
for _, hex in ipairs(entries) do
  local key = ix.session_key(hex)
  local r, _, f = parse(key)
  -- The index is only a pointer: a record that moved to another owner stays.
  local of_owner = (r and r.o == owner) or (not r and f ~= nil and f[4] == owner)
  if of_owner then
    redis.call('DEL', key)
    if r and lt(now, r.e) then removed_live = removed_live + 1 end
  end
end
redis.call('DEL', index)
return removed_live
"#;

/// One compiled script per operation that needs one (`load` and
/// `was_rotated` are plain HMGETs; `update` and `overwrite` share `write`).
/// `Script` knows its SHA-1: it sends EVALSHA, and only if the server
/// answers NOSCRIPT (after a restart or a `SCRIPT FLUSH`) does it load the
/// script and retry.
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) write: Script,
    pub(crate) touch: Script,
    pub(crate) rotate: Script,
    pub(crate) delete: Script,
    pub(crate) list_by_owner: Script,
    pub(crate) delete_by_owner: Script,
}

/// Compiled once per process: a `Script` hashes its source when built. Each
/// script carries only the helper groups it calls: Redis compiles a script
/// once but runs its top level, closures included, on every call.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script = |parts: &[&str]| Script::new(&parts.concat());
    Scripts {
        create: script(&[READ, INDEX, CREATE]),
        write: script(&[READ, INDEX, INCR, WRITE]),
        touch: script(&[READ, INDEX, TOUCH]),
        rotate: script(&[READ, INDEX, ROTATE]),
        delete: script(&[READ, INDEX, DELETE]),
        list_by_owner: script(&[READ, INDEX, LIST_BY_OWNER]),
        delete_by_owner: script(&[READ, INDEX, DELETE_BY_OWNER]),
    }
});
