// What the benchmark scripts (run.mjs, mutations.mjs, cost.mjs, live/live.mjs) share: where
// things are, the settings every one of them reads, and the small helpers they all use.

import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const env = process.env;
/** This folder, `bench/`. */
export const BENCH = dirname(fileURLToPath(import.meta.url));
/** The repository. */
export const ROOT = resolve(BENCH, "..");
/** Scratch space for databases, logs and request bodies (git ignores it). */
export const WORK = join(BENCH, ".work");
mkdirSync(WORK, { recursive: true });

/** The PostgreSQL server (`BENCH_PG`, no trailing slash). */
export const PG = (env.BENCH_PG || "postgres://postgres@127.0.0.1:5432").replace(/\/$/, "");
/** The orgql binary measured unless a variant names another (`ORGQL_BIN`). */
export const ORGQL_BIN = env.ORGQL_BIN || join(env.CARGO_TARGET_DIR || join(ROOT, "target"), "release", "orgql");
/** The JWT secret every benchmarked orgql runs with. */
export const JWT_SECRET = "orgql-bench-secret-not-for-production-0123456789";

/** A logger whose lines start with `[name hh:mm:ss]`, on standard error. */
export const logger = (name) => (...a) => console.error(`[${name} ${new Date().toISOString().slice(11, 19)}]`, ...a);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `cmd` to its end; its standard output, or an error with what it printed. */
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** `sql` run by psql on database `db` of the PostgreSQL server; its output, trimmed. */
export const psql = (db, sql) => run("psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", `${PG}/${db}`, "-c", sql]).trim();
