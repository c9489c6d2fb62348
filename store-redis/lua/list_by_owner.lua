-- list_by_owner: the live sessions of one owner. Reads only.
-- KEYS[1]  the owner index
-- ARGV     prefix, grace (ms), owner, now (8 bytes), now (decimal ms)
-- Reply    {{hex, header (43 bytes), ...} of the live sessions,
--           {hex, reason, ...} of the records skipped as damaged}
local owner = ARGV[3]
local nh, nl = struct.unpack('>i4I4', ARGV[4])
local ix = owner_index(ARGV[1], ARGV[2])
-- Scores are doubles: an inclusive bound at now keeps every live entry; the
-- record's own expires_at then decides exactly.
local entries = ix.checked(redis.pcall('ZRANGEBYSCORE', KEYS[1], ARGV[5], '+inf'))
local out, damaged = {}, {}
for _, hex in ipairs(entries) do
  -- head, not read: one damaged record must not hide the owner's others.
  local r, why = head(ix.session_key(hex))
  if why then
    table.insert(damaged, hex)
    table.insert(damaged, why)
  elseif live(r, nh, nl) and r.o == owner then
    table.insert(out, hex)
    table.insert(out, r.h)
  end
end
return {out, damaged}
