// The cost of metrics and traces in instructions: each variant of one orgql build serves the
// same requests under Valgrind's callgrind, which counts every instruction the server runs
// (all its threads: the runtime's workers, SQLite's, the span exporter's). Unlike req/s on a
// shared 2-core machine, whose rounds spread by 10 to 40%, the count repeats to well under
// 1%, so a difference of a few percent shows.
//
//   node bench/cost.mjs        (after a bench/run.sh run has seeded its databases)
//
// For each variant and database it starts orgql under callgrind with instrumentation off, sends
// BENCH_WARMUP_REQUESTS requests (default 20), turns it on, sends BENCH_REQUESTS
// (default 200; a fifth of that for nested, whose requests are 100 times larger) one after
// another, dumps, and divides the instructions by the requests.
// Workloads: nested, viewer and members, the bodies bench/run.sh wrote (bench/.work).
// Options (environment): ORGQL_BIN, BENCH_PG, BENCH_DB, BENCH_WORKLOADS, BENCH_COST_DBS
// (default "sqlite,pg"), BENCH_RESULTS_DIR (write cost-<date>.md there), BENCH_COST_KEEP (keep
// each callgrind dump there, for callgrind_annotate).

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import http from "node:http";
import { SHAPE, PASSWORD } from "./seed/shape.mjs";
import { WORK, env, PG, ORGQL_BIN as BIN, JWT_SECRET, logger, sleep } from "./lib.mjs";

const DB = env.BENCH_DB || "orgql_bench";
const WARMUP = Number(env.BENCH_WARMUP_REQUESTS || 20);
const REQUESTS = Number(env.BENCH_REQUESTS || 200);
const requestsOf = (workload) => (workload === "nested" ? Math.max(1, Math.round(REQUESTS / 5)) : REQUESTS);
const WORKLOADS = (env.BENCH_WORKLOADS || "nested,viewer,members").split(",");
const DBS = (env.BENCH_COST_DBS || "sqlite,pg").split(",");
const PORT = 18190;
const OTLP_PORT = 4319;
const VARIANTS = [
  { label: "both off", flags: ["--disable-metrics"], env: {} },
  { label: "metrics on", flags: [], env: {} },
  // Exports every second, and each count waits out an export at both ends (SETTLE_MS), so
  // that it holds the export of its own requests' spans, not of the warm-up's.
  {
    label: "tracing on",
    flags: [],
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${OTLP_PORT}`, OTEL_BSP_SCHEDULE_DELAY: "1000" },
  },
];
const SETTLE_MS = 1600;
const DATABASES = {
  sqlite: { name: "SQLite", url: `sqlite://${join(WORK, "orgql-bench.sqlite")}?mode=rw` },
  pg: { name: "PostgreSQL", url: `${PG}/${DB}?sslmode=disable` },
};
const log = logger("cost");

// The request bodies bench/run.sh wrote.
function body(workload) {
  const file = join(WORK, `orgql-${workload}.json`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run bench/run.sh first (it seeds the databases and writes the bodies)`);
  return readFileSync(file);
}
let TOKEN = "";

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post(payload) {
  return new Promise((resolvePost, reject) => {
    const req = http.request({ host: "127.0.0.1", port: PORT, path: "/graphql", method: "POST", agent,
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, "content-length": payload.length } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200 || !text.startsWith('{"data":') || text.includes('"errors"')) reject(new Error(`status ${res.statusCode}: ${text.slice(0, 300)}`));
        else resolvePost(text.length);
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

// A receiver that accepts and drops every OTLP export (as bench/otlp-sink.mjs does).
const sink = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => res.writeHead(200, { "content-type": "application/x-protobuf" }).end());
});
await new Promise((r) => sink.listen(OTLP_PORT, "127.0.0.1", r));

// Signs in as the seeded viewer through orgql run natively (argon2 under Valgrind is slow).
async function signIn(db) {
  const proc = spawn(BIN, ["--database-url", DATABASES[db].url, "--listen", `127.0.0.1:${PORT}`], {
    env: { ...env, JWT_SECRET, RUST_LOG: "warn", ORGQL_SHUTDOWN_DRAIN_SECONDS: "0" }, stdio: "ignore" });
  try {
    for (let i = 0; i < 300; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${PORT}/graphql`, { method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: "mutation($i: LogInInput!) { logIn(input: $i) { token } }", variables: { i: { username: SHAPE.viewer, password: PASSWORD } } }) });
        const json = await r.json();
        if (json.data?.logIn?.token) return json.data.logIn.token;
        throw new Error(JSON.stringify(json));
      } catch (e) {
        if (i === 299) throw e;
        await sleep(100);
      }
    }
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => proc.on("exit", r));
  }
}

