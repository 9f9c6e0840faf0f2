-- soak_check.lua -- wrk script for test_soak.py: asks for whole files and
-- single ranges of the self-describing files, and checks every body.
--
-- A file's byte at offset i is byte (i % 8) of string.format("%07x\n", i - i % 8),
-- so a body that is not exactly [first, first + length) of it -- a misframed
-- or desynchronised keep-alive response -- cannot pass.  A body cut short by
-- a truncation never reaches response(): wrk counts it as a socket error.
--
--   wrk -t2 -c512 -d15s -s soak_check.lua http://127.0.0.1:PORT/ -- NAME:SIZE ...

local pattern
local reqs = {}
local idx = 0
checked, errors, full, partial, unsatisfiable, stale, zeroed = 0, 0, 0, 0, 0, 0, 0
local lenient = false -- "zeros-ok" argument: see below
first_error = nil

local function make_pattern(n)
   local lines = {}
   for i = 0, math.floor(n / 8) do
      lines[#lines + 1] = string.format("%07x\n", i * 8)
   end
   return table.concat(lines):sub(1, n)
end

function init(args)
   local max = 0
   for _, a in ipairs(args) do
      if a == "zeros-ok" then lenient = true; goto continue end
      local name, size = a:match("^([^:]+):(%d+)$")
      size = tonumber(size)
      if size > max then max = size end
      reqs[#reqs + 1] = wrk.format("GET", "/" .. name)
      reqs[#reqs + 1] = wrk.format("GET", "/" .. name, {Range = "bytes=" .. math.floor(size / 3) .. "-" .. math.floor(size / 2)})
      reqs[#reqs + 1] = wrk.format("GET", "/" .. name, {Range = "bytes=-" .. (math.floor(size / 4) + 1)})
      ::continue::
   end
   pattern = make_pattern(max)
   idx = #reqs -- the first request() wraps to 1
end

function request()
   idx = idx % #reqs + 1
   return reqs[idx]
end

local function fail(why)
   errors = errors + 1
   if first_error == nil then first_error = why end
end

function response(status, headers, body)
   checked = checked + 1
   if status == 416 then -- the file shrank below the range: a documented answer
      unsatisfiable = unsatisfiable + 1
      return
   end
   local length = tonumber(headers["Content-Length"])
   local first = 0
   if status == 206 then
      local cr = headers["Content-Range"] or ""
      local a, b = cr:match("^bytes (%d+)%-(%d+)/%d+$")
      if a == nil then return fail("206 without Content-Range: " .. cr) end
      first = tonumber(a)
      if tonumber(b) - first + 1 ~= length then return fail("Content-Range vs Content-Length") end
      partial = partial + 1
   elseif status == 200 then
      full = full + 1
   else
      return fail("status " .. status)
   end
   if length ~= nil and #body > length then
      -- wrk 4.1 does not empty its body buffer when it reconnects after a
      -- response cut short (a truncation): the cut body's bytes come first.
      -- wrk framed this response by its Content-Length: it is the tail.
      stale = stale + 1
      body = body:sub(#body - length + 1)
   end
   if length == nil or #body ~= length then
      return fail("body " .. #body .. " bytes, Content-Length " .. tostring(length))
   end
   local want = pattern:sub(first + 1, first + length)
   if body ~= want then
      -- zeros-ok: a read racing a truncation in place can return the zeros
      -- the truncation wrote over the cut page's tail (the kernel does not
      -- order them).  The pattern holds no zero byte, so a misframed body
      -- still shows: any other difference fails.
      if not lenient then
         return fail("wrong bytes in [" .. first .. ", " .. (first + length) .. ")")
      end
      for i = 1, length do
         local b = body:byte(i)
         if b ~= 0 and b ~= want:byte(i) then
            return fail("wrong non-zero byte at " .. (first + i - 1))
         end
      end
      zeroed = zeroed + 1
   end
end

local threads = {}

function setup(thread)
   threads[#threads + 1] = thread
end

function done(summary, latency, requests)
   local t = {checked = 0, errors = 0, full = 0, partial = 0, unsatisfiable = 0, stale = 0, zeroed = 0}
   local why = ""
   for _, th in ipairs(threads) do
      for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
      why = th:get("first_error") or why
   end
   local e = summary.errors
   io.write(string.format("SOAK checked=%d errors=%d full=%d partial=%d unsatisfiable=%d stale=%d zeroed=%d " ..
                          "requests=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
                          t.checked, t.errors, t.full, t.partial, t.unsatisfiable, t.stale, t.zeroed, summary.requests,
                          summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
   if why ~= "" then io.write("SOAK first_error=" .. why .. "\n") end
end
