-- touch: move a live record's expiry later, never earlier; the version and
-- the stored op id stay (a touch is idempotent by itself, and keeping the op
-- id lets a resent update or overwrite still recognise its own record).
-- KEYS[1]  the session key
-- KEYS[2-3] on a cluster: the shard's owner index (byowner, byexpiry)
-- ARGV     prefix (empty on a cluster), grace (ms), hex store key, now (8 bytes), expires_at
--          (8 bytes), its server TTL instant (decimal ms), expires_at
--          (decimal ms, the owner index score)
-- Reply    1 live (renewed when later), 0 not live.
local key = KEYS[1]
local nh, nl = struct.unpack('>i4I4', ARGV[4])
local r = read(key)
if not live(r, nh, nl) then return 0 end
local eh, el = struct.unpack('>i4I4', ARGV[5])
if before(r.eh, r.el, eh, el) then
  -- The index ZADD is the first write (pcall'd); the score only grows.
  if r.o then indexes(ARGV[1], ARGV[2], KEYS[2], KEYS[3]).add(r.o, ARGV[3], ARGV[7], ARGV[6], true) end
  -- Only the header changes: 8 bytes in place, and the TTL.
  redis.call('SETRANGE', key, 17, ARGV[5])
  redis.call('PEXPIREAT', key, ARGV[6])
end
return 1
