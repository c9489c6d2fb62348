-- create: insert a record unless a live one has the key.
-- KEYS[1]  the session key
-- KEYS[2-3] on a cluster: the shard's owner index (byowner, byexpiry)
-- ARGV     prefix (empty on a cluster), grace (ms), hex store key, now (8 bytes, i64 BE),
--          the record (built by the client, version 1), its server TTL
--          instant (decimal ms), op id (16 bytes)[, owner, expires_at
--          (decimal ms, the owner index score)]
-- Reply    1 created (also when this op id created it already: a resent
--          create), 0 a live record has the key.
local key = KEYS[1]
local hex, value, ttl_at, op, owner, score = ARGV[3], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local nh, nl = struct.unpack('>i4I4', ARGV[4])
-- A fresh key (the usual case) costs this one GETRANGE.
local old = read(KEYS[1])
local stale_owner = nil
if live(old, nh, nl) then
  if old.op == op then return 1 end
  return 0
end
-- An expired record, a mark or a receipt is replaced whole by the SET.
if old then stale_owner = old.o end
local ix = (owner or stale_owner) and indexes(ARGV[1], ARGV[2], KEYS[2], KEYS[3])
if stale_owner then
  -- Two indexes may change: check both before the first write.
  ix.check(ix.key(stale_owner))
  if owner then ix.check(ix.key(owner)) end
end
-- Additions before removals: a removal may empty (delete) an index key,
-- and on a cluster a function that writes a key it deleted fails while the
-- slot migrates. On a fresh key the index ZADD is the first write
-- (pcall'd, see add).
if owner then ix.add(owner, hex, score, ttl_at, false) end
if stale_owner and stale_owner ~= owner then ix.remove(stale_owner, hex) end
store(key, value, ttl_at)
return 1
