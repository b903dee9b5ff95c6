-- A pipeline step kept failing (its stream entry was delivered too often):
-- the transaction ends in 11 ImportError and the tenant's queue moves on.
-- KEYS: 1 record, 2 chunks, 3 idempotency hash, 4 staged, 5 order, 6 valid, 7 errors,
--       8 tenant's queue, 9 work stream, 10 delivery index, 11 delivery record
-- ARGV: 1 id, 2 contractor, 3 retention (ms), 4 callback policy, 5 delivery id, 6 reason
-- Returns: JSON {ok: true} | {err: "not_found"} | {err: "finished"}
local REC = KEYS[1]
local stage = redis.call('HGET', REC, 'stage')
if not stage then return cjson.encode({ err = 'not_found' }) end
if stage == 'done' or stage == '' then return cjson.encode({ err = 'finished' }) end
local now = now_ms()
local out = tx_outbox(KEYS[9], KEYS[10], ARGV[4], { KEYS[11] }, { ARGV[5] })
redis.call('HSET', REC, 'failure', ARGV[6])
tx_status(REC, 11, now, out)
tx_finish(REC, { KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7] }, KEYS[8], KEYS[9],
  ARGV[1], ARGV[2], tonumber(ARGV[3]))
return cjson.encode({ ok = true })
