-- Shared by the wrk scripts of the scale benchmarks (scale-checkin.lua, scale-report.lua): the
-- devices file rf-bench-enroll wrote ("ID CRED" lines, all of one width), kept as ONE string
-- and sliced per request. Tables of a million strings would make every garbage collection
-- walk two million live objects (wrk's LuaJIT collector is not generational): the load
-- generator then cost more CPU per request than the servers it measures.
local M = {}

-- wrk calls setup() once per thread in the main state; tid is a global each thread gets, so
-- each thread starts its walk somewhere else (seeded alike, they would walk in lockstep).
tid = 0
function M.setup(thread) tid = tid + 1; thread:set("tid", tid) end

local function gcd(a, b) while b ~= 0 do a, b = b, a % b end return a end

-- Reads PATH; returns a walker (each call gives the next device's id and credential, visiting
-- every device once per round in a scrambled order: a stride coprime with the count), the
-- number of devices, and the width of an id (the same for every device: the lines are of one
-- width and the space is at the same place in the first and the last).
function M.load(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local width = data:find("\n", 1, true)
  assert(width, path .. ": no device")
  local sp = data:find(" ", 1, true)
  assert(sp and sp < width and #data % width == 0,
         path .. ": lines of one width 'ID CRED' expected")
  local n = #data / width
  local last = #data - width
  assert(data:sub(last + sp, last + sp) == " ", path .. ": lines of one width expected")
  math.randomseed(tid)
  local i = math.random(n) - 1
  local step = 7919
  while gcd(n, step) ~= 1 do step = step + 2 end
  return function()
    i = (i + step) % n
    local off = i * width
    return data:sub(off + 1, off + sp - 1), data:sub(off + sp + 1, off + width - 1)
  end, n, sp - 1
end

-- A request as wrk.format would build it, without its per-request header table.
function M.post(path, cred, body)
  return "POST " .. path .. " HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port ..
    "\r\nAuthorization: Bearer " .. cred ..
    "\r\nContent-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
end

return M
