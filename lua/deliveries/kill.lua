-- Dead-letter a delivery's work entry that was delivered too often without
-- an outcome (a crashing or hanging attempt), and mark the delivery dead —
-- one call, so the outcome cannot be lost between the two. A new lease makes
-- any attempt still running stale.
-- KEYS: 1 record, 2 attempt log, 3 dead set, 4 work stream, 5 dead-letter stream
-- ARGV: 1 reason, 2 retention ms, 3 attempt log cap, 4 group, 5 entry id,
--       6 kind, 7 payload, 8 deliveries, 9 dead-letter max length
local now = now_ms()
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[9], '*', 'source_id', ARGV[5], 'kind', ARGV[6],
  'payload', ARGV[7], 'reason', ARGV[1], 'deliveries', ARGV[8], 'at', now)
redis.call('XACK', KEYS[4], ARGV[4], ARGV[5])
redis.call('XDEL', KEYS[4], ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'succeeded' or state == 'dead' or state == 'cancelled' then return 0 end
redis.call('HINCRBY', KEYS[1], 'lease', 1)
redis.call('LPUSH', KEYS[2], cjson.encode({ at = now, outcome = 'dead', error = ARGV[1], latency_ms = 0 }))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('HSET', KEYS[1], 'state', 'dead', 'next_at', '', 'updated', now, 'last_error', ARGV[1], 'entry', '')
redis.call('ZADD', KEYS[3], now, redis.call('HGET', KEYS[1], 'id'))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' then
  redis.call('XADD', KEYS[4], '*', 'kind', 'owner.failed', 'payload',
    cjson.encode({ owner = owner, delivery = redis.call('HGET', KEYS[1], 'id'), reason = ARGV[1] }))
end
return 1
