-- wrk script for bench/checkout, phase 2: POST /v1/checkouts with a unique
-- Idempotency-Key, a pre-made token (each used once while they last), and a
-- different shopper (email, IP) per request, like a storefront's traffic.
-- Counts answers by status; the runner reports successful checkouts/s.
local pk = os.getenv("PORTCULLIS_PK")
local tokfile = os.getenv("BENCH_TOKENS_FILE")
local run = os.getenv("BENCH_RUN") or "r"
local threads = {}
local tokens = {}
local counter, nthreads = 0, 1
tid = 0 -- set per thread by setup() (a global: thread:set writes globals)

setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

init = function(args)
  nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local off = tonumber(os.getenv("BENCH_TOKEN_OFFSET") or "0")
  local i = 0
  for line in io.lines(tokfile) do
    if i >= off and (i - off) % nthreads == tid then table.insert(tokens, line) end
    i = i + 1
  end
  ok, declined, review, other = 0, 0, 0, 0
  math.randomseed(os.time() + tid * 7919)
end

request = function()
  counter = counter + 1
  local tok = tokens[((counter - 1) % #tokens) + 1]
  -- a new shopper each time: a publishable key's checkout is scored by the
  -- address it comes from, which the (trusted) proxy says in X-Forwarded-For
  local ip = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  local body = string.format(
    '{"cart":{"currency":"EUR","items":[{"sku":"SKU-RED-MUG","quantity":1}]},' ..
    '"payment":{"token":"%s"},' ..
    '"customer":{"email":"b%d-%d-%s@example.org"},' ..
    '"shipping":{"name":"Ada Lovelace","line1":"1 Analytical Way","city":"London",' ..
    '"postal_code":"N1 1AA","country":"GB"}}',
    tok, tid, counter, run)
  return wrk.format("POST", "/v1/checkouts", {
    ["Authorization"] = "Bearer " .. pk,
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = ip,
    ["Idempotency-Key"] = string.format("bench-%s-%d-%d-%d", run, tid, counter, math.random(1, 1e9)),
  }, body)
end

response = function(status, headers, body)
  if status == 200 then
    if body:find('"status":"requires_review"', 1, true) then review = review + 1 else ok = ok + 1 end
  elseif status == 402 then
    declined = declined + 1
  else
    other = other + 1
  end
end

done = function(summary, latency, requests)
  local o, d, r, x = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); d = d + t:get("declined"); r = r + t:get("review"); x = x + t:get("other")
  end
  io.write(string.format("BENCH ok=%d review=%d declined=%d other=%d seconds=%.2f p50_ms=%.2f p99_ms=%.2f\n",
    o, r, d, x, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
