-- Move a work entry to the shard's dead letters, with the reason, and
-- acknowledge it, in one step: the outcome is recorded before the ack.
-- KEYS: 1 stream, 2 dead-letter stream
-- ARGV: 1 group, 2 entry id, 3 kind, 4 payload, 5 reason, 6 deliveries, 7 dead-letter max length
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
  'source_id', ARGV[2], 'kind', ARGV[3], 'payload', ARGV[4], 'reason', ARGV[5],
  'deliveries', ARGV[6], 'at', now_ms())
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return n
