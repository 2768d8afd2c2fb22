#!/usr/bin/env bash
# The live-updates benchmark in one command: builds orgql (release) unless ORGQL_BIN names a
# binary, builds the subscribers (bench/live/subscribers), installs `ws` from the lockfile
# (for BENCH_CLIENT=node), runs live.mjs. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -z "${ORGQL_BIN:-}" ]]; then
  cargo build --release --quiet --bin orgql
fi
cargo build --release --quiet --locked --manifest-path bench/live/subscribers/Cargo.toml
if [[ ! -f bench/live/node_modules/.package-lock.json || bench/live/package-lock.json -nt bench/live/node_modules/.package-lock.json ]]; then
  (cd bench/live && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node bench/live/live.mjs "$@"
