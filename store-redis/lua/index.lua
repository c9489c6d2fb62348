-- Shared by the functions that keep owner indexes. An owner's index is a
-- sorted set of session keys (hex) scored by their expires_at, with a TTL at
-- its longest-lived entry (plus grace). Built on first use, and again when
-- a call comes with another prefix or grace (the library serves every
-- store on the server): most calls (sessions without an owner) need none
-- of them.
-- A redis.pcall reply from an owner index, unless it is an error:
-- WRONGTYPE (a foreign value under the index name) stops the script with
-- CORRUPT, anything else is raised as it is.
local function checked_index(reply)
  if type(reply) == 'table' and reply.err then
    if string.sub(reply.err, 1, 9) == 'WRONGTYPE' then
      error({err = 'CORRUPT the owner index is not a sorted set'})
    end
    error(reply)
  end
  return reply
end

local index_helpers, index_prefix, index_grace = nil, nil, nil
local function owner_index(prefix, grace)
  if index_helpers and index_prefix == prefix and index_grace == grace then return index_helpers end
  local m = {}

  -- The same names as src/keys.rs.
  function m.session_key(hex)
    return prefix .. 's:{' .. hex .. '}'
  end

  function m.key(owner)
    return prefix .. 'o:{' .. owner .. '}'
  end

  m.checked = checked_index

  -- An owner index must be a sorted set (or absent) before a script writes.
  -- Needed only where no pcall'd index command can be the first write.
  function m.check(index)
    local kind = redis.call('TYPE', index)['ok']
    if kind ~= 'none' and kind ~= 'zset' then
      error({err = 'CORRUPT the owner index holds a ' .. kind .. ', not a sorted set'})
    end
  end

  -- Gives the index a TTL at its longest-lived entry (plus grace), and,
  -- when `trim`, first drops the entries whose record the server has
  -- already expired (scored below server time - grace). Garbage collection
  -- only: liveness always reads the records. Trimming runs only when an
  -- entry is added: an index grows only by additions.
  function m.tidy(index, trim)
    local g = tonumber(grace)
    if trim then
      local t = redis.call('TIME')
      local server_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. string.format('%.0f', server_ms - g))
    end
    local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    if #top == 0 then return end
    local at = tonumber(top[2]) + g
    if at < 9e15 then
      redis.call('PEXPIREAT', index, string.format('%.0f', at))
    else
      redis.call('PERSIST', index)
    end
  end

  -- Adds or rescores `hex` in the owner's index, pcall'd: where it is the
  -- script's first write, a foreign value under the index name stops the
  -- script before anything is written. `later`: the score can only grow,
  -- so a rescored entry keeps the index TTL with one PEXPIREAT ... GT.
  function m.add(owner, hex, score, ttl_at, later)
    local index = m.key(owner)
    local added = m.checked(redis.pcall('ZADD', index, score, hex))
    if added == 0 and later then
      redis.call('PEXPIREAT', index, ttl_at, 'GT')
    else
      m.tidy(index, added == 1)
    end
  end

  -- Removes `hex` from the owner's index if that is a sorted set: a
  -- foreign value under an index name is not ours to change.
  function m.remove(owner, hex)
    local index = m.key(owner)
    if redis.pcall('ZREM', index, hex) == 1 then m.tidy(index, false) end
  end

  -- The hex keys in the owner's index, with a score >= `from` (decimal
  -- ms) when `from` is given.
  function m.entries(owner, from)
    if from == nil then return m.checked(redis.pcall('ZRANGE', m.key(owner), 0, -1)) end
    return m.checked(redis.pcall('ZRANGEBYSCORE', m.key(owner), from, '+inf'))
  end

  index_helpers, index_prefix, index_grace = m, prefix, grace
  return m
end
