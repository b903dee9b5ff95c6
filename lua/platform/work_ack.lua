-- Acknowledge a finished work entry and drop it from the stream.
-- KEYS: 1 stream
-- ARGV: 1 group, 2 entry id
-- Returns: integer, the XACK count (1 when the entry was pending in the group, else 0).
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return n
