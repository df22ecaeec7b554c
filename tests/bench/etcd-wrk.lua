-- wrk script for etcd's v3 JSON gateway (grpc-gateway), keep-alive connections.
-- (Adapted from the team's shared bench script; used by tests/bench/compare-etcd.sh.)
--
--   wrk -t2 -c16 -d15s --latency -s tests/bench/etcd-wrk.lua http://127.0.0.1:23791 -- MODE [KEYS] [VALSIZE]
--
-- MODE: put   POST /v3/kv/put   {"key":b64,"value":b64}
--       get   POST /v3/kv/range {"key":b64}                        (linearizable)
--       sget  POST /v3/kv/range {"key":b64,"serializable":true}
-- KEYS: number of distinct keys, picked uniformly at random per request (default 10000);
--       key i is the 8-byte string string.format("key%05d", i); compare-etcd.sh
--       runs the put workloads first, so the get workloads find their keys.
-- VALSIZE: value size in bytes for put (default 64).
--
-- Non-2xx responses and bodies containing "error" are counted and printed at the end,
-- so a misconfigured run does not pass silently.

local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function b64(data)
  return ((data:gsub('.', function(x)
    local r, byte = '', x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

-- globals (not local) so that done() can read them from each thread with t:get()
mode, nkeys, valsize = "put", 10000, 64
errors = 0
id = 0
local reqs = {}
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "put"
  nkeys = tonumber(args[2] or "10000")
  valsize = tonumber(args[3] or "64")
  local path, extra = "/v3/kv/range", ""
  local val = b64(string.rep("v", valsize))
  if mode == "put" then
    path = "/v3/kv/put"
  elseif mode == "sget" then
    extra = ',"serializable":true'
  elseif mode ~= "get" then
    error("unknown mode " .. mode)
  end
  local headers = { ["Content-Type"] = "application/json" }
  -- pre-build every request once; request() then only picks one
  for i = 0, nkeys - 1 do
    local k = b64(string.format("key%05d", i))
    local body
    if mode == "put" then
      body = '{"key":"' .. k .. '","value":"' .. val .. '"}'
    else
      body = '{"key":"' .. k .. '"' .. extra .. '}'
    end
    reqs[i + 1] = wrk.format("POST", path, headers, body)
  end
  math.randomseed(os.time() * 100 + id)
end

function request()
  return reqs[math.random(1, nkeys)]
end

function response(status, headers, body)
  if status ~= 200 or (body and body:find('"error"')) then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("bad response " .. status .. ": " .. tostring(body) .. "\n") end
  end
end

function done(summary, latency, requests)
  local errs = 0
  for _, t in ipairs(threads) do errs = errs + (tonumber(t:get("errors")) or 0) end
  local mode = threads[1] and threads[1]:get("mode") or "?"
  local s = summary
  io.write(string.format("WRK_RESULT mode=%s requests=%d duration_s=%.3f rps=%.1f mean_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f app_errors=%d sock_errors=%d non2xx=%d\n",
    mode, s.requests, s.duration / 1e6, s.requests / (s.duration / 1e6),
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errs,
    s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout, s.errors.status))
  -- The latency quantiles at every 0.1 percent (us), so that runs of wrk
  -- side by side (one per member) can be merged into one distribution.
  local q = {}
  for i = 1, 1000 do q[i] = string.format("%d", latency:percentile(i / 10)) end
  io.write("WRK_QUANTILES " .. table.concat(q, " ") .. "\n")
end
