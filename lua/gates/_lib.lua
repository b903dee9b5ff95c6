-- Gate helpers, prepended to every gate script after the platform prelude.

-- Remember a removed ticket id in the gone set for `window` ms, so a late
-- retry under it is refused (pruned as it goes; the set expires when idle).
local function forget(gone, window, tid, now)
  redis.call('ZADD', gone, now, tid)
  redis.call('ZREMRANGEBYSCORE', gone, '-inf', now - window)
  redis.call('PEXPIRE', gone, window)
end

-- Remove gate `gname` from ticket `tid`; a ticket left with no gates is
-- deleted and remembered in the gone set.
local function detach(tickets, expiry, tid, gname, gone, window)
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
    forget(gone, window, tid, now_ms())
  else
    t.gates = keep
    redis.call('HSET', tickets, tid, cjson.encode(t))
  end
end

-- The stored service `name` when it exists and is in `group` ('' = any);
-- else nil and the script's not-found reply.
local function find_service(services, name, group)
  local raw = redis.call('HGET', services, name)
  if raw then
    local svc = cjson.decode(raw)
    if group == '' or svc.group == group then return svc end
  end
  return nil, cjson.encode({ err = 'service_not_found', service = name })
end

-- True when the stored service's environment list equals ARGV[first .. first+n-1].
local function same_envs(svc, first, n)
  if #svc.environments ~= n then return false end
  for i = 1, n do
    if svc.environments[i] ~= ARGV[first + i - 1] then return false end
  end
  return true
end

