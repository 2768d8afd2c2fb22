#!/usr/bin/env bash
# CI for the clients: GraphiQL served offline by orgql, the generated TypeScript client,
# the API story with urql, and GraphiQL in headless Chromium.
#
#   bash clients/ci.sh        (from anywhere; exits 0 with a SKIP message without Node)
#
# 1. npm ci in graphiql/ (the pinned GraphiQL assets build.rs embeds) and in clients/.
# 2. cargo build once: target/debug/orgql, now serving GraphiQL offline.
# 3. codegen (validates every operation against ../schema.graphql), tsc --noEmit.
# 4. node --test: operation coverage, the API story against a live orgql, and the browser
#    test (installs Chromium with apt-get when /usr/bin/chromium is missing).
#    Screenshot: clients/artifacts/graphiql.png.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIP clients: node/npm is not installed (GraphiQL stays on the CDN fallback;"
  echo "SKIP clients: codegen, typecheck, API and browser tests not run)"
  exit 0
fi
echo "== clients: node $(node --version), npm $(npm --version)"

export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

echo "== graphiql: npm ci (assets embedded by build.rs)"
(cd "$root/graphiql" && npm ci --no-progress)

echo "== clients: npm ci"
(cd "$here" && npm ci --no-progress)

echo "== cargo build (orgql with offline GraphiQL)"
(cd "$root" && cargo build --quiet -p orgql --bin orgql)
export ORGQL_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/orgql"

cd "$here"
echo "== codegen (validates the operations against ../schema.graphql)"
npm run --silent codegen
echo "== tsc --noEmit"
npm run --silent typecheck

tests=(test/coverage.test.ts test/api.test.ts)
chromium_path="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium_path" ]; then
  echo "== installing Chromium (apt-get) for the browser test"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
export CHROMIUM_PATH="$chromium_path"
tests+=(test/graphiql.browser.test.ts)

echo "== node --test: ${tests[*]}"
rm -rf artifacts
node --import tsx --test "${tests[@]}"
echo "clients: screenshot at clients/artifacts/graphiql.png"
echo "clients CI passed"
