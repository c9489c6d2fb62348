-- delete_by_owner: end every session of one owner, damaged ones included
-- (counted as not live), and leave a receipt for 60 s when any live one
-- ended, so that a resent call reports the same count.
-- KEYS[1]  the owner index
-- KEYS[2]  the owner's receipt key
-- ARGV     prefix, grace (ms), owner, now (8 bytes), op id (16 bytes)
-- Reply    how many live sessions were removed.
local owner, op = ARGV[3], ARGV[5]
local nh, nl = struct.unpack('>i4I4', ARGV[4])
local receipt = redis.pcall('GET', KEYS[2])
if type(receipt) == 'string' and string.sub(receipt, 1, 16) == op then
  return tonumber(string.sub(receipt, 17))
end
local ix = owner_index(ARGV[1], ARGV[2])
local entries = ix.checked(redis.pcall('ZRANGE', KEYS[1], 0, -1))
local removed_live = 0
for _, hex in ipairs(entries) do
  local key = ix.session_key(hex)
  local r, why = head(key)
  -- The index is only a pointer: a record that moved to another owner
  -- stays. A damaged one cannot say whose it is, and is ended.
  if why or (r and r.k == SESSION and r.o == owner) then
    redis.call('DEL', key)
    if live(r, nh, nl) then removed_live = removed_live + 1 end
  end
end
redis.call('DEL', KEYS[1])
if removed_live > 0 then
  redis.call('SET', KEYS[2], op .. removed_live, 'PX', 60000)
end
return removed_live
