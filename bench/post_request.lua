-- wrk script: POST /v1/requests with a bearer token and a slightly different body each time.
-- Environment: BENCH_TOKEN (access token), BENCH_RUN (external_ref prefix, unique per run),
-- BENCH_ACKED_FILE (optional: where done() writes the external_ref of every 201 response).
-- done() prints "BENCH key=value" lines for bench/intake.py to parse.

local token = os.getenv("BENCH_TOKEN") or ""
local run = os.getenv("BENCH_RUN") or "run"
local threads = {}
local next_id = 0

function setup(thread)
   next_id = next_id + 1
   thread:set("tid", next_id)
   table.insert(threads, thread)
end

function init(args)
   sent = 0
   by_status = {}
   acked = {}
   wrk.method = "POST"
   wrk.path = "/v1/requests"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
   sent = sent + 1
   local n = sent
   local body = string.format(
      '{"type":"access","subject":{"email":"Jane.Doe+%d.%d@Example.com","name":"Jane Doe %d",' ..
      '"phone":"+44 20 7946 0%03d"},"channel":"email","external_ref":"%s-%d-%d",' ..
      '"details":{"note":"Copy of all personal data held, including call recordings."}}',
      tid, n, n, n % 1000, run, tid, n)
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   by_status[status] = (by_status[status] or 0) + 1
   if status == 201 then
      local ref = string.match(body, '"external_ref":"([^"]*)"')
      acked[#acked + 1] = ref or "?"
   end
end

function done(summary, latency, requests)
   local sent_total, st = 0, {}
   local out = os.getenv("BENCH_ACKED_FILE")
   local f = out and io.open(out, "w")
   for _, thread in ipairs(threads) do
      sent_total = sent_total + (thread:get("sent") or 0)
      for code, count in pairs(thread:get("by_status") or {}) do
         st[code] = (st[code] or 0) + count
      end
      if f then
         for _, ref in ipairs(thread:get("acked") or {}) do
            f:write(ref, "\n")
         end
      end
   end
   if f then f:close() end
   local non2xx, n201 = 0, 0
   for code, count in pairs(st) do
      io.write(string.format("BENCH status_%d=%d\n", code, count))
      if code < 200 or code > 299 then non2xx = non2xx + count end
      if code == 201 then n201 = n201 + count end
   end
   local e = summary.errors
   io.write(string.format("BENCH requests=%d\n", summary.requests))
   io.write(string.format("BENCH duration_us=%d\n", summary.duration))
   io.write(string.format("BENCH sent=%d\n", sent_total))
   io.write(string.format("BENCH created=%d\n", n201))
   io.write(string.format("BENCH non2xx=%d\n", non2xx))
   io.write(string.format("BENCH errors_connect=%d\nBENCH errors_read=%d\nBENCH errors_write=%d\n",
                          e.connect, e.read, e.write))
   io.write(string.format("BENCH errors_status=%d\nBENCH errors_timeout=%d\n", e.status, e.timeout))
   for _, p in ipairs({50, 90, 99}) do
      io.write(string.format("BENCH p%d_us=%d\n", p, latency:percentile(p)))
   end
   io.write(string.format("BENCH max_us=%d\nBENCH mean_us=%.1f\n", latency.max, latency.mean))
end
