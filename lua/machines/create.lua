-- Create a state machine (409 when the id exists).
-- KEYS: 1 meta, 2 index (ZSET of machines on this shard)
-- ARGV: 1 id, 2 definition JSON
-- Returns: integer, 1 created, 0 when the id exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now = now_ms()
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'def', ARGV[2], 'created', now)
redis.call('ZADD', KEYS[2], now, ARGV[1])
return 1
