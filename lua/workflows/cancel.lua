-- Ask for the cancellation of a running (or failed) workflow: set its cancel
-- flag, queue the cancel input and a step. Unknown, finished and already
-- cancelling workflows are refused alike, as Scriptoria answers them.
-- KEYS: 1 record, 2 inbox, 3 work stream
-- ARGV: 1 workflow id, 2 origin of the request ('' = none: "<request id> <traceparent>"),
--       carried by the step queued
-- Returns: JSON {ok: true} | {err: "workflow_not_found"}
local REC, INBOX, STREAM = KEYS[1], KEYS[2], KEYS[3]
local f = redis.call('HMGET', REC, 'status', 'cancel')
local status, cancel = f[1], f[2]
if not status or status == 'completed' or status == 'cancelled' or cancel == '1' then
  return cjson.encode({ err = 'workflow_not_found' })
end
redis.call('HSET', REC, 'cancel', 1)
redis.call('RPUSH', INBOX, '{"type":"cancel"}')
work_add(STREAM, 'workflows.step', ARGV[1], ARGV[2])
return cjson.encode({ ok = true })
