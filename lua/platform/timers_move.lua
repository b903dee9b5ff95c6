-- Move due timers of one shard into its work stream. ZREM and XADD happen in
-- one call, so with any number of schedulers each timer moves exactly once.
-- KEYS: 1 timers (member = "kind|payload"), 2 work stream
-- ARGV: 1 limit
-- Returns: integer, the number of timers moved.
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved = 0
for _, m in ipairs(due) do
  if redis.call('ZREM', KEYS[1], m) == 1 then
    local sep = string.find(m, '|', 1, true)
    if sep then
      redis.call('XADD', KEYS[2], '*', 'kind', string.sub(m, 1, sep - 1), 'payload', string.sub(m, sep + 1))
      moved = moved + 1
    end
  end
end
return moved
