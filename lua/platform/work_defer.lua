-- Put a work entry back as a timer (e.g. its destination is busy) and
-- acknowledge it, in one call. When a lease is given and still current and
-- the record (a delivery) is in flight, it goes back to pending.
-- KEYS: 1 work stream, 2 timers, 3 record (any key of the shard when none)
-- ARGV: 1 group, 2 entry id, 3 timer member ("kind|payload"), 4 delay ms, 5 lease ('' = none)
-- Returns: integer 1.
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[4]), ARGV[3])
if ARGV[5] ~= '' then
  local f = redis.call('HMGET', KEYS[3], 'lease', 'state')
  if tostring(f[1]) == ARGV[5] and f[2] == 'in_flight' then
    redis.call('HSET', KEYS[3], 'state', 'pending', 'entry', '')
  end
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
