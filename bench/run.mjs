// The benchmark itself; bench/run.sh builds orgql and installs the Node servers, then runs
// this. See bench/README.md. Options (environment):
//   BENCH_DURATION  measured seconds per run (default 10, at least 10 for the report)
//   BENCH_WARMUP    warm-up seconds before each measured run (default 5)
//   BENCH_ROUNDS    rounds of every workload, servers interleaved (default 3); the table
//                   reports each server's median round
//   BENCH_WORKLOADS comma-separated subset of nested,mix,viewer,members (default all four)
//   BENCH_CONNECTIONS / BENCH_THREADS  wrk concurrency (default 32) and threads (default 2)
//   BENCH_REUSE=1   reuse the databases seeded by an earlier run (skip seeding)
//   BENCH_PG        PostgreSQL server URL (default postgres://postgres@127.0.0.1:5432)
//   BENCH_DB        database name (default orgql_bench; dropped and re-created)
//   ORGQL_BIN       the orgql binary (default ../target/release/orgql)
//   BENCH_ORGQL     orgql variants to compare in one run, a JSON array of
//                   {"label", "bin" (default ORGQL_BIN; relative to the repository root),
//                    "env" (added to orgql's environment), "flags" (added to its flags),
//                    "auth": "jwt" (default) or "api-token" (requests carry a READ API token)};
//                   each runs on PostgreSQL and on SQLite; "vs <first label>" compares them,
//                   the targets use the last one. Unset: one variant, ORGQL_BIN.
//   BENCH_ONLY      comma-separated subset of: postgraphile,apollo,orgql-pg,orgql-sqlite,keyset
//                   (orgql-pg and orgql-sqlite select that database for every variant)
//   BENCH_NO_RESULTS=1  print only, write nothing to bench/results/
//   BENCH_RESULTS_DIR   write the results file there instead of bench/results/

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, openSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import os from "node:os";
import { QUERIES, nestedShape, membersShape, keyCursor } from "./queries.mjs";
import { SHAPE, PASSWORD } from "./seed/shape.mjs";
import { BENCH, ROOT, WORK, env, PG, ORGQL_BIN, JWT_SECRET, logger, sleep, run, psql } from "./lib.mjs";

const DURATION = Number(env.BENCH_DURATION || 10);
const WARMUP = Number(env.BENCH_WARMUP || 5);
const ROUNDS = Math.max(1, Number(env.BENCH_ROUNDS || 3));
const CONNECTIONS = Number(env.BENCH_CONNECTIONS || 32);
const THREADS = Number(env.BENCH_THREADS || 2);
const DB = env.BENCH_DB || "orgql_bench";
const PG_URL = `${PG}/${DB}`;
// The Node servers' `pg` connects without TLS; sqlx's default (`sslmode=prefer`) uses TLS
// whenever the server offers it, as Debian's PostgreSQL does. orgql connects in plain text
// too, so that no server pays for encryption the others skip.
const ORGQL_PG_URL = `${PG_URL}?sslmode=disable`;
const SQLITE_FILE = join(WORK, "orgql-bench.sqlite");
const SQLITE_URL = `sqlite://${SQLITE_FILE}?mode=rwc`;
const ONLY = env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(",")) : null;
const want = (k) => !ONLY || ONLY.has(k);
// orgql's defaults, except logging (one INFO line per request would be the only server here
// writing a log line per request; PostGraphile runs with --disable-query-log).
const ORGQL_FLAGS = (env.ORGQL_FLAGS || "").split(" ").filter(Boolean);
const PORT = { orgql: 18180, postgraphile: 18181, apollo: 18182 };

// The orgql variants (BENCH_ORGQL). Each is a server of its own on each database, run in the
// same interleaved rounds as the others, so that a before/after comparison sees the same
// minutes of this drifting machine instead of two runs made apart. Without BENCH_ORGQL there
// is one variant with no suffix on its keys (orgql-pg, orgql-sqlite), as before variants.
function parseVariants() {
  if (!env.BENCH_ORGQL) return [{ label: "orgql", bin: ORGQL_BIN, env: {}, flags: [], auth: "jwt", slug: null }];
  let list;
  try {
    list = JSON.parse(env.BENCH_ORGQL);
  } catch (e) {
    throw new Error(`BENCH_ORGQL is not JSON: ${e.message}`);
  }
  if (!Array.isArray(list) || !list.length) throw new Error("BENCH_ORGQL must be a non-empty JSON array of variants");
  const slugs = new Set();
  return list.map((v, i) => {
    if (!v || typeof v !== "object" || !v.label) throw new Error(`BENCH_ORGQL[${i}] needs a "label"`);
    if (list.some((w, j) => j < i && w.label === v.label)) throw new Error(`BENCH_ORGQL: label "${v.label}" given twice`);
    // The slug names the variant in server keys and log files (labels may hold spaces).
    let slug = String(v.label).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || String(i + 1);
    if (slugs.has(slug)) slug = `${slug}-${i + 1}`;
    slugs.add(slug);
    return {
      label: String(v.label),
      bin: v.bin ? resolve(ROOT, v.bin) : ORGQL_BIN,
      env: Object.fromEntries(Object.entries(v.env ?? {}).map(([k, x]) => [k, String(x)])),
      flags: Array.isArray(v.flags) ? v.flags.map(String) : String(v.flags ?? "").split(" ").filter(Boolean),
      auth: authOf(v, i),
      slug,
    };
  });
}
// How a variant's requests sign in: "jwt" (logIn's token; the default) or "api-token" (a READ
// API token created with it), to compare what checking each costs.
function authOf(v, i) {
  const auth = v.auth ?? "jwt";
  if (auth !== "jwt" && auth !== "api-token") throw new Error(`BENCH_ORGQL[${i}].auth: "jwt" or "api-token", not "${auth}"`);
  return auth;
}
const VARIANTS = parseVariants();
for (const v of VARIANTS) {
  if (!existsSync(v.bin)) throw new Error(`orgql variant "${v.label}": no binary at ${v.bin}`);
}
const FIRST = VARIANTS[0];
// The issue's targets are about one orgql: with a before/after comparison, the "after".
const LAST = VARIANTS[VARIANTS.length - 1];
const orgqlKey = (variant, base) => (variant.slug ? `${base}@${variant.slug}` : base);

