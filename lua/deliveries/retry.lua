-- Replay a dead or failed delivery: a new round of attempts, now.
-- KEYS: 1 record, 2 attempt log, 3 work stream, 4 timers, 5 dead set, 6 index
-- ARGV: 1 timer member
-- Returns: JSON {state: "pending"};
--          {err: "not_found"} | {err: "conflict", state} (not dead, failed or cancelled).
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ err = 'not_found' }) end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'dead' and state ~= 'failed_retrying' and state ~= 'cancelled' then
  return cjson.encode({ err = 'conflict', state = state })
end
local now = now_ms()
-- A new lease makes any attempt still running for the old round stale.
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempts', 0, 'next_at', now, 'updated', now, 'entry', '')
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], redis.call('HGET', KEYS[1], 'id'))
redis.call('ZADD', KEYS[6], now, redis.call('HGET', KEYS[1], 'id'))
redis.call('XADD', KEYS[3], '*', 'kind', 'delivery', 'payload', redis.call('HGET', KEYS[1], 'id'))
return cjson.encode({ state = 'pending' })
