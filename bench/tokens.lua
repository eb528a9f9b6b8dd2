-- wrk script for bench/tokens: POST /v1/tokens with a publishable key,
-- cycling through published test cards (with CVCs), keep-alive.
-- Counts answers by status so the runner can refuse a run with errors.
local pk = os.getenv("PORTCULLIS_PK")
local cards = {
  '{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}',
  '{"card":{"number":"5555555555554444","exp_month":11,"exp_year":2031,"cvc":"456"}}',
  '{"card":{"number":"378282246310005","exp_month":10,"exp_year":2032,"cvc":"7890"}}',
  '{"card":{"number":"6011111111111117","exp_month":9,"exp_year":2033,"cvc":"321"}}',
}
local n = 0

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/tokens", {
    ["Authorization"] = "Bearer " .. pk,
    ["Content-Type"] = "application/json",
  }, cards[(n % #cards) + 1])
end

local threads = {}
setup = function(thread)
  thread:set("created", 0)
  thread:set("other", 0)
  table.insert(threads, thread)
end

response = function(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
  end
end

done = function(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  io.write(string.format("BENCH created=%d other=%d p50_ms=%.2f p99_ms=%.2f\n", c, o,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
