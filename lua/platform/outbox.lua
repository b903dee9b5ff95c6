-- Transactional outbox: create a delivery record and queue its first attempt
-- on this shard's work stream, in the caller's atomic call.
-- rec, stream, index: keys of the delivery (same shard as the caller).
-- owner: '' or an entity told when the delivery finally fails (e.g. "net:<id>").
local function outbox_delivery(rec, stream, index, id, url, method, headers, body, policy, destination, now, owner)
  redis.call('HSET', rec, 'id', id, 'url', url, 'method', method, 'headers', headers, 'body', body,
    'policy', policy, 'destination', destination, 'state', 'pending', 'attempts', 0, 'lease', 0,
    'created', now, 'updated', now, 'next_at', now, 'owner', owner or '')
  redis.call('ZADD', index, now, id)
  redis.call('XADD', stream, '*', 'kind', 'delivery', 'payload', id)
end
