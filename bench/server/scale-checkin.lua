-- wrk script of the scale benchmarks: real check-ins, each device's own id, credential and
-- body, devices from the file rf-bench-enroll wrote. Arguments: DEVICES-FILE PACK-SHA256.
-- One request at a time on each connection (no pipelining: a device sends its next check-in
-- after the answer to the last). Any answer but 2xx is counted by wrk ("Non-2xx or 3xx
-- responses"), which the benchmarks treat as a failure; no response() is defined, so wrk
-- never builds a Lua table of each answer's headers and body.
--
-- The cost of the generator is kept low (it shares the 2 cores with what it measures): a
-- request is ONE concatenation of five pieces, three of them constant and made once (the
-- request line, Host and the start of Authorization; the rest of the headers with the
-- Content-Length, which is the same for every device since ids are of one width, and the
-- start of the body; the rest of the body), the other two the device's credential and id
-- sliced from the file's one string. Built with wrk.format or the body first, it made five
-- strings a request: at a million devices none repeats, so each is allocated and collected.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" ..
  package.path
local dev = require("scale-devices")
setup = dev.setup
local next_device, p1, p2, p3
init = function(args)
  local n, idw
  next_device, n, idw = dev.load(args[1])
  p3 = '","agent_version":"0.1.0","manifest_hash":"' .. string.rep("a", 64) ..
    '","state":{"current":{"target":"packs/bench-1.rfp","sha256":"' .. args[2] .. '"},' ..
    '"last_good":{"target":"packs/bench-1.rfp","sha256":"' .. args[2] .. '"},"trial":null,' ..
    '"quarantine":[],"safe_mode":false},"health":{"crashes":0,"rollbacks":0,"events":1000,' ..
    '"alerts":3}}'
  local body0 = '{"device_id":"'
  p1 = "POST /v1/checkin HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port ..
    "\r\nAuthorization: Bearer "
  p2 = "\r\nContent-Type: application/json\r\nContent-Length: " .. (#body0 + idw + #p3) ..
    "\r\n\r\n" .. body0
end
request = function()
  local id, cred = next_device()
  return p1 .. cred .. p2 .. id .. p3
end
