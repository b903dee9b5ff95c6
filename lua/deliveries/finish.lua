-- Record the outcome of an attempt and acknowledge its stream entry in the
-- same call. A stale lease is rejected: when another worker holds the same
-- entry (reclaimed) nothing is acknowledged — that worker records the
-- outcome; when the delivery moved on to another entry (replay, kill) this
-- orphaned entry is acknowledged. A delivery that was cancelled or killed
-- meanwhile keeps its state; the attempt is logged.
-- KEYS: 1 record, 2 attempt log, 3 work stream, 4 timers, 5 dead set
-- ARGV: 1 lease, 2 outcome (succeeded | retry | dead), 3 status code ('' = none),
--       4 error (''), 5 latency ms, 6 next attempt at (ms, for retry), 7 stream entry id,
--       8 consumer group, 9 retention ms, 10 attempt log cap, 11 timer member, 12 started at,
--       13 '1' when the owner's family wants `owner.succeeded` notices, else '0'
-- Returns: JSON {state: <state after the call>} or {stale: true} (lease not current).
local cur = redis.call('HMGET', KEYS[1], 'lease', 'entry')
if tostring(cur[1]) ~= ARGV[1] then
  if cur[2] ~= ARGV[7] then
    redis.call('XACK', KEYS[3], ARGV[8], ARGV[7])
    redis.call('XDEL', KEYS[3], ARGV[7])
  end
  return cjson.encode({ stale = true })
end
local now = now_ms()
local outcome = ARGV[2]
local entry = { at = tonumber(ARGV[12]), outcome = outcome, latency_ms = tonumber(ARGV[5]) }
if ARGV[3] ~= '' then entry.status = tonumber(ARGV[3]) end
if ARGV[4] ~= '' then entry.error = ARGV[4] end
hist(KEYS[2], tonumber(ARGV[10]), entry)
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'updated', now, 'last_status', ARGV[3], 'last_error', ARGV[4], 'entry', '')
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'in_flight' then
  -- Cancelled (or killed) while in flight: keep the attempt, keep the state.
elseif outcome == 'succeeded' then
  redis.call('HSET', KEYS[1], 'state', 'succeeded', 'next_at', '')
  if ARGV[13] == '1' then owner_notice(KEYS[3], 'owner.succeeded', KEYS[1], nil) end
elseif outcome == 'retry' then
  redis.call('HSET', KEYS[1], 'state', 'failed_retrying', 'next_at', ARGV[6])
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[11])
else
  redis.call('HSET', KEYS[1], 'state', 'dead', 'next_at', '')
  redis.call('ZADD', KEYS[5], now, redis.call('HGET', KEYS[1], 'id'))
  -- Tell the owner (e.g. a net) on this shard's stream, in the same call.
  owner_notice(KEYS[3], 'owner.failed', KEYS[1], ARGV[4])
end
local final = redis.call('HGET', KEYS[1], 'state')
if final ~= 'failed_retrying' then
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  redis.call('PEXPIRE', KEYS[2], ARGV[9])
end
redis.call('XACK', KEYS[3], ARGV[8], ARGV[7])
redis.call('XDEL', KEYS[3], ARGV[7])
return cjson.encode({ state = final })
