// The write benchmark: `updateMember` throughput of orgql builds compared in one run.
//
//   node bench/mutations.mjs            (or: BENCH_ORGQL='[…]' node bench/mutations.mjs)
//
// Every variant gets its own database on each engine (a build refuses to start on a database
// migrated by a newer one), seeded through that variant's own API: one organization, its
// admin `boss` and BENCH_MEMBERS members. wrk then sends `updateMember` requests as `boss`,
// cycling through the members twice per cycle — every member promoted to ADMIN, then every
// member back to MEMBER — so every request changes a row (and, from issue 26 on, writes its
// audit event in the same transaction). Rounds interleave the variants, so that a before/after
// comparison sees the same minutes of this machine; the report is each variant's median round.
//
// Options (environment), as in bench/run.mjs where they share a name:
//   BENCH_ORGQL      JSON array of {"label", "bin", "env", "flags"} (default: one variant,
//                    target/release/orgql)
//   BENCH_DURATION   measured seconds per run (default 10); BENCH_WARMUP (default 5)
//   BENCH_ROUNDS     rounds (default 3); BENCH_CONNECTIONS wrk connections (default 32)
//   BENCH_MEMBERS    members updated in turn (default 100; more than the connections, so
//                    no two requests in flight touch the same member)
//   BENCH_ONLY       orgql-pg, orgql-sqlite or both (default both)
//   BENCH_PG         PostgreSQL server URL (default postgres://postgres@127.0.0.1:5432)
//   BENCH_RESULTS_DIR  also write the table to <dir>/mutations-<date>.md

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { PASSWORD } from "./seed/shape.mjs";
import { BENCH, ROOT, WORK, env, PG, ORGQL_BIN, JWT_SECRET, logger, sleep, run, psql } from "./lib.mjs";

const DURATION = Number(env.BENCH_DURATION || 10);
const WARMUP = Number(env.BENCH_WARMUP || 5);
const ROUNDS = Math.max(1, Number(env.BENCH_ROUNDS || 3));
const CONNECTIONS = Number(env.BENCH_CONNECTIONS || 32);
const MEMBERS = Number(env.BENCH_MEMBERS || 100);
const ONLY = new Set((env.BENCH_ONLY || "orgql-pg,orgql-sqlite").split(","));
const PORT = 18190;

const log = logger("mutations");

const VARIANTS = (env.BENCH_ORGQL ? JSON.parse(env.BENCH_ORGQL) : [{ label: "orgql" }]).map((v, i) => ({
  label: String(v.label),
  bin: v.bin ? resolve(ROOT, v.bin) : ORGQL_BIN,
  env: v.env ?? {},
  flags: Array.isArray(v.flags) ? v.flags : String(v.flags ?? "").split(" ").filter(Boolean),
  slug: `${i + 1}-${String(v.label).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "")}`,
}));
for (const v of VARIANTS) if (!existsSync(v.bin)) throw new Error(`variant "${v.label}": no binary at ${v.bin}`);

// One database per variant and engine.
const targets = [];
for (const v of VARIANTS) {
  if (ONLY.has("orgql-pg")) {
    const db = `orgql_bench_mut_${v.slug.replace(/-/g, "_")}`;
    targets.push({ v, engine: "PostgreSQL", db, url: `${PG}/${db}?sslmode=disable` });
  }
  if (ONLY.has("orgql-sqlite")) {
    const file = join(WORK, `mutations-${v.slug}.sqlite`);
    targets.push({ v, engine: "SQLite", file, url: `sqlite://${file}?mode=rwc` });
  }
}

async function post(url, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  return res.json();
}
async function gql(url, query, variables, token) {
  const r = await post(url, { query, variables }, token);
  if (r.errors || !r.data) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(r.errors ?? r)}`);
  return r.data;
}

async function start(t, extra = []) {
  const logFile = join(WORK, `mutations-${t.v.slug}-${t.engine}.log`);
  const proc = spawn(t.v.bin, ["--database-url", t.url, "--listen", `127.0.0.1:${PORT}`, ...t.v.flags, ...extra], {
    env: { ...env, JWT_SECRET, RUST_LOG: "warn", ORGQL_SHUTDOWN_DRAIN_SECONDS: "0", ...t.v.env },
    stdio: ["ignore", openSync(logFile, "a"), openSync(logFile, "a")],
  });
  let exited = null;
  proc.on("exit", (code, signal) => (exited = { code, signal }));
  const url = `http://127.0.0.1:${PORT}/graphql`;
  for (let i = 0; i < 600; i++) {
    if (exited) throw new Error(`${t.v.label} (${t.engine}) exited at start (${JSON.stringify(exited)}); see ${logFile}`);
    // (While it migrates, orgql answers with its status, not with data.)
    try {
      if ((await post(url, { query: "{ __typename }" })).data) return { proc, url, exited: () => exited, logFile };
    } catch {}
    await sleep(200);
  }
  proc.kill("SIGKILL");
  throw new Error(`${t.v.label} (${t.engine}) did not answer within 120 s`);
}
async function stop(s) {
  if (s.exited()) return;
  const gone = new Promise((r) => s.proc.once("exit", r));
  s.proc.kill("SIGTERM");
  await gone;
}

