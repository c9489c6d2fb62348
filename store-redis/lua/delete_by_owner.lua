-- delete_by_owner: end every session of one owner, damaged ones included
-- (counted as not live), and leave a receipt for 60 s when any live one
-- ended, so that a resent call reports the same count.
-- KEYS     one server: the owner index, the owner's receipt key; a cluster:
--          the shard's owner index (byowner, byexpiry), the owner's receipt
--          key, then the session keys the caller read from the index
-- ARGV     prefix (empty on a cluster), grace (ms), owner, now (8 bytes),
--          op id (16 bytes)
-- Reply    how many live sessions were removed; on a cluster
--          {'again', {hex, ...}} when the index holds keys that were not
--          declared (nothing was written; the caller declares them and calls
--          again)
local owner, op = ARGV[3], ARGV[5]
local sharded = ARGV[1] == ''
local receipt_key = KEYS[2]
if sharded then receipt_key = KEYS[3] end
local nh, nl = struct.unpack('>i4I4', ARGV[4])
local receipt = redis.pcall('GET', receipt_key)
if type(receipt) == 'string' and string.sub(receipt, 1, 16) == op then
  return tonumber(string.sub(receipt, 17))
end
local ix = indexes(ARGV[1], ARGV[2], KEYS[1], KEYS[2])
local entries = ix.entries(owner)
local key_of = declared_sessions(ARGV[1], KEYS, 4, ix)
local missing = undeclared(entries, key_of, KEYS[1])
if missing then return {'again', missing} end
local removed_live = 0
for _, hex in ipairs(entries) do
  local key = key_of(hex)
  local r, why = nil, nil
  if key then r, why = head(key) end
  -- The index is only a pointer: a record that moved to another owner
  -- stays. A damaged one cannot say whose it is, and is ended.
  if key and (why or (r and r.k == SESSION and r.o == owner)) then
    redis.call('DEL', key)
    if live(r, nh, nl) then removed_live = removed_live + 1 end
  end
end
-- The shard's index entries go in one call each, after every other write:
-- emptied, an index key is deleted, and touching it again would fail on a
-- cluster while the slot migrates.
if sharded then ix.remove_all(owner, entries) end
if not sharded then redis.call('DEL', KEYS[1]) end
if removed_live > 0 then
  redis.call('SET', receipt_key, op .. removed_live, 'PX', 60000)
end
return removed_live
