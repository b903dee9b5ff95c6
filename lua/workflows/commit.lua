-- Commit one step of a workflow: what the engine computed from the inputs
-- it read at `version`. Fenced by the version: a step computed twice (two
-- workers, a retried stream entry) is applied once, the other gets
-- `conflict` and nothing is written. In the same call: the consumed inputs
-- leave the inbox, the new state and status are written, workitems are
-- opened and closed, timers set and cleared on the shard's timer set,
-- history appended (capped), each callback becomes an outbox delivery, the
-- status indexes move, a workflow that just finished gets its retention as
-- a TTL on every key, and a step is queued when inputs remain.
-- KEYS: 1 record, 2 inbox, 3 workitems, 4 history, 5 work stream, 6 timers,
--       7 workflow index (all), 8 running, 9 completed, 10 cancelled, 11 error
--       (status indexes), 12 delivery index, then 12+i the delivery record of callback i
-- ARGV: 1 workflow id, 2 version read, 3 inputs consumed from the inbox, 4 process JSON,
--       5 status (running | completed | cancelled | error), 6 retention ms, 7 history cap,
--       8 opened: JSON [[workitem id, workitem JSON], …], 9 closed: JSON [workitem id, …]
--       (applied before the opened ones),
--       10 timers set: JSON [[timer id, due ms as a string], …], 11 timers cleared: JSON [timer id, …],
--       12 history: JSON [event JSON, …], 13 callbacks: JSON [[delivery id, url, body,
--       policy, destination, owner], …] (in KEYS order), 14 origin of the step's work entry
--       ('' = none: "<request id> <traceparent>"), carried by its callbacks and the next step
-- Returns: JSON {ok: true, version, status, queued} | {err: "conflict", version} |
--          {err: "workflow_not_found"}
local REC, INBOX, WI, HIST, STREAM, TIMERS, INDEX = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local BY_STATUS = { running = KEYS[8], completed = KEYS[9], cancelled = KEYS[10], error = KEYS[11] }
local DLV_INDEX = KEYS[12]
local id, version, consumed, state, status = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local retention, cap = tonumber(ARGV[6]), tonumber(ARGV[7])

local f = redis.call('HMGET', REC, 'version', 'status', 'created')
if not f[1] then return cjson.encode({ err = 'workflow_not_found' }) end
if f[1] ~= version then return cjson.encode({ err = 'conflict', version = tonumber(f[1]) }) end
local old, created = f[2], f[3]
local now = now_ms()

if consumed > 0 then redis.call('LTRIM', INBOX, consumed, -1) end
local new_version = redis.call('HINCRBY', REC, 'version', 1)
redis.call('HSET', REC, 'state', state, 'status', status, 'updated', now)

-- Closed first: a workitem dispatched again (same id) is closed and opened.
for _, w in ipairs(cjson.decode(ARGV[9])) do redis.call('HDEL', WI, w) end
for _, o in ipairs(cjson.decode(ARGV[8])) do redis.call('HSET', WI, o[1], o[2]) end
local prefix = 'workflows.timer|' .. id .. '|'
for _, t in ipairs(cjson.decode(ARGV[10])) do redis.call('ZADD', TIMERS, t[2], prefix .. t[1]) end
for _, t in ipairs(cjson.decode(ARGV[11])) do redis.call('ZREM', TIMERS, prefix .. t) end
local events = cjson.decode(ARGV[12])
if #events > 0 then
  for _, e in ipairs(events) do redis.call('RPUSH', HIST, e) end
  redis.call('LTRIM', HIST, -cap, -1)
end
for i, c in ipairs(cjson.decode(ARGV[13])) do
  outbox_delivery(KEYS[12 + i], STREAM, DLV_INDEX, c[1], c[2], 'POST', '{}', c[3], c[4], c[5], now, c[6], ARGV[14])
end

if old ~= status then
  if BY_STATUS[old] then redis.call('ZREM', BY_STATUS[old], id) end
  if BY_STATUS[status] then redis.call('ZADD', BY_STATUS[status], created, id) end
  redis.call('ZADD', INDEX, created, id)
  if status == 'completed' or status == 'cancelled' then
    for _, k in ipairs({ REC, INBOX, WI, HIST }) do redis.call('PEXPIRE', k, retention) end
  end
end

local queued = false
if redis.call('LLEN', INBOX) > 0 then
  work_add(STREAM, 'workflows.step', id, ARGV[14])
  queued = true
end
return cjson.encode({ ok = true, version = new_version, status = status, queued = queued })
