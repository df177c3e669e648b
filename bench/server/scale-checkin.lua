-- wrk script of the scale benchmarks: real check-ins, each device's own id, credential and
-- body, devices from the file rf-bench-enroll wrote. Arguments: DEVICES-FILE PACK-SHA256.
-- Any answer but 200 stops the thread (wrk then reports fewer requests: a finding).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" ..
  package.path
local dev = require("scale-devices")
setup = dev.setup
local next_device, pre, post
init = function(args)
  next_device = dev.load(args[1])
  pre = '{"device_id":"'
  post = '","agent_version":"0.1.0","manifest_hash":"' .. string.rep("a", 64) ..
    '","state":{"current":{"target":"packs/bench-1.rfp","sha256":"' .. args[2] .. '"},' ..
    '"last_good":{"target":"packs/bench-1.rfp","sha256":"' .. args[2] .. '"},"trial":null,' ..
    '"quarantine":[],"safe_mode":false},"health":{"crashes":0,"rollbacks":0,"events":1000,' ..
    '"alerts":3}}'
end
request = function()
  local id, cred = next_device()
  return dev.post("/v1/checkin", cred, pre .. id .. post)
end
response = function(status, headers, body)
  if status ~= 200 then wrk.thread:stop() end
end
