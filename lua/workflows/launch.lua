-- Launch a workflow: store its record (the engine's process, version 0,
-- status running), queue the launch input and one step of work, and index
-- it, in one call. With an idempotency key, a key seen before answers the
-- workflow it names and changes nothing.
-- KEYS: 1 record, 2 inbox, 3 work stream, 4 workflow index (all), 5 running index,
--       6 idempotency key (optional; the caller picked an id on its shard)
-- ARGV: 1 workflow id, 2 process JSON, 3 launched at (ms), 4 idempotency ttl (ms),
--       5 public url (the base of its proceed urls), 6 origin of the request
--       ('' = none: "<request id> <traceparent>"), carried by the step queued
-- Returns: JSON {id, existing: false} (launched) | {id, existing: true} (the
--          idempotency key named this workflow) | {err: "exists"} (the id is taken)
local REC, INBOX, STREAM, INDEX, RUNNING, IDEM = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, state, launched = ARGV[1], ARGV[2], ARGV[3]
if IDEM then
  local seen = redis.call('GET', IDEM)
  if seen then return cjson.encode({ id = seen, existing = true }) end
end
if redis.call('EXISTS', REC) == 1 then return cjson.encode({ err = 'exists' }) end
local now = now_ms()
redis.call('HSET', REC, 'id', id, 'state', state, 'version', 0, 'status', 'running',
  'created', launched, 'updated', now, 'cancel', 0, 'public_url', ARGV[5])
redis.call('RPUSH', INBOX, '{"type":"launch"}')
work_add(STREAM, 'workflows.step', id, ARGV[6])
redis.call('ZADD', INDEX, launched, id)
redis.call('ZADD', RUNNING, launched, id)
if IDEM then redis.call('SET', IDEM, id, 'PX', tonumber(ARGV[4])) end
return cjson.encode({ id = id, existing = false })
