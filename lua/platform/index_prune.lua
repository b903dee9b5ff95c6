-- Drop listing-index entries of entities that are gone (expired after their
-- retention, or deleted), checked and removed in one call: an entity
-- created again under the same id between the caller's read and this call
-- keeps its (refreshed) entry.
-- KEYS: 1 the index (ZSET id → created ms), then for candidate i: 1+i its record key
-- ARGV: for candidate i: 2i-1 the id, 2i its index score as the caller read it
-- Returns: integer, how many entries were removed.
local removed = 0
for i = 1, #KEYS - 1 do
  local id, score = ARGV[2 * i - 1], ARGV[2 * i]
  if redis.call('EXISTS', KEYS[1 + i]) == 0 then
    local now_score = redis.call('ZSCORE', KEYS[1], id)
    if now_score and tonumber(now_score) == tonumber(score) then
      removed = removed + redis.call('ZREM', KEYS[1], id)
    end
  end
end
return removed
