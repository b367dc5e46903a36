-- wrk script: each request orders one unit for customer 1, of product 1 or, with
-- PRODUCTS=n, of a product drawn at random from 1..n.
local products = tonumber(os.getenv("PRODUCTS") or "1")
local token = os.getenv("TOKEN")
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
local statuses = {}

setup = function(thread)
  thread:set("seed", math.random(1, 1000000))
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
