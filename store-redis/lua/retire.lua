-- retire: on a cluster, the last step of a rotate between shards: drop the
-- record copy from the mark `seal` left, keeping the mark (header) and its
-- TTL. Does nothing if the key holds anything else by now.
-- KEYS[1]  the old session key
-- ARGV     op id (16 bytes)
-- Reply    1 retired, 0 nothing to do.
local r = head(KEYS[1])
if r and r.k == MARK and r.op == ARGV[1] then
  redis.call('SET', KEYS[1], r.h, 'KEEPTTL')
  return 1
end
return 0
