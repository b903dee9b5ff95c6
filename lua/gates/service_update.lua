-- Update a service in one step: rename, move to another group, replace the
-- environment list and/or set state and message per environment. Gates kept
-- across the change keep their state, queue and history; tickets follow a
-- rename; removed gates are detached from their tickets.
-- KEYS: 1 services, 2 tickets, 3 expiry,
--       then per old env i: state, queue, history (3 each, under the old name),
--       then per new env j: state, queue, history (3 each, under the new name),
--       last: the gone set
-- ARGV: 1 service, 2 group ('' = any), 3 new name, 4 new group, 5 history cap, 6 actor,
--       7 n_old, then old env names,
--       then n_new, then per new env: env, state ('' = keep), has message (0|1), message,
--       last: the gone window (ms)
-- Returns: JSON {ok: true, name: <name after the call>}; {err: "service_not_found", service};
--          {err: "exists", service: <new name>}; {stale: true} (old environments
--          differ from the caller's: read again).
local name, gcheck, new_name, new_group = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cap, actor, n_old = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local svc, missing = find_service(KEYS[1], name, gcheck)
if not svc then return missing end
if not same_envs(svc, 8, n_old) then return cjson.encode({ stale = true }) end
if new_name ~= name and redis.call('HEXISTS', KEYS[1], new_name) == 1 then
  return cjson.encode({ err = 'exists', service = new_name })
end
local base_new = 8 + n_old
local n_new = tonumber(ARGV[base_new])
local new = {}
local new_index = {}
for j = 1, n_new do
  local a = base_new + (j - 1) * 4
  local k = 3 + n_old * 3 + (j - 1) * 3
  new[j] = { env = ARGV[a + 1], state = ARGV[a + 2], has_msg = ARGV[a + 3] == '1', msg = ARGV[a + 4],
             skey = KEYS[k + 1], qkey = KEYS[k + 2], hkey = KEYS[k + 3] }
  new_index[new[j].env] = new[j]
end
local now = now_ms()

for i = 1, n_old do
  local env = ARGV[7 + i]
  local k = 3 + (i - 1) * 3
  local skey, qkey, hkey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local old_g = name .. '/' .. env
  local target = new_index[env]
  local ids = redis.call('LRANGE', qkey, 0, -1)
  if not target then
    for _, tid in ipairs(ids) do detach(KEYS[2], KEYS[3], tid, old_g, KEYS[#KEYS], tonumber(ARGV[#ARGV])) end
    redis.call('DEL', skey, qkey, hkey)
  elseif new_name ~= name then
    local new_g = new_name .. '/' .. env
    for _, tid in ipairs(ids) do
      local traw = redis.call('HGET', KEYS[2], tid)
      if traw then
        local t = cjson.decode(traw)
        for x, g in ipairs(t.gates) do
          if g == old_g then t.gates[x] = new_g end
        end
        redis.call('HSET', KEYS[2], tid, cjson.encode(t))
      end
    end
    for _, pair in ipairs({ { skey, target.skey }, { qkey, target.qkey }, { hkey, target.hkey } }) do
      if redis.call('EXISTS', pair[1]) == 1 then redis.call('RENAME', pair[1], pair[2]) end
    end
    hist(target.hkey, cap, { at = now, event = 'renamed', from = name, to = new_name, actor = actor })
  end
end

local envs = {}
for j, e in ipairs(new) do
  envs[j] = e.env
  if redis.call('EXISTS', e.skey) == 0 then
    redis.call('DEL', e.qkey, e.hkey)
    redis.call('HSET', e.skey, 'state', 'open', 'state_ts', now, 'message', '', 'message_ts', '')
    hist(e.hkey, cap, { at = now, event = 'created', state = 'open', actor = actor })
  end
  local entry = { at = now, event = 'update', actor = actor }
  local changed = false
  if e.state ~= '' and redis.call('HGET', e.skey, 'state') ~= e.state then
    redis.call('HSET', e.skey, 'state', e.state, 'state_ts', now)
    entry.state = e.state
    changed = true
  end
  if e.has_msg and redis.call('HGET', e.skey, 'message') ~= e.msg then
    local ts = ''
    if e.msg ~= '' then ts = now end
    redis.call('HSET', e.skey, 'message', e.msg, 'message_ts', ts)
    entry.message = e.msg
    changed = true
  end
  if changed then hist(e.hkey, cap, entry) end
end

if new_name ~= name then redis.call('HDEL', KEYS[1], name) end
redis.call('HSET', KEYS[1], new_name,
  cjson.encode({ group = new_group, environments = envs, created = svc.created }))
return cjson.encode({ ok = true, name = new_name })
