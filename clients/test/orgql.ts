// Starts a live orgql for a test: the debug binary (../target/debug/orgql, or $ORGQL_BIN),
// on a free port (it binds 127.0.0.1:0 and logs its address) with a fresh SQLite database in
// a temporary folder.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export interface Orgql {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** `<base>/graphql` */
  endpoint: string;
  /** Its database URL (a second instance may share it). */
  database: string;
  stop(): Promise<void>;
}

const here = import.meta.dirname;

/** Starts orgql; with `database`, on that SQLite URL (a second instance on the first one's
 * file), else on a fresh one. */
export async function startOrgql(options: { database?: string } = {}): Promise<Orgql> {
  const bin = process.env.ORGQL_BIN ?? resolve(here, "../../target/debug/orgql");
  if (!existsSync(bin)) {
    throw new Error(`no orgql binary at ${bin}: run \`cargo build\` first (or set ORGQL_BIN)`);
  }
  const dir = mkdtempSync(join(tmpdir(), "orgql-clients-"));
  const database = options.database ?? `sqlite://${join(dir, "orgql.db")}?mode=rwc`;
  const child = spawn(
    bin,
    [
      "--listen",
      "127.0.0.1:0",
      "--database-url",
      database,
      "--jwt-secret",
      "clients-test-secret-clients-test-secret",
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      // No drain on SIGTERM: nothing balances load here.
      // More sign-ups from 127.0.0.1 than the default allows: the story signs up a dozen users.
      env: { ...process.env, NO_COLOR: "1", RUST_LOG: "warn,orgql=info", ORGQL_SHUTDOWN_DRAIN_SECONDS: "0", ORGQL_SIGNUP_PER_ADDRESS: "100" },
    },
  );
  let log = "";
  const base = await new Promise<string>((resolveBase, reject) => {
    const timer = setTimeout(() => reject(new Error(`orgql did not start in 60 s:\n${log}`)), 60_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match?.[1]) {
        clearTimeout(timer);
        resolveBase(match[1]);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`orgql exited (${code}) before listening:\n${log}`));
    });
  });
  const health = await fetch(`${base}/health`);
  if (!health.ok) {
    throw new Error(`orgql /health answered ${health.status}`);
  }
  return {
    base,
    database,
    endpoint: `${base}/graphql`,
    stop: () => stop(child, dir),
  };
}

async function stop(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
}
