-- wrk script: one customer's recommendations (MODE=plain or filtered), or a batch of
-- 100 customers (MODE=batch), customers drawn from the ids in IDS_FILE.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["Content-Type"] = "application/json"
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do
  if line ~= "" then ids[#ids + 1] = line end
end
local mode = os.getenv("MODE") or "plain"
local counter = 0

request = function()
  counter = counter + 1
  if mode == "batch" then
    local chosen = {}
    for i = 1, 100 do chosen[i] = ids[((counter * 100 + i) % #ids) + 1] end
    local body = '{"cliente_ids": [' .. table.concat(chosen, ",") .. '], "k": 10}'
    return wrk.format("POST", "/api/recomendaciones/lote", nil, body)
  end
  local id = ids[(counter * 7919 % #ids) + 1]
  local query = "k=10"
  if mode == "filtered" then query = "k=10&precio_max=5&excluir_comprados=true" end
  return wrk.format("GET", "/api/clientes/" .. id .. "/recomendaciones?" .. query)
end