const member = (i) => `mut-${String(i).padStart(4, "0")}`;
const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { token } }`;

async function seed(t) {
  if (t.engine === "PostgreSQL") {
    psql("postgres", `DROP DATABASE IF EXISTS ${t.db} WITH (FORCE)`);
    psql("postgres", `CREATE DATABASE ${t.db}`);
  } else {
    for (const s of ["", "-wal", "-shm"]) rmSync(t.file + s, { force: true });
  }
  const s = await start(t, ["--sign-ups-per-address", "1000000", "--login-attempts-per-address", "1000000"]);
  try {
    const boss = (await gql(s.url, SIGN_UP, { input: { username: "boss", email: "boss@example.com", password: PASSWORD } })).signUp.token;
    await gql(s.url, `mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } } }`,
      { input: { username: "mut-org" } }, boss);
    for (let i = 0; i < MEMBERS; i++) {
      await gql(s.url, SIGN_UP, { input: { username: member(i), email: `${member(i)}@example.com`, password: PASSWORD } });
      await gql(s.url, `mutation($input: AddMemberInput!) { addMember(input: $input) { member { role } } }`,
        { input: { organization: "mut-org", username: member(i), role: "MEMBER" } }, boss);
    }
  } finally {
    await stop(s);
  }
}

// The request bodies: every member to ADMIN, then every member back to MEMBER.
const UPDATE = `mutation($input: UpdateMemberInput!) { updateMember(input: $input) { member { role } } }`;
const bodies = [];
for (const role of ["ADMIN", "MEMBER"]) {
  for (let i = 0; i < MEMBERS; i++) {
    const path = join(WORK, `mutations-${role}-${i}.json`);
    writeFileSync(path, JSON.stringify({ query: UPDATE, variables: { input: { organization: "mut-org", username: member(i), role } } }));
    bodies.push(path);
  }
}

function wrk(url, token, seconds) {
  // One wrk thread: it walks the bodies in order, so the requests in flight at any moment
  // name different members (two threads would send each body twice, the second a no-op).
  const r = spawnSync("wrk", ["-t", "1", "-c", String(CONNECTIONS), "-d", `${seconds}s`, "--timeout", "30s",
    "-s", join(BENCH, "wrk/graphql.lua"), url], { encoding: "utf8", env: { ...env, BENCH_BODIES: bodies.join(","), BENCH_TOKEN: token } });
  const m = /BENCH_JSON (\{.*\})/.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  return JSON.parse(m[1]);
}

// Every member back to MEMBER, so each run starts from the same state.
async function reset(s, token) {
  for (let i = 0; i < MEMBERS; i++) {
    await gql(s.url, UPDATE, { input: { organization: "mut-org", username: member(i), role: "MEMBER" } }, token);
  }
}

const results = [];
log(`${VARIANTS.length} variant(s), ${targets.length} database(s), ${ROUNDS} round(s) of ${WARMUP}+${DURATION} s, ${CONNECTIONS} connections, ${MEMBERS} members`);
for (const t of targets) {
  log(`seeding ${t.v.label} (${t.engine}) through its own API`);
  await seed(t);
}
for (let round = 1; round <= ROUNDS; round++) {
  for (const engine of ["PostgreSQL", "SQLite"]) {
    for (const t of targets.filter((x) => x.engine === engine)) {
      const s = await start(t);
      try {
        const token = (await gql(s.url, `mutation($input: LogInInput!) { logIn(input: $input) { token } }`,
          { input: { username: "boss", password: PASSWORD } })).logIn.token;
        await reset(s, token);
        wrk(s.url, token, WARMUP);
        await reset(s, token);
        const r = wrk(s.url, token, DURATION);
        if (s.exited()) throw new Error(`${t.v.label} (${t.engine}) died; see ${s.logFile}`);
        r.failed = r.errors_connect + r.errors_read + r.errors_write + r.errors_status + r.errors_timeout + r.bad_responses;
        log(`${t.v.label} (${engine}) round ${round}: ${r.rps.toFixed(1)} req/s, p50 ${(r.p50_us / 1000).toFixed(2)} ms, ` +
          `p99 ${(r.p99_us / 1000).toFixed(2)} ms, failed ${r.failed}`);
        results.push({ t, round, ...r });
      } finally {
        await stop(s);
      }
    }
  }
}

// Each target's median round by req/s.
const rows = targets.map((t) => {
  const all = results.filter((r) => r.t === t).sort((a, b) => a.rps - b.rps);
  return { t, median: all[Math.floor(all.length / 2)], all };
});
const first = (engine) => rows.find((r) => r.t.engine === engine);
const head = ["build", "database", "req/s (median)", "rounds", "p50 ms", "p99 ms", "failed", `vs ${VARIANTS[0].label}`];
const body = rows.map(({ t, median, all }) => [
  t.v.label, t.engine, median.rps.toFixed(1), all.map((r) => r.rps.toFixed(0)).join(" / "),
  (median.p50_us / 1000).toFixed(2), (median.p99_us / 1000).toFixed(2), String(median.failed),
  `${(median.rps / first(t.engine).median.rps).toFixed(2)}×`,
]);
const table = [head, head.map(() => "---"), ...body].map((r) => `| ${r.join(" | ")} |`).join("\n");
const text = `## updateMember throughput\n\n${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; ` +
  `${ROUNDS} interleaved rounds of ${DURATION} s (after ${WARMUP} s of warm-up), wrk 1 thread × ${CONNECTIONS} connections, ` +
  `one organization of ${MEMBERS} members whose role goes MEMBER → ADMIN → MEMBER in turn (every request changes a row).\n\n` +
  `${VARIANTS.map((v) => `- **${v.label}**: \`${v.bin}\` — ${run(v.bin, ["--version"]).trim()}`).join("\n")}\n\n${table}\n`;
console.log(text);
if (env.BENCH_RESULTS_DIR) {
  mkdirSync(env.BENCH_RESULTS_DIR, { recursive: true });
  const file = join(env.BENCH_RESULTS_DIR, `mutations-${new Date().toISOString().slice(0, 10)}.md`);
  writeFileSync(file, text);
  log(`wrote ${file}`);
}
for (const t of targets) if (t.engine === "PostgreSQL") psql("postgres", `DROP DATABASE IF EXISTS ${t.db} WITH (FORCE)`);
