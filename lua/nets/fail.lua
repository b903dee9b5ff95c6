-- Mark a net failed (a callback finally failed). A failed net is finished:
-- every key of it expires after the retention (unless an expire action set
-- an earlier deadline), like a completed net, so its index entry is pruned.
-- KEYS: 1 meta, 2 marking, 3 groups, 4 fired, 5 seen, 6 agenda, 7 group begins
-- ARGV: 1 reason, 2 retention ms
-- Returns: integer, 1 marked failed, 0 when there is no such net or it had failed already.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'status') == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'failed', 'failure', ARGV[1], 'updated', now_ms())
if not redis.call('HGET', KEYS[1], 'expires_at') then
  for i = 1, 7 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
return 1
