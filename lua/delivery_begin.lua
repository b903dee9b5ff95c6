-- A worker starts an attempt: take a new lease (fencing token) on the
-- delivery and mark it in flight. Finished or cancelled deliveries are skipped.
-- KEYS: 1 record
-- ARGV: (none)
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ skip = 'gone' }) end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'succeeded' or state == 'dead' or state == 'cancelled' then
  return cjson.encode({ skip = state })
end
local lease = redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'updated', now_ms())
local f = redis.call('HMGET', KEYS[1], 'url', 'method', 'headers', 'body', 'policy', 'attempts', 'created')
return cjson.encode({ lease = lease, url = f[1], method = f[2], headers = f[3], body = f[4],
  policy = f[5], attempts = tonumber(f[6]), created = tonumber(f[7]) })
