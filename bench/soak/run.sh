#!/usr/bin/env bash
# Soak test: two orgql instances (release build) on one fresh PostgreSQL database, driven by
# a round-robin client (bench/soak/client.py, Python standard library only) with mixed reads
# and writes, including racing membership changes, for a bounded time. Loopback only.
#
# Prints requests, errors by code, the HTTP 5xx count, latency percentiles, each instance's
# resident memory at start and end, and then checks the invariants in SQL:
#   - every organization has an ADMIN;
#   - no collaborator on an organization's dataset without a membership in it.
# Exits non-zero when an invariant fails, on any 5xx, on transport failures (a crashed or
# hung instance), or on any INTERNAL_SERVER_ERROR.
#
# Usage: bench/soak/run.sh [duration-seconds]        (default 180)
# Environment:
#   SOAK_DURATION     seconds of load (the argument wins)          default 180
#   SOAK_CONCURRENCY  client threads                               default 12
#   SOAK_PG_ADMIN_URL PostgreSQL admin URL (a database is created and dropped on it)
#                     default $TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres
#   SOAK_KEEP_DB=1    keep the database afterwards (its name is printed)
#   SOAK_SKIP_BUILD=1 use target/release/orgql as it is
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${1:-${SOAK_DURATION:-180}}"
CONCURRENCY="${SOAK_CONCURRENCY:-12}"
ADMIN_URL="${SOAK_PG_ADMIN_URL:-${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
WORK="$(mktemp -d -t orgql-soak.XXXXXX)"
DB_NAME="orgql_soak_$(date +%s)_$$"
# The admin URL with the database name replaced.
DB_URL="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$ADMIN_URL" "$DB_NAME")"

case "$ADMIN_URL" in
  *@127.0.0.1[:/]*|*@localhost[:/]*|*://127.0.0.1[:/]*|*://localhost[:/]*) ;;
  *) echo "loopback only: SOAK_PG_ADMIN_URL must point at 127.0.0.1 or localhost" >&2; exit 2 ;;
esac

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${SOAK_KEEP_DB:-0}" != 1 ]; then
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  else
    echo "kept database $DB_NAME"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${SOAK_SKIP_BUILD:-0}" != 1 ]; then
  echo "== building orgql (release)"
  cargo build --release --quiet --bin orgql
fi
BIN=target/release/orgql

