-- update and overwrite: replace a live record's data, expiry and owner.
-- KEYS[1]  the session key
-- KEYS[2-3] on a cluster: the shard's owner index (byowner, byexpiry)
-- ARGV     prefix (empty on a cluster), grace (ms), hex store key, now (8 bytes), expected
--          version (8 bytes; empty for overwrite: any version), the new
--          record (built by the client; its version and created_at are
--          placeholders this script fills in), its server TTL instant
--          (decimal ms), op id (16 bytes)[, owner, expires_at (decimal ms,
--          the owner index score)]
-- Reply    {1, new version (8 bytes)} written (also when this op id wrote
--          it already), {2, current version} a version mismatch (update
--          only), 0 no live record.
local key = KEYS[1]
local hex, expected, value, ttl_at, op, owner, score = ARGV[3], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local nh, nl = struct.unpack('>i4I4', ARGV[4])
local r = read(key)
if not live(r, nh, nl) then return 0 end
local stored = string.sub(r.h, 2, 9)
-- A resent write: the record is still the one it wrote.
if r.op == op then return {1, stored} end
if expected ~= '' and stored ~= expected then return {2, stored} end
-- Read phase still: a version that cannot grow refuses the write whole.
local vh, vl = r.vh, r.vl
if vl == 4294967295 then
  if vh == 4294967295 then
    error({err = 'CORRUPT the version is u64::MAX and cannot be incremented'})
  end
  vh, vl = vh + 1, 0
else
  vl = vl + 1
end
local version = struct.pack('>I4I4', vh, vl)
-- The index changes only when the owner or the score does.
local old_owner = r.o
local rescored = string.sub(value, 18, 25) ~= string.sub(r.h, 18, 25)
if owner and owner == old_owner then
  if rescored then
    local eh, el = struct.unpack('>i4I4', value, 18)
    indexes(ARGV[1], ARGV[2], KEYS[2], KEYS[3]).add(owner, hex, score, ttl_at, not before(eh, el, r.eh, r.el))
  end
elseif owner or old_owner then
  local ix = indexes(ARGV[1], ARGV[2], KEYS[2], KEYS[3])
  if old_owner then
    -- Two indexes change: check both before the first write.
    ix.check(ix.key(old_owner))
    if owner then ix.check(ix.key(owner)) end
  end
  if owner then ix.add(owner, hex, score, ttl_at, false) end
  if old_owner then ix.remove(old_owner, hex) end
end
-- One SET of the whole record, the version and the kept created_at (bytes
-- 2-17) in place, then the TTL. Not SET ... PXAT: a TTL already past would
-- let the SETRANGE create a new key of zeros without one.
redis.call('SET', key, value)
redis.call('SETRANGE', key, 1, version .. string.sub(r.h, 10, 17))
redis.call('PEXPIREAT', key, ttl_at)
return {1, version}