// What each workload sends (wrk cycles through the queries, one body file each) and its row
// title. viewer and members are mix's two halves alone: each small query on its own line.
const WORKLOAD_DEFS = {
  nested: { title: "nested (20 orgs × 50 members + 20 datasets)", queries: ["nested"] },
  mix: { title: "small mix (viewer; 20 members)", queries: ["viewer", "members"] },
  viewer: { title: "viewer (id, username, email, createdAt)", queries: ["viewer"] },
  members: { title: "members (one organization's first 20, pageInfo)", queries: ["members"] },
};
const WORKLOADS = (env.BENCH_WORKLOADS || "nested,mix,viewer,members").split(",").map((w) => w.trim()).filter(Boolean);
for (const w of WORKLOADS) {
  if (!WORKLOAD_DEFS[w]) throw new Error(`BENCH_WORKLOADS: unknown workload "${w}" (known: ${Object.keys(WORKLOAD_DEFS).join(", ")})`);
}

const log = logger("bench");

// ---------------------------------------------------------------------------- servers

const SERVERS = {
  postgraphile: {
    label: "PostGraphile 4.14.1",
    db: "PostgreSQL",
    port: PORT.postgraphile,
    cmd: () => [
      "node",
      [join(BENCH, "postgraphile/node_modules/postgraphile/cli.js"), "-c", PG_URL, "-s", "public",
        "-n", "127.0.0.1", "-p", String(PORT.postgraphile), "--disable-query-log", "--disable-graphiql",
        "-m", "16"],
      { NODE_ENV: "production" },
    ],
  },
  apollo: {
    label: "Apollo Server 5 + dataloader",
    db: "PostgreSQL",
    port: PORT.apollo,
    cmd: () => ["node", [join(BENCH, "apollo/server.mjs")],
      { NODE_ENV: "production", DATABASE_URL: PG_URL, PORT: String(PORT.apollo), PG_POOL_MAX: "16" }],
  },
};
// Database-major, so that a round runs every variant on PostgreSQL, then every variant on SQLite.
for (const [base, db, url] of [["orgql-pg", "PostgreSQL", ORGQL_PG_URL], ["orgql-sqlite", "SQLite", SQLITE_URL]]) {
  for (const v of VARIANTS) {
    SERVERS[orgqlKey(v, base)] = {
      label: !v.slug || v.label.startsWith("orgql") ? v.label : `orgql ${v.label}`,
      db,
      base,
      variant: v,
      port: PORT.orgql,
      // The variant's env last: it may override anything, RUST_LOG included.
      cmd: (extra = []) => [v.bin, ["--database-url", url, "--listen", `127.0.0.1:${PORT.orgql}`, ...ORGQL_FLAGS, ...v.flags, ...extra],
        { JWT_SECRET, RUST_LOG: "warn", ORGQL_SHUTDOWN_DRAIN_SECONDS: "0", ...v.env }],
    };
  }
}
const baseOf = (key) => SERVERS[key].base ?? key;
const kindOf = (key) => (key.startsWith("orgql") ? "orgql" : key);

async function post(url, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch {
    return { status: res.status, text };
  }
}

async function startServer(key, extra) {
  const s = SERVERS[key];
  const [cmd, args, extraEnv] = s.cmd(extra);
  const logFile = join(WORK, `${key}.log`);
  const out = openSync(logFile, "a");
  const proc = spawn(cmd, args, { env: { ...env, ...extraEnv }, stdio: ["ignore", out, out] });
  let exited = null;
  proc.on("exit", (code, signal) => (exited = { code, signal }));
  const url = `http://127.0.0.1:${s.port}/graphql`;
  for (let i = 0; i < 600; i++) {
    if (exited) throw new Error(`${key} exited (${JSON.stringify(exited)}) at start; see ${logFile}`);
    try {
      const r = await post(url, { query: "{ __typename }" });
      if (r.status === 200) return { key, proc, pid: proc.pid, url, logFile, exited: () => exited };
    } catch {}
    await sleep(200);
  }
  proc.kill("SIGKILL");
  throw new Error(`${key} did not answer within 120 s; see ${logFile}`);
}

async function stopServer(server) {
  if (server.exited()) return;
  const gone = new Promise((r) => server.proc.once("exit", r));
  server.proc.kill("SIGTERM");
  const t = setTimeout(() => server.proc.kill("SIGKILL"), 15000);
  await gone;
  clearTimeout(t);
}

