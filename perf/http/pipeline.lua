-- SPDX-License-Identifier: MIT
-- wrk -s pipeline.lua: each write carries 16 GETs of the URL, which the
-- server must answer in order (HTTP/1.1 pipelining); wrk counts each
-- response as a request.  docs/benchmarks.md's "pipelined x16"
-- shape.
local depth = 16
local req

init = function(args)
	local r = {}
	for i = 1, depth do
		r[i] = wrk.format(nil)
	end
	req = table.concat(r)
end

request = function()
	return req
end
