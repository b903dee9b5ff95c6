-- Gate helpers, prepended to every gate script after the platform prelude.

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

