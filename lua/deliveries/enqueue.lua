-- Enqueue an HTTP delivery (POST /v1/deliveries).
-- KEYS: 1 record, 2 work stream, 3 index, 4 idempotency key
-- ARGV: 1 id, 2 url, 3 method, 4 headers JSON, 5 body, 6 policy, 7 destination,
--       8 idempotency key ('' = none), 9 retention ms, 10 owner ('' = none),
--       11 origin ('' = none: "<request id> <traceparent>")
-- Returns: JSON {id} (enqueued) or {existing: <id>} (idempotency key already used).
local now = now_ms()
if ARGV[8] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return cjson.encode({ existing = existing }) end
  redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[9])
end
outbox_delivery(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], now, ARGV[10], ARGV[11])
return cjson.encode({ id = ARGV[1] })