async function measure(variant, db, workload) {
  const out = join(WORK, "callgrind.out");
  rmSync(out, { force: true });
  const proc = spawn("valgrind", ["--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${out}`, BIN,
    "--database-url", DATABASES[db].url, "--listen", `127.0.0.1:${PORT}`, ...variant.flags], {
    env: { ...env, ...variant.env, JWT_SECRET, RUST_LOG: "warn", ORGQL_SHUTDOWN_DRAIN_SECONDS: "0" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (c) => (stderr += c));
  for (let i = 0; ; i++) {
    if (i > 600) throw new Error(`orgql did not start under valgrind:\n${stderr.slice(-2000)}`);
    const ok = await new Promise((r) => http.get({ host: "127.0.0.1", port: PORT, path: "/readyz" }, (res) => { res.resume(); r(res.statusCode === 200); }).on("error", () => r(false)));
    if (ok) break;
    await sleep(200);
  }
  const payload = body(workload);
  const traced = Boolean(variant.env.OTEL_EXPORTER_OTLP_ENDPOINT);
  for (let i = 0; i < WARMUP; i++) await post(payload);
  if (traced) await sleep(SETTLE_MS);
  spawnSync("callgrind_control", ["--instr=on", String(proc.pid)]);
  const requests = requestsOf(workload);
  for (let i = 0; i < requests; i++) await post(payload);
  if (traced) await sleep(SETTLE_MS);
  spawnSync("callgrind_control", ["--dump", String(proc.pid)]);
  spawnSync("callgrind_control", ["--instr=off", String(proc.pid)]);
  proc.kill("SIGTERM");
  await new Promise((r) => proc.on("exit", r));
  // The explicit dump is the first numbered file (the one at exit covers nothing counted).
  const dump = readFileSync(`${out}.1`, "utf8");
  const total = Number(/^totals: (\d+)/m.exec(dump)?.[1]);
  if (env.BENCH_COST_KEEP) {
    mkdirSync(env.BENCH_COST_KEEP, { recursive: true });
    const name = `callgrind-${variant.label.replace(/ /g, "-")}-${db}-${workload}.out`;
    writeFileSync(join(env.BENCH_COST_KEEP, name), dump);
  }
  for (const f of readdirSync(WORK).filter((f) => f.startsWith("callgrind.out"))) rmSync(join(WORK, f));
  if (!(total > 0)) throw new Error(`no instruction count in ${out}.1`);
  return total / requests;
}

const rows = [];
for (const db of DBS) {
  TOKEN = await signIn(db);
  for (const workload of WORKLOADS) {
    const row = { db: DATABASES[db].name, workload, counts: [] };
    for (const variant of VARIANTS) {
      const perRequest = await measure(variant, db, workload);
      log(`${variant.label}, ${DATABASES[db].name}, ${workload}: ${Math.round(perRequest).toLocaleString("en-US")} instructions per request`);
      row.counts.push(perRequest);
    }
    rows.push(row);
  }
}
sink.close();
agent.destroy();

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const table = [
  `| workload | database | ${VARIANTS.map((v) => v.label).join(" | ")} | metrics on vs both off | tracing on vs both off |`,
  `|---|---|${VARIANTS.map(() => "---|").join("")}---|---|`,
  ...rows.map((r) => `| ${r.workload} | ${r.db} | ${r.counts.map(fmt).join(" | ")} | ${(r.counts[1] / r.counts[0]).toFixed(3)}× | ${(r.counts[2] / r.counts[0]).toFixed(3)}× |`),
].join("\n");
const text = `## Instructions per request: metrics and traces\n\n` +
  `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, \`${BIN}\`; callgrind (${spawnSync("valgrind", ["--version"], { encoding: "utf8" }).stdout.trim()}), ` +
  `${REQUESTS} requests (nested: ${requestsOf("nested")}) one after another after ${WARMUP} uncounted ones, every thread of the server counted; ` +
  `PostgreSQL's own work is not (another process). Traces go to a receiver that drops them.\n\n${table}\n\n` +
  `A ratio above 1 is the extra work per request: 1.030× is 3% more instructions.\n`;
console.log(text);
if (env.BENCH_RESULTS_DIR) {
  mkdirSync(env.BENCH_RESULTS_DIR, { recursive: true });
  writeFileSync(join(env.BENCH_RESULTS_DIR, `cost-${new Date().toISOString().slice(0, 10)}.md`), text);
}
