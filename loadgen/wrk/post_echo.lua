-- POST requests whose body the echolab servers echo back; the body size in bytes is the
-- first script argument (default 64). Reports through json_report.lua.
--
--   wrk -t2 -c100 -d10s -s loadgen/wrk/post_echo.lua http://127.0.0.1:8082/ -- 1024

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "json_report.lua")

-- The same bytes echolab-load sends: a repeating alphabet ending in a newline.
local function payload(size)
  local alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
  local text = string.rep(alphabet, math.ceil(size / #alphabet)):sub(1, size - 1)
  return size > 0 and text .. "\n" or ""
end

function init(args)
  local size = tonumber(args[1] or 64)
  assert(size and size >= 0, "post_echo.lua: the argument is the body size in bytes")
  wrk.method = "POST"
  wrk.body = payload(size)
  wrk.headers["Content-Type"] = "application/octet-stream"
end
