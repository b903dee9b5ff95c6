-- Platform helpers prepended to every Switchyard script (see
-- shared/src/platform/scripts.rs). Family helpers live in lua/<family>/_lib.lua.
-- Scripts never build key names: every key arrives in KEYS.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Append one entry to a bounded history list (newest first). `entry` is a
-- table, or JSON text already encoded (to keep a key order or raw JSON).
local function hist(key, cap, entry)
  if type(entry) ~= 'string' then entry = cjson.encode(entry) end
  redis.call('LPUSH', key, entry)
  redis.call('LTRIM', key, 0, cap - 1)
end

-- A JSON array of the list `t`, even when empty (cjson would encode {} as an
-- object).
local function json_list(t)
  local parts = {}
  for i, v in ipairs(t) do parts[i] = cjson.encode(v) end
  return '[' .. table.concat(parts, ',') .. ']'
end

