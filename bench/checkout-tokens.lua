-- wrk script for bench/checkout, phase 1: makes pre-made tokens. Every
-- request tokenizes a different Luhn-valid card (so fingerprints differ and
-- velocity rules see distinct cards), and each thread appends the token ids
-- it gets to its own file (BENCH_TOKENS_DIR/tokens.<thread>).
local pk = os.getenv("PORTCULLIS_PK")
local dir = os.getenv("BENCH_TOKENS_DIR")
local counter = 0
tid = 0 -- set per thread by setup() (a global: thread:set writes globals)
local out = nil
local threads = {}

local function luhn(body)
  local sum, alt = 0, true
  for i = #body, 1, -1 do
    local d = tonumber(body:sub(i, i))
    if alt then d = d * 2; if d > 9 then d = d - 9 end end
    sum = sum + d
    alt = not alt
  end
  return body .. tostring((10 - sum % 10) % 10)
end

setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

init = function(args)
  out = io.open(dir .. "/tokens." .. tid, "w")
end

request = function()
  counter = counter + 1
  local pan = luhn(string.format("49%02d%011d", tid, counter))
  return wrk.format("POST", "/v1/tokens", {
    ["Authorization"] = "Bearer " .. pk,
    ["Content-Type"] = "application/json",
  }, '{"card":{"number":"' .. pan .. '","exp_month":12,"exp_year":2030,"cvc":"123"}}')
end

response = function(status, headers, body)
  if status == 201 then
    local id = body:match('"id":"(tok_[^"]+)"')
    if id then out:write(id, "\n"); out:flush() end
  end
end
