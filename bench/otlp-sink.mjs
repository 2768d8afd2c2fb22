// A local OTLP/HTTP receiver for the benchmark's tracing variant: it accepts every export
// (POST /v1/traces, protobuf), answers an empty ExportTraceServiceResponse, and keeps only
// counts, so that what the benchmark measures is orgql's cost of tracing, not a collector's.
//
//   node bench/otlp-sink.mjs [port]     (default 4318; prints its counts on SIGTERM/SIGINT)
//
// Point orgql at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.

import { createServer } from "node:http";

const port = Number(process.argv[2] || 4318);
let exports = 0;
let bytes = 0;

const server = createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/v1/traces") {
    res.writeHead(404).end();
    return;
  }
  req.on("data", (chunk) => (bytes += chunk.length));
  req.on("end", () => {
    exports += 1;
    res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
  });
});

const report = () => {
  console.log(JSON.stringify({ exports, bytes }));
  process.exit(0);
};
process.on("SIGTERM", report);
process.on("SIGINT", report);
server.listen(port, "127.0.0.1", () => console.error(`[otlp-sink] listening on 127.0.0.1:${port}`));
