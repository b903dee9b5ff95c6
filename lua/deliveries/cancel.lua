-- Cancel a delivery that has not finished. An attempt already in flight
-- completes, but no further attempt is made.
-- KEYS: 1 record, 2 attempt log, 3 timers
-- ARGV: 1 timer member, 2 retention ms
-- Returns: JSON {state: "cancelled", was: <previous state>};
--          {err: "not_found"} | {err: "conflict", state} (already finished).
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ err = 'not_found' }) end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'succeeded' or state == 'dead' or state == 'cancelled' then
  return cjson.encode({ err = 'conflict', state = state })
end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'next_at', '', 'updated', now_ms())
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return cjson.encode({ state = 'cancelled', was = state })