echo "== database $DB_NAME"
psql -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "CREATE DATABASE $DB_NAME"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
ADDRESSES=()
for i in 0 1; do
  # One address sends every log-in here, so the per-address log-in limit is lifted. Logs at
  # WARN, but orgql's own INFO lines (its address), not one line per request.
  : >"$WORK/orgql-$i.log"
  JWT_SECRET="$SECRET" ORGQL_LOGIN_PER_ADDRESS=1000000 ORGQL_SIGNUP_PER_ADDRESS=1000000 RUST_LOG="warn,orgql=info" NO_COLOR=1 \
    "$BIN" --listen 127.0.0.1:0 --database-url "$DB_URL" >"$WORK/orgql-$i.log" 2>&1 &
  PIDS+=("$!")
  port=""
  for _ in $(seq 1 300); do
    port="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$WORK/orgql-$i.log" | head -n1)"
    [ -n "$port" ] && break
    kill -0 "${PIDS[$i]}" 2>/dev/null || { cat "$WORK/orgql-$i.log"; echo "instance $i died" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { echo "instance $i did not listen" >&2; exit 1; }
  ADDRESSES+=("http://127.0.0.1:$port")
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null
done
RSS_START=("$(rss_kb "${PIDS[0]}")" "$(rss_kb "${PIDS[1]}")")
echo "instances: ${ADDRESSES[0]} (pid ${PIDS[0]}), ${ADDRESSES[1]} (pid ${PIDS[1]})"

echo "== load: ${DURATION}s, $CONCURRENCY threads, round-robin"
# Resident memory of both instances every 30 s, to tell growth from a plateau.
(
  while sleep 30; do
    echo "$(( $(rss_kb "${PIDS[0]}" || echo 0) / 1024 )) $(( $(rss_kb "${PIDS[1]}" || echo 0) / 1024 ))"
  done
) >"$WORK/rss.log" 2>/dev/null &
SAMPLER=$!
python3 bench/soak/client.py --targets "$(IFS=,; echo "${ADDRESSES[*]}")" \
  --duration "$DURATION" --concurrency "$CONCURRENCY" 2>"$WORK/client.err" | tee "$WORK/client.out"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true

FAILED=0
for i in 0 1; do
  if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
    echo "FAIL: instance $i is gone"; FAILED=1
  fi
done
RSS_END=("$(rss_kb "${PIDS[0]}" || echo 0)" "$(rss_kb "${PIDS[1]}" || echo 0)")

RESULT="$(sed -n 's/^RESULT //p' "$WORK/client.out")"
if [ -z "$RESULT" ]; then
  echo "FAIL: the client did not finish"; cat "$WORK/client.err"; exit 1
fi

echo "== results"
python3 - "$RESULT" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
print(f"requests:          {r['requests']} ({r['setup_requests']} in setup), "
      f"{r['requests_per_second']}/s over {r['seconds']}s; per instance {r['per_instance']}")
print("answers by error code (requests): " + (", ".join(f"{k} {v}" for k, v in r["errors_by_code"].items()) or "none"))
print(f"HTTP 5xx:          {r['http_5xx']}")
print(f"transport errors:  {r['transport_errors']}")
l = r["latency_ms"]
print(f"latency:           p50 {l['p50']} ms, p99 {l['p99']} ms, max {l['max']} ms")
EOF
for i in 0 1; do
  echo "instance $i RSS:    start $((RSS_START[i] / 1024)) MiB, end $((RSS_END[i] / 1024)) MiB;" \
    "every 30 s: $(awk -v c=$((i + 1)) '{ printf "%s ", $c }' "$WORK/rss.log")MiB"
done

field() { python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$RESULT" "$1"; }
[ "$(field 'r["http_5xx"]')" = 0 ] || { echo "FAIL: HTTP 5xx answers"; FAILED=1; }
[ "$(field 'r["transport_errors"]')" = 0 ] || { echo "FAIL: transport errors (crash or hang?)"; FAILED=1; }
[ "$(field 'r["errors_by_code"].get("INTERNAL_SERVER_ERROR", 0)')" = 0 ] || { echo "FAIL: INTERNAL_SERVER_ERROR answers"; FAILED=1; }
[ "$(field 'r["errors_by_code"].get("<none>", 0)')" = 0 ] || { echo "FAIL: errors without a code"; FAILED=1; }
if [ -s "$WORK/client.err" ]; then
  echo "-- client stderr (first 20 lines)"; head -n 20 "$WORK/client.err"
fi
if grep -qiE "panicked|ERROR" "$WORK"/orgql-*.log; then
  echo "-- errors in the servers' logs (first 20 lines)"; grep -hiE "panicked|ERROR" "$WORK"/orgql-*.log | head -n 20
fi

echo "== invariants (SQL)"
sql() { psql -qtA -v ON_ERROR_STOP=1 "$DB_URL" -c "$1"; }
echo "organizations: $(sql 'SELECT count(*) FROM organization'), memberships: $(sql 'SELECT count(*) FROM membership'), datasets: $(sql 'SELECT count(*) FROM dataset'), collaborators: $(sql 'SELECT count(*) FROM collaborator')"
NO_ADMIN="$(sql "SELECT count(*) FROM organization o WHERE NOT EXISTS (
  SELECT 1 FROM membership m WHERE m.organization_id = o.account_id AND m.role = 'ADMIN')")"
STRAYS="$(sql "SELECT count(*) FROM collaborator c
  JOIN dataset d ON d.id = c.dataset_id
  JOIN organization o ON o.account_id = d.owner_id
  WHERE NOT EXISTS (SELECT 1 FROM membership m
                    WHERE m.organization_id = o.account_id AND m.user_id = c.user_id)")"
echo "organizations without an ADMIN: $NO_ADMIN"
echo "collaborators on an organization's dataset without a membership: $STRAYS"
[ "$NO_ADMIN" = 0 ] || { echo "FAIL: an organization has no admin"; FAILED=1; }
[ "$STRAYS" = 0 ] || { echo "FAIL: collaborators who are not members"; FAILED=1; }

if [ "$FAILED" = 0 ]; then
  echo "SOAK PASSED"
else
  echo "SOAK FAILED"
fi
exit "$FAILED"
