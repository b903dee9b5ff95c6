-- Pause a net: tokens are still accepted, nothing fires.
-- KEYS: 1 meta
-- ARGV: none
-- Returns: integer, 1 paused, 0 when there is no such net.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'active', 0, 'updated', now_ms())
return 1
