-- Replace every holiday at once.
-- KEYS: 1 holidays
-- ARGV: pairs of date (YYYY-MM-DD) and holiday JSON
-- Returns: JSON {ok: true, count} (count = holidays stored).
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return cjson.encode({ ok = true, count = #ARGV / 2 })
