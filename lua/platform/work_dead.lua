-- Move a work entry to the shard's dead letters, with the reason, and
-- acknowledge it, in one step: the outcome is recorded before the ack.
-- KEYS: 1 stream, 2 dead-letter stream
-- ARGV: 1 group, 2 entry id, 3 kind, 4 payload, 5 reason, 6 deliveries, 7 dead-letter max length
-- Returns: integer, the XACK count (1 when the entry was pending in the group, else 0).
return dead_letter(KEYS[1], ARGV[1], ARGV[2], KEYS[2], ARGV[7], ARGV[3], ARGV[4], ARGV[5], ARGV[6], now_ms())
