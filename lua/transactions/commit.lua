-- Commit a transaction: 1 Created → 2 Importing, with the date window; it
-- joins its tenant's queue, and when it is the head its first pipeline step
-- is queued (otherwise the transaction before it kicks it when it finishes).
-- A second commit changes nothing.
-- KEYS: 1 record, 2 tenant's open set, 3 tenant's queue, 4 work stream, 5 delivery index,
--       6 delivery record (the status webhook)
-- ARGV: 1 id, 2 contractor, 3 window start ('' for none), 4 window end, 5 most queued,
--       6 callback policy, 7 delivery id, 8 origin of the request ('' = none: "<request id>
--       <traceparent>"; kept on the record, carried by the pipeline's work and webhooks)
-- Returns: JSON {ok: true, modified: 1 | 0} | {err: "not_found"} | {err: "backlog", queued}
local REC, OPEN, QUEUE, STREAM = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, contractor = ARGV[1], ARGV[2]
local status = redis.call('HGET', REC, 'status')
if not status then return cjson.encode({ err = 'not_found' }) end
if status ~= '1' then return cjson.encode({ ok = true, modified = 0 }) end
local queued = redis.call('LLEN', QUEUE)
if queued >= tonumber(ARGV[5]) then return cjson.encode({ err = 'backlog', queued = queued }) end
local now = now_ms()
local trace = ARGV[8] or ''
local out = tx_outbox(STREAM, KEYS[5], ARGV[6], { KEYS[6] }, { ARGV[7] }, trace)
redis.call('HSET', REC, 'wstart', ARGV[3], 'wend', ARGV[4], 'committed', now, 'stage', 'import',
  'pos', 0, 'total', redis.call('HGET', REC, 'batches'), 'ckpt', 0, 'trace', trace)
tx_status(REC, 2, now, out)
redis.call('SREM', OPEN, id)
if redis.call('RPUSH', QUEUE, id) == 1 then
  redis.call('HSET', REC, 'kicked', 1)
  work_add(STREAM, 'transactions.step', contractor .. '|' .. id .. '|0', trace)
end
return cjson.encode({ ok = true, modified = 1 })
