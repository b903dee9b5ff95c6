-- Test-and-set over any set of gates of one namespace, all-or-nothing.
-- A ticket is granted only when it is first among the live tickets of every
-- requested queue and no requested gate is closed (manually, by build window
-- or by holiday). Tickets stay at the head of their queues while granted.
-- A given ticket id that does not exist is created under that id (the client
-- chose it), so re-sending a request whose answer was lost finds the same
-- ticket: same fence, same grant, no second queue entry.
--
-- A given id released or expired within the gone window is refused
-- (ticket_not_found, as before client ids), so a late retry cannot re-grant it.
-- KEYS: 1 services, 2 tickets, 3 expiry, 4 fence, 5 holidays,
--       then for gate i: 5+3i-2 state, 5+3i-1 queue, 5+3i history,
--       then 5+3n+1 gone set
-- ARGV: 1 ticket id, 2 given by the client (0|1), 3 queue mode (0|1), 4 queued ttl ms,
--       5 granted ttl ms (0 = never), 6 history cap, 7 today (YYYY-MM-DD),
--       8 link ('' = none), 9 actor, 10 n,
--       then per gate: service, env, window_closed (0|1), group ('' = any),
--       then 10+4n+1 gone window (ms)
-- Returns: JSON {status: "ok" | "queued", ticket, position, closed} (ok = granted or
--          lease refreshed); {status: "denied", position, closed} (not queue mode);
--          {err: "ticket_not_found"} (the given ticket expired and is not swept
--          yet, or was released or expired within the gone window);
--          {err: "service_not_found", service};
--          {err: "environment_not_found", service, environment};
--          {err: "ticket_mismatch", gates: <the ticket's gates>}.
local id, given, qmode = ARGV[1], ARGV[2] == '1', ARGV[3] == '1'
local qttl, gttl, cap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local today, link, actor, n = ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])
local now = now_ms()

local gates = {}
for i = 1, n do
  local a, k = 10 + (i - 1) * 4, 5 + (i - 1) * 3
  local g = { svc = ARGV[a + 1], env = ARGV[a + 2], win = ARGV[a + 3] == '1', group = ARGV[a + 4],
              state = KEYS[k + 1], queue = KEYS[k + 2], hist = KEYS[k + 3] }
  g.name = g.svc .. '/' .. g.env
  gates[i] = g
end

local ticket
if given then
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then
    ticket = cjson.decode(raw)
    -- Expired but not yet swept: its queue entries are still there, so the
    -- id cannot be reused until the sweeper removed them.
    if ticket.expires ~= 0 and ticket.expires <= now then
      return cjson.encode({ err = 'ticket_not_found' })
    end
  else
    local gone_at = redis.call('ZSCORE', KEYS[5 + 3 * n + 1], id)
    if gone_at and tonumber(gone_at) > now - tonumber(ARGV[10 + 4 * n + 1]) then
      return cjson.encode({ err = 'ticket_not_found' })
    end
  end
end

for _, g in ipairs(gates) do
  if redis.call('EXISTS', g.state) == 0 then
    if redis.call('HEXISTS', KEYS[1], g.svc) == 0 then
      return cjson.encode({ err = 'service_not_found', service = g.svc })
    end
    return cjson.encode({ err = 'environment_not_found', service = g.svc, environment = g.env })
  end
  if g.group ~= '' then
    local svc, missing = find_service(KEYS[1], g.svc, g.group)
    if not svc then return missing end
  end
end

if ticket then
  local want = {}
  for _, name in ipairs(ticket.gates) do want[name] = true end
  local same = #ticket.gates == n
  for _, g in ipairs(gates) do same = same and want[g.name] == true end
  if not same then return cjson.encode({ err = 'ticket_mismatch', gates = ticket.gates }) end
end

-- Liveness of other tickets, looked up at most once each.
local alive_cache = {}
local function alive(tid)
  if tid == id then return true end
  local v = alive_cache[tid]
  if v == nil then
    v = false
    local raw = redis.call('HGET', KEYS[2], tid)
    if raw then
      local t = cjson.decode(raw)
      v = t.expires == 0 or t.expires > now
    end
    alive_cache[tid] = v
  end
  return v
end

-- Live tickets ahead of ours in a queue (all live tickets if ours is not in it).
local function ahead(q)
  local head = redis.call('LINDEX', q, 0)
  if not head or head == id then return 0 end
  local c = 0
  for _, tid in ipairs(redis.call('LRANGE', q, 0, -1)) do
    if tid == id then return c end
    if alive(tid) then c = c + 1 end
  end
  return c
end

local hol = {}
local hraw = redis.call('HGET', KEYS[5], today)
if hraw then
  for _, e in ipairs(cjson.decode(hraw).environments or {}) do hol[e] = true end
end
local closed = false
for _, g in ipairs(gates) do
  if g.win or hol[g.env] or redis.call('HGET', g.state, 'state') == 'closed' then closed = true end
end

local position = 0
for _, g in ipairs(gates) do
  local a = ahead(g.queue)
  if a > position then position = a end
end

local function save(t, ttl)
  if ttl > 0 then
    t.expires = now + ttl
    redis.call('ZADD', KEYS[3], t.expires, t.id)
  else
    t.expires = 0
    redis.call('ZREM', KEYS[3], t.id)
  end
  redis.call('HSET', KEYS[2], t.id, cjson.encode(t))
end

local function reply(status, t)
  return cjson.encode({ status = status, ticket = t, position = position, closed = closed })
end

-- A holder re-sending its ticket refreshes the lease.
if ticket and ticket.status == 'granted' then
  ticket.updated = now
  save(ticket, gttl)
  return reply('ok', ticket)
end

if not closed and position == 0 then
  local t = ticket
  if not t then
    t = { id = id, gates = {}, created = now }
    for i, g in ipairs(gates) do
      t.gates[i] = g.name
      redis.call('RPUSH', g.queue, id)
    end
  end
  if link ~= '' then t.link = link end
  t.status = 'granted'
  t.updated = now
  t.fence = redis.call('INCR', KEYS[4])
  save(t, gttl)
  for _, g in ipairs(gates) do
    hist(g.hist, cap, { at = now, event = 'granted', ticket = id, fence = t.fence, actor = actor })
  end
  return reply('ok', t)
end

if ticket then
  ticket.updated = now
  save(ticket, qttl)
  return reply('queued', ticket)
end

if not qmode then
  return cjson.encode({ status = 'denied', position = position, closed = closed })
end

local t = { id = id, gates = {}, created = now, updated = now, status = 'queued' }
if link ~= '' then t.link = link end
for i, g in ipairs(gates) do
  t.gates[i] = g.name
  redis.call('RPUSH', g.queue, id)
  hist(g.hist, cap, { at = now, event = 'queued', ticket = id, actor = actor })
end
save(t, qttl)
return reply('queued', t)
