package redisbroker

import "github.com/redis/go-redis/v9"

// The Lua scripts run atomically in Redis: no other command runs between
// their reads and their writes, which is what makes numbering, keeping and
// publishing one step. redis.Script.Run sends EVALSHA and falls back to EVAL
// when the server does not have the script (after a restart, say).
//
// Numbers: Redis runs Lua 5.1, whose numbers are doubles; the IDs (the
// clock in milliseconds, about 1.8e12 today, which rooms scale by 1024) and
// the times in milliseconds stay far below 2^53, under which doubles hold
// integers exactly. IDs are stored and returned as decimal strings
// (string.format('%d'), since tostring would use an exponent).

// publishScript numbers, keeps and publishes a batch of publications of
// one room, in order, each keyed one at most once.
//
// KEYS[1] the room's history hash: last (the last ID given), base (the
// first ID of the current numbering) and dropped (the greatest ID dropped
// from the log; 0 if none).
// KEYS[2] the room's log: a stream of the kept publications, entry ID
// "<id>-0", field d holding the data.
// KEYS[3] the room's keys hash: each publication key taken → the ID it got
// ("0" if not kept); KEYS[4] the same keys in a sorted set, scored by when
// they were taken (ms of the server's clock).
// ARGV[1] the channel, ARGV[2] the history size (0: keep nothing), ARGV[3]
// the TTL of both history keys in milliseconds (0: none), ARGV[4] how long
// a key is remembered (ms), ARGV[5] how many keys at most, then for each
// publication three arguments: "1" if it is kept ("0" if not), its key (""
// for none), and its data.
//
// A room without a history hash (never published to, expired, or lost by
// Redis) begins a new numbering from the server's clock, so that IDs of an
// earlier numbering, which clients may still hold, are below its base. Each
// ID is then the greater of the last ID plus one and the clock: it follows
// the clock, so that even when a failover loses the last writes, the IDs
// given afterwards are (clocks permitting) above the lost ones instead of
// reusing them. A publication that is not kept is published with ID 0 and
// touches no history key.
//
// A publication whose key is in the keys hash (taken within the window, or
// among the room's last history size keys) is neither numbered, kept nor
// published: the script reports it instead. The keys older than the window
// beyond the last history size, and the oldest beyond the bound, are
// forgotten first; both keys expire with the history (after its TTL, or a
// window if longer, without a keyed publication).
//
// The payload published is a format byte (1), the ID as 8 bytes big-endian,
// then the data (see decodePayload). Since the script runs atomically,
// Redis delivers the room's kept publications in the order of their IDs.
//
// It returns the last ID given ("0" if none was kept), then, for each
// publication not published as its key was taken, its index in the batch
// (from 0) and the ID its key got.
var publishScript = redis.NewScript(`
local size, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local window, maxkeys = tonumber(ARGV[4]), tonumber(ARGV[5])
local function publish(id, data)
  local b = {}
  local n = id
  for i = 8, 1, -1 do
    b[i] = n % 256
    n = math.floor(n / 256)
  end
  redis.call('PUBLISH', ARGV[1], '\1' .. string.char(unpack(b)) .. data)
end
local clock
local function now()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
local purged = false
local function taken(key)
  if not purged then
    purged = true
    -- Past the window, but the last size keys stay: as long as a message
    -- is in the history, its resend is recognised.
    local n = redis.call('ZCARD', KEYS[4])
    local old = {}
    if n > size then
      old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', string.format('%d', now() - window), 'LIMIT', 0, n - size)
    end
    local over = n - #old - maxkeys + 1
    if over > 0 then
      old = redis.call('ZRANGE', KEYS[4], 0, #old + over - 1)
    end
    for i = 1, #old, 1000 do
      local part = {unpack(old, i, math.min(i + 999, #old))}
      redis.call('HDEL', KEYS[3], unpack(part))
      redis.call('ZREM', KEYS[4], unpack(part))
    end
  end
  return redis.call('HGET', KEYS[3], key)
end
local function take(key, id)
  redis.call('HSET', KEYS[3], key, id)
  redis.call('ZADD', KEYS[4], now(), key)
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[3], math.max(window, ttl))
    redis.call('PEXPIRE', KEYS[4], math.max(window, ttl))
  else
    redis.call('PERSIST', KEYS[3])
    redis.call('PERSIST', KEYS[4])
  end
end
local last, base, sid
local dups = {}
for a = 6, #ARGV, 3 do
  local key, data = ARGV[a + 1], ARGV[a + 2]
  local first = key ~= '' and taken(key)
  if first then
    dups[#dups + 1] = tostring((a - 6) / 3)
    dups[#dups + 1] = first
  elseif ARGV[a] ~= '1' then
    publish(0, data)
    if key ~= '' then
      take(key, '0')
    end
  else
    if not last then
      local m = redis.call('HMGET', KEYS[1], 'last', 'base')
      if m[1] then
        last, base = tonumber(m[1]), tonumber(m[2])
      else
        redis.call('DEL', KEYS[2])
        base, last = now(), now() - 1
        redis.call('HSET', KEYS[1], 'base', string.format('%d', base), 'dropped', '0')
      end
    end
    local id = math.max(last + 1, now())
    sid = string.format('%d', id)
    if size > 0 then
      local n = redis.call('XLEN', KEYS[2])
      if n >= size then
        local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', n - size + 1)
        redis.call('HSET', KEYS[1], 'dropped', string.match(old[#old][1], '^%d+'))
      elseif n == 0 and last >= base then
        -- Numbered before, yet the log is empty: it was evicted or expired
        -- apart from the hash. Everything up to last is lost.
        redis.call('HSET', KEYS[1], 'dropped', string.format('%d', last))
      end
      redis.call('XADD', KEYS[2], 'MAXLEN', size, sid .. '-0', 'd', data)
    else
      redis.call('HSET', KEYS[1], 'dropped', sid)
    end
    last = id
    publish(id, data)
    if key ~= '' then
      take(key, sid)
    end
  end
end
if not sid then
  return {'0', unpack(dups)}
end
redis.call('HSET', KEYS[1], 'last', sid)
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
return {sid, unpack(dups)}
`)

