-- Move one threshold's alert state and send its notification (outbox) in one
-- call: a crossing notifies once, then not again within the cooldown; with
-- recovery on, clearing notifies too.
-- KEYS: 1 alerts hash, 2 delivery record, 3 work stream, 4 delivery index
-- ARGV: 1 threshold id, 2 firing now (0|1), 3 cooldown ms, 4 recovery (0|1),
--       5 delivery id, 6 url, 7 body when firing, 8 body when recovered, 9 destination, 10 policy
local now = now_ms()
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local st = { firing = false, notified = 0 }
if raw then st = cjson.decode(raw) end
local firing = ARGV[2] == '1'
local sent = ''
if firing and not st.firing then
  st.firing = true
  st.since = now
  if now - (st.notified or 0) >= tonumber(ARGV[3]) then
    st.notified = now
    if ARGV[6] ~= '' then
      outbox_delivery(KEYS[2], KEYS[3], KEYS[4], ARGV[5], ARGV[6], 'POST', '{}', ARGV[7], ARGV[10], ARGV[9], now, '')
      sent = 'alert'
    end
  end
elseif not firing and st.firing then
  st.firing = false
  st.since = now
  if ARGV[4] == '1' and ARGV[6] ~= '' then
    outbox_delivery(KEYS[2], KEYS[3], KEYS[4], ARGV[5], ARGV[6], 'POST', '{}', ARGV[8], ARGV[10], ARGV[9], now, '')
    sent = 'recovery'
  end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(st))
return cjson.encode({ sent = sent, firing = st.firing })