function peakRssKiB(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

// ---------------------------------------------------------------------------- load check

// CPU time (clock ticks) of every process, to split a run's CPU into the server's,
// PostgreSQL's (the backends on the benchmark's database), wrk's and everyone else's.
const TICK_MS = 1000 / Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);
function cpuTimes() {
  const out = new Map();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      out.set(Number(pid), { ticks: Number(fields[11]) + Number(fields[12]), cmdline });
    } catch {}
  }
  return out;
}
// A short name for a foreign process: the program, and for rustc/clippy the crate.
function shortCmd(cmdline) {
  const argv = cmdline.split(" ");
  const prog = argv[0].split("/").pop();
  const crate = argv.indexOf("--crate-name");
  if (crate >= 0) return `${prog} (crate ${argv[crate + 1]})`;
  if (prog.startsWith("postgres:")) return cmdline.slice(0, 60);
  return `${prog} ${argv.slice(1).join(" ")}`.slice(0, 60).trim();
}
function splitCpu(a, b, ms, serverPid) {
  const out = { serverMs: 0, pgMs: 0, wrkMs: 0, otherMs: 0, others: new Map() };
  for (const [pid, { ticks, cmdline }] of b) {
    const d = (ticks - (a.get(pid)?.ticks ?? 0)) * TICK_MS;
    if (d <= 0 || pid === process.pid || !cmdline) continue; // kernel threads have no cmdline
    if (pid === serverPid) out.serverMs += d;
    else if (cmdline.startsWith("postgres:") && cmdline.includes(` ${DB} `)) out.pgMs += d;
    else if (cmdline.startsWith("wrk ")) out.wrkMs += d;
    else if (cmdline.startsWith("postgres:") && !/ \d+\.\d+\.\d+\.\d+\(\d+\)| \[local\]/.test(cmdline)) continue; // PostgreSQL's own background work
    else {
      out.otherMs += d;
      const k = shortCmd(cmdline);
      out.others.set(k, (out.others.get(k) ?? 0) + d);
    }
  }
  out.otherPct = (out.otherMs / ms) * 100;
  out.top = [...out.others].filter(([, d]) => (d / ms) * 100 >= 2).sort((x, y) => y[1] - x[1]).slice(0, 3).map(([cmd, d]) => ({ cmd, pct: (d / ms) * 100 }));
  return out;
}
async function otherLoad(ms) {
  const a = cpuTimes();
  await sleep(ms);
  return splitCpu(a, cpuTimes(), ms, -1);
}

// ---------------------------------------------------------------------------- wrk

function wrk(url, bodyFiles, token, seconds) {
  return new Promise((resolvePromise, reject) => {
    // Under sh, which prints its children's CPU time (wrk's, once waited for) from /proc.
    const script = 'wrk "$@"; c=$?; echo "WRK_STAT $(cat /proc/$$/stat)"; exit $c';
    const p = spawn("sh", ["-c", script, "sh", "-t", String(THREADS), "-c", String(CONNECTIONS), "-d", `${seconds}s`,
      "--timeout", "30s", "-s", join(BENCH, "wrk/graphql.lua"), url],
      { env: { ...env, BENCH_BODIES: bodyFiles.join(","), BENCH_TOKEN: token || "" } });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("exit", (code) => {
      const m = /BENCH_JSON (\{.*\})/.exec(out);
      if (code !== 0 || !m) reject(new Error(`wrk failed (${code}): ${out}`));
      else {
        const r = JSON.parse(m[1]);
        const stat = /WRK_STAT .*\) (.*)/.exec(out)?.[1].split(" ");
        r.wrkCpuMs = stat ? (Number(stat[13]) + Number(stat[14])) * TICK_MS : NaN;
        resolvePromise(r);
      }
    });
  });
}

async function measure(server, bodyFiles, token, label) {
  log(`${label}: warm-up ${WARMUP}s`);
  await wrk(server.url, bodyFiles, token, WARMUP);
  log(`${label}: measuring ${DURATION}s`);
  const a = cpuTimes();
  const t0 = Date.now();
  const r = await wrk(server.url, bodyFiles, token, DURATION);
  const cpu = splitCpu(a, cpuTimes(), Date.now() - t0, server.pid);
  if (r.requests === 0) throw new Error(`${label}: no request completed in ${DURATION} s`);
  if (server.exited()) throw new Error(`${server.key} died during ${label}; see ${server.logFile}`);
  r.peakRssKiB = peakRssKiB(server.pid);
  r.serverCpuMsPerReq = cpu.serverMs / r.requests;
  r.pgCpuMsPerReq = SERVERS[server.key].db === "SQLite" ? null : cpu.pgMs / r.requests;
  r.wrkCpuPct = (r.wrkCpuMs / (Date.now() - t0)) * 100;
  r.wrkCpuMsPerReq = r.wrkCpuMs / r.requests;
  r.otherCpuPct = cpu.otherPct;
  r.otherTop = cpu.top;
  r.loadavg = os.loadavg()[0];
  const errs = r.errors_connect + r.errors_read + r.errors_write + r.errors_status + r.errors_timeout;
  r.failed = errs + r.bad_responses;
  log(`${label}: ${r.rps.toFixed(1)} req/s, p50 ${(r.p50_us / 1000).toFixed(2)} ms, p99 ${(r.p99_us / 1000).toFixed(2)} ms, ` +
    `peak RSS ${(r.peakRssKiB / 1024).toFixed(1)} MiB, failed ${r.failed}, server CPU ${r.serverCpuMsPerReq.toFixed(2)} ms/req, other CPU ${r.otherCpuPct.toFixed(0)}%`);
  return r;
}

// ---------------------------------------------------------------------------- seeding

async function seedOne(key) {
  const server = await startServer(key, ["--login-attempts-per-account", "1000000", "--login-attempts-per-address", "1000000", "--sign-ups-per-address", "1000000"]);
  try {
    const t = Date.now();
    const out = run("node", [join(BENCH, "seed/seed.mjs"), server.url]);
    const summary = JSON.parse(out.trim().split("\n").pop());
    log(`seeded ${key} through the API in ${((Date.now() - t) / 1000).toFixed(0)} s: ${JSON.stringify(summary.seconds)}`);
    return summary;
  } finally {
    await stopServer(server);
  }
}

