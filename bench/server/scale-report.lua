-- wrk script of the scale benchmarks: durable reports, each from the next device in the
-- scrambled order with an id of its own (per thread). Arguments: DEVICES-FILE PACK-SHA256.
-- A report refused is a finding: its status and why go to stderr, beside wrk's count.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" ..
  package.path
local dev = require("scale-devices")
setup = dev.setup
local next_device, sha, n = nil, nil, 0
init = function(args)
  next_device = dev.load(args[1])
  sha = args[2]
end
request = function()
  local id, cred = next_device()
  n = n + 1
  return dev.post("/v1/report", cred, '{"device_id":"' .. id .. '","report_id":"bench-' .. tid ..
    '-' .. n .. '","event":"healthy","target":"packs/bench-1.rfp","sha256":"' .. sha ..
    '","time":1}')
end
response = function(status, headers, body)
  if status >= 300 then io.stderr:write("report answered " .. status .. ": " .. body .. "\n") end
end
