-- A bank channel's TPS quota as a token bucket (SPEC 8): take up to ARGV[3] tokens at once.
-- KEYS[1] the bucket hash; ARGV[1] rate (tokens/s), ARGV[2] burst, ARGV[3] wanted.
-- Returns {granted, wait_ms}: wait_ms is how long until the next token if not all were granted.
-- Time comes from the Redis server, so every worker shares one clock.
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now_ms
if now_ms > ts then
  tokens = math.min(burst, tokens + (now_ms - ts) * rate / 1000)
end
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
local wait_ms = 0
if granted < wanted then
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
return {granted, wait_ms}
