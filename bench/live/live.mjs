// The live-updates benchmark: BENCH_SUBSCRIBERS subscribers (default 1,000) spread over two
// orgql instances on one PostgreSQL database, BENCH_RATE membership changes per second
// (default 50) for BENCH_SECONDS (default 30) sent to both instances in turn. It reports
// p50/p99/max from commit to delivery (the event's `createdAt`, stamped in the committing
// transaction, to its arrival at the subscriber; one machine, one clock), checks that every
// subscriber got every event once and in order, and reads both instances' CPU and memory.
//
//   bench/live/run.sh      (npm ci for `ws`, then this)
//
// Options (environment): BENCH_SUBSCRIBERS, BENCH_RATE, BENCH_SECONDS, BENCH_PG (default
// postgres://postgres@127.0.0.1:5432), ORGQL_BIN (default target/release/orgql),
// BENCH_RESULTS_DIR (write live-<date>.md there), BENCH_CLIENT (`rust`, the default: the
// subscribers are bench/live/subscribers, built by run.sh; `node`: worker threads of this
// process with npm `ws`, BENCH_WORKERS of them, default 4), BENCH_LIVE_LOG (the instances'
// RUST_LOG, default `warn`; `warn,orgql::live=debug` logs each batch's timings).

import { spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import WebSocket from "ws";
import { PASSWORD } from "../seed/shape.mjs";
import { WORK, env, PG, ORGQL_BIN as BIN, JWT_SECRET, logger, sleep, psql } from "../lib.mjs";

// A worker thread: opens its share of the subscriptions and records each event's id,
// `createdAt` and arrival; it reports when the main thread asks. (One thread could not read
// 50,000 messages a second on this machine: the subscribers' side must keep up for the
// figures to be the server's.)
if (!isMainThread) {
  const { subscribers } = workerData;
  const received = subscribers.map(() => []);
  const errors = [];
  const sockets = [];
  let opened = 0;
  // Each message is kept as it came, with its arrival time, and read after the run: the
  // subscribers' side does as little as it can while the figures are taken.
  const NEXT = Buffer.from('"type":"next"');
  subscribers.forEach(({ port, token }, i) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/graphql`, "graphql-transport-ws", { perMessageDeflate: false, skipUTF8Validation: true });
    sockets.push(ws);
    ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } })));
    ws.on("message", (raw) => {
      const at = Date.now();
      if (raw.includes(NEXT)) {
        received[i].push(at, raw);
        return;
      }
      const text = raw.toString();
      if (text.includes('"connection_ack"')) {
        ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: {
          query: "subscription($o: String!) { organizationEvents(organization: $o) { id action createdAt subjectUsername role } }",
          variables: { o: "live-org" },
        } }));
        opened += 1;
        if (opened === subscribers.length) setTimeout(() => parentPort.postMessage({ type: "ready" }), 200);
      } else if (text.includes('"type":"ping"')) {
        ws.send(JSON.stringify({ type: "pong" }));
      }
    });
  });
  // After the run: [arrival, message] of each `next`; a `next` with errors is an error.
  const read = () => received.map((flat, i) => {
    const events = [];
    for (let k = 0; k < flat.length; k += 2) {
      const text = flat[k + 1].toString();
      if (text.includes('"errors"')) errors.push({ i, text });
      else events.push([flat[k], text]);
    }
    return events;
  });
  parentPort.on("message", (m) => {
    if (m === "count") parentPort.postMessage({ type: "count", count: received.reduce((n, r) => n + r.length / 2, 0) });
    if (m === "report") {
      for (const ws of sockets) ws.close();
      const events = read();
      parentPort.postMessage({ type: "report", received: events, errors });
    }
  });
}

const HERE = dirname(fileURLToPath(import.meta.url));
const SUBSCRIBERS = Number(env.BENCH_SUBSCRIBERS || 1000);
const RATE = Number(env.BENCH_RATE || 50);
const SECONDS = Number(env.BENCH_SECONDS || 30);
const DB = "orgql_bench_live";
const SUBSCRIBERS_BIN = env.BENCH_SUBSCRIBERS_BIN || join(HERE, "subscribers/target/release/live-subscribers");
const PORTS = [18200, 18201];
const TARGETS = 50; // members whose role changes, in turn
const log = logger("live");

async function gql(port, query, variables, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors) throw new Error(`${query.slice(0, 50)}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

function startInstance(port) {
  const logFile = join(WORK, `live-${port}.log`);
  const proc = spawn(BIN, ["--database-url", `${PG}/${DB}?sslmode=disable`, "--listen", `127.0.0.1:${port}`,
    "--max-subscriptions-per-user", "10", "--sign-ups-per-address", "1000000", "--login-attempts-per-address", "1000000"], {
    env: { ...env, JWT_SECRET, RUST_LOG: env.BENCH_LIVE_LOG || "warn", ORGQL_SHUTDOWN_DRAIN_SECONDS: "0" },
    stdio: ["ignore", openSync(logFile, "a"), openSync(logFile, "a")],
  });
  return { port, proc, logFile };
}

async function ready(port) {
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.status === 200) return;
    } catch {}
    await sleep(200);
  }
  throw new Error(`instance on ${port} not ready`);
}

