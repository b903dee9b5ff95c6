-- Platform helpers prepended to every Switchyard script (see
-- shared/src/platform/scripts.rs). Family helpers live in lua/<family>/_lib.lua.
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

