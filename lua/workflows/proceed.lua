-- Proceed a workitem: it must still be proceedable (in the workitems hash of
-- the workflow its own id names) and belong to the workflow of the path.
-- Removing it and queueing the input happen together, so of two concurrent
-- proceeds exactly one wins; the other finds no workitem. Its pending
-- `active` callback retries are cancelled when they come up (the owner hook
-- no longer finds the workitem).
-- KEYS: 1 record, 2 inbox, 3 workitems, 4 work stream (all of the workflow the workitem id names)
-- ARGV: 1 workflow id of the path, 2 workitem id, 3 workflow id the workitem id names,
--       4 the proceed input (JSON), 5 origin of the request ('' = none:
--       "<request id> <traceparent>"), carried by the step queued
-- Returns: JSON {ok: true} | {err: "workitem_not_found" | "workflow_mismatched"}
local REC, INBOX, WI, STREAM = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('HEXISTS', WI, ARGV[2]) == 0 or redis.call('EXISTS', REC) == 0 then
  return cjson.encode({ err = 'workitem_not_found' })
end
if ARGV[1] ~= ARGV[3] then return cjson.encode({ err = 'workflow_mismatched' }) end
redis.call('HDEL', WI, ARGV[2])
redis.call('RPUSH', INBOX, ARGV[4])
work_add(STREAM, 'workflows.step', ARGV[3], ARGV[5])
return cjson.encode({ ok = true })
