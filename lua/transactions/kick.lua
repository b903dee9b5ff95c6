-- Start the pipeline of the transaction at the head of its tenant's queue,
-- once (a committed transaction waits there until the one before it finishes).
-- KEYS: 1 tenant's queue, 2 head's record, 3 work stream
-- ARGV: 1 head's id, 2 contractor
-- Returns: JSON {ok: true, queued: true | false}
local QUEUE, REC, STREAM = KEYS[1], KEYS[2], KEYS[3]
if redis.call('LINDEX', QUEUE, 0) ~= ARGV[1] then return cjson.encode({ ok = true, queued = false }) end
local f = redis.call('HMGET', REC, 'kicked', 'stage', 'ckpt', 'trace')
if not f[2] then
  -- Expired or gone: drop it so the queue moves on.
  redis.call('LREM', QUEUE, 1, ARGV[1])
  if redis.call('LLEN', QUEUE) > 0 then
    redis.call('XADD', STREAM, '*', 'kind', 'transactions.kick', 'payload', ARGV[2])
  end
  return cjson.encode({ ok = true, queued = false })
end
if f[1] == '1' or f[2] == 'done' then return cjson.encode({ ok = true, queued = false }) end
redis.call('HSET', REC, 'kicked', 1)
work_add(STREAM, 'transactions.step', ARGV[2] .. '|' .. ARGV[1] .. '|' .. f[3], f[4])
return cjson.encode({ ok = true, queued = true })
