-- Remove the consumers of a work stream's group that have been idle longer
-- than a bound and hold no pending entries (names left by killed workers),
-- at most a given number. Checked and removed in one call, so a consumer
-- that reads in between is never removed with entries pending.
-- KEYS: 1 work stream
-- ARGV: 1 group, 2 idle bound ms, 3 most to remove
-- Returns: integer, how many consumers were removed.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(consumers) ~= 'table' or consumers.err then return 0 end -- no group yet
local bound = tonumber(ARGV[2])
local most = tonumber(ARGV[3])
local removed = 0
for _, c in ipairs(consumers) do
  if removed >= most then break end
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if tonumber(f['pending']) == 0 and tonumber(f['idle']) > bound then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed
