-- A worker starts an attempt from work entry ARGV[1]: take a new lease
-- (fencing token) and mark the delivery in flight. Finished or cancelled
-- deliveries are skipped, and so is a second entry of a delivery already in
-- flight from another entry (replays can queue one while an attempt runs).
-- KEYS: 1 record
-- ARGV: 1 stream entry id
-- Returns: JSON {skip: "gone" | "succeeded" | "dead" | "cancelled" | "duplicate"}
--          or {lease, url, method, headers, body, policy, attempts, created, owner, trace}.
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ skip = 'gone' }) end
local f = redis.call('HMGET', KEYS[1], 'state', 'entry')
local state, entry = f[1], f[2]
if state == 'succeeded' or state == 'dead' or state == 'cancelled' then
  return cjson.encode({ skip = state })
end
if state == 'in_flight' and entry and entry ~= ARGV[1] then
  return cjson.encode({ skip = 'duplicate' })
end
local lease = redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'entry', ARGV[1], 'updated', now_ms())
local r = redis.call('HMGET', KEYS[1], 'url', 'method', 'headers', 'body', 'policy', 'attempts', 'created', 'owner', 'trace')
return cjson.encode({ lease = lease, url = r[1], method = r[2], headers = r[3], body = r[4],
  policy = r[5], attempts = tonumber(r[6]), created = tonumber(r[7]), owner = r[8] or '', trace = r[9] or '' })
