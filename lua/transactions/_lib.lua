-- Helpers of the transactions scripts.

-- The seed's descStatus of each status code.
local TX_NAMES = { 'Created', 'Importing', 'Imported', 'Validating', 'Validated', 'Consolidating',
  'Done', 'Invalidated', 'ImportedWithErrors', 'DoneWithErrors', 'ImportError' }

-- The outbox deliveries a call may create: `out` = {stream, index, policy,
-- keys = {delivery record keys}, ids = {delivery ids}, used = 0, trace = the
-- origin of the transaction's commit request ('' = none), carried by them}.
local function tx_outbox(stream, index, policy, keys, ids, trace)
  return { stream = stream, index = index, policy = policy, keys = keys, ids = ids, used = 0,
    trace = trace or '' }
end

-- Send one delivery through `out` (dropped, never an error, when the call
-- was given no spare delivery id).
local function tx_send(out, url, destination, body, now)
  if out.used >= #out.ids then return end
  out.used = out.used + 1
  outbox_delivery(out.keys[out.used], out.stream, out.index, out.ids[out.used], url, 'POST', '{}',
    body, out.policy, destination, now, '', out.trace)
end

-- Move transaction `rec` to `status` and, when it has a callback_url, send
-- the status webhook {_id, status, descStatus, counts}.
local function tx_status(rec, status, now, out)
  redis.call('HSET', rec, 'status', status, 'updated', now)
  local f = redis.call('HMGET', rec, 'id', 'callback', 'callback_dest', 'received', 'valid', 'invalid',
    'skipped', 'superseded', 'consolidated')
  if not f[2] or f[2] == '' then return end
  local body = '{"_id":' .. cjson.encode(f[1]) .. ',"status":' .. status .. ',"descStatus":"' .. TX_NAMES[status]
    .. '","counts":{"received":' .. (f[4] or 0) .. ',"valid":' .. (f[5] or 0) .. ',"invalid":' .. (f[6] or 0)
    .. ',"skipped":' .. (f[7] or 0) .. ',"superseded":' .. (f[8] or 0) .. ',"consolidated":' .. (f[9] or 0) .. '}}'
  tx_send(out, f[2], f[3], body, now)
end

-- Finish a transaction: its own keys expire after the retention, it leaves
-- the tenant's queue, and the next committed one (if any) is started by a
-- `transactions.kick`.
local function tx_finish(rec, own, queue, stream, id, contractor, retention)
  redis.call('HSET', rec, 'stage', 'done')
  for _, k in ipairs(own) do redis.call('PEXPIRE', k, retention) end
  redis.call('LREM', queue, 1, id)
  if redis.call('LLEN', queue) > 0 then
    redis.call('XADD', stream, '*', 'kind', 'transactions.kick', 'payload', contractor)
  end
end
