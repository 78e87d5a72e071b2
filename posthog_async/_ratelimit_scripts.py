"""The Lua scripts ``RedisRateLimiter`` runs in Redis: each one atomic, on the server's clock.

Kept apart from the limiter so the limiter reads as Python and the scripts as the rules they
enforce (the same rules as ``Throttle._wait_needed`` in ``_ratelimit.py``).
"""

from __future__ import annotations

__all__ = ["ACQUIRE_LUA", "PENALIZE_LUA"]

# Record a send now in every bucket of a call, or say how long until each has room: a sliding
# log per bucket, checked over every window at once, the same rules as Throttle._wait_needed in
# _ratelimit.py, on the Redis server's clock. A send is recorded only for *now*, by a caller
# about to send: nothing is reserved ahead, so no early reservation can burst out later.
ACQUIRE_LUA = """
-- KEYS: per bucket, its log (LIST of send times, ms, server clock, ascending), its
--   blocked-until (ms, written by the penalize script) and its config (the windows every
--   sharer of the bucket must agree on)
-- ARGV[1] 'reserve' records the send if every bucket has room now; 'peek' records nothing
-- ARGV[2] requests assumed to go first (an estimate for a caller at the back of a queue)
-- ARGV[3] slack (ms): a caller late for its turn by up to this much is recorded at its turn,
--   so lateness does not add up send after send (the margin covers the difference)
-- ARGV[4..] per bucket: config text, spacing (ms), margin (ms), number of windows, then
--   limit, period (ms) pairs
-- Reply: {1, 0} recorded now; {0, wait}: every bucket has room in `wait` ms (nothing
--   recorded); {-1, stored config, bucket number} when another sharer uses other windows.
local t = redis.call('TIME')                     -- one clock for every caller: the server's
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local ahead, slack = tonumber(ARGV[2]), tonumber(ARGV[3])
local at, i, k, b, plans = now - slack, 4, 1, 0, {}
while i <= #ARGV do
  b = b + 1
  local config, spacing, margin = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local windows = tonumber(ARGV[i + 3])
  local stored = redis.call('GET', KEYS[k + 2])
  if stored and stored ~= config then return {-1, stored, b} end
  local mine = math.max(now - slack, tonumber(redis.call('GET', KEYS[k + 1]) or '0'))
  local n = redis.call('LLEN', KEYS[k])
  if n > 0 then                                  -- no burst: space after the last send
    mine = math.max(mine, tonumber(redis.call('LINDEX', KEYS[k], -1)) + spacing)
  end
  local keep, longest = 1, 0
  for w = 0, windows - 1 do
    local limit, period = tonumber(ARGV[i + 4 + 2 * w]), tonumber(ARGV[i + 5 + 2 * w])
    keep, longest = math.max(keep, limit), math.max(longest, period)
    if n >= limit then                           -- this entry must leave the window first
      mine = math.max(mine, tonumber(redis.call('LINDEX', KEYS[k], -limit)) + period + margin)
    end
  end
  at = math.max(at, mine + ahead * spacing)
  plans[b] = {KEYS[k], KEYS[k + 2], config, keep, math.ceil(longest + margin) + 1000}
  i, k = i + 4 + 2 * windows, k + 3
end
local wait = at - now
if ARGV[1] ~= 'reserve' or wait > 0 then return {0, tostring(math.max(0, wait))} end
for _, p in ipairs(plans) do                     -- every key goes away when idle
  redis.call('RPUSH', p[1], string.format('%.3f', at))
  redis.call('LTRIM', p[1], -p[4], -1)           -- only the longest window's worth
  redis.call('PEXPIRE', p[1], p[5])
  redis.call('SET', p[2], p[3], 'PX', p[5])
end
return {1, '0'}
"""

# After a 429: blocked-until = max(current, now + hold), seen by every process of the key.
PENALIZE_LUA = """
-- KEYS[1] blocked-until (ms, server clock)   ARGV[1] hold (ms)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local hold = tonumber(ARGV[1])
if now + hold > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.3f', now + hold), 'PX', math.ceil(hold) + 1000)
end
return 1
"""
