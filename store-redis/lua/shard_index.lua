-- On a Redis Cluster, where every key a function touches must be declared
-- in KEYS and lie in one slot: the owner index of one shard, as two sorted
-- sets declared by the caller (src/keys.rs names them):
--   byowner   members `owner .. "\0" .. hex`, all scored 0, so that
--             ZRANGEBYLEX lists one owner's (an owner holds no control
--             character, so "\0" ends it);
--   byexpiry  the same members scored by expires_at, to trim what the
--             server has expired.
-- The same interface as owner_index, so the operations' bodies are shared;
-- `key(owner)` is the owner itself, since one shard holds all its owners.
-- While a slot migrates, a function fails on any access to a key of it that
-- the node does not hold, a key it deleted itself included (Redis checks each
-- command a function sends): so every function adds index entries before it
-- removes any, and touches no index key after a removal that may have
-- emptied it. Its session keys are never deleted and then written again.
local function shard_index(byowner, byexpiry, grace)
  local m = {}
  local function member(owner, hex) return owner .. '\0' .. hex end

  function m.key(owner) return owner end

  m.checked = checked_index

  -- Both sets must be sorted sets (or absent) before a script writes.
  function m.check(_)
    for _, k in ipairs({byowner, byexpiry}) do
      local kind = redis.call('TYPE', k)['ok']
      if kind ~= 'none' and kind ~= 'zset' then
        error({err = 'CORRUPT the owner index holds a ' .. kind .. ', not a sorted set'})
      end
    end
  end

  -- Drops up to 64 entries whose record the server has already expired
  -- (scored below server time - grace): garbage collection only, run when
  -- an entry is added, so the index shrinks as fast as it grows.
  function m.tidy(_, trim)
    if not trim then return end
    local t = redis.call('TIME')
    local server_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local bound = '(' .. string.format('%.0f', server_ms - tonumber(grace))
    local dead = redis.call('ZRANGEBYSCORE', byexpiry, '-inf', bound, 'LIMIT', 0, 64)
    if #dead > 0 then
      redis.call('ZREM', byowner, unpack(dead))
      redis.call('ZREM', byexpiry, unpack(dead))
    end
  end

  -- Adds or rescores `hex` under `owner`; the first command is pcall'd, so
  -- where it is the script's first write a foreign value stops the script
  -- before anything is written.
  function m.add(owner, hex, score, _, _)
    local mem = member(owner, hex)
    local added = m.checked(redis.pcall('ZADD', byexpiry, score, mem))
    redis.call('ZADD', byowner, 0, mem)
    m.tidy(owner, added == 1)
  end

  function m.remove(owner, hex)
    local mem = member(owner, hex)
    if redis.pcall('ZREM', byowner, mem) == 1 then redis.pcall('ZREM', byexpiry, mem) end
  end

  -- Removes every entry of `hexes` under `owner`, in one call per set.
  function m.remove_all(owner, hexes)
    if #hexes == 0 then return end
    local mems = {}
    for i, hex in ipairs(hexes) do mems[i] = member(owner, hex) end
    redis.pcall('ZREM', byowner, unpack(mems))
    redis.pcall('ZREM', byexpiry, unpack(mems))
  end

  -- The hex keys indexed under `owner`, with expires_at >= `from` (decimal
  -- ms) when `from` is given.
  function m.entries(owner, from)
    local lo, hi = '[' .. owner .. '\0', '(' .. owner .. '\1'
    local all = m.checked(redis.pcall('ZRANGEBYLEX', byowner, lo, hi))
    local out = {}
    local skip = #owner + 2
    for _, mem in ipairs(all) do
      if from == nil then
        table.insert(out, string.sub(mem, skip))
      else
        local score = redis.call('ZSCORE', byexpiry, mem)
        if score == false or tonumber(score) >= tonumber(from) then table.insert(out, string.sub(mem, skip)) end
      end
    end
    return out
  end

  return m
end

-- The owner index helpers of one call: per-owner sorted sets named from
-- the prefix on one server; on a cluster (the prefix argument is empty:
-- every name comes in KEYS) the shard's two sets `byowner` and `byexpiry`.
local function indexes(prefix, grace, byowner, byexpiry)
  if prefix == '' then return shard_index(byowner, byexpiry, grace) end
  return owner_index(prefix, grace)
end

-- How to name the session key of a hex store key: built from the prefix on
-- one server; on a cluster, looked up among the declared KEYS from index
-- `first` on (a session key ends with its 64 hex digits).
local function declared_sessions(prefix, keys, first, ix)
  if prefix ~= '' then return ix.session_key end
  local by_hex = {}
  for i = first, #keys do by_hex[string.sub(keys[i], -64)] = keys[i] end
  return function(hex) return by_hex[hex] end
end

-- Whether `hex` names a store key of the shard whose index key is
-- `index` (`<prefix>i:{ttt}`): 64 hex digits whose top 10 bits are ttt.
local function of_shard(hex, index)
  if #hex ~= 64 or string.find(hex, '[^0-9a-f]') then return false end
  local tag = string.format('%03x', math.floor(tonumber(string.sub(hex, 1, 3), 16) / 4))
  return string.sub(index, -5) == '{' .. tag .. '}'
end

-- The entries whose session key was not declared, or nil if there is none.
-- On a cluster an entry that cannot name a key of the index's shard (a
-- damaged index) is not asked for: key_of gives nil for it and the
-- operations skip it.
local function undeclared(entries, key_of, index)
  local missing = nil
  for _, hex in ipairs(entries) do
    if not key_of(hex) and of_shard(hex, index) then
      missing = missing or {}
      table.insert(missing, hex)
    end
  end
  return missing
end
