-- delete: end a session, live, expired or damaged (a user must be able to
-- log out), and leave a deletion receipt for 60 s when a live one ended, so
-- that a resent delete reports the same.
-- KEYS[1]  the session key
-- KEYS[2-3] on a cluster: the shard's owner index (byowner, byexpiry)
-- ARGV     prefix (empty on a cluster), grace (ms), hex store key, now (8 bytes), op id (16 bytes)
-- Reply    1 a live record was removed (also when this op id removed it
--          already), 0 otherwise.
local key = KEYS[1]
local nh, nl = struct.unpack('>i4I4', ARGV[4])
local r, why = head(key)
if why then
  -- Damaged: removed, and not counted live. Its owner cannot be read, so its
  -- index entry stays until reads skip it and the index trims it.
  redis.call('DEL', key)
  return 0
end
if not r then return 0 end
if r.k == RECEIPT then
  if r.op == ARGV[5] then return 1 end
  return 0
end
local was_live = live(r, nh, nl)
if was_live then
  redis.call('SET', key, 'D' .. string.rep('\0', 24) .. ARGV[5] .. '\0\0', 'PX', 60000)
else
  -- An expired record or a rotation mark.
  redis.call('DEL', key)
end
if r.o then indexes(ARGV[1], ARGV[2], KEYS[2], KEYS[3]).remove(r.o, ARGV[3]) end
if was_live then return 1 end
return 0
