-- Create a service with its gates (one per environment), all open.
-- KEYS: 1 services, then for env i: 1+2i-1 state, 1+2i history
-- ARGV: 1 service, 2 group, 3 history cap, 4 actor, 5 n, then env names
-- Returns: JSON {ok: true}; {err: "exists", service}.
local svc, group, cap, actor, n = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
if redis.call('HEXISTS', KEYS[1], svc) == 1 then
  return cjson.encode({ err = 'exists', service = svc })
end
local now = now_ms()
local envs = {}
for i = 1, n do
  envs[i] = ARGV[5 + i]
  local st, h = KEYS[1 + (i - 1) * 2 + 1], KEYS[1 + (i - 1) * 2 + 2]
  redis.call('DEL', st, h)
  redis.call('HSET', st, 'state', 'open', 'state_ts', now, 'message', '', 'message_ts', '')
  hist(h, cap, { at = now, event = 'created', state = 'open', actor = actor })
end
redis.call('HSET', KEYS[1], svc, cjson.encode({ group = group, environments = envs, created = now }))
return cjson.encode({ ok = true })
