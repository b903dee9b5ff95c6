-- Apply one pipeline step of a transaction, computed by a worker from the
-- state it read at checkpoint `ckpt`. Fenced by the checkpoint: a step
-- computed twice (a retried or reclaimed stream entry, a killed worker)
-- is applied once, the other answers `stale` and writes nothing. In the
-- same call: the step's results are written (staged items, the valid list,
-- per-item errors, counts, store upserts), the position and checkpoint
-- move, statuses change (each change a webhook through the outbox), a
-- consolidated chunk goes to the sink, and the next step is queued — or the
-- transaction finishes (its keys expire, the tenant's next one is kicked).
-- KEYS: 1 record, 2 staged, 3 order, 4 valid, 5 errors, 6 tenant's queue, 7 work stream,
--       8 delivery index, 9..13 store hashes, 14..18 store indexes (resource order:
--       collaborators, indicators, attributes, hierarchies, results), 19 chunks,
--       20 idempotency hash, 21..23 delivery records
-- ARGV: 1 id, 2 contractor, 3 checkpoint read, 4 stage (import | validate | consolidate),
--       5 positions advanced, 6 results JSON {staged: [[key, entry]], order: [[score, key]],
--       skipped, superseded, valid: [key], errors: [error JSON], unstore: [[resource 1..5, key]]
--       (intervals trimmed away; removed first), store: [[resource 1..5, key, record]],
--       consolidated: items consolidated}, 7 retention (ms), 8 callback policy, 9 sink url ('' for none),
--       10 sink destination, 11 sink body, 12..14 delivery ids
-- Returns: JSON {ok: true, status, finished} | {err: "stale"} | {err: "not_found"}
local REC, STAGED, ORDER, VALID, ERRORS, QUEUE, STREAM = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, contractor, ckpt, stage = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local f = redis.call('HMGET', REC, 'ckpt', 'stage', 'status', 'pos', 'total')
if not f[1] then return cjson.encode({ err = 'not_found' }) end
if f[1] ~= ckpt or f[2] ~= stage then return cjson.encode({ err = 'stale' }) end
local status, pos, total = tonumber(f[3]), tonumber(f[4]) + tonumber(ARGV[5]), tonumber(f[5])
local now = now_ms()
local out = tx_outbox(STREAM, KEYS[8], ARGV[8], { KEYS[21], KEYS[22], KEYS[23] }, { ARGV[12], ARGV[13], ARGV[14] },
  redis.call('HGET', REC, 'trace'))
local r = cjson.decode(ARGV[6])
local own = { REC, KEYS[19], KEYS[20], STAGED, ORDER, VALID, ERRORS }

for _, s in ipairs(r.staged or {}) do redis.call('HSET', STAGED, s[1], s[2]) end
for _, o in ipairs(r.order or {}) do redis.call('ZADD', ORDER, 'NX', o[1], o[2]) end
if (r.skipped or 0) > 0 then redis.call('HINCRBY', REC, 'skipped', r.skipped) end
if (r.superseded or 0) > 0 then redis.call('HINCRBY', REC, 'superseded', r.superseded) end
local valid = r.valid or {}
for _, k in ipairs(valid) do redis.call('RPUSH', VALID, k) end
if #valid > 0 then redis.call('HINCRBY', REC, 'valid', #valid) end
local errors = r.errors or {}
for _, e in ipairs(errors) do redis.call('RPUSH', ERRORS, e) end
if #errors > 0 then redis.call('HINCRBY', REC, 'invalid', #errors) end
for _, u in ipairs(r.unstore or {}) do
  redis.call('HDEL', KEYS[8 + u[1]], u[2])
  redis.call('ZREM', KEYS[13 + u[1]], u[2])
end
local stored = r.store or {}
for _, s in ipairs(stored) do
  redis.call('HSET', KEYS[8 + s[1]], s[2], s[3])
  redis.call('ZADD', KEYS[13 + s[1]], 0, s[2])
end
local consolidated = r.consolidated or 0
if consolidated > 0 then redis.call('HINCRBY', REC, 'consolidated', consolidated) end

local new_ckpt = redis.call('HINCRBY', REC, 'ckpt', 1)
redis.call('HSET', REC, 'pos', pos, 'updated', now)
local finished = false
if stage == 'import' then
  if pos >= total then
    tx_status(REC, 3, now, out)
    status = 3
    redis.call('HSET', REC, 'stage', 'validate', 'pos', 0, 'total', redis.call('ZCARD', ORDER))
  end
elseif stage == 'validate' then
  if status == 3 then tx_status(REC, 4, now, out); status = 4 end
  if pos >= total then
    local n = redis.call('HMGET', REC, 'valid', 'invalid')
    local nvalid, ninvalid = tonumber(n[1]), tonumber(n[2])
    if ninvalid > 0 and nvalid == 0 then
      status = 8
      tx_status(REC, 8, now, out)
      tx_finish(REC, own, QUEUE, STREAM, id, contractor, tonumber(ARGV[7]))
      finished = true
    else
      status = ninvalid > 0 and 9 or 5
      tx_status(REC, status, now, out)
      redis.call('HSET', REC, 'stage', 'consolidate', 'pos', 0, 'total', redis.call('LLEN', VALID))
    end
  end
elseif stage == 'consolidate' then
  if status == 5 or status == 9 then tx_status(REC, 6, now, out); status = 6 end
  if ARGV[9] ~= '' and consolidated > 0 then tx_send(out, ARGV[9], ARGV[10], ARGV[11], now) end
  if pos >= total then
    status = tonumber(redis.call('HGET', REC, 'invalid')) > 0 and 10 or 7
    tx_status(REC, status, now, out)
    tx_finish(REC, own, QUEUE, STREAM, id, contractor, tonumber(ARGV[7]))
    finished = true
  end
end
if not finished then
  work_add(STREAM, 'transactions.step', contractor .. '|' .. id .. '|' .. new_ckpt, out.trace)
end
return cjson.encode({ ok = true, status = status, finished = finished })
