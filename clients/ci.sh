#!/usr/bin/env bash
# CI for the clients: GraphiQL served offline by orgql, the generated TypeScript client,
# the API story with urql, the GraphQL over HTTP audit suite, and GraphiQL in headless Chromium.
#
#   bash clients/ci.sh        (from anywhere; exits 0 with a SKIP message without Node)
#
# 1. cargo build once, from a tree without graphiql/node_modules (removed first): orgql must
#    serve GraphiQL offline from the committed graphiql/vendor/ alone, as on a fresh clone.
# 2. graphiql/verify.sh: npm ci there and a byte-for-byte check that graphiql/vendor/ holds
#    the files of the packages pinned in graphiql/package-lock.json.
# 3. npm ci in clients/, codegen (validates every operation against ../schema.graphql),
#    tsc --noEmit.
# 4. node --test: operation coverage, the API story and the graphql-http audits against a
#    live orgql, and the browser test (installs Chromium with apt-get when /usr/bin/chromium
#    is missing). Screenshot: clients/artifacts/graphiql.png.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIP clients: node/npm is not installed (vendored GraphiQL not verified;"
  echo "SKIP clients: codegen, typecheck, API, audit and browser tests not run)"
  exit 0
fi
echo "== clients: node $(node --version), npm $(npm --version)"

export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

# The binary every test below uses is built as on a fresh clone: no graphiql/node_modules
# (build.rs must not need it; the browser test then proves the page works offline).
echo "== cargo build (orgql, from a tree without graphiql/node_modules)"
rm -rf "$root/graphiql/node_modules"
(cd "$root" && cargo build --quiet -p orgql --bin orgql)
export ORGQL_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/orgql"

# Only after the build: this npm ci recreates graphiql/node_modules to compare against.
bash "$root/graphiql/verify.sh"

echo "== clients: npm ci"
(cd "$here" && npm ci --no-progress)

cd "$here"
echo "== codegen (validates the operations against ../schema.graphql)"
npm run --silent codegen
echo "== tsc --noEmit"
npm run --silent typecheck

tests=(test/coverage.test.ts test/api.test.ts test/http-audit.test.ts)
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
