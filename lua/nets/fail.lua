-- Mark a net failed (a callback finally failed).
-- KEYS: 1 meta
-- ARGV: 1 reason
-- Returns: integer, 1 marked failed, 0 when there is no such net or it had failed already.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'status') == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'failed', 'failure', ARGV[1], 'updated', now_ms())
return 1
