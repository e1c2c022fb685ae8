-- wrk script for the CDN benchmark's miss rows: every request asks for `path` with a query
-- string no other request of the run uses (`?u=<nonce>-<thread>-<n>`), so a cache that keys on
-- the query string misses on each one. Args: `-- <path> <nonce>`.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  path = args[1]
  nonce = args[2]
  n = 0
end

function request()
  n = n + 1
  return wrk.format("GET", path .. "?u=" .. nonce .. "-" .. tid .. "-" .. n)
end
