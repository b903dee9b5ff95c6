-- Open a transaction of a tenant: its record (status 1 Created), the
-- tenant's index and open set, unless the tenant has too many open ones or
-- its pipeline is too far behind.
-- KEYS: 1 record, 2 tenant's transactions (ZSET), 3 tenant's open set, 4 tenant's queue
-- ARGV: 1 id, 2 created (ms), 3 callback url ('' for none), 4 callback destination,
--       5 most open, 6 most queued
-- Returns: JSON {ok: true} | {err: "exists"} | {err: "too_many_open", open} |
--          {err: "backlog", queued}
local REC, TXS, OPEN, QUEUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', REC) == 1 then return cjson.encode({ err = 'exists' }) end
local open = redis.call('SCARD', OPEN)
if open >= tonumber(ARGV[5]) then return cjson.encode({ err = 'too_many_open', open = open }) end
local queued = redis.call('LLEN', QUEUE)
if queued >= tonumber(ARGV[6]) then return cjson.encode({ err = 'backlog', queued = queued }) end
local now = now_ms()
redis.call('HSET', REC, 'id', ARGV[1], 'status', 1, 'created', ARGV[2], 'updated', now,
  'callback', ARGV[3], 'callback_dest', ARGV[4], 'received', 0, 'valid', 0, 'invalid', 0,
  'skipped', 0, 'superseded', 0, 'consolidated', 0, 'batches', 0, 'stage', '', 'pos', 0,
  'total', 0, 'ckpt', 0)
redis.call('ZADD', TXS, ARGV[2], ARGV[1])
redis.call('SADD', OPEN, ARGV[1])
return cjson.encode({ ok = true })
