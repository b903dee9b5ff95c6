-- Set the manual state and/or message of one gate.
-- KEYS: 1 services, 2 gate state, 3 gate history
-- ARGV: 1 service, 2 env, 3 group ('' = any), 4 state ('' = keep | open | closed),
--       5 has message (0|1), 6 message, 7 history cap, 8 actor
-- Returns: JSON {ok: true, changed: bool}; {err: "service_not_found", service};
--          {err: "environment_not_found", service, environment}.
local svc, missing = find_service(KEYS[1], ARGV[1], ARGV[3])
if not svc then return missing end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return cjson.encode({ err = 'environment_not_found', service = ARGV[1], environment = ARGV[2] })
end
local now = now_ms()
local entry = { at = now, event = 'update', actor = ARGV[8] }
local changed = false
if ARGV[4] ~= '' and redis.call('HGET', KEYS[2], 'state') ~= ARGV[4] then
  redis.call('HSET', KEYS[2], 'state', ARGV[4], 'state_ts', now)
  entry.state = ARGV[4]
  changed = true
end
if ARGV[5] == '1' and redis.call('HGET', KEYS[2], 'message') ~= ARGV[6] then
  local ts = ''
  if ARGV[6] ~= '' then ts = now end
  redis.call('HSET', KEYS[2], 'message', ARGV[6], 'message_ts', ts)
  entry.message = ARGV[6]
  changed = true
end
if changed then hist(KEYS[3], tonumber(ARGV[7]), entry) end
return cjson.encode({ ok = true, changed = changed })