const cpuMs = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
};
const memory = (pid) => {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)[1]) / 1024, hwm: Number(/VmHWM:\s+(\d+)/.exec(s)[1]) / 1024 };
};

if (isMainThread) {
log(`PostgreSQL: re-creating ${DB}`);
psql("postgres", `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
psql("postgres", `CREATE DATABASE ${DB}`);
const instances = [startInstance(PORTS[0])];
await ready(PORTS[0]);
instances.push(startInstance(PORTS[1]));
await ready(PORTS[1]);

log(`seeding: an organization, ${SUBSCRIBERS} subscribing members, ${TARGETS} members whose role changes`);
const signUp = async (username) =>
  (await gql(PORTS[0], "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
    { i: { username, email: `${username}@example.com`, password: PASSWORD } })).signUp.token;
const boss = await signUp("boss");
await gql(PORTS[0], "mutation { createOrganization(input: { username: \"live-org\" }) { organization { id } } }", {}, boss);
const add = (username) => gql(PORTS[0], "mutation($i: AddMemberInput!) { addMember(input: $i) { member { role } } }",
  { i: { organization: "live-org", username, role: "MEMBER" } }, boss);
const tokens = [];
for (let i = 0; i < SUBSCRIBERS; i++) {
  const name = `sub-${String(i).padStart(4, "0")}`;
  tokens.push(await signUp(name));
  await add(name);
}
for (let i = 0; i < TARGETS; i++) {
  const name = `target-${String(i).padStart(2, "0")}`;
  await signUp(name);
  await add(name);
}

// The subscribers: `rust` (default), bench/live/subscribers, one lean process; or `node`,
// worker threads of this process with the npm `ws` client. Each subscriber's events come back
// as [id, createdAt (ms), arrival (ms)].
const parseNext = (text) => [/"organizationEvents":\{"id":"([^"]+)"/.exec(text)?.[1], Date.parse(/"createdAt":"([^"]+)"/.exec(text)?.[1])];

function rustSubscribers(list) {
  const file = join(WORK, "live-subscribers.txt");
  writeFileSync(file, list.map((s) => `${s.port} ${s.token}\n`).join(""));
  const proc = spawn(SUBSCRIBERS_BIN, [file, "live-org"], { stdio: ["pipe", "pipe", "inherit"] });
  let buffered = "";
  const waiting = [];
  proc.stdout.on("data", (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.(line);
    }
  });
  const answer = (command) => new Promise((r) => {
    waiting.push(r);
    if (command) proc.stdin.write(`${command}\n`);
  });
  const ready = answer(null);
  return {
    label: "one Rust process (bench/live/subscribers: tokio-tungstenite)",
    pid: proc.pid,
    ready: () => ready,
    count: async () => Number(await answer("count")),
    report: async () => {
      const out = join(WORK, "live-received.tsv");
      await answer(`report ${out}`);
      proc.kill();
      const received = list.map(() => []);
      const errors = [];
      for (const line of readFileSync(out, "utf8").split("\n")) {
        if (!line) continue;
        const [i, at, text] = line.split("\t");
        if (text.includes('"errors"')) errors.push({ i, text });
        else received[Number(i)].push([...parseNext(text), Number(at)]);
      }
      rmSync(out);
      return { received, errors };
    },
  };
}

function nodeSubscribers(list) {
  const WORKERS = Number(env.BENCH_WORKERS || 4);
  const workers = [];
  for (let w = 0; w < WORKERS; w++) {
    const subscribers = list.filter((_, i) => i % WORKERS === w);
    workers.push(new Worker(fileURLToPath(import.meta.url), { workerData: { subscribers } }));
  }
  const ask = (worker, question, type) => new Promise((r) => {
    const on = (m) => {
      if (m.type === type) {
        worker.off("message", on);
        r(m);
      }
    };
    worker.on("message", on);
    if (question) worker.postMessage(question);
  });
  const ready = Promise.all(workers.map((w) => ask(w, null, "ready")));
  return {
    label: `${WORKERS} worker threads of the Node process (npm ws)`,
    pid: process.pid,
    ready: () => ready,
    count: async () => (await Promise.all(workers.map((w) => ask(w, "count", "count")))).reduce((n, m) => n + m.count, 0),
    report: async () => {
      const reports = await Promise.all(workers.map((w) => ask(w, "report", "report")));
      for (const w of workers) w.terminate();
      return {
        received: reports.flatMap((r) => r.received.map((events) => events.map((e) => [...parseNext(e[1]), e[0]]))),
        errors: reports.flatMap((r) => r.errors),
      };
    },
  };
}

const CLIENT = env.BENCH_CLIENT || "rust";
const list = tokens.map((token, i) => ({ port: PORTS[i % 2], token }));
const client = CLIENT === "node" ? nodeSubscribers(list) : rustSubscribers(list);
log(`opening ${SUBSCRIBERS} subscriptions over two instances: ${client.label}`);
await client.ready();
await sleep(1000);

// The whole machine's busy and total time (/proc/stat, in ticks).
const machine = () => {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
};
const before = instances.map((x) => ({ cpu: cpuMs(x.proc.pid) }));
const clientBefore = cpuMs(client.pid);
const machineBefore = machine();
log(`sending ${RATE} updateMember per second for ${SECONDS} s, alternately to each instance`);
const sent = [];
const started = Date.now();
const total = RATE * SECONDS;
const inflight = [];
for (let n = 0; n < total; n++) {
  const due = started + (n * 1000) / RATE;
  const wait = due - Date.now();
  if (wait > 0) await sleep(wait);
  const target = `target-${String(n % TARGETS).padStart(2, "0")}`;
  const role = Math.floor(n / TARGETS) % 2 === 0 ? "ADMIN" : "MEMBER";
  inflight.push(gql(PORTS[n % 2], "mutation($i: UpdateMemberInput!) { updateMember(input: $i) { member { role } } }",
    { i: { organization: "live-org", username: target, role } }, boss).then(() => sent.push(n)));
}
await Promise.all(inflight);
const sendSeconds = (Date.now() - started) / 1000;
// Let the last deliveries arrive.
const deadline = Date.now() + 15000;
while (Date.now() < deadline && (await client.count()) < total * SUBSCRIBERS) await sleep(200);
const after = instances.map((x) => ({ cpu: cpuMs(x.proc.pid), ...memory(x.proc.pid) }));
const clientAfter = cpuMs(client.pid);
const machineAfter = machine();
const elapsed = (Date.now() - started) / 1000;
const report = await client.report();
const received = report.received.map((events) => events.map(([id, createdAt, at]) => ({ id, createdAt, at })));
const failures = report.errors;

// Every subscriber: every event once, in commit order. Membership changes of one
// organization lock its row, so their commit order is their ids' order: each subscriber's
// event ids (global IDs, base64url of "AuditEvent:<n>") must strictly increase.
const eventNumber = (id) => Number(Buffer.from(id, "base64url").toString().split(":")[1]);
const ids = new Set();
let missing = 0;
let duplicated = 0;
let disordered = 0;
const latencies = [];
for (const events of received) {
  const seen = new Set();
  let lastNumber = -Infinity;
  for (const e of events) {
    const n = eventNumber(e.id);
    if (n <= lastNumber) disordered++;
    lastNumber = n;
    if (seen.has(e.id)) duplicated++;
    seen.add(e.id);
    ids.add(e.id);
    latencies.push(e.at - e.createdAt);
  }
  missing += total - seen.size;
}
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
const auditEvents = Number(psql(DB, "SELECT count(*) FROM audit_event WHERE action = 'MEMBER_UPDATED'"));

for (const x of instances) x.proc.kill("SIGTERM");

const rows = [
  ["subscribers", `${SUBSCRIBERS} (${SUBSCRIBERS / 2} per instance)`],
  ["changes", `${total} updateMember in ${sendSeconds.toFixed(1)} s (${(total / sendSeconds).toFixed(1)}/s), ${auditEvents} MEMBER_UPDATED events committed`],
  ["deliveries", `${latencies.length} of ${total * SUBSCRIBERS}: ${missing} missing, ${duplicated} duplicated, ${disordered} out of order, ${failures.length} errors`],
  ["commit → delivery p50", `${pct(50).toFixed(0)} ms`],
  ["commit → delivery p99", `${pct(99).toFixed(0)} ms`],
  ["commit → delivery max", `${latencies[latencies.length - 1].toFixed(0)} ms`],
  ...instances.map((x, i) => [`instance ${i + 1} CPU`, `${(((after[i].cpu - before[i].cpu) / 1000 / elapsed) * 100).toFixed(0)}% of one core over ${elapsed.toFixed(0)} s`]),
  ["subscribers' CPU", `${(((clientAfter - clientBefore) / 1000 / elapsed) * 100).toFixed(0)}% of one core${CLIENT === "node" ? " (the whole Node process, load included)" : ""}`],
  ["machine", `${(((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * 100).toFixed(0)}% busy (both cores; PostgreSQL and the load included)`],
  ...instances.map((x, i) => [`instance ${i + 1} memory`, `RSS ${after[i].rss.toFixed(0)} MiB (peak ${after[i].hwm.toFixed(0)} MiB)`]),
];
const text = `## Live updates: ${SUBSCRIBERS} subscribers on two instances, ${RATE} changes/s for ${SECONDS} s\n\n` +
  `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, \`${BIN}\`, PostgreSQL ${psql("postgres", "SHOW server_version")}; ` +
  `subscribers: ${client.label}; load from one Node process; all on the same 2-core machine.\n\n| | |\n|---|---|\n${rows.map((r) => `| ${r[0]} | ${r[1]} |`).join("\n")}\n`;
console.log(text);
if (env.BENCH_RESULTS_DIR) {
  mkdirSync(env.BENCH_RESULTS_DIR, { recursive: true });
  writeFileSync(join(env.BENCH_RESULTS_DIR, `live-${new Date().toISOString().slice(0, 10)}.md`), text);
}
psql("postgres", `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
process.exit(missing || duplicated ? 1 : 0);
}
