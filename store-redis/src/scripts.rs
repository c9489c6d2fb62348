//! The Lua scripts: one per operation of the contract but `load`.
//!
//! # Why each operation is atomic
//!
//! `load` needs no script: it is one `HMGET` of the record's fields, and a
//! single command is atomic by itself; the client validates the fields and
//! decides liveness by the caller's `now` (see `reply::hmget_fields`), with
//! the same rules as `parse` below. That is much cheaper for the server, which
//! is single threaded: a script call costs several times a plain command.
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
//! stops with a `CORRUPT` error before it has changed anything. The two
//! exceptions are `delete` and `delete_by_owner`: ending a session must work
//! even when its record is damaged, so they remove it without decoding it,
//! and cannot fail on bad bytes once they have started writing.
//!
//! # Numbers
//!
//! Lua in Redis has only doubles, exact up to 2^53. Timestamps are `i64`
//! milliseconds and versions `u64`, so the scripts never do arithmetic on
//! them: fields hold canonical decimal strings written by this crate,
//! compared digit by digit (`lt`) and incremented digit by digit (`incr`).
//! Only the owner index scores are doubles; they serve ordering and garbage
//! collection, never the liveness decision, which always reads the record.
//!
//! # Server cost
//!
//! Redis runs the whole text of a script on every call, and its CPU time is
//! what bounds throughput, so the scripts are written for it: each carries
//! only the helper groups it calls; a record is read with one `HMGET`
//! (through `redis.pcall`, whose `WRONGTYPE` error replaces a `TYPE` call)
//! plus one `HEXISTS` for `data`, never copying the payload into Lua (tens
//! of microseconds at 4 KiB, hundreds at 64 KiB); an owner index is checked
//! with `TYPE` only where its `ZADD` cannot be the script's first write; and
//! the index is trimmed only when an entry is added.
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
//! Scripts that follow the owner index (and `update`, which moves a session
//! from its stored owner's index to the new owner's) build keys from the
//! prefix in `ARGV[1]` instead of receiving all of them in `KEYS`. A single
//! Redis server allows this; Redis Cluster does not (see the crate docs).

use std::sync::LazyLock;

use redis::Script;

/// Reading and judging a record. A session is a hash with the fields
/// `version`, `data`, `created_at`, `expires_at` and (if it has one) `owner`.
const READ: &str = r#"
local prefix = ARGV[1]

-- Stops the script with an error the client turns into Error::Corrupt.
-- Called only in the read phase, before any write.
local function corrupt(why)
  error({err = 'CORRUPT ' .. why})
end

-- A redis.pcall reply that is an error: WRONGTYPE (a foreign value under one
-- of our keys) is corruption, anything else is raised as it is.
local function failed(reply, why)
  if type(reply) == 'table' and reply.err then
    if string.sub(reply.err, 1, 9) == 'WRONGTYPE' then return why end
    error(reply)
  end
  return nil
end

