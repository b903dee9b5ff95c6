-- The Petri net engine: one call records a token (or creates the net, or
-- resumes it) and fires every transition that becomes enabled, up to a bound;
-- notifications and the remainder of a long chain go to the shard's work
-- stream in the same call (outbox).
--
-- KEYS: 1 meta, 2 marking (field "place:color" → token data JSON), 3 groups
--       (idx → JSON), 4 fired (markers and barrier counters), 5 seen (puts and
--       posts already applied, field "place:color"), 6 agenda (LIST of "place:color" to examine),
--       7 work stream, 8 net index (ZSET), 9 group begins (ZSET begin → idx)
-- ARGV: 1 mode (create | put | post | continue | resume), 2 net id,
--       3 bound (firings per call), 4 retention ms, then by mode:
--   create: 5 compiled JSON, 6 public url, 7 active (0|1), 8 spec hash, 9 callback policy
--   put:    5 place, 6 color, 7 color group ('' or '-' = any), 8 data JSON
--   post:   5 place, 6 data JSON
--   continue, resume: nothing more
--   then (every mode, optional): the origin of the request ('' = none:
--   "<request id> <traceparent>"), carried by the notifications queued
-- Returns: JSON {ok: true, fired, status?: "completed" | "failed", failure?, continued?,
--          color?, color_group?, present?} (put/post: the token's colour and group;
--          present: a token was already there); {color_group, color, duplicate: true}
--          (this put was applied before); {exists: true} (create: same spec already
--          stored); {err: "exists_different" | "net_not_found" | "net_failed" |
--          "place_not_found" | "color_not_found"}; {err: "color_group_mismatch", group}.
local mode, id, bound, retention = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local M, MARK, GROUPS, FIRED, SEEN, AGENDA, STREAM, INDEX, BEGINS =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local now = now_ms()
local ORIGIN = ARGV[({ create = 10, put = 9, post = 7 })[mode] or 5] or ''

local function save_group(g)
  redis.call('HSET', GROUPS, g.idx, group_json(g))
  redis.call('ZADD', BEGINS, g.b, g.idx)
end
local function load_group(idx)
  local raw = redis.call('HGET', GROUPS, idx)
  if not raw then return nil end
  local d = cjson.decode(raw)
  local pc, pg = d.parent_color, d.parent_color_group_idx
  if pc == cjson.null then pc = nil end
  if pg == cjson.null then pg = nil end
  return { idx = d.idx, b = d.begin, e = d['end'], pc = pc, pg = pg, cl = d.color_lineage, bl = d.begin_lineage }
end
local function group_of(c)
  local r = redis.call('ZREVRANGEBYSCORE', BEGINS, c, '-inf', 'LIMIT', 0, 1)
  if #r == 0 then return nil end
  local g = load_group(r[1])
  if g and c >= g.b and c < g.e then return g end
  return nil
end

local function all_keys() return { M, MARK, GROUPS, FIRED, SEEN, AGENDA, BEGINS } end
local function reply(t) return cjson.encode(t) end

-- ---------------------------------------------------------------- create
if mode == 'create' then
  local existing = redis.call('HGET', M, 'spec_hash')
  if existing then
    if existing == ARGV[8] then return reply({ exists = true }) end
    return reply({ err = 'exists_different' })
  end
  redis.call('HSET', M, 'id', id, 'def', ARGV[5], 'public_url', ARGV[6], 'active', ARGV[7],
    'status', 'running', 'created', now, 'updated', now, 'next_color', 1, 'next_group', 1,
    'fired', 0, 'live', 0, 'spec_hash', ARGV[8], 'policy', ARGV[9], 'notifications', 0)
  save_group({ idx = 0, b = 0, e = 1, cl = {}, bl = {} })
  redis.call('ZADD', INDEX, now, id)
end

local meta = redis.call('HMGET', M, 'def', 'public_url', 'active', 'status', 'policy')
if not meta[1] then return reply({ err = 'net_not_found' }) end
local def = cjson.decode(meta[1])
local public_url, active, status = meta[2], meta[3] == '1', meta[4]
local places, transitions, consumers = def.places, def.transitions, def.consumers
local nplaces = #places

local function field(p, c) return p .. ':' .. c end
local live_delta, fired_count, notes = 0, 0, 0
local failure = nil

local function produce(outputs, color, raw)
  for _, p in ipairs(outputs) do
    local f = field(p, color)
    if redis.call('HSETNX', MARK, f, raw) == 1 and #consumers[p + 1] > 0 then
      live_delta = live_delta + 1
      redis.call('RPUSH', AGENDA, f)
    end
  end
