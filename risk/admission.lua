-- Admission of one merchant request, atomically: signed after this Redis's start second, replay-nonce
-- check, then a GCRA rate limit.
--
-- KEYS[1] limiter state (hash: at_us, backlog_ureq)   KEYS[2] the request's nonce
-- KEYS[3] boot: unix second from which this Redis holds every nonce it was shown
-- ARGV[1] nonce window (s)   ARGV[2] rps   ARGV[3] burst   ARGV[4] signature timestamp (unix s)
-- ARGV[5] '1' on Redis Cluster (optional): the boot second also moves when this node took the
-- merchant's slot over from another (failover), see cluster_boot_s below
-- Returns {replayed (0/1), allowed (0/1), backlog_ureq after the decision, signed: 0 after
-- this Redis's start second, 1 before it (stale), 2 in it (cannot tell)}.
--
-- GCRA keeps the theoretical arrival time TAT. We store it as TAT - at = backlog_ureq / rps
-- (microseconds), where backlog_ureq = (TAT - at) * rps is in micro-requests: one request
-- adds 1e6, the backlog drains by rps per microsecond, and a request is admitted while the
-- backlog stays within burst * 1e6. Every quantity is an integer well below 2^53, so Lua's
-- doubles hold it exactly. Time is the server's (TIME), so all gateway processes agree.

local ONE_UREQ = 1000000
-- Numbers go to Redis as plain integers: newer servers may render a double as '1e+08'.
local function int(x) return string.format('%d', x) end
local rps = tonumber(ARGV[2])
local capacity_ureq = tonumber(ARGV[3]) * ONE_UREQ

local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])

local backlog_ureq = 0
local state = redis.call('HMGET', KEYS[1], 'at_us', 'backlog_ureq')
if state[1] then
  -- A clock that stepped back (failover) drains nothing rather than adding backlog.
  local elapsed_us = math.max(0, now_us - tonumber(state[1]))
  backlog_ureq = tonumber(state[2])
  -- Compare before multiplying so elapsed_us * rps stays near capacity_ureq at most.
  if elapsed_us >= backlog_ureq / rps then
    backlog_ureq = 0
  else
    backlog_ureq = math.max(0, backlog_ureq - elapsed_us * rps)
  end
  -- A burst lowered since the last request caps what is still owed.
  backlog_ureq = math.min(backlog_ureq, capacity_ureq)
end

-- Nonces live in memory only: one signed before this Redis started may have been used with
-- the one before it, so it is refused (stale_request; the client signs again). The boot key
-- sits in the merchant's slot (Redis Cluster); when missing it is set to the server's start.
-- Whole seconds, like the signature: a request signed in the boot second may have been signed
-- before the start as well as after it (a Redis killed and started again within one second),
-- so it is not admitted either; the gateway answers 503, and signed again a second later it
-- passes. Neither takes a token nor burns the nonce.
local boot_s
if ARGV[5] ~= '1' then
  boot_s = tonumber(redis.call('GET', KEYS[3]))
  if not boot_s then
    local info = redis.call('INFO', 'server')
    boot_s = tonumber(t[1]) - tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
    redis.call('SET', KEYS[3], int(boot_s))
  end
else
  -- Redis Cluster: a replica that takes over may lack the last nonces its master wrote (the
  -- replication is asynchronous). The boot key records the replication history it was
  -- written in (master_replid, which a promoted replica changes); read in another history,
  -- or missing on a node that has taken over since it started (second_repl_offset set), it
  -- moves to now: every request signed before this node took over is refused, as after a
  -- restart. Costs one INFO replication per call.
  local repl = redis.call('INFO', 'replication')
  local history = string.match(repl, 'master_replid:(%x+)')
  local stored = redis.call('GET', KEYS[3])
  local b, written_in = string.match(stored or '', '^(%d+):(%x+)$')
  if written_in == history then
    boot_s = tonumber(b)
  else
    if stored or string.match(repl, 'second_repl_offset:(%-?%d+)') ~= '-1' then
      boot_s = tonumber(t[1])
    else  -- master since it started: it holds every nonce written since then
      local info = redis.call('INFO', 'server')
      boot_s = tonumber(t[1]) - tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
    end
    redis.call('SET', KEYS[3], int(boot_s) .. ':' .. history)
  end
end
local signed_s = tonumber(ARGV[4])
if signed_s < boot_s then
  return {0, 0, backlog_ureq, 1}
end
if signed_s == boot_s then
  return {0, 0, backlog_ureq, 2}
end

-- A replay is refused before it can take a token; the nonce lives for the signature window.
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return {1, 0, backlog_ureq, 0}
end

if backlog_ureq + ONE_UREQ > capacity_ureq then
  return {0, 0, backlog_ureq, 0}
end

backlog_ureq = backlog_ureq + ONE_UREQ
redis.call('HSET', KEYS[1], 'at_us', int(now_us), 'backlog_ureq', int(backlog_ureq))
-- Once the backlog has drained the bucket is full, which is what a missing key means.
redis.call('PEXPIRE', KEYS[1], int(math.ceil(backlog_ureq / rps / 1000) + 1))
return {0, 1, backlog_ureq, 0}
