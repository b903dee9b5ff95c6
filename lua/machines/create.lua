-- Create a state machine (409 when the id exists with another definition).
-- The same definition again is the retry of a lost answer: answered as
-- created, nothing written.
-- KEYS: 1 meta, 2 index (ZSET of machines on this shard)
-- ARGV: 1 id, 2 definition JSON
-- Returns: integer, 1 created (or already defined identically), 0 when the id
--          exists with another definition.
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'def') == ARGV[2] then return 1 end
  return 0
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'def', ARGV[2], 'created', now)
redis.call('ZADD', KEYS[2], now, ARGV[1])
return 1
