-- Mark a delivery dead because its work entry was dead-lettered (delivered
-- too often without an outcome: a crashing or hanging attempt).
-- KEYS: 1 record, 2 attempt log, 3 dead set
-- ARGV: 1 reason, 2 retention ms, 3 attempt log cap
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'succeeded' or state == 'dead' or state == 'cancelled' then return 0 end
local now = now_ms()
redis.call('LPUSH', KEYS[2], cjson.encode({ at = now, outcome = 'dead', error = ARGV[1], latency_ms = 0 }))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('HSET', KEYS[1], 'state', 'dead', 'next_at', '', 'updated', now, 'last_error', ARGV[1])
redis.call('ZADD', KEYS[3], now, redis.call('HGET', KEYS[1], 'id'))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
