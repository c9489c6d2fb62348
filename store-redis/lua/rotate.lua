-- rotate: move a live record to a new key (version 1, same data, created_at
-- and expires_at; the owner set_owner if given) and leave a rotation mark
-- under the old key.
-- KEYS[1]  the old session key
-- KEYS[2]  the new session key
-- KEYS[3-4] on a cluster: the shard's owner index (byowner, byexpiry)
-- ARGV     prefix (empty on a cluster), grace (ms), old hex, new hex, now (8 bytes), the mark's
--          cap (8 bytes: now + 60 s, saturated), op id (16 bytes)[, new owner]
-- Reply    1 the old key is not live, 2 the new key is live (or is the old
--          one), else the new record as stored (a string in the layout of
--          record.lua), also when this op id rotated it already.
local old_key, new_key = KEYS[1], KEYS[2]
local old_hex, new_hex, op, set_owner = ARGV[3], ARGV[4], ARGV[7], ARGV[8]
local nh, nl = struct.unpack('>i4I4', ARGV[5])
local r = read(old_key)
if r and r.k == MARK and r.op == op then
  -- A resent rotate: its mark is there; answer with its record if that is
  -- still the one it wrote.
  local moved = read(new_key)
  if moved and moved.k == SESSION and moved.op == op then return redis.call('GET', new_key) end
end
if not live(r, nh, nl) then return 1 end
if old_key == new_key then return 2 end
-- A fresh new key (the usual case) costs one GETRANGE; a mark, a receipt
-- or an expired record there is replaced by the SET below.
local taken = read(new_key)
if live(taken, nh, nl) then return 2 end
local taken_owner = taken and taken.o
local owner = set_owner or r.o
-- Still reading: the reply carries the moved record, data included, and
-- the new record and the mark keep the old record's server TTL.
local value = redis.call('GET', old_key)
local server_ttl = redis.call('PEXPIRETIME', old_key)
if ARGV[1] == '' then
  -- A cluster: both keys and the owner index are in one shard (the caller
  -- checked), declared as KEYS[3-4].
  local sx = shard_index(KEYS[3], KEYS[4], ARGV[2])
  if owner or taken_owner then sx.check() end
  -- Additions before removals (see create.lua).
  if owner then sx.add(owner, new_hex, r.eh * 4294967296 + r.el) end
  if taken_owner and taken_owner ~= owner then sx.remove(taken_owner, new_hex) end
  if r.o then sx.remove(r.o, old_hex) end
  local moved = moved_record(r, op, owner, value)
  store_moved(old_key, new_key, moved, server_ttl, mark(r, ARGV[6], op))
  return moved
end
local ix = (owner or taken_owner) and owner_index(ARGV[1], ARGV[2])
-- `from` is the stored owner's index, `to` the one the session ends in.
local from, to = r.o and ix.key(r.o), owner and ix.key(owner)
local moving = from ~= to
if taken_owner then
  if from then ix.check(from) end
  if moving and to then ix.check(to) end
  ix.check(ix.key(taken_owner))
  ix.remove(taken_owner, new_hex)
elseif moving and from then
  -- The first write is the ZADD into `to`, which checks only `to`.
  ix.check(from)
end
local added = to and ix.checked(redis.pcall('ZADD', to, r.eh * 4294967296 + r.el, new_hex))
local moved = moved_record(r, op, owner, value)
store_moved(old_key, new_key, moved, server_ttl, mark(r, ARGV[6], op))
if moving then
  if to then ix.tidy(to, added == 1) end
  if from then ix.remove(r.o, old_hex) end
elseif to then
  -- Same index, same score: the index keeps its TTL when the old entry
  -- was there.
  local removed = redis.call('ZREM', to, old_hex)
  if removed == 0 or added == 0 then ix.tidy(to, added == 1) end
end
return moved
