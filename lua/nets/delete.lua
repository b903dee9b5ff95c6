-- Delete a net: every key, and its entry in the shard's net index.
-- KEYS: 1 meta, 2 marking, 3 groups, 4 fired, 5 seen, 6 agenda, 7 index, 8 group begins
-- ARGV: 1 net id
-- Returns: integer, 1 deleted, 0 when there is no such net.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[8])
redis.call('ZREM', KEYS[7], ARGV[1])
return 1
