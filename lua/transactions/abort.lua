-- Abort (delete) an open transaction and what it staged.
-- KEYS: 1 record, 2 chunks, 3 idempotency hash, 4 tenant's transactions, 5 tenant's open set
-- ARGV: 1 id
-- Returns: JSON {ok: true} | {err: "not_found"} | {err: "committed", status}
local REC = KEYS[1]
local status = redis.call('HGET', REC, 'status')
if not status then return cjson.encode({ err = 'not_found' }) end
if status ~= '1' then return cjson.encode({ err = 'committed', status = tonumber(status) }) end
redis.call('DEL', REC, KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
return cjson.encode({ ok = true })
