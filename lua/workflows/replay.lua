-- Replay a workflow in error: queue the replay input (the engine retries the
-- failed expressions) and a step.
-- KEYS: 1 record, 2 inbox, 3 work stream
-- ARGV: 1 workflow id, 2 origin of the request ('' = none: "<request id> <traceparent>"),
--       carried by the step queued
-- Returns: JSON {ok: true} | {err: "workflow_not_found"} | {err: "not_in_error", status}
local REC, INBOX, STREAM = KEYS[1], KEYS[2], KEYS[3]
local status = redis.call('HGET', REC, 'status')
if not status then return cjson.encode({ err = 'workflow_not_found' }) end
if status ~= 'error' then return cjson.encode({ err = 'not_in_error', status = status }) end
redis.call('RPUSH', INBOX, '{"type":"replay"}')
work_add(STREAM, 'workflows.step', ARGV[1], ARGV[2])
return cjson.encode({ ok = true })
