-- Dead-letter a delivery's work entry that was delivered too often without
-- an outcome (a crashing or hanging attempt), and mark the delivery dead —
-- one call, so the outcome cannot be lost between the two. A new lease makes
-- any attempt still running stale.
-- KEYS: 1 record, 2 attempt log, 3 dead set, 4 work stream, 5 dead-letter stream
-- ARGV: 1 reason, 2 retention ms, 3 attempt log cap, 4 group, 5 entry id,
--       6 kind, 7 payload, 8 deliveries, 9 dead-letter max length
-- Returns: integer, 1 when the delivery was marked dead, 0 when it is gone or
--          already finished (the entry is dead-lettered and acknowledged either way).
local now = now_ms()
dead_letter(KEYS[4], ARGV[4], ARGV[5], KEYS[5], ARGV[9], ARGV[6], ARGV[7], ARGV[1], ARGV[8], now)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'succeeded' or state == 'dead' or state == 'cancelled' then return 0 end
redis.call('HINCRBY', KEYS[1], 'lease', 1)
hist(KEYS[2], tonumber(ARGV[3]), { at = now, outcome = 'dead', error = ARGV[1], latency_ms = 0 })
redis.call('HSET', KEYS[1], 'state', 'dead', 'next_at', '', 'updated', now, 'last_error', ARGV[1], 'entry', '')
redis.call('ZADD', KEYS[3], now, redis.call('HGET', KEYS[1], 'id'))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
owner_notice(KEYS[4], 'owner.failed', KEYS[1], ARGV[1])
return 1
