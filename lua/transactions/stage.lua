-- Stage one checked batch of items in an open transaction. With an
-- idempotency key, a key seen before answers the batch it stored (when the
-- body's hash matches) and stores nothing.
-- KEYS: 1 record, 2 chunks, 3 idempotency hash
-- ARGV: 1 resource, 2 op (POST | PUT), 3 items (compact JSON array), 4 item count,
--       5 idempotency key ('' for none), 6 sha-256 of the body, 7 most items per transaction
-- Returns: JSON {ok: true, batch} | {ok: true, replay: true, batch} |
--          {err: "not_found"} | {err: "committed", status} | {err: "idempotency_mismatch"} |
--          {err: "too_many_items", received, max}
local REC, CHUNKS, IDEM = KEYS[1], KEYS[2], KEYS[3]
local status = redis.call('HGET', REC, 'status')
if not status then return cjson.encode({ err = 'not_found' }) end
local key = ARGV[5]
if key ~= '' then
  local seen = redis.call('HGET', IDEM, key)
  if seen then
    local sha, batch = string.match(seen, '^(%x+)\t(%d+)$')
    if sha ~= ARGV[6] then return cjson.encode({ err = 'idempotency_mismatch' }) end
    return cjson.encode({ ok = true, replay = true, batch = tonumber(batch) })
  end
end
if status ~= '1' then return cjson.encode({ err = 'committed', status = tonumber(status) }) end
local n = tonumber(ARGV[4])
local received = tonumber(redis.call('HGET', REC, 'received'))
if received + n > tonumber(ARGV[7]) then
  return cjson.encode({ err = 'too_many_items', received = received, max = tonumber(ARGV[7]) })
end
local batch = redis.call('RPUSH', CHUNKS, ARGV[1] .. '\t' .. ARGV[2] .. '\t' .. ARGV[3]) - 1
redis.call('HINCRBY', REC, 'received', n)
redis.call('HINCRBY', REC, 'r:' .. ARGV[1], n)
redis.call('HSET', REC, 'batches', batch + 1, 'updated', now_ms())
if key ~= '' then redis.call('HSET', IDEM, key, ARGV[6] .. '\t' .. batch) end
return cjson.encode({ ok = true, batch = batch })
