-- Release (or expire) a ticket: remove it from every queue it sits in.
-- The id is remembered in the gone set for a while, so a late retry of a
-- test-and-set under that client-chosen id is refused instead of granted.
-- KEYS: 1 tickets, 2 expiry, then for gate i: 2+2i-1 queue, 2+2i history,
--       then 2+2n+1 gone set
-- ARGV: 1 ticket id, 2 reason ('released' | 'expired'), 3 history cap, 4 actor,
--       5 n, then the ticket's gate names as the caller read them,
--       then 5+n+1 how long a gone id stays refused (ms)
-- Returns: JSON {released: true, status} (status: the ticket's, before release);
--          {released: false} (no such ticket, or refreshed since an expiry was decided);
--          {stale: true} (the ticket's gates differ from the caller's: read again).
local id, reason, cap, actor, n = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local now = now_ms()
local raw = redis.call('HGET', KEYS[1], id)
if not raw then
  redis.call('ZREM', KEYS[2], id)
  return cjson.encode({ released = false })
end
local t = cjson.decode(raw)
-- The caller's view of the gates must still be true (a rename may have moved them).
if #t.gates ~= n then return cjson.encode({ stale = true }) end
for i = 1, n do
  if t.gates[i] ~= ARGV[5 + i] then return cjson.encode({ stale = true }) end
end
if reason == 'expired' and (t.expires == 0 or t.expires > now) then
  -- Refreshed since the sweeper looked.
  return cjson.encode({ released = false })
end
for i = 1, n do
  local q, h = KEYS[2 + (i - 1) * 2 + 1], KEYS[2 + (i - 1) * 2 + 2]
  if redis.call('LREM', q, 0, id) > 0 then
    hist(h, cap, { at = now, event = reason, ticket = id, status = t.status, actor = actor })
  end
end
redis.call('HDEL', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
forget(KEYS[2 + 2 * n + 1], tonumber(ARGV[5 + n + 1]), id, now)
return cjson.encode({ released = true, status = t.status })