end

-- Remove token (p, c). A barrier that had counted colour c as complete
-- (a competing transition took one of its inputs) counts it no more.
local function take(p, c)
  local f = field(p, c)
  local raw = redis.call('HGET', MARK, f)
  if redis.call('HDEL', MARK, f) == 1 then live_delta = live_delta - 1 end
  for _, tidx in ipairs(consumers[p + 1]) do
    if transitions[tidx + 1].barrier and redis.call('HDEL', FIRED, 'bx:' .. tidx .. ':' .. c) == 1 then
      local g = group_of(c)
      if g then redis.call('HINCRBY', FIRED, 'bc:' .. tidx .. ':' .. g.idx, -1) end
    end
  end
  return raw
end

-- Merge token data: one non-empty payload passes through untouched; several
-- are merged key by key (a key with two different values fails the net,
-- unless `lenient`, where the first wins).
local function merge(raws, lenient)
  local nonempty = {}
  for _, r in ipairs(raws) do
    if r and r ~= '{}' and r ~= 'null' and r ~= '' then nonempty[#nonempty + 1] = r end
  end
  if #nonempty == 0 then return '{}' end
  if #nonempty == 1 then return nonempty[1] end
  local out = {}
  for _, r in ipairs(nonempty) do
    local d = jdecode(r)
    if type(d) == 'table' then
      for k, v in pairs(d) do
        if out[k] == nil then
          out[k] = v
        elseif not lenient and cjson.encode(out[k]) ~= cjson.encode(v) then
          failure = 'merge conflict on key ' .. tostring(k)
          return '{}'
        end
      end
    end
  end
  return jencode(out)
end

-- g: the group the callback is about; the response links carry colour c in
-- its own group (they differ for a colour group creation notice).
local function emit_notify(t, tidx, c, g, raw, url, links_places, requested, cb_suffix)
  local own = group_of(c) or g
  local links, first = {}, nil
  for name, q in pairs(links_places) do
    local link = public_url .. '/v1/nets/' .. id .. '/places/' .. q .. '/tokens?color=' .. c .. '&color_group=' .. own.idx
    links[#links + 1] = cjson.encode(name) .. ':' .. cjson.encode(link)
    first = first or link
  end
  local body = '{"net_key":' .. cjson.encode(id) .. ',"transition":' .. tidx .. ',"color":' .. c ..
    ',"group":' .. group_json(g) ..
    ',"token":{"color":' .. c .. ',"color_group":{"index":' .. num(own.idx) .. ',"color_begin":' .. num(own.b) ..
    ',"color_end":' .. num(own.e) .. ',"parent_color":' .. num(own.pc) .. ',"parent_color_group_index":' .. num(own.pg) .. '}}' ..
    ',"response_links":{' .. table.concat(links, ',') .. '}' ..
    (first and (',"response_link":' .. cjson.encode(first)) or '') ..
    (requested and #requested > 0 and (',"requested_data":' .. json_list(requested)) or '') ..
    ',"data":' .. (raw ~= '' and raw or 'null') .. '}'
  -- Unique per emission (a transition may fire again for a colour), and
  -- stable for this emission: the work entry carries it through redelivery.
  local seq = redis.call('HINCRBY', M, 'emitted', 1)
  local cb = id .. '.t' .. tidx .. '.' .. cb_suffix .. '.n' .. seq
  work_add(STREAM, 'net.notify',
    '{"net":' .. cjson.encode(id) .. ',"cb":' .. cjson.encode(cb) .. ',"url":' .. cjson.encode(url) ..
    ',"policy":' .. cjson.encode(meta[5] or '') .. ',"body":' .. cjson.encode(body) .. '}', ORIGIN)
  notes = notes + 1
end

local function fire_basic(tidx, t, c)
  local raws = {}
  for i, p in ipairs(t.inputs) do raws[i] = take(p, c) end
  local a = t.action
  local kind = a.type
  if kind == 'convert-to-parent-color' then
    local g = group_of(c)
    if not g or not g.pc then failure = 'transition ' .. tidx .. ': color ' .. c .. ' has no parent color'; return end
    if redis.call('HSETNX', FIRED, 'cv:' .. tidx .. ':' .. g.pc, 1) == 1 then
      produce(t.outputs, g.pc, merge(raws, true))
    end
    return
  end
  local raw = merge(raws, false)
  if failure then return end
  if kind == 'merge' then
    produce(t.outputs, c, raw)
  elseif kind == 'notify' then
    produce(t.outputs, c, raw)
    emit_notify(t, tidx, c, group_of(c), raw, a.url, a.response_places or {}, a.requested_data, 'c' .. c)
  elseif kind == 'create-color-group' then
    local d = jdecode(raw)
    local n = type(d) == 'table' and tonumber(d.color_group_size) or nil
    if not n or n < 1 or n > 100000 or n ~= math.floor(n) then
      failure = 'transition ' .. tidx .. ': color_group_size must be an integer 1..100000'
      return
    end
    local parent = group_of(c)
    local gidx = tonumber(redis.call('HINCRBY', M, 'next_group', 1)) - 1
    local b = tonumber(redis.call('HINCRBY', M, 'next_color', n)) - n
    local cl, bl = {}, {}
    for i, v in ipairs(parent.cl) do cl[i] = v end
    for i, v in ipairs(parent.bl) do bl[i] = v end
    cl[#cl + 1] = c
    bl[#bl + 1] = b
    local g = { idx = gidx, b = b, e = b + n, pc = c, pg = parent.idx, cl = cl, bl = bl }
    save_group(g)
    d.color_group_idx = gidx
    produce(t.outputs, c, jencode(d))
    if a.url and a.url ~= cjson.null then
      emit_notify(t, tidx, c, g, raw, a.url, a.response_places or {}, nil, 'g' .. gidx)
    end
  elseif kind == 'split' then
    local d = jdecode(raw)
    local gidx = type(d) == 'table' and tonumber(d.color_group_idx) or nil
    local g = gidx and load_group(gidx)
    if not g or g.pc ~= c then
      failure = 'transition ' .. tidx .. ': split needs color_group_idx of a group created for color ' .. c
      return
    end
    d.color_group_idx = nil
    local child = jencode(d)
    for x = g.b, g.e - 1 do produce(t.outputs, x, child) end
  elseif kind == 'remove-data' then
    if not a.keys or #a.keys == 0 then
      produce(t.outputs, c, '{}')
    else
      local d = jdecode(raw)
      if type(d) == 'table' then for _, k in ipairs(a.keys) do d[k] = nil end end
      produce(t.outputs, c, jencode(d))
    end
  elseif kind == 'expire' then
    for _, k in ipairs(all_keys()) do redis.call('PEXPIRE', k, a.ttl_seconds * 1000) end
    redis.call('HSET', M, 'expires_at', now + a.ttl_seconds * 1000)
    produce(t.outputs, c, raw)
  else
    failure = 'transition ' .. tidx .. ': action ' .. tostring(kind) .. ' cannot fire on a basic transition'
  end
end

local function fire_barrier(tidx, t, g)
  local raws = {}
  for x = g.b, g.e - 1 do
    for _, p in ipairs(t.inputs) do raws[#raws + 1] = take(p, x) end
  end
  redis.call('HDEL', FIRED, 'bc:' .. tidx .. ':' .. g.idx)
  for x = g.b, g.e - 1 do redis.call('HDEL', FIRED, 'bx:' .. tidx .. ':' .. x) end
  if not g.pc then failure = 'transition ' .. tidx .. ': join of a root group'; return end
  local d = jdecode(merge(raws, true))
  if type(d) == 'table' then d.color_group_idx = nil end
  produce(t.outputs, g.pc, jencode(d))
end

-- Is transition t enabled by the token (p, c)? Fires it if so.
local function examine(p, c)
  for _, tidx in ipairs(consumers[p + 1]) do
    if redis.call('HEXISTS', MARK, field(p, c)) == 0 then return end
    local t = transitions[tidx + 1]
    if t.barrier then
      local ready = true
      for _, q in ipairs(t.inputs) do
        if redis.call('HEXISTS', MARK, field(q, c)) == 0 then ready = false; break end
      end
      if ready then
        local g = group_of(c)
        -- Each colour counts once; each (barrier, group) fires once.
        if redis.call('HEXISTS', FIRED, 'bd:' .. tidx .. ':' .. g.idx) == 0
          and redis.call('HSETNX', FIRED, 'bx:' .. tidx .. ':' .. c, 1) == 1 then
          local n = redis.call('HINCRBY', FIRED, 'bc:' .. tidx .. ':' .. g.idx, 1)
          if n >= g.e - g.b then
            redis.call('HSET', FIRED, 'bd:' .. tidx .. ':' .. g.idx, 1)
            fire_barrier(tidx, t, g)
            fired_count = fired_count + 1
            return
          end
        end
      end
    else
      local ready = true
      for _, q in ipairs(t.inputs) do
        if redis.call('HEXISTS', MARK, field(q, c)) == 0 then ready = false; break end
      end
      if ready then
        fire_basic(tidx, t, c)
        fired_count = fired_count + 1
        return
      end
    end
    if failure then return end
  end
end

-- ---------------------------------------------------------------- tokens
local result = {}
if mode == 'create' then
  for _, p in ipairs(def.initial) do produce({ p }, 0, '{}') end
elseif mode == 'put' or mode == 'post' then
  if status == 'failed' then return reply({ err = 'net_failed' }) end
  local p = tonumber(ARGV[5])
  if not p or p < 0 or p >= nplaces then return reply({ err = 'place_not_found' }) end
  local c, raw
  if mode == 'post' then
    c = tonumber(redis.call('HINCRBY', M, 'next_color', 1)) - 1
    local gidx = tonumber(redis.call('HINCRBY', M, 'next_group', 1)) - 1
    save_group({ idx = gidx, b = c, e = c + 1, cl = {}, bl = {} })
    raw = ARGV[6]
    result.color_group = gidx
    -- The PUT to the Location this answers is the idempotent retry of this
    -- POST: it finds the colour seen, like a repeated PUT.
    redis.call('HSET', SEEN, field(p, c), 1)
  else
    c = tonumber(ARGV[6])
    raw = ARGV[8]
    local g = group_of(c)
    if not g then return reply({ err = 'color_not_found' }) end
    if ARGV[7] ~= '' and ARGV[7] ~= '-' and tonumber(ARGV[7]) ~= g.idx then return reply({ err = 'color_group_mismatch', group = g.idx }) end
    result.color_group = g.idx
    if redis.call('HSETNX', SEEN, field(p, c), 1) == 0 then
      result.duplicate = true
      result.color = c
      return reply(result)
    end
  end
  result.color = c
  if status == 'completed' then
    -- A new token revives a completed net: it runs again and is kept.
    status = 'running'
    redis.call('HSET', M, 'status', 'running')
    if not redis.call('HGET', M, 'expires_at') then
      for _, k in ipairs(all_keys()) do redis.call('PERSIST', k) end
    end
  end
  -- An explicit put replaces nothing: a token a transition already put there
  -- stays, and the caller is told.
  if redis.call('HEXISTS', MARK, field(p, c)) == 1 then result.present = true end
  produce({ p }, c, raw)
elseif mode == 'resume' then
  redis.call('HSET', M, 'active', 1)
  active = true
end

-- ---------------------------------------------------------------- fire
if active and status == 'running' then
  while fired_count < bound do
    local item = redis.call('LPOP', AGENDA)
    if not item then break end
    local sep = string.find(item, ':', 1, true)
    examine(tonumber(string.sub(item, 1, sep - 1)), tonumber(string.sub(item, sep + 1)))
    if failure then break end
  end
  if not failure and fired_count >= bound and redis.call('LLEN', AGENDA) > 0 then
    work_add(STREAM, 'net.continue', id, ORIGIN)
    result.continued = true
  end
end

local live = tonumber(redis.call('HINCRBY', M, 'live', live_delta))
-- An expiring net: keys created since the expire action get the same deadline.
local expires_at = redis.call('HGET', M, 'expires_at')
if expires_at then
  for _, k in ipairs(all_keys()) do redis.call('PEXPIREAT', k, expires_at) end
end
local total = tonumber(redis.call('HINCRBY', M, 'fired', fired_count))
if notes > 0 then redis.call('HINCRBY', M, 'notifications', notes) end
redis.call('HSET', M, 'updated', now)
if failure then
  redis.call('HSET', M, 'status', 'failed', 'failure', failure)
  if not expires_at then
    for _, k in ipairs(all_keys()) do redis.call('PEXPIRE', k, retention) end
  end
  result.status = 'failed'
  result.failure = failure
elseif active and status == 'running' and live <= 0 and total > 0 and redis.call('LLEN', AGENDA) == 0 then
  redis.call('HSET', M, 'status', 'completed', 'completed', now)
  if not expires_at then
    for _, k in ipairs(all_keys()) do redis.call('PEXPIRE', k, retention) end
  end
  result.status = 'completed'
end
result.fired = fired_count
result.ok = true
return reply(result)
