-- Shared by every function of the library: reading a record's header.
--
-- A key holds one string, laid out as src/record.rs writes it (the two must
-- agree):
--   byte  1      kind: 'S' a session, 'M' a rotation mark, 'D' a deletion receipt
--   bytes 2-9    version, u64 big-endian (0 in marks and receipts)
--   bytes 10-17  created_at, i64 big-endian milliseconds
--   bytes 18-25  expires_at, i64 big-endian milliseconds (a mark: its end)
--   bytes 26-41  the operation id of the write that stored it
--   bytes 42-43  the owner's length in bytes, u16 big-endian (0: no owner)
--   then the owner, then the data.
-- Lua numbers are doubles, so a 64-bit field is read as two 32-bit halves
-- (exact), and compared half by half.

local HEADER_LEN = 43
local SESSION, MARK, RECEIPT = 83, 77, 68

-- (ah, al) < (bh, bl) for i64s split into a signed high and an unsigned low half.
local function before(ah, al, bh, bl)
  return ah < bh or (ah == bh and al < bl)
end

-- The header under `key`: nil for no key (or an empty string); a table
-- {k = kind, h = the header bytes, vh, vl, eh, el, op, o = owner or nil}; or
-- nil and a reason for anything this crate did not write. Reads the header
-- (one GETRANGE, which fails with WRONGTYPE on a non-string, so no TYPE
-- call) and, for a session with an owner, the owner: never the data.
-- `strict`: a WRONGTYPE stops the function (the client reads it as
-- Error::Corrupt), which spares the pcall on the paths that stop anyway.
local function head(key, strict)
  local h
  if strict then
    h = redis.call('GETRANGE', key, 0, HEADER_LEN - 1)
  else
    h = redis.pcall('GETRANGE', key, 0, HEADER_LEN - 1)
  end
  if type(h) == 'table' then
    if h.err and string.sub(h.err, 1, 9) == 'WRONGTYPE' then
      return nil, 'the key holds another type than a session string'
    end
    error(h)
  end
  if h == '' then return nil end
  if #h < HEADER_LEN then return nil, 'the record is shorter than its header' end
  local kind = string.byte(h, 1)
  if kind ~= SESSION and kind ~= MARK and kind ~= RECEIPT then
    return nil, 'the record has an unknown format byte'
  end
  local vh, vl, _, _, eh, el, op, olen = struct.unpack('>I4I4i4I4i4I4c16I2', h, 2)
  local r = {k = kind, h = h, vh = vh, vl = vl, eh = eh, el = el, op = op}
  if kind == SESSION then
    if vh == 0 and vl == 0 then return nil, 'the version is 0' end
    if olen > 0 then
      local o = redis.call('GETRANGE', key, HEADER_LEN, HEADER_LEN + olen - 1)
      if #o < olen then return nil, 'the owner length runs past the end of the record' end
      r.o = o
    end
  end
  return r
end

-- The header under `key`, or nil; a damaged record stops the script with an
-- error the client turns into Error::Corrupt, before any write.
local function read(key)
  local r, why = head(key, true)
  if why then error({err = 'CORRUPT ' .. why}) end
  return r
end

-- Whether header `r` is a session live at (nh, nl).
local function live(r, nh, nl)
  return r ~= nil and r.k == SESSION and before(nh, nl, r.eh, r.el)
end

-- SET with the record's server TTL; a TTL instant at or before the epoch
-- (which SET refuses) means the record is already gone by any clock.
local function store(key, value, ttl_at)
  if ttl_at == '0' or string.byte(ttl_at, 1) == 45 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, value, 'PXAT', ttl_at)
  end
end

-- The record a rotate (or a cluster's publish) stores under the new key:
-- header `r` at version 1 with op id `op` and owner `owner`, and the data of
-- the old record `value` (whole, as GET returned it).
local function moved_record(r, op, owner, value)
  local old_olen = r.o and #r.o or 0
  local o = owner or ''
  return 'S' .. '\0\0\0\0\0\0\0\1' .. string.sub(r.h, 10, 25) .. op .. struct.pack('>I2', #o) .. o
    .. string.sub(value, HEADER_LEN + old_olen + 1)
end

-- A rotation mark for the old record `r`: in force until min(old
-- expires_at, cap), `cap` 8 bytes (now + 60 s); op id `op`.
local function mark(r, cap, op)
  local ch, cl = struct.unpack('>i4I4', cap)
  local until_ = cap
  if before(r.eh, r.el, ch, cl) then until_ = string.sub(r.h, 18, 25) end
  return 'M' .. string.rep('\0', 16) .. until_ .. op .. '\0\0'
end

-- A rotate's two writes: the moved record under the new key with the old
-- record's server TTL (`server_ttl`, PEXPIRETIME: none if not positive),
-- and the mark under the old key, keeping its TTL.
local function store_moved(old_key, new_key, moved, server_ttl, the_mark)
  if server_ttl > 0 then
    redis.call('SET', new_key, moved, 'PXAT', server_ttl)
  else
    redis.call('SET', new_key, moved)
  end
  redis.call('SET', old_key, the_mark, 'KEEPTTL')
end