local function is_int(s)
  return s == '0' or (#s <= 20 and string.match(s, '^%-?[1-9]%d*$') ~= nil)
end

-- a < b for canonical decimal integers (exact, unlike doubles).
local function lt(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na end
  if na then a, b = string.sub(b, 2), string.sub(a, 2) end
  if #a ~= #b then return #a < #b end
  return a < b
end

-- Reads the record under `key`. Returns the record; or nil and nil if there
-- is none; or nil and a reason (and the raw fields, nil for a non-hash) if
-- the key holds anything else than a session hash written by this crate.
--
-- One HMGET, which fails with WRONGTYPE on a non-hash (so no TYPE call), and
-- one HEXISTS for `data`: the payload itself is never copied into Lua, which
-- costs hundreds of microseconds for 64 KiB. Only when HMGET finds none of
-- the fields does an EXISTS tell a missing key from a foreign hash.
local function parse(key)
  local f = redis.pcall('HMGET', key, 'version', 'created_at', 'expires_at', 'owner')
  local why = failed(f, 'the key holds another type than a session hash')
  if why then return nil, why, nil end
  local r = {v = f[1], c = f[2], e = f[3], o = f[4]}
  if not (r.v or r.c or r.e or r.o) and redis.call('EXISTS', key) == 0 then
    return nil, nil, nil
  end
  if not r.v or #r.v > 20 or not string.match(r.v, '^[1-9]%d*$') then
    return nil, 'the version field is not a positive integer', f
  end
  if not r.c or not is_int(r.c) then return nil, 'the created_at field is not an integer', f end
  if not r.e or not is_int(r.e) then return nil, 'the expires_at field is not an integer', f end
  if redis.call('HEXISTS', key, 'data') == 0 then return nil, 'the data field is missing', f end
  return r, nil, f
end

-- The record under `key`, or nil if there is none; corruption stops the
-- script.
local function read(key)
  local r, why = parse(key)
  if why then corrupt(why) end
  return r
end

local function live(r, now)
  return r ~= nil and lt(now, r.e)
end
"#;

/// The owner indexes. An owner's index is a sorted set of session keys (hex)
/// scored by their `expires_at`.
const INDEX: &str = r#"
local function session_key(hex)
  return prefix .. '{' .. hex .. '}'
end

local function owner_key(owner)
  return prefix .. 'owner:{' .. owner .. '}'
end

-- An owner index must be a sorted set (or absent) before a script writes.
-- Needed only where the index is not the script's first write (see
-- index_add).
local function check_index(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' and kind ~= 'zset' then
    corrupt('the owner index holds a ' .. kind .. ', not a sorted set')
  end
end

-- Gives the index a TTL at its longest-lived entry (plus grace), and, when
-- `trim`, first drops entries whose record the server has already expired by
-- its own TTL (which is expires_at + grace by the server's clock, so entries
-- scored below server time - grace). Garbage collection only: liveness reads
-- the records.
--
-- Trimming runs only when an entry is added, not when one is rescored
-- (touch, update under the same owner): an index only grows by additions,
-- and each addition leaves it holding nothing the server has expired, so
-- the bound is unchanged while renewals skip TIME and ZREMRANGEBYSCORE.
local function tidy(index, trim)
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

-- Adds or rescores `hex` in the owner's index. The ZADD is sent with pcall:
-- where it is the script's first write, a foreign value under the index name
-- stops the script with CORRUPT before anything is written, with no TYPE
-- call; elsewhere the caller has checked the index first.
local function index_add(owner, hex, expires_at)
  local index = owner_key(owner)
  local added = redis.pcall('ZADD', index, expires_at, hex)
  local why = failed(added, 'the owner index is not a sorted set')
  if why then corrupt(why) end
  tidy(index, added == 1)
end

-- Removes `hex` from the owner's index if that is a sorted set: a foreign
-- value under an index name is not ours to change.
local function index_remove(owner, hex)
  local index = owner_key(owner)
  if redis.pcall('ZREM', index, hex) == 1 then tidy(index, false) end
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
local old = nil
-- A fresh key (the usual case) costs one EXISTS to read.
if redis.call('EXISTS', key) == 1 then
  old = read(key)
  if live(old, now) then return 0 end
end
if old then
  -- Replacing an expired record touches up to two indexes: check both.
  if old.o then check_index(owner_key(old.o)) end
  if owner then check_index(owner_key(owner)) end
  redis.call('DEL', key)
  if old.o then index_remove(old.o, hex) end
end
-- Writes. Without an old record the index ZADD comes first (see index_add).
if owner then index_add(owner, hex, expires_at) end
if owner then
  redis.call('HSET', key, 'version', '1', 'data', data, 'created_at', created_at, 'expires_at', expires_at, 'owner', owner)
else
  redis.call('HSET', key, 'version', '1', 'data', data, 'created_at', created_at, 'expires_at', expires_at)
end
redis.call('PEXPIREAT', key, ttl_at)
return 1
"#;

/// `update`. KEYS: session. ARGV: prefix, grace, hex, now, expected version,
/// data, expires_at, ttl_at[, owner]. Returns {'ok', version},
/// {'conflict', version} or {'notfound'}.
const UPDATE: &str = r#"
local key, hex, now, expected = KEYS[1], ARGV[3], ARGV[4], ARGV[5]
local data, expires_at, ttl_at, owner = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local r = read(key)
if not live(r, now) then return {'notfound'} end
if r.v ~= expected then return {'conflict', r.v} end
local version = incr(r.v)
local moved = r.o and r.o ~= owner
if moved then
  -- Two indexes change: check both before the first write.
  check_index(owner_key(r.o))
  if owner then check_index(owner_key(owner)) end
end
-- Writes. Under an unchanged owner the index ZADD comes first (index_add).
if owner then index_add(owner, hex, expires_at) end
if owner then
  redis.call('HSET', key, 'version', version, 'data', data, 'expires_at', expires_at, 'owner', owner)
else
  redis.call('HSET', key, 'version', version, 'data', data, 'expires_at', expires_at)
  if r.o then redis.call('HDEL', key, 'owner') end
end
-- As given: an update may shorten the session.
redis.call('PEXPIREAT', key, ttl_at)
if moved then index_remove(r.o, hex) end
return {'ok', version}
"#;

/// `touch`. KEYS: session. ARGV: prefix, grace, hex, now, expires_at,
/// ttl_at. Returns 1 if live (and renewed when later), 0 otherwise.
const TOUCH: &str = r#"
local key, hex, now, expires_at, ttl_at = KEYS[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local r = read(key)
if not live(r, now) then return 0 end
-- Never shortens: only a later expiry is written.
if lt(r.e, expires_at) then
  -- The index ZADD is the first write (see index_add).
  if r.o then index_add(r.o, hex, expires_at) end
  redis.call('HSET', key, 'expires_at', expires_at)
  redis.call('PEXPIREAT', key, ttl_at)
end
return 1
"#;

/// `rotate`. KEYS: old session, new session. ARGV: prefix, grace, old hex,
/// new hex, now. Returns 0 (rotated), 1 (old not live) or 2 (new is live).
const ROTATE: &str = r#"
local old_key, new_key = KEYS[1], KEYS[2]
local old_hex, new_hex, now = ARGV[3], ARGV[4], ARGV[5]
local r = read(old_key)
if not live(r, now) then return 1 end
if old_key == new_key then return 2 end
local taken = read(new_key)
if live(taken, now) then return 2 end
if r.o then check_index(owner_key(r.o)) end
if taken and taken.o then check_index(owner_key(taken.o)) end
-- Writes: an expired record under the new key is replaced.
if taken then
  redis.call('DEL', new_key)
  if taken.o then index_remove(taken.o, new_hex) end
end
-- RENAME moves the hash with its server TTL, so the expiry carries over
-- exactly; the new key starts again at version 1.
redis.call('RENAME', old_key, new_key)
redis.call('HSET', new_key, 'version', '1')
if r.o then
  redis.call('ZREM', owner_key(r.o), old_hex)
  index_add(r.o, new_hex, r.e)
end
return 0
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
if not r and not why then return 0 end
-- A damaged hash still names its owner (f[4]); a non-hash names none.
local owner = (r and r.o) or (f and f[4]) or nil
redis.call('DEL', key)
if owner then index_remove(owner, hex) end
if live(r, now) then return 1 end
return 0
"#;

/// `list_by_owner`. KEYS: owner index. ARGV: prefix, grace, owner, now.
/// Returns [hex, created_at, expires_at, ...] of the live sessions. Reads
/// only: it may run while other clients write, and writes nothing.
const LIST_BY_OWNER: &str = r#"
local index, owner, now = KEYS[1], ARGV[3], ARGV[4]
-- Scores are doubles: an inclusive bound at now keeps every live entry
-- (rounding is monotone); the record's own expires_at then decides exactly.
local entries = redis.pcall('ZRANGEBYSCORE', index, now, '+inf')
local why = failed(entries, 'the owner index is not a sorted set')
if why then corrupt(why) end
local out = {}
for _, hex in ipairs(entries) do
  local r = read(session_key(hex))
  if live(r, now) and r.o == owner then
    table.insert(out, hex)
    table.insert(out, r.c)
    table.insert(out, r.e)
  end
end
return out
"#;

/// `delete_by_owner`. KEYS: owner index. ARGV: prefix, grace, owner, now.
/// Returns how many of the removed sessions were live. Like `delete`, it
/// also ends damaged sessions of the owner (counted as not live).
const DELETE_BY_OWNER: &str = r#"
local index, owner, now = KEYS[1], ARGV[3], ARGV[4]
local entries = redis.pcall('ZRANGE', index, 0, -1)
local why = failed(entries, 'the owner index is not a sorted set')
if why then corrupt(why) end
local removed_live = 0
for _, hex in ipairs(entries) do
  local key = session_key(hex)
  local r, _, f = parse(key)
  -- The index is only a pointer: a record that moved to another owner stays.
  local of_owner = (r and r.o == owner) or (not r and f ~= nil and f[4] == owner)
  if of_owner then
    redis.call('DEL', key)
    if live(r, now) then removed_live = removed_live + 1 end
  end
end
redis.call('DEL', index)
return removed_live
"#;

/// One compiled script per operation that needs one (`load` is a plain
/// HMGET). `Script` knows its SHA-1: it sends EVALSHA, and only if the
/// server answers NOSCRIPT (after a restart or a `SCRIPT FLUSH`) does it load
/// the script and retry.
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) update: Script,
    pub(crate) touch: Script,
    pub(crate) rotate: Script,
    pub(crate) delete: Script,
    pub(crate) list_by_owner: Script,
    pub(crate) delete_by_owner: Script,
}

/// Compiled once per process: a `Script` hashes its source when built. Each
/// script carries only the helpers it calls: Redis runs a script's whole
/// text on every call, so every helper defined costs server time.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script = |parts: &[&str]| Script::new(&parts.concat());
    Scripts {
        create: script(&[READ, INDEX, CREATE]),
        update: script(&[READ, INDEX, INCR, UPDATE]),
        touch: script(&[READ, INDEX, TOUCH]),
        rotate: script(&[READ, INDEX, ROTATE]),
        delete: script(&[READ, INDEX, DELETE]),
        list_by_owner: script(&[READ, INDEX, LIST_BY_OWNER]),
        delete_by_owner: script(&[READ, INDEX, DELETE_BY_OWNER]),
    }
});
