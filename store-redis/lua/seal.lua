-- seal: on a cluster, the first step of a rotate that moves a session to
-- another shard (a login into an owner whose sessions live elsewhere):
-- turn the live record into a rotation mark that still carries the whole
-- record after its header, and take it out of its owner's index. From here
-- on the old key is not live for any operation, so no write to it can be
-- lost; `create` then publishes the record under the new key, and `retire`
-- drops the copy from the mark.
-- KEYS[1]  the old session key
-- KEYS[2-3] its shard's owner index (byowner, byexpiry)
-- ARGV     '' (a cluster), grace (ms), old hex, now (8 bytes), the mark's cap
--          (8 bytes: now + 60 s, saturated), op id (16 bytes)
-- Reply    1 the old key is not live, 3 this op id sealed and retired it
--          already (a resent rotate that went through), else the record as it
--          was (a session string), also when this op id sealed it already.
local key, op = KEYS[1], ARGV[6]
local nh, nl = struct.unpack('>i4I4', ARGV[4])
local r = read(key)
if r and r.k == MARK and r.op == op then
  local sealed = string.sub(redis.call('GET', key), HEADER_LEN + 1)
  if sealed ~= '' then return sealed end
  -- Retired already: this rotate went through; the new key says how.
  return 3
end
if not live(r, nh, nl) then return 1 end
local value = redis.call('GET', key)
if r.o then
  local sx = shard_index(KEYS[2], KEYS[3], ARGV[2])
  sx.check()
  sx.remove(r.o, ARGV[3])
end
redis.call('SET', key, mark(r, ARGV[5], op) .. value, 'KEEPTTL')
return value
