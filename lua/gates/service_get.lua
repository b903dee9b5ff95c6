-- Read one service with every gate, its queue and the queued tickets, as one
-- consistent snapshot.
-- KEYS: 1 services, 2 tickets, 3 holidays, then for env i: 3+2i-1 state, 3+2i queue
-- ARGV: 1 service, 2 group ('' = any), 3 today, 4 n, then the env names the caller read
-- Returns: JSON {service: <stored service>, gates: [{name, queue: [live ticket], <gate
--          state fields>}], now, holiday: [env]}; {err: "service_not_found", service};
--          {stale: true} (environments differ from the caller's: read again).
local svc, missing = find_service(KEYS[1], ARGV[1], ARGV[2])
if not svc then return missing end
local n = tonumber(ARGV[4])
if not same_envs(svc, 5, n) then return cjson.encode({ stale = true }) end
local now = now_ms()
local hol = {}
local hraw = redis.call('HGET', KEYS[3], ARGV[3])
if hraw then hol = cjson.decode(hraw).environments or {} end
local envs = {}
for i = 1, n do
  local st, q = KEYS[3 + (i - 1) * 2 + 1], KEYS[3 + (i - 1) * 2 + 2]
  local h = redis.call('HGETALL', st)
  local gate = { name = ARGV[4 + i], queue = {} }
  for j = 1, #h, 2 do gate[h[j]] = h[j + 1] end
  for _, tid in ipairs(redis.call('LRANGE', q, 0, -1)) do
    local traw = redis.call('HGET', KEYS[2], tid)
    if traw then
      local t = cjson.decode(traw)
      if t.expires == 0 or t.expires > now then gate.queue[#gate.queue + 1] = t end
    end
  end
  envs[i] = gate
end
return cjson.encode({ service = svc, gates = envs, now = now, holiday = hol })
