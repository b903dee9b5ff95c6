-- A MULTI/EXEC pipeline, run as one script on a Redis Cluster: redis-rs
-- follows MOVED and ASK and retries TRYAGAIN for a single command (this
-- script's call), but not inside MULTI, where a redirected command makes
-- Redis discard the whole transaction (EXECABORT) while a slot moves. A
-- script is as atomic as MULTI/EXEC, and like EXEC a failing command
-- gives its own error reply while the others run.
-- KEYS: every command's first argument (its key), in order; one slot
-- ARGV: for each command: n (its name and arguments), then the name and
--       its n - 1 arguments
-- Returns: array, one reply per command, as EXEC would.
local out, i = {}, 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  out[#out + 1] = redis.pcall(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return out
