-- wrk script for the bare baseline: GET /hello; done() prints the same "BENCH key=value" lines.
-- No response() hook here, so wrk does no per-response Lua work (non-2xx comes from wrk's own
-- status-error counter, which counts responses with status >= 400).

wrk.method = "GET"
wrk.path = "/hello"

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("BENCH requests=%d\n", summary.requests))
   io.write(string.format("BENCH duration_us=%d\n", summary.duration))
   io.write(string.format("BENCH non2xx=%d\n", e.status))
   io.write(string.format("BENCH errors_connect=%d\nBENCH errors_read=%d\nBENCH errors_write=%d\n",
                          e.connect, e.read, e.write))
   io.write(string.format("BENCH errors_status=%d\nBENCH errors_timeout=%d\n", e.status, e.timeout))
   for _, p in ipairs({50, 90, 99}) do
      io.write(string.format("BENCH p%d_us=%d\n", p, latency:percentile(p)))
   end
   io.write(string.format("BENCH max_us=%d\nBENCH mean_us=%.1f\n", latency.max, latency.mean))
end
