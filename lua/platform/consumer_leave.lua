-- A stopping worker leaves a work stream's group: its consumer is removed
-- only if it holds no pending entries, checked and removed in one call, so
-- another worker running under the same name never loses entries it holds.
-- KEYS: 1 work stream
-- ARGV: 1 group, 2 consumer name
-- Returns: integer, 1 removed, 0 kept (entries pending, or no such group).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if type(pending) ~= 'table' or pending.err or #pending > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
