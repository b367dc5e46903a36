-- wrk script: each request orders one unit for customer 1, of product 1 or, with
-- PRODUCTS=n, of a product drawn at random from 1..n. At the end it prints how many
-- responses had each status (201 taken, 409 refused once the stock ran out).
local products = tonumber(os.getenv("PRODUCTS") or "1")
local token = os.getenv("TOKEN")
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
local threads = {}
statuses = {}

setup = function(thread)
  thread:set("seed", math.random(1, 1000000))
  table.insert(threads, thread)
end

init = function(args)
  math.randomseed(seed)
end

request = function()
  local id = math.random(1, products)
  local body = string.format('{"cliente_id": 1, "items": [{"producto_id": %d, "cantidad": 1}]}', id)
  return wrk.format("POST", nil, headers, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    table.insert(parts, status .. ": " .. count)
  end
  table.sort(parts)
  io.write("   responses by status: " .. table.concat(parts, ", ") .. "\n")
end
