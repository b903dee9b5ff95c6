-- Helpers prepended to every Switchyard script (see shared/src/scripts.rs).
-- Scripts never build key names: every key arrives in KEYS.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Append one entry to a bounded history list (newest first).
local function hist(key, cap, entry)
  redis.call('LPUSH', key, cjson.encode(entry))
  redis.call('LTRIM', key, 0, cap - 1)
end

-- Remove gate `gname` from ticket `tid`; a ticket left with no gates is deleted.
local function detach(tickets, expiry, tid, gname)
  local raw = redis.call('HGET', tickets, tid)
  if not raw then return end
  local t = cjson.decode(raw)
  local keep = {}
  for _, g in ipairs(t.gates) do
    if g ~= gname then keep[#keep + 1] = g end
  end
  if #keep == 0 then
    redis.call('HDEL', tickets, tid)
    redis.call('ZREM', expiry, tid)
  else
    t.gates = keep
    redis.call('HSET', tickets, tid, cjson.encode(t))
  end
end

-- True when the stored service's environment list equals ARGV[first .. first+n-1].
local function same_envs(svc, first, n)
  if #svc.environments ~= n then return false end
  for i = 1, n do
    if svc.environments[i] ~= ARGV[first + i - 1] then return false end
  end
  return true
end

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