// historyScript reads a room's history in one step, so that the numbering
// and the log it returns agree.
//
// KEYS as publishScript. ARGV[1] after, ARGV[2] after+1, both decimal
// without leading zeros, which lets the script compare them with the
// stored IDs exactly as strings (by length, then bytes) instead of as
// doubles, since a client's after may be any 64-bit number.
//
// It returns {} when the room has no numbering; else last, base, dropped,
// the log's length, then the ID and data of each entry after after (or of
// every entry when after is foreign: above last, or below base).
var historyScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'last', 'base', 'dropped')
if not m[1] then
  return {}
end
local function less(a, b)
  if #a ~= #b then
    return #a < #b
  end
  return a < b
end
local from = ARGV[2] .. '-0'
if ARGV[1] ~= '0' and (less(m[1], ARGV[1]) or less(ARGV[2], m[2])) then
  from = '-'
end
local r = {m[1], m[2], m[3], redis.call('XLEN', KEYS[2])}
for _, e in ipairs(redis.call('XRANGE', KEYS[2], from, '+')) do
  r[#r + 1] = e[1]
  r[#r + 1] = e[2][2]
end
return r
`)

// setPresenceScript records or removes one node's presence in a room, and
// purges the records that have expired.
//
// KEYS[1] the room's presence sorted set: node → expiry in milliseconds of
// the server's clock (so that every node judges expiry by one clock).
// KEYS[2] the room's nicknames hash: node → JSON array of nicknames.
// ARGV[1] the node, ARGV[2] its nicknames as JSON ("" removes the node),
// ARGV[3] the TTL in milliseconds.
//
// Both keys expire when the last record does (PEXPIREAT), so the presence
// of a room whose nodes all stopped renewing vanishes from Redis.
var setPresenceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[2], node)
end
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #top == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  local at = string.format('%d', tonumber(top[2]))
  redis.call('PEXPIREAT', KEYS[1], at)
  redis.call('PEXPIREAT', KEYS[2], at)
end
return 1
`)

// presenceScript returns the records of a room that have not expired, as
// node, nicknames JSON, node, ... It writes nothing: expired records are
// skipped here and purged by setPresenceScript.
//
// KEYS as setPresenceScript.
var presenceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf')) do
  local v = redis.call('HGET', KEYS[2], node)
  if v then
    r[#r + 1] = node
    r[#r + 1] = v
  end
end
return r
`)
