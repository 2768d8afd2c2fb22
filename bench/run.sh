#!/usr/bin/env bash
# The orgql benchmark, in one command:  bench/run.sh
# Builds orgql (release; not when ORGQL_BIN or BENCH_ORGQL names the binaries), installs the
# two Node comparison servers from their lockfiles, seeds PostgreSQL and SQLite through orgql's
# API, runs wrk against each server alone, prints the table and writes it to
# bench/results/<date>.md. Options: see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo only when this script builds orgql (neither ORGQL_BIN nor BENCH_ORGQL given)
build=0
tools=(node npm wrk psql sqlite3)
if [[ -z "${ORGQL_BIN:-}" && -z "${BENCH_ORGQL:-}" ]]; then
  build=1
  tools=(cargo "${tools[@]}")
fi
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "bench/run.sh needs: ${missing[*]} (Debian: apt-get install wrk postgresql-client sqlite3)" >&2
  exit 2
fi
pg="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
if ! psql -X -q -At "$pg/postgres" -c 'SELECT 1' >/dev/null; then
  echo "bench/run.sh needs PostgreSQL at $pg (trust auth; set BENCH_PG to change)" >&2
  exit 2
fi

# BENCH_ORGQL names its binaries (built beforehand, e.g. copies of earlier builds): no build
if ((build)); then
  echo "[bench] cargo build --release" >&2
  cargo build --release --quiet --bin orgql
fi

for dir in bench/postgraphile bench/apollo; do
  # npm ci again only when the lockfile changed since the last install
  if [[ ! -f "$dir/node_modules/.package-lock.json" || "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
    echo "[bench] npm ci in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

exec node bench/run.mjs "$@"
