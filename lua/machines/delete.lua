-- Delete a state machine's definition, counters and state sets. Entity
-- records and histories are left to expire (retention), not scanned.
-- KEYS: 1 meta, 2 index, 3 counts, 4 events, 5 alerts, then per state its ZSET
-- ARGV: 1 id
-- Returns: integer, 1 deleted, 0 when there is no such machine.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