async function seed() {
  const seeded = {};
  if (want("postgraphile") || want("apollo") || want("orgql-pg") || want("keyset")) {
    log(`PostgreSQL: re-creating database ${DB}`);
    psql("postgres", `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    psql("postgres", `CREATE DATABASE ${DB}`);
    seeded.pg = await seedOne(orgqlKey(FIRST, "orgql-pg"));
    const t = Date.now();
    run("psql", ["-X", "-q", PG_URL, "-f", join(BENCH, "seed/keyset-postgres.sql")]);
    log(`PostgreSQL: bulk keyset members inserted with SQL in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  if (want("orgql-sqlite") || want("keyset")) {
    for (const suffix of ["", "-wal", "-shm"]) rmSync(SQLITE_FILE + suffix, { force: true });
    seeded.sqlite = await seedOne(orgqlKey(FIRST, "orgql-sqlite"));
    const t = Date.now();
    run("sqlite3", [SQLITE_FILE], { input: readFileSync(join(BENCH, "seed/keyset-sqlite.sql")) });
    log(`SQLite: bulk keyset members inserted with SQL in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  return seeded;
}

function counts() {
  const q = {
    organizations: "SELECT count(*) FROM organization",
    users: "SELECT count(*) FROM user_account",
    memberships: "SELECT count(*) FROM membership",
    datasets: "SELECT count(*) FROM dataset",
    collaborators: "SELECT count(*) FROM collaborator",
  };
  const out = {};
  for (const [k, sql] of Object.entries(q)) {
    out[k] = {};
    if (want("postgraphile") || want("apollo") || want("orgql-pg") || want("keyset")) out[k].pg = Number(psql(DB, sql));
    if (existsSync(SQLITE_FILE)) out[k].sqlite = Number(run("sqlite3", [SQLITE_FILE, sql]).trim());
  }
  return out;
}

// ---------------------------------------------------------------------------- checks

const EXPECTED_NESTED = JSON.stringify(
  SHAPE.organizations().map((org, o) => ({
    org,
    members: [SHAPE.viewer, ...SHAPE.users().slice(o * 49, o * 49 + 49)].sort(),
    datasets: SHAPE.datasets().filter((d) => d.owner === org).map((d) => d.name),
  })),
);
const EXPECTED_MEMBERS = JSON.stringify([SHAPE.viewer, ...SHAPE.users().slice(0, 49)].sort().slice(0, 20));

async function check(server, body, token, expect, shape) {
  const r = await post(server.url, body, token);
  if (r.status !== 200 || !r.json || r.json.errors) {
    throw new Error(`${server.key} refused a benchmark query (HTTP ${r.status}): ${JSON.stringify(r.json?.errors ?? r.text)}`);
  }
  const got = JSON.stringify(shape(r.json.data));
  if (got !== expect) throw new Error(`${server.key} answered a different shape:\n got ${got.slice(0, 400)}\nwant ${expect.slice(0, 400)}`);
  return JSON.stringify(r.json).length;
}

async function logIn(server, username) {
  const r = await post(server.url, {
    query: `mutation($input: LogInInput!) { logIn(input: $input) { token } }`,
    variables: { input: { username, password: PASSWORD } },
  });
  if (!r.json?.data?.logIn) throw new Error(`logIn as ${username} failed: ${JSON.stringify(r.json ?? r.text)}`);
  return r.json.data.logIn.token;
}

// A READ API token of the holder of sign-in token `jwt`, for variants with auth "api-token".
async function apiToken(server, jwt) {
  const r = await post(server.url, {
    query: `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`,
    variables: { input: { name: "bench", scopes: ["READ"] } },
  }, jwt);
  if (!r.json?.data?.createApiToken) throw new Error(`createApiToken failed: ${JSON.stringify(r.json ?? r.text)}`);
  return r.json.data.createApiToken.token;
}

// The token a variant's requests carry as the user `username`.
async function signIn(server, key, username) {
  const jwt = await logIn(server, username);
  return SERVERS[key].variant?.auth === "api-token" ? apiToken(server, jwt) : jwt;
}

function bodyFile(name, query, variables) {
  const path = join(WORK, `${name}.json`);
  writeFileSync(path, JSON.stringify(variables ? { query, variables } : { query }));
  return path;
}

// ---------------------------------------------------------------------------- the runs

// Checks one query's answer against the seeded data; returns the answer's size in bytes.
async function checkQuery(server, kind, name, token) {
  const Q = QUERIES[kind];
  if (name === "nested") {
    return check(server, { query: Q.nested }, token, EXPECTED_NESTED, (d) =>
      nestedShape(kind, d).sort((a, b) => (a.org < b.org ? -1 : 1)));
  }
  if (name === "members") return check(server, { query: Q.members }, token, EXPECTED_MEMBERS, (d) => membersShape(kind, d));
  const v = await post(server.url, { query: Q.viewer }, token);
  if (v.status !== 200 || v.json?.errors || !JSON.stringify(v.json).includes(`"${SHAPE.viewer}"`)) {
    throw new Error(`${server.key}: viewer query failed (HTTP ${v.status}): ${JSON.stringify(v.json ?? v.text)}`);
  }
  return JSON.stringify(v.json).length;
}

async function runServer(key, results, round) {
  const kind = kindOf(key);
  for (const workload of WORKLOADS) {
    const server = await startServer(key);
    try {
      const token = kind === "orgql" ? await signIn(server, key, SHAPE.viewer) : null;
      const names = WORKLOAD_DEFS[workload].queries;
      const files = names.map((name) => bodyFile(`${kind}-${name}`, QUERIES[kind][name]));
      const sizes = [];
      for (const name of names) sizes.push(await checkQuery(server, kind, name, token));
      const bytes = sizes.length === 1 ? sizes[0] : null; // a mix has no one answer size
      const label = `${SERVERS[key].label} (${SERVERS[key].db}) ${workload}, round ${round}/${ROUNDS}`;
      const r = await measure(server, files, token, label);
      results.push({ key, workload, round, server: SERVERS[key].label, db: SERVERS[key].db, variant: SERVERS[key].variant?.label ?? null,
        responseBytes: bytes, ...r });
    } finally {
      await stopServer(server);
    }
  }
}

async function runKeyset(key, results) {
  const server = await startServer(key);
  try {
    const token = await signIn(server, key, SHAPE.keysetAdmin);
    for (const [org, size] of [[SHAPE.keysetSmall, SHAPE.keysetSmallMembers], [SHAPE.keysetLarge, SHAPE.keysetLargeMembers]]) {
      // "Deep inside": after the member at 3/4 of the list (members are bench-keyset, then
      // kl-000001 … in username order), so both pages are full pages of 20.
      const position = Math.floor(size * 0.75) - 1; // kl-<position> is at index `position`
      const afterKey = SHAPE.keysetUser(position);
      const variables = { org, after: keyCursor(afterKey) };
      const want = JSON.stringify(Array.from({ length: 20 }, (_, i) => SHAPE.keysetUser(position + 1 + i)));
      await check(server, { query: QUERIES.orgql.keyset, variables }, token, want, (d) => membersShape("orgql", d));
      const file = bodyFile(`keyset-${org}`, QUERIES.orgql.keyset, variables);
      const label = `${SERVERS[key].label} (${SERVERS[key].db}) members(first: 20, after: <${afterKey}>) in ${size.toLocaleString("en")} members`;
      const r = await measure(server, [file], token, label);
      results.push({ key, workload: `keyset-${size}`, server: SERVERS[key].label, db: SERVERS[key].db, variant: SERVERS[key].variant.label,
        members: size, afterKey, ...r });
    }
  } finally {
    await stopServer(server);
  }
}

// ---------------------------------------------------------------------------- report

function machine() {
  const line = (cmd, args) => {
    try {
      return run(cmd, args).trim();
    } catch {
      return "?";
    }
  };
  // A Node server's version, or "?" when it is not installed (a run with BENCH_ONLY=orgql-…
  // started without bench/run.sh's npm ci).
  const version = (pkg) => {
    try {
      return JSON.parse(readFileSync(join(BENCH, pkg, "package.json"), "utf8")).version;
    } catch {
      return "?";
    }
  };
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const mem = /MemTotal:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))[1];
  return {
    uname: line("uname", ["-a"]),
    nproc: line("nproc", []),
    cpu,
    memory: `${(Number(mem) / 1024 / 1024).toFixed(1)} GiB`,
    rustc: line("rustc", ["--version"]),
    // The working tree's commit: what target/release/orgql was built from, not necessarily
    // what another variant's binary was.
    commit: `${line("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"])}` +
      `${line("git", ["-C", ROOT, "status", "--porcelain", "--", "src", "entity", "migration", "Cargo.toml", "Cargo.lock"]) ? ", with uncommitted changes" : ""}`,
    variants: VARIANTS.map((v) => ({ ...v, version: line(v.bin, ["--version"]).split("\n")[0], built: statSync(v.bin).mtime.toISOString().slice(0, 16).replace("T", " ") })),
    node: process.version,
    postgres: psql("postgres", "SHOW server_version"),
    sqlite: `${line("sqlite3", ["--version"]).split(" ")[0]} (CLI, seeding only; orgql links its own)`,
    wrk: line("sh", ["-c", "wrk -v 2>&1 | head -1"]),
    postgraphile: version("postgraphile/node_modules/postgraphile"),
    apollo: version("apollo/node_modules/@apollo/server"),
    dataloader: version("apollo/node_modules/dataloader"),
    pg: version("apollo/node_modules/pg"),
  };
}

const ms = (us) => (us / 1000).toFixed(2);
const mib = (kib) => (kib / 1024).toFixed(1);

const cpuMs = (v) => (v == null ? "—" : v.toFixed(2));

// One variant in a line: label, binary, its --version and build time, env and flags.
function describeVariant(v, markdown = false) {
  const c = (x) => (markdown ? `\`${x}\`` : x);
  const envs = Object.entries(v.env).map(([k, x]) => c(`${k}=${x}`)).join(" ");
  return `${markdown ? `**${v.label}**` : `"${v.label}"`}: ${c(v.bin)} — ${v.version}, built ${v.built} UTC; ` +
    `env ${envs || "(none added)"}; flags ${[...ORGQL_FLAGS, ...v.flags].map(c).join(" ") || "(none added)"}`;
}

// Each (server, workload)'s median round by req/s, with every round's req/s in `rounds`.
function medians(results) {
  const out = [];
  for (const r of results) {
    if (r.workload.startsWith("keyset-")) {
      out.push(r);
      continue;
    }
    if (out.some((x) => x.key === r.key && x.workload === r.workload)) continue;
    const all = results.filter((x) => x.key === r.key && x.workload === r.workload);
    const sorted = [...all].sort((a, b) => a.rps - b.rps);
    out.push({ ...sorted[Math.floor((sorted.length - 1) / 2)], rounds: all.map((x) => x.rps) });
  }
  return out;
}

// With 2+ variants, each row's req/s relative to the first variant on the same workload and
// database (PostGraphile and Apollo: relative to it on PostgreSQL, their database): the median
// of the rounds' ratios, each round's pair measured minutes apart at most, so that the
// machine's drift between rounds cancels out.
const COMPARE = VARIANTS.length > 1;
function vsFirst(results, r, workload) {
  const base = results.find((x) => x.workload === workload && x.key === orgqlKey(FIRST, r.db === "SQLite" ? "orgql-sqlite" : "orgql-pg"));
  if (!base) return "—";
  if (r.rounds?.length && base.rounds?.length === r.rounds.length) {
    const ratios = r.rounds.map((x, k) => x / base.rounds[k]).sort((a, b) => a - b);
    return `${ratios[Math.floor((ratios.length - 1) / 2)].toFixed(3)}×`;
  }
  return `${(r.rps / base.rps).toFixed(3)}×`;
}

// One block of rows per workload, the workload named on its first row; `blocks` gives each
// block's rows apart (the console separates them by a blank line).
function table(results, markdown) {
  const head = ["workload", "server", "database", "req/s", "p50 ms", "p99 ms", "peak RSS MiB", "vs PostGraphile",
    ...(COMPARE ? [`vs ${FIRST.label}`] : []), "server CPU ms/req", "PostgreSQL CPU ms/req", "failed", "req/s by round"];
  if (markdown) head.push("other CPU %");
  const blocks = [];
  for (const workload of WORKLOADS) {
    const base = results.find((r) => r.workload === workload && r.key === "postgraphile");
    const block = results.filter((x) => x.workload === workload).map((r, i) => {
      const row = [
        i === 0 ? WORKLOAD_DEFS[workload].title : "",
        r.server, r.db, r.rps.toFixed(1), ms(r.p50_us), ms(r.p99_us), mib(r.peakRssKiB),
        base ? `${(r.rps / base.rps).toFixed(2)}×` : "—", ...(COMPARE ? [vsFirst(results, r, workload)] : []),
        cpuMs(r.serverCpuMsPerReq), cpuMs(r.pgCpuMsPerReq), String(r.failed),
        r.rounds.map((x) => x.toFixed(0)).join(" / "),
      ];
      if (markdown) row.push(r.otherCpuPct.toFixed(0));
      return row;
    });
    if (block.length) blocks.push(block);
  }
  return { head, blocks, rows: [head, ...blocks.flat()] };
}

// Every variant's keyset runs; with 2+ variants a server column and "vs <first>" (req/s
// relative to the first variant on the same page and database) are added.
function keysetTable(results, markdown) {
  const head = ["database", ...(COMPARE ? ["server"] : []), "organization", "page", "req/s", "p50 ms", "p99 ms", "p50 vs 100-member page",
    ...(COMPARE ? [`vs ${FIRST.label}`] : []), "server CPU ms/req", "PostgreSQL CPU ms/req", "failed"];
  if (markdown) head.push("other CPU %");
  const rows = [head];
  for (const db of ["PostgreSQL", "SQLite"]) {
    for (const r of results.filter((x) => x.db === db && x.workload.startsWith("keyset-"))) {
      const small = results.find((x) => x.key === r.key && x.workload === `keyset-${SHAPE.keysetSmallMembers}`);
      const row = [db, ...(COMPARE ? [r.server] : []), `${r.members.toLocaleString("en")} members`, `first: 20 after ${r.afterKey}`, r.rps.toFixed(1),
        ms(r.p50_us), ms(r.p99_us), small ? `${(r.p50_us / small.p50_us).toFixed(2)}×` : "—",
        ...(COMPARE ? [vsFirst(results, r, r.workload)] : []),
        cpuMs(r.serverCpuMsPerReq), cpuMs(r.pgCpuMsPerReq), String(r.failed)];
      if (markdown) row.push(r.otherCpuPct.toFixed(0));
      rows.push(row);
    }
  }
  return rows;
}

// `blocks` (console only): groups of rows after the head, a blank line between them.
function render(rows, markdown, blocks = null) {
  if (markdown) {
    return [rows[0], rows[0].map(() => "---"), ...rows.slice(1)].map((r) => `| ${r.join(" | ")} |`).join("\n");
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  if (!blocks) return rows.map(line).join("\n");
  return `${line(rows[0])}\n${blocks.map((b) => b.map(line).join("\n")).join("\n\n")}`;
}

// The issue's targets, for one orgql: the last variant (with a before/after comparison, the
// "after"). Only for nested and mix, the workloads the issue names.
function targets(results) {
  const get = (key, workload) => results.find((r) => r.key === key && r.workload === workload);
  const pgKey = orgqlKey(LAST, "orgql-pg");
  const sqliteKey = orgqlKey(LAST, "orgql-sqlite");
  const name = SERVERS[pgKey].label;
  const out = [];
  for (const w of ["nested", "mix"]) {
    const pgl = get("postgraphile", w);
    const o = get(pgKey, w);
    const s = get(sqliteKey, w);
    if (pgl && o) {
      const ratio = o.rps / pgl.rps;
      // What this machine allows at best: its cores spent only on PostgreSQL and wrk.
      const ceiling = (os.cpus().length * 1000) / (o.pgCpuMsPerReq + o.wrkCpuMsPerReq);
      out.push(`${ratio >= 5 && o.p99_us < pgl.p99_us && o.peakRssKiB < pgl.peakRssKiB ? "MET   " : "MISSED"} ${w}: ${name} on PostgreSQL ≥ 5× PostGraphile's req/s with lower p99 and peak RSS ` +
        `(${ratio.toFixed(2)}×; p99 ${ms(o.p99_us)} vs ${ms(pgl.p99_us)} ms; RSS ${mib(o.peakRssKiB)} vs ${mib(pgl.peakRssKiB)} MiB; ` +
        `CPU/req ${name} ${cpuMs(o.serverCpuMsPerReq)} vs PostGraphile ${cpuMs(pgl.serverCpuMsPerReq)} ms, PostgreSQL ${cpuMs(o.pgCpuMsPerReq)} vs ${cpuMs(pgl.pgCpuMsPerReq)} ms; ` +
        `5× would be ${(5 * pgl.rps).toFixed(0)} req/s, and with ${name} costing no CPU at all this machine's ${os.cpus().length} cores, ` +
        `shared with PostgreSQL (${cpuMs(o.pgCpuMsPerReq)} ms/req) and wrk (${cpuMs(o.wrkCpuMsPerReq)} ms/req), allow ~${ceiling.toFixed(0)} req/s)`);
    }
    if (o && s) {
      out.push(`${s.rps >= o.rps ? "MET   " : "MISSED"} ${w}: ${name} on SQLite at least as fast as on PostgreSQL ` +
        `(${s.rps.toFixed(1)} vs ${o.rps.toFixed(1)} req/s)`);
    }
  }
  for (const [db, key] of [["PostgreSQL", pgKey], ["SQLite", sqliteKey]]) {
    const small = get(key, `keyset-${SHAPE.keysetSmallMembers}`);
    const large = get(key, `keyset-${SHAPE.keysetLargeMembers}`);
    if (small && large) {
      const f = large.p50_us / small.p50_us;
      out.push(`${f <= 2 ? "MET   " : "MISSED"} keyset (${COMPARE ? `${name}, ` : ""}${db}): the 100,000-member page within 2× of the 100-member page ` +
        `(p50 ${ms(large.p50_us)} vs ${ms(small.p50_us)} ms = ${f.toFixed(2)}×; req/s ${large.rps.toFixed(1)} vs ${small.rps.toFixed(1)})`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------- main

const started = new Date();
const m = machine();
log(`machine: ${m.uname}; ${m.nproc} cores; ${m.memory}`);
for (const v of m.variants) log(`orgql variant ${describeVariant(v)}`);
log(`workloads: ${WORKLOADS.join(", ")}`);
const before = await otherLoad(2000);
log(`other processes' CPU before the run: ${before.otherPct.toFixed(0)}%`);

let seeded = null;
if (env.BENCH_REUSE === "1") log("BENCH_REUSE=1: using the databases of an earlier run");
else seeded = await seed();
const dataCounts = counts();
log(`data: ${JSON.stringify(dataCounts)}`);

const results = [];
const failures = [];
const failed = new Set(); // servers that failed once: not run again in later rounds
// Rounds interleave the servers (PostGraphile, Apollo, each orgql variant on PostgreSQL, each
// on SQLite, then again), so that a change in the machine's speed over minutes — seen here:
// the same binary 30% apart from one minute to the next — falls on every server alike; each
// server's median round is reported. Each round starts one server later than the last: in a
// fixed order, the second of two orgql variants on the nested query measured 3–9% slower than
// the first, whichever variant it was; rotated, no server keeps a position's advantage.
for (let round = 1; round <= ROUNDS; round++) {
  const keys = Object.keys(SERVERS).filter((key) => want(baseOf(key)) && !failed.has(key));
  const shift = (round - 1) % Math.max(keys.length, 1);
  for (const key of [...keys.slice(shift), ...keys.slice(0, shift)]) {
    if (failed.has(key)) continue;
    try {
      await runServer(key, results, round);
    } catch (e) {
      log(`FAILED ${key}: ${e.message}`);
      failures.push(`${key}: ${e.message}`);
      failed.add(key);
    }
  }
}
// Every variant, made once each (the keyset runs are a check of scaling, not a comparison).
if (want("keyset")) {
  for (const key of [...VARIANTS.map((v) => orgqlKey(v, "orgql-pg")), ...VARIANTS.map((v) => orgqlKey(v, "orgql-sqlite"))]) {
    try {
      await runKeyset(key, results);
    } catch (e) {
      log(`FAILED keyset ${key}: ${e.message}`);
      failures.push(`keyset ${key}: ${e.message}`);
    }
  }
}

const summary = medians(results);
const main = table(summary, false);
const keyset = keysetTable(summary, false);
const goals = targets(summary);
const targetsFor = COMPARE ? ` — for the last variant, "${LAST.label}"` : "";
console.log(`\norgql benchmark — wrk -t${THREADS} -c${CONNECTIONS}, ${WARMUP} s warm-up + ${DURATION} s measured per run, each server alone; median of ${ROUNDS} interleaved rounds\n`);
if (COMPARE) console.log(`orgql variants:\n${m.variants.map((v) => `  ${describeVariant(v)}`).join("\n")}\n`);
console.log(render(main.rows, false, main.blocks));
console.log(`\nKeyset pagination (orgql): members(first: 20, after: <cursor at 3/4 of the list>)\n`);
console.log(render(keyset, false));
console.log(`\nTargets (reported, not asserted)${targetsFor}:\n${goals.map((g) => `  ${g}`).join("\n")}`);
if (failures.length) console.log(`\nFAILURES:\n${failures.map((f) => `  ${f}`).join("\n")}`);

const maxOther = Math.max(0, ...results.map((r) => r.otherCpuPct));
const busy = results.filter((r) => r.otherCpuPct >= 10);
if (env.BENCH_NO_RESULTS !== "1") {
  const date = started.toISOString().slice(0, 10);
  const dir = env.BENCH_RESULTS_DIR || join(BENCH, "results");
  mkdirSync(dir, { recursive: true });
  let file = join(dir, `${date}.md`);
  for (let i = 2; existsSync(file); i++) file = join(dir, `${date}-${i}.md`);
  const md = `# orgql benchmark, ${started.toISOString().slice(0, 16).replace("T", " ")} UTC

Made by \`bench/run.sh\` (see bench/README.md). wrk ${THREADS} threads, ${CONNECTIONS} connections,
${WARMUP} s warm-up then ${DURATION} s measured per row; each server runs alone while measured and is
restarted for each workload, so "peak RSS" (VmHWM of the server process; PostgreSQL's own
memory is not counted) covers one warm-up and one measured run. "failed" counts socket
errors, non-200 answers and answers carrying GraphQL \`errors\`. "vs PostGraphile" is req/s
relative to PostGraphile on the same workload.${COMPARE ? ` "vs ${FIRST.label}" is req/s relative to the
first orgql variant, "${FIRST.label}", on the same workload and database (PostGraphile's and Apollo's
rows: relative to it on PostgreSQL): the median of the rounds' ratios, each taken within one round.` : ""} Every workload (${WORKLOADS.join(", ")}) was run in ${ROUNDS}
rounds, the servers interleaved in each (so that a drift in the machine's speed falls on all
of them alike); each row is the server's median round, and "req/s by round" lists every
round. The keyset runs were made once${COMPARE ? " per variant" : ""}.

## orgql ${COMPARE ? "variants (\`BENCH_ORGQL\`)" : "binary"}

${m.variants.map((v) => `- ${describeVariant(v, true)}`).join("\n")}
${COMPARE ? `\nThe targets below are those of the last variant, "${LAST.label}".\n` : ""}
## Results

${render(table(summary, true).rows, true)}

### Keyset pagination at scale (orgql)

\`members(first: 20, after: …)\` with the cursor of the member at 3/4 of the list, in an
organization of 100 members and in one of 100,000 (bulk-inserted with SQL).

${render(keysetTable(summary, true), true)}

### Targets (reported, not asserted)

${goals.map((g) => `- ${g}`).join("\n")}
${failures.length ? `\n### Failures\n\n${failures.map((f) => `- ${f}`).join("\n")}\n` : ""}
## Machine

- \`uname -a\`: ${m.uname}
- \`nproc\`: ${m.nproc}; CPU: ${m.cpu}; memory: ${m.memory}
- wrk, the servers and PostgreSQL ${DB === "orgql_bench" ? "" : `(database ${DB}) `}share these cores.
- orgql: release build${VARIANTS.length > 1 ? "s" : ""} (see above); working tree at commit ${m.commit}; ${m.rustc}
- PostgreSQL ${m.postgres}; SQLite: ${m.sqlite}
- Node ${m.node}; PostGraphile ${m.postgraphile}; @apollo/server ${m.apollo}, dataloader ${m.dataloader}, pg ${m.pg}
- ${m.wrk}

### Other load on the machine

"other CPU %" is the CPU that processes outside the benchmark used during each measured run
(100% = one core of ${m.nproc}; from /proc/<pid>/stat before and after the run; the server,
its PostgreSQL backends, wrk and PostgreSQL's background processes are not counted; a
process that ended during the run is not seen, so short compiler jobs are undercounted). Before
the run: ${before.otherPct.toFixed(0)}%; highest during a measured run: ${maxOther.toFixed(0)}%.
"server CPU ms/req" and "PostgreSQL CPU ms/req" (the backends on the benchmark's database)
are CPU time per answered request, which other load disturbs less than req/s.
${busy.length
    ? `\n**The machine was busy with other work during ${busy.length} of ${results.length} measured runs** (req/s and latencies there are lower than on an idle machine):\n\n${busy.map((r) => `- ${r.server} (${r.db}) ${r.workload}: ${r.otherCpuPct.toFixed(0)}% — ${r.otherTop.map((t) => `\`${t.cmd}\` ${t.pct.toFixed(0)}%`).join(", ")}`).join("\n")}`
    : "\nNo other process used noticeable CPU during the measured runs."}
${before.top.length ? `\nBefore the run: ${before.top.map((t) => `\`${t.cmd}\` ${t.pct.toFixed(0)}%`).join(", ")}\n` : ""}
## Data

${seeded ? `Seeded through orgql's API: PostgreSQL ${JSON.stringify(seeded.pg?.seconds ?? {})} s, SQLite ${JSON.stringify(seeded.sqlite?.seconds ?? {})} s (signUps / addMember / createDataset phases).` : "Reused from an earlier run (BENCH_REUSE=1)."}

| table | PostgreSQL | SQLite |
| --- | --- | --- |
${Object.entries(dataCounts).map(([k, v]) => `| ${k} | ${v.pg ?? "—"} | ${v.sqlite ?? "—"} |`).join("\n")}

### Raw numbers

\`\`\`json
${JSON.stringify(results.map(({ otherTop, ...r }) => r), null, 1)}
\`\`\`
`;
  writeFileSync(file, md);
  console.log(`\nwritten: ${file.startsWith(ROOT) ? file.slice(ROOT.length + 1) : file}`);
}
process.exit(failures.length ? 1 : 0);
