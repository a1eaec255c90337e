-- A wrk reporter: done() writes the run's summary as JSON, latencies in microseconds, to the
-- file named by the WRK_JSON environment variable (stdout when it is unset). The keys match
-- those of `echolab-load --json`, so scripts can read either tool's result.
--
--   WRK_JSON=run.json wrk -t2 -c100 -d10s -s loadgen/wrk/json_report.lua http://127.0.0.1:8082/
--
-- post_echo.lua and pipeline.lua load this file, so their runs report the same way.

local percentiles = {
  { key = "p50", value = 50 },
  { key = "p90", value = 90 },
  { key = "p99", value = 99 },
  { key = "p99_9", value = 99.9 },
  { key = "p99_99", value = 99.99 },
}

local function number(value)
  if value ~= value or value == math.huge or value == -math.huge then
    return "null"
  end
  return string.format("%.1f", value)
end

local function object(pairs_in_order, indent)
  local lines = {}
  for i, pair in ipairs(pairs_in_order) do
    lines[i] = string.format('%s  "%s": %s', indent, pair[1], pair[2])
  end
  return "{\n" .. table.concat(lines, ",\n") .. "\n" .. indent .. "}"
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local latency_fields = { { "min", number(latency.min) } }
  table.insert(latency_fields, { "mean", number(latency.mean) })
  for _, p in ipairs(percentiles) do
    -- wrk 4.1 returns 0 for a percentile it cannot find: its coordinated-omission correction
    -- (stats_correct) adds samples below the recorded minimum, which its own percentile walk
    -- then skips. Pipelining triggers it. Report no value rather than a false 0.
    local value = latency:percentile(p.value)
    table.insert(latency_fields, { p.key, (value > 0 or latency.max == 0) and number(value) or "null" })
  end
  table.insert(latency_fields, { "max", number(latency.max) })

  local errors = summary.errors
  local error_fields = {
    { "connect", tostring(errors.connect) },
    { "read", tostring(errors.read) },
    { "write", tostring(errors.write) },
    { "status", tostring(errors.status) },
    { "timeout", tostring(errors.timeout) },
    { "total", tostring(errors.connect + errors.read + errors.write + errors.status + errors.timeout) },
  }

  local report = object({
    { "tool", '"wrk"' },
    { "duration_s", string.format("%.6f", seconds) },
    { "requests", tostring(summary.requests) },
    { "requests_per_second", number(summary.requests / seconds) },
    { "bytes", tostring(summary.bytes) },
    { "latency_us", object(latency_fields, "  ") },
    { "errors", object(error_fields, "  ") },
  }, "")

  local path = os.getenv("WRK_JSON")
  if path and path ~= "" then
    local file = assert(io.open(path, "w"))
    file:write(report, "\n")
    file:close()
  else
    io.write(report, "\n")
  end
end
