-- list_by_owner: the live sessions of one owner. Reads only.
-- KEYS     one server: the owner index; a cluster: the shard's owner index
--          (byowner, byexpiry), then the session keys the caller read from
--          it (declared, as a cluster requires of every key a function reads)
-- ARGV     prefix (empty on a cluster), grace (ms), owner, now (8 bytes),
--          now (decimal ms)
-- Reply    {{hex, header (43 bytes), ...} of the live sessions,
--           {hex, reason, ...} of the records skipped as damaged}; on a
--          cluster {'again', {hex, ...}} when the index holds keys that were
--          not declared (the caller declares them and calls again)
local owner = ARGV[3]
local nh, nl = struct.unpack('>i4I4', ARGV[4])
local ix = indexes(ARGV[1], ARGV[2], KEYS[1], KEYS[2])
-- Scores are doubles: an inclusive bound at now keeps every live entry; the
-- record's own expires_at then decides exactly.
local entries = ix.entries(owner, ARGV[5])
local key_of = declared_sessions(ARGV[1], KEYS, 3, ix)
local missing = undeclared(entries, key_of, KEYS[1])
if missing then return {'again', missing} end
local out, damaged = {}, {}
for _, hex in ipairs(entries) do
  -- head, not read: one damaged record must not hide the owner's others.
  local key = key_of(hex)
  local r, why = nil, nil
  if key then r, why = head(key) end
  if why then
    table.insert(damaged, hex)
    table.insert(damaged, why)
  elseif live(r, nh, nl) and r.o == owner then
    table.insert(out, hex)
    table.insert(out, r.h)
  end
end
return {out, damaged}
