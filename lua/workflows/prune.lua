-- Drop index entries of workflows that are gone (expired after their
-- retention), checked and removed in one call.
-- KEYS: 1 a workflow index (ZSET id → launched ms), then for candidate i: 1+i its record key
-- ARGV: for candidate i: 2i-1 workflow id, 2i its index score as the caller read it
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
