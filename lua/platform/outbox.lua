-- Queue work of `kind` with `payload` on `stream`; `trace` ('' or nil: none)
-- is the origin of the request that caused it, carried on the entry so the
-- worker handles it (and the callbacks it sends) in that request's trace.
local function work_add(stream, kind, payload, trace)
  if trace and trace ~= '' then
    return redis.call('XADD', stream, '*', 'kind', kind, 'payload', payload, 'trace', trace)
  end
  return redis.call('XADD', stream, '*', 'kind', kind, 'payload', payload)
end

-- Transactional outbox: create a delivery record and queue its first attempt
-- on this shard's work stream, in the caller's atomic call.
-- rec, stream, index: keys of the delivery (same shard as the caller).
-- owner: '' or an entity told when the delivery finally fails (e.g. "net:<id>").
-- trace: '' (or nil) or the origin of the request that caused it ("<request id> <traceparent>",
-- see shared/src/platform/trace.rs), sent with every attempt.
local function outbox_delivery(rec, stream, index, id, url, method, headers, body, policy, destination, now, owner, trace)
  redis.call('HSET', rec, 'id', id, 'url', url, 'method', method, 'headers', headers, 'body', body,
    'policy', policy, 'destination', destination, 'state', 'pending', 'attempts', 0, 'lease', 0,
    'created', now, 'updated', now, 'next_at', now, 'owner', owner or '', 'trace', trace or '')
  redis.call('ZADD', index, now, id)
  work_add(stream, 'delivery', id, trace)
end

-- Move work entry `entry` of `stream` to the dead letters `dead` (capped at
-- about `maxlen`) with its kind, payload, reason and delivery count, then
-- acknowledge and drop it: the outcome is recorded before the ack.
-- Returns the XACK count (1 when the entry was pending in `group`).
local function dead_letter(stream, group, entry, dead, maxlen, kind, payload, reason, deliveries, at)
  redis.call('XADD', dead, 'MAXLEN', '~', maxlen, '*',
    'source_id', entry, 'kind', kind, 'payload', payload, 'reason', reason,
    'deliveries', deliveries, 'at', at)
  local n = redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
  return n
end

-- Tell the owner of the delivery `rec` (when it has one) that the delivery
-- finished: work of `kind` ('owner.succeeded' | 'owner.failed') on `stream`,
-- payload {owner, delivery[, reason]}. `reason` is nil for a success.
local function owner_notice(stream, kind, rec, reason)
  local owner = redis.call('HGET', rec, 'owner')
  if not owner or owner == '' then return end
  local payload
  if reason == nil then
    payload = { owner = owner, delivery = redis.call('HGET', rec, 'id') }
  else
    payload = { owner = owner, delivery = redis.call('HGET', rec, 'id'), reason = reason }
  end
  redis.call('XADD', stream, '*', 'kind', kind, 'payload', cjson.encode(payload))
end
