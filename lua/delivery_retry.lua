-- Replay a dead or failed delivery: a new round of attempts, now.
-- KEYS: 1 record, 2 attempt log, 3 work stream, 4 timers, 5 dead set
-- ARGV: 1 timer member
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ err = 'not_found' }) end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'dead' and state ~= 'failed_retrying' and state ~= 'cancelled' then
  return cjson.encode({ err = 'conflict', state = state })
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempts', 0, 'next_at', now, 'updated', now)
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], redis.call('HGET', KEYS[1], 'id'))
redis.call('XADD', KEYS[3], '*', 'kind', 'delivery', 'payload', redis.call('HGET', KEYS[1], 'id'))
return cjson.encode({ state = 'pending' })
