-- Delete a service and its gates. Tickets lose these gates; a ticket left
-- with no gate is deleted.
-- KEYS: 1 services, 2 tickets, 3 expiry, then for env i: 3+3i-2 state, 3+3i-1 queue, 3+3i history,
--       last: the gone set
-- ARGV: 1 service, 2 group ('' = any), 3 n, then the env names the caller read,
--       last: the gone window (ms)
-- Returns: JSON {ok: true}; {err: "service_not_found", service};
--          {stale: true} (environments differ from the caller's: read again).
local svc, missing = find_service(KEYS[1], ARGV[1], ARGV[2])
if not svc then return missing end
local n = tonumber(ARGV[3])
if not same_envs(svc, 4, n) then return cjson.encode({ stale = true }) end
for i = 1, n do
  local k = 3 + (i - 1) * 3
  local gname = ARGV[1] .. '/' .. ARGV[3 + i]
  for _, tid in ipairs(redis.call('LRANGE', KEYS[k + 2], 0, -1)) do
    detach(KEYS[2], KEYS[3], tid, gname, KEYS[#KEYS], tonumber(ARGV[#ARGV]))
  end
  redis.call('DEL', KEYS[k + 1], KEYS[k + 2], KEYS[k + 3])
end
redis.call('HDEL', KEYS[1], ARGV[1])
return cjson.encode({ ok = true })
