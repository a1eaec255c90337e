-- HTTP pipelining as in the TechEmpower plaintext test: every write carries `depth` requests
-- back to back (the first script argument, default 16). Reports through json_report.lua.
--
--   wrk -t2 -c256 -d10s -s loadgen/wrk/pipeline.lua http://127.0.0.1:8082/ -- 16

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "json_report.lua")

local batch

function init(args)
  local depth = tonumber(args[1] or 16)
  assert(depth and depth >= 1, "pipeline.lua: the argument is the pipeline depth")
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format()
  end
  batch = table.concat(requests)
end

function request()
  return batch
end
