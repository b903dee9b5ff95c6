-- Move one threshold's alert state and send its notification (outbox) in one
-- call. A firing threshold is announced once, as soon as the cooldown since
-- the last announcement allows (re-checked on every evaluation, so a
-- crossing inside the cooldown is announced when it ends, if still true);
-- clearing sends a recovery only for an announced alert.
-- KEYS: 1 alerts hash, 2 delivery record, 3 work stream, 4 delivery index
-- ARGV: 1 threshold id, 2 firing now (0|1), 3 cooldown ms, 4 recovery (0|1),
--       5 delivery id, 6 url, 7 body when firing, 8 body when recovered, 9 destination, 10 policy
-- Returns: JSON {sent: "" | "alert" | "recovery", firing: bool}.
local now = now_ms()
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local st = { firing = false, announced = false, notified = 0 }
if raw then st = cjson.decode(raw) end
local firing = ARGV[2] == '1'
local sent = ''
local function send(body)
  if ARGV[6] ~= '' then
    outbox_delivery(KEYS[2], KEYS[3], KEYS[4], ARGV[5], ARGV[6], 'POST', '{}', body, ARGV[10], ARGV[9], now, '')
    return true
  end
  return false
end
if firing then
  if not st.firing then
    st.firing = true
    st.since = now
  end
  if not st.announced and now - (st.notified or 0) >= tonumber(ARGV[3]) then
    st.announced = true
    st.notified = now
    if send(ARGV[7]) then sent = 'alert' end
  end
elseif st.firing then
  st.firing = false
  st.since = now
  if st.announced and ARGV[4] == '1' and send(ARGV[8]) then sent = 'recovery' end
  st.announced = false
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(st))
return cjson.encode({ sent = sent, firing = st.firing })
