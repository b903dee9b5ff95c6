-- Apply a batch of entity transitions of one state machine, each validated
-- against the definition: an unknown entity must enter an initial state, a
-- move must be listed in `next`, a closed entity moves no more, an event id
-- seen before for the same entity is applied once (ids are scoped per entity:
-- the events ZSET holds `<entity>|<event id>`; entity ids have no `|`). The
-- events ZSET is pruned of ids older than the retention on every call and
-- expires a retention after its last write, so an idle machine keeps none.
-- Counts, time-in-state sets, windowed counters and histories change in the
-- same call.
-- KEYS: 1 meta (def), 2 counts, 3 events (ZSET `<entity>|<event id>` → applied at),
--       4 current minute bucket,
--       5 .. 4+S: per state ZSET entity → entered at (definition order),
--       then per event: entity hash, entity history
-- ARGV: 1 history cap, 2 retention ms (closed entities, event ids), 3 n,
--       then per event: entity, to, at ms ('' = now), data JSON (''), event id ('')
-- Returns: JSON array, one result per event in order:
--          {status: "applied", from: <state> | null, to, closed: bool};
--          {status: "duplicate"};
--          {status: "rejected", reason: "unknown_state" | "not_initial" | "closed" |
--           "not_allowed", state (closed, not_allowed), allowed: [state]};
--          or {err: "machine_not_found"}.
local meta = redis.call('HMGET', KEYS[1], 'def', 'created')
local raw, gen = meta[1], meta[2]
if not raw then return cjson.encode({ err = 'machine_not_found' }) end
local def = cjson.decode(raw)
local now = now_ms()
local cap, retention, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local S = #def.states
local idx, nexts, terminal, initial = {}, {}, {}, {}
for i, s in ipairs(def.states) do
  idx[s.id] = i
  nexts[s.id] = {}
  for _, x in ipairs(s.next) do nexts[s.id][x] = true end
  terminal[s.id] = #s.next == 0
end
for _, s in ipairs(def.initial) do initial[s] = true end
local function allowed_from(s)
  local out = {}
  for _, x in ipairs(def.states[idx[s]].next) do out[#out + 1] = x end
  return json_list(out)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - retention)
local results = {}
local bucket_used = false
for e = 1, n do
  local a = 3 + (e - 1) * 5
  local entity, to, at, data, eid = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local ek, hk = KEYS[4 + S + (e - 1) * 2 + 1], KEYS[4 + S + (e - 1) * 2 + 2]
  local at_ms = now
  if at ~= '' then at_ms = tonumber(at) end
  local r
  if not idx[to] then
    r = '{"status":"rejected","reason":"unknown_state","allowed":' .. json_list(def.states_ids) .. '}'
  elseif eid ~= '' and redis.call('ZSCORE', KEYS[3], entity .. '|' .. eid) then
    r = '{"status":"duplicate"}'
  else
    local cur = redis.call('HMGET', ek, 'state', 'closed', 'gen')
    local from = cur[1]
    if from and (cur[3] ~= gen or not idx[from]) then
      -- Left over from a deleted machine of the same id: a new entity.
      redis.call('DEL', ek, hk)
      from = nil
      cur[2] = nil
    end
    if not from then
      if not initial[to] then
        r = '{"status":"rejected","reason":"not_initial","allowed":' .. json_list(def.initial) .. '}'
      end
    elseif cur[2] == '1' then
      r = '{"status":"rejected","reason":"closed","state":' .. cjson.encode(from) .. ',"allowed":[]}'
    elseif not nexts[from][to] then
      r = '{"status":"rejected","reason":"not_allowed","state":' .. cjson.encode(from) .. ',"allowed":' .. allowed_from(from) .. '}'
    end
    if r then
      redis.call('HINCRBY', KEYS[4], 'rej', 1)
      bucket_used = true
    else
      if from then
        if not terminal[from] then
          redis.call('ZREM', KEYS[4 + idx[from]], entity)
          redis.call('HINCRBY', KEYS[2], from, -1)
        end
        redis.call('HINCRBY', KEYS[4], 'out:' .. from, 1)
        redis.call('HINCRBY', KEYS[4], 'edge:' .. from .. '>' .. to, 1)
      end
      redis.call('HINCRBY', KEYS[4], 'in:' .. to, 1)
      bucket_used = true
      if terminal[to] then
        redis.call('HSET', ek, 'state', to, 'entered', at_ms, 'closed', 1, 'gen', gen)
        redis.call('PEXPIRE', ek, retention)
      else
        redis.call('ZADD', KEYS[4 + idx[to]], at_ms, entity)
        redis.call('HINCRBY', KEYS[2], to, 1)
        redis.call('HSET', ek, 'state', to, 'entered', at_ms, 'gen', gen)
      end
      local h = '{"from":' .. (from and cjson.encode(from) or 'null') .. ',"to":' .. cjson.encode(to) ..
        ',"at":' .. at_ms .. (data ~= '' and (',"data":' .. data) or '') ..
        (eid ~= '' and (',"event_id":' .. cjson.encode(eid)) or '') .. '}'
      hist(hk, cap, h)
      if terminal[to] then redis.call('PEXPIRE', hk, retention) end
      if eid ~= '' then
        redis.call('ZADD', KEYS[3], now, entity .. '|' .. eid)
        redis.call('PEXPIRE', KEYS[3], retention)
      end
      r = '{"status":"applied","from":' .. (from and cjson.encode(from) or 'null') .. ',"to":' .. cjson.encode(to) ..
        ',"closed":' .. tostring(terminal[to]) .. '}'
    end
  end
  results[e] = r
end
if bucket_used then redis.call('EXPIRE', KEYS[4], 3900) end
return '[' .. table.concat(results, ',') .. ']'
